"""SendAPI sandbox settings, seeded inventory, and the destinations that drive each outcome.

Destinations (the sandbox is test mode: ``sent`` then the rest, ``lifecycle_delay`` apart):

=====================  ========  ==========================================================
destination            channel   webhook events
=====================  ========  ==========================================================
+15005550101           sms       sms.sent → sms.delivered
+15005550102           sms       sms.sent → sms.failed (``error_code`` EC_INVALID_NUMBER)
+15005550103           sms       sms.sent only (never delivered)
+15005550000           sms, wa   refused: 422 ``invalid_destination`` (a dead number)
any other E.164        sms       sms.sent → sms.delivered
+15005550201           whatsapp  message.sent → message.delivered → message.read
+15005550202           whatsapp  message.sent → message.delivered (never read)
+15005550203           whatsapp  message.sent → message.failed (``error_code`` E_UNDELIVERABLE)
+15005550204           whatsapp  not on WhatsApp: contact check ``exists: false``;
                                 a send → message.failed (E_NOT_ON_WHATSAPP)
any other E.164        whatsapp  message.sent → message.delivered → message.read
bounce@<any domain>    email     email.sent → email.bounced (``bounce_type`` hard)
complaint@…            email     email.sent → email.delivered → email.complained
engaged@…              email     email.sent → email.delivered → email.opened → email.clicked
silent@…               email     email.sent only
any other address      email     email.sent → email.delivered
=====================  ========  ==========================================================

Keys (rehearsal values, they protect nothing): ``api_key`` (default :data:`SANDBOX_KEY`, every
channel; any configured ``sk_test_`` value),
:data:`SMS_ONLY_KEY` (403 4030 on email and WhatsApp), :data:`REVOKED_KEY` (401 4012),
:data:`EXPIRED_KEY` (401 4013); any other value is 401 4011, none is 401 4010.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ....core.errors import ConfigurationError

__all__ = [
    "CONTRACT_RETRY_SCHEDULE",
    "DEFAULT_WEBHOOK_SECRET",
    "EMAIL_OUTCOMES",
    "EXPIRED_KEY",
    "INVALID_DESTINATION",
    "NOT_ON_WHATSAPP",
    "REVOKED_KEY",
    "SANDBOX_KEY",
    "SMS_ONLY_KEY",
    "SMS_OUTCOMES",
    "SandboxConfig",
    "SandboxKey",
    "Step",
    "UNVERIFIED_DOMAIN",
    "VERIFIED_DOMAIN",
    "WHATSAPP_OUTCOMES",
]

SANDBOX_KEY = "sk_test_sbx_rehearsal_0000000000000001"
SMS_ONLY_KEY = "sk_test_sbx_smsonly_0000000000000002"
REVOKED_KEY = "sk_test_sbx_revoked_0000000000000003"
EXPIRED_KEY = "sk_test_sbx_expired_0000000000000004"
DEFAULT_WEBHOOK_SECRET = "whsec_sbx_rehearsal_signing_secret_0001"

# The contract's schedule for unacknowledged webhooks: 30 s, 2 m, 10 m, 1 h, 6 h, 24 h, then drop.
CONTRACT_RETRY_SCHEDULE = (30.0, 120.0, 600.0, 3600.0, 21600.0, 86400.0)

INVALID_DESTINATION = "+15005550000"
NOT_ON_WHATSAPP = "+15005550204"
VERIFIED_DOMAIN = "mail.sendapi-sandbox.test"
UNVERIFIED_DOMAIN = "pending.sendapi-sandbox.test"
SANDBOX_DKIM_KEY = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDsbxSendApiSandboxRehearsalKeyNotRealAAAA"
    "BBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKKKLLLLMMMMNNNNOOOOPPPPQQQQIDAQAB"
)


@dataclass(frozen=True)
class SandboxKey:
    """An API key the sandbox knows: its channels and whether it still works."""

    value: str
    scopes: frozenset[str] = frozenset({"sms", "whatsapp", "email"})
    revoked: bool = False
    expired: bool = False


def _default_keys() -> tuple[SandboxKey, ...]:
    return (
        SandboxKey(SMS_ONLY_KEY, scopes=frozenset({"sms"})),
        SandboxKey(REVOKED_KEY, revoked=True),
        SandboxKey(EXPIRED_KEY, expired=True),
    )


@dataclass(frozen=True)
class Step:
    """One webhook event of an outcome, with extra ``data`` fields."""

    event: str
    data: tuple[tuple[str, Any], ...] = ()


def _steps(*events: str | tuple[str, dict[str, Any]]) -> tuple[Step, ...]:
    out = []
    for item in events:
        if isinstance(item, tuple):
            out.append(Step(item[0], tuple(item[1].items())))
        else:
            out.append(Step(item))
    return tuple(out)


SMS_OUTCOMES: dict[str, tuple[Step, ...]] = {
    "+15005550101": _steps("sms.sent", "sms.delivered"),
    "+15005550102": _steps("sms.sent", ("sms.failed", {"error_code": "EC_INVALID_NUMBER"})),
    "+15005550103": _steps("sms.sent"),
}
SMS_DEFAULT = _steps("sms.sent", "sms.delivered")

WHATSAPP_OUTCOMES: dict[str, tuple[Step, ...]] = {
    "+15005550201": _steps("message.sent", "message.delivered", "message.read"),
    "+15005550202": _steps("message.sent", "message.delivered"),
    "+15005550203": _steps("message.sent", ("message.failed", {"error_code": "E_UNDELIVERABLE"})),
    NOT_ON_WHATSAPP: _steps(("message.failed", {"error_code": "E_NOT_ON_WHATSAPP"})),
}
WHATSAPP_DEFAULT = _steps("message.sent", "message.delivered", "message.read")

EMAIL_OUTCOMES: dict[str, tuple[Step, ...]] = {  # by the local part of the first recipient
    "bounce": _steps("email.sent", ("email.bounced", {"bounce_type": "hard"})),
    "complaint": _steps("email.sent", "email.delivered", "email.complained"),
    "engaged": _steps("email.sent", "email.delivered", "email.opened", "email.clicked"),
    "silent": _steps("email.sent"),
}
EMAIL_DEFAULT = _steps("email.sent", "email.delivered")


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How one SendAPI sandbox behaves. Frozen: build a new one to change it.

    ``webhook_url`` (with ``webhook_secret``) is registered as webhook 1 subscribed to ``*``.
    """

    api_key: str = SANDBOX_KEY  # the account's key, every channel; must be an sk_test_ key
    keys: tuple[SandboxKey, ...] = field(default_factory=_default_keys)  # the drills' keys
    plan: str = "growth"
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    webhook_timeout: float = 5.0
    webhook_retry_schedule: tuple[float, ...] = CONTRACT_RETRY_SCHEDULE
    disable_after_failures: int = 50
    lifecycle_delay: float = 1.0
    rate_limit: int = 300  # requests per key per window
    rate_window: float = 60.0
    session_per_minute: int = 30
    session_per_day: int = 1000
    quotas: tuple[tuple[str, int], ...] = (
        ("sms", 10_000), ("whatsapp_messages", 10_000), ("emails", 10_000), ("whatsapp_sessions", 2),
    )  # fmt: skip
    idempotency_window: float = 24 * 3600.0
    send_processing_delay: float = 0.0  # hold a send open (to provoke idempotency_in_progress)

    def __post_init__(self) -> None:
        if not self.api_key.startswith("sk_test_") or len(self.api_key) <= len("sk_test_"):
            raise ConfigurationError(
                "SandboxConfig.api_key is not an sk_test_… key.",
                code="bad_sandbox_key",
                remedy="the sandbox is test mode only: give it an sk_test_ value.",
            )

    def key(self, value: str | None) -> SandboxKey | None:
        if value == self.api_key:
            return SandboxKey(self.api_key)
        return next((k for k in self.keys if k.value == value), None)

    def quota(self, name: str) -> int | None:
        return dict(self.quotas).get(name)


