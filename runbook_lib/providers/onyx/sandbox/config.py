"""The Onyx sandbox's settings and seeded world: credentials, apps, subjects, packages, markets.

Every value here is a rehearsal value documented in the package docstring: it protects nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_SCOPES",
    "APPS",
    "CONTRACT_RETRY_SCHEDULE",
    "DEFAULT_CREDENTIAL",
    "DEFAULT_LAUNCH",
    "LIMITED_CREDENTIAL",
    "LIMITED_SCOPES",
    "PACKAGES",
    "REVOKED_CREDENTIAL",
    "SUBJECTS",
    "App",
    "OnyxSandboxConfig",
    "Package",
    "Subject",
]

DEFAULT_CREDENTIAL = "onyx_sk_test_sbx_rehearsal_default"
REVOKED_CREDENTIAL = "onyx_sk_test_sbx_rehearsal_revoked"
LIMITED_CREDENTIAL = "onyx_sk_test_sbx_rehearsal_limited"
ALL_SCOPES = (
    "catalogue:read",
    "orders:write",
    "orders:read",
    "usage:read",
    "ledger:read",
    "invoices:read",
    "webhooks:manage",
    "events:replay",
)
LIMITED_SCOPES = ("catalogue:read", "orders:read")
# onyx-v1 §7: non-2xx or timeout → after 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h; then failed
CONTRACT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class App:
    app_id: str
    market: str
    verified: bool


@dataclass(frozen=True)
class Subject:
    """A Connect SDK subject: its consent, its thread, what pre-send says per intent."""

    subject: str
    consent: str
    thread_id: str
    thread_state: str
    trusted_intents: tuple[str, ...] = ("informational", "transactional", "sensitive")


@dataclass(frozen=True)
class Package:
    package_id: str
    display_name: str
    iso2: str
    region: str
    status: str
    data_mb: int
    validity_days: int
    net_price_usd: float
    walk: tuple[str, ...]  # the states an order of this package walks after created
    policy_notes: str | None = None


APPS: tuple[App, ...] = (
    App("app_sbx_rehearsal", "US", verified=True),
    App("app_sbx_unverified", "US", verified=False),
    App("app_sbx_gated", "DE", verified=True),
)
SUBJECTS: tuple[Subject, ...] = (
    Subject("sub_granted", "granted", "thr_granted", "active"),
    Subject("sub_denied", "denied", "thr_denied", "active"),
    Subject("sub_revoked", "revoked", "thr_revoked", "active"),
    Subject("sub_expired", "expired", "thr_expired", "active"),
    Subject("sub_thread_blocked", "granted", "thr_blocked", "blocked"),
    Subject("sub_thread_closed", "granted", "thr_closed", "closed"),
    Subject("sub_low_trust", "granted", "thr_low_trust", "active", ("informational",)),
)
_READY = ("reserved", "provisioning", "esim_ready")
PACKAGES: tuple[Package, ...] = (
    Package(
        "pkg_us_5gb_30d",
        "USA 5 GB / 30 days",
        "US",
        "North America",
        "active",
        5120,
        30,
        7.5,
        _READY,
    ),
    Package(
        "pkg_gb_3gb_15d",
        "UK 3 GB / 15 days",
        "GB",
        "Europe",
        "limited",
        3072,
        15,
        5.0,
        _READY,
        "limited stock: re-check before checkout",
    ),
    Package(
        "pkg_fr_1gb_7d",
        "France 1 GB / 7 days",
        "FR",
        "Europe",
        "unavailable",
        1024,
        7,
        3.0,
        _READY,
        "not sold: hide from buyers",
    ),
    Package(
        "pkg_mx_10gb_30d",
        "Mexico 10 GB / 30 days",
        "MX",
        "North America",
        "active",
        10240,
        30,
        11.0,
        ("reserved", "provisioning", "manual_review"),
    ),
)
DEFAULT_LAUNCH: tuple[tuple[str, str, str, str], ...] = (
    ("US", "messaging", "sandbox", "approved"),
    ("US", "messaging", "production", "approved"),
    ("US", "connectivity", "sandbox", "approved"),
    ("US", "connectivity", "production", "approved"),
    ("GB", "connectivity", "sandbox", "approved"),
    ("GB", "connectivity", "production", "in_review"),
    ("MX", "connectivity", "sandbox", "approved"),
    ("MX", "connectivity", "production", "approved"),
    ("DE", "messaging", "sandbox", "not_requested"),
)


@dataclass(frozen=True, kw_only=True)
class OnyxSandboxConfig:
    """How one Onyx sandbox behaves. Frozen: build a new one to change it."""

    partner_id: str = "ptn_sbx_rehearsal"
    environment: str = "sandbox"
    credential: str = DEFAULT_CREDENTIAL
    credential_id: str = "cred_sbx_default"
    scopes: tuple[str, ...] = ALL_SCOPES
    launch: tuple[tuple[str, str, str, str], ...] = DEFAULT_LAUNCH
    catalogue_version: str = "2026.11"
    # seconds between an order's states, and from acceptance to message.delivery_updated
    order_step_seconds: float = 1.0
    delivery_seconds: float = 0.5
    # every webhook uses this secret when set (a receiver configured ahead), else a fresh one
    webhook_secret: str | None = None
    webhook_retry_schedule: tuple[float, ...] = CONTRACT_RETRY_SCHEDULE
    webhook_timeout: float = 10.0
    replay_window_seconds: float = 30 * 24 * 3600.0
    idempotency_window_seconds: float = 24 * 3600.0
    events_page_size: int = 50
    rate_limit_per_minute: int = 600
    tick_seconds: float = 0.02
    seed: int = 0
    apps: tuple[App, ...] = field(default=APPS)
    subjects: tuple[Subject, ...] = field(default=SUBJECTS)
    packages: tuple[Package, ...] = field(default=PACKAGES)