SEEDED_SENDER_IDS: tuple[dict[str, Any], ...] = (
    {"id": "sid_sbx_acme", "sender_id": "ACMEALERTS", "status": "approved"},
    {"id": "sid_sbx_pending", "sender_id": "ACMEPENDING", "status": "pending"},
)
SEEDED_SESSIONS: tuple[dict[str, Any], ...] = (
    {
        "id": "sess_sbx_primary",
        "name": "ops-primary",
        "status": "connected",
        "phone_number": "+15005550100",
    },
    {
        "id": "sess_sbx_backup",
        "name": "ops-backup",
        "status": "disconnected",
        "phone_number": "+15005550199",
    },
)


def domain_records(domain: str, *, dkim_key: str = SANDBOX_DKIM_KEY) -> dict[str, dict[str, str]]:
    """The SPF, DKIM and DMARC records the sandbox tells a domain to publish."""
    return {
        "spf": {"type": "TXT", "name": domain, "value": "v=spf1 include:spf.sendapi.co ~all"},
        "dkim": {"type": "TXT", "name": f"sendapi._domainkey.{domain}", "value": f"v=DKIM1; k=rsa; p={dkim_key}"},
        "dmarc": {"type": "TXT", "name": f"_dmarc.{domain}", "value": f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"},
    }  # fmt: skip


SEEDED_DOMAINS: tuple[dict[str, Any], ...] = (
    {"id": "dom_sbx_verified", "domain": VERIFIED_DOMAIN, "verified": True},
    {"id": "dom_sbx_pending", "domain": UNVERIFIED_DOMAIN, "verified": False},
)
