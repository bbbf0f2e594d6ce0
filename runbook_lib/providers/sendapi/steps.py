"""SendAPI's go-live checks: key and account, webhooks, and per declared channel its sender.

Each check is a :class:`~runbook_lib.core.checks.Check` built from a typed resource of
:mod:`.resources` (or a :mod:`.dns_checks` / :mod:`.keys` result); no wire JSON is read here.
Check ids: ``key.mode``, ``account.usage``, ``account.quota.<channel>``, ``account.rate_limit``,
``webhooks.endpoint``, ``webhooks.events``, ``webhooks.failures``; ``sms.sender_id``;
``whatsapp.session``, ``whatsapp.last_seen``, ``whatsapp.contact``; ``email.domain``,
``email.from``, ``email.dns.spf|dkim|dmarc``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ...core.checks import Check
from ...core.errors import RunbookError
from ...core.parameters import RunbookParameters
from ..base import StepResult
from .contract import CHANNEL_EVENTS
from .dns_checks import ResolverSettings, check_domain_dns
from .resources import Usage, Webhook

__all__ = [
    "AUDIT_CONTEXT_TITLE",
    "QUOTA_NAMES",
    "SENDER_CHECKS",
    "audit_context_step",
    "context_snapshot",
    "evidence_rules",
    "identity_step",
    "senders_step",
    "skipped_identity",
    "skipped_senders",
]

AUDIT_CONTEXT_TITLE = "SendAPI account, webhooks and senders"
#: channel → its quota in ``GET /account/usage``
QUOTA_NAMES = {"sms": "sms", "whatsapp": "whatsapp_messages", "email": "emails"}
#: channel → the check whose failure blocks a send on it (the controlled sends', the drills')
SENDER_CHECKS = {"sms": "sms.sender_id", "whatsapp": "whatsapp.session", "email": "email.domain"}


def _fail(check_id: str, title: str, exc: RunbookError) -> Check:
    return Check(check_id, title, "FAIL", str(exc.message),
                 evidence={"error": exc.to_dict()},
                 request_ids=(exc.request_id,) if exc.request_id else (),
                 remedy=exc.remedy or None)  # fmt: skip


def _skip(check_id: str, title: str, reason: str) -> Check:
    return Check(check_id, title, "SKIP", reason)


def _webhook_url(params: RunbookParameters) -> str | None:
    return params.settings.webhook_url or params.webhooks.endpoint_url


# -- identity: key, account usage, webhooks ----------------------------------------------------
def identity_step(client: Any, params: RunbookParameters) -> StepResult:
    s = params.settings
    key = client.key_check
    checks = [Check("key.mode", "Key mode matches the environment", key.status, key.summary,
                    evidence={"expected": key.expected, "actual": key.actual,
                              "prefix": client.key_prefix},
                    remedy=key.remedy)]  # fmt: skip
    try:
        usage: Usage = client.last_usage or client.usage()
    except RunbookError as exc:
        checks.append(_fail("account.usage", "Key accepted (GET /account/usage)", exc))
        return StepResult("account", "Key and account", tuple(checks), resource=None)
    checks.append(Check("account.usage", "Key accepted (GET /account/usage)", "PASS",
                        f"plan {usage.plan or 'unknown'}, key {client.key_prefix}… (prefix only)",
                        evidence=usage.to_dict()))  # fmt: skip
    for channel in s.channels:
        checks.append(_quota_check(usage, channel, s.quota_warn_share))
    checks.append(_rate_limit_check(client, s.rate_limit_warn_share))
    checks += _webhook_checks(client, params)
    snapshot = {
        "plan": usage.plan,
        "channels": list(s.channels),
        "quotas": {c.name: c.quota for c in usage.channels},
    }
    return StepResult("account", "Key, account and webhooks", tuple(checks), resource=usage,
                      details={"plan": usage.plan, "key": f"{client.key_prefix}…"},
                      snapshot=snapshot)  # fmt: skip


def _quota_check(usage: Usage, channel: str, warn_share: float) -> Check:
    check_id, title = f"account.quota.{channel}", f"{channel} quota has room"
    quota = usage.channel(QUOTA_NAMES[channel])
    if quota is None:
        return Check(check_id, title, "WARN", f"GET /account/usage reports no {channel} quota",
                     remedy="check the plan in the SendAPI dashboard.")  # fmt: skip
    if quota.exhausted:
        return Check(check_id, title, "FAIL", f"{quota.used} of {quota.quota} used: exhausted",
                     evidence=quota.to_dict(),
                     remedy="raise the plan's quota or wait for the next billing period.")  # fmt: skip
    share = quota.share or 0.0
    status = "WARN" if share >= warn_share else "PASS"
    return Check(check_id, title, status,
                 f"{quota.used} of {quota.quota} used ({share:.0%}; warn at {warn_share:.0%})",
                 evidence=quota.to_dict(),
                 remedy="plan the quota before launch traffic." if status == "WARN" else None)  # fmt: skip


def _rate_limit_check(client: Any, warn_share: float) -> Check:
    title = "Rate-limit headroom"
    state = client.rate_limit
    if state is None or state.headroom is None:
        return Check("account.rate_limit", title, "WARN", "no X-RateLimit-* headers seen",
                     remedy="the client's limiter needs X-RateLimit-Remaining to pace sends.")  # fmt: skip
    status = "WARN" if state.headroom < warn_share else "PASS"
    return Check("account.rate_limit", title, status,
                 f"{state.remaining} of {state.limit} requests left in the window "
                 f"({state.headroom:.0%})", evidence=state.to_dict(),
                 remedy="slow down or raise the plan's limit." if status == "WARN" else None)  # fmt: skip


def _webhook_checks(client: Any, params: RunbookParameters) -> list[Check]:
    url = _webhook_url(params)
    title = "Webhook endpoint active at the declared URL"
    try:
        hooks: tuple[Webhook, ...] = client.webhooks()
    except RunbookError as exc:
        return [_fail("webhooks.endpoint", title, exc)]
    listed = ", ".join(h.url for h in hooks) or "none"
    hook = next((h for h in hooks if h.url == url and h.is_active), None)
    if url is None or hook is None:
        return [
            Check("webhooks.endpoint", title, "FAIL",
                  f"no active webhook at {url or '(no URL declared)'}; listed: {listed}",
                  remedy="POST /v1/webhooks with the production URL (or set sendapi.webhook_url "
                  "to the one registered)."),
            _skip("webhooks.events", "Needed events subscribed", "no active endpoint"),
            _skip("webhooks.failures", "Webhook delivery failures", "no active endpoint"),
        ]  # fmt: skip
    https = url.startswith("https://") or params.provider.sandbox
    checks = [Check("webhooks.endpoint", title, "PASS" if https else "FAIL",
                    f"webhook {hook.id} active at {url}" + ("" if https else ", but not HTTPS"),
                    evidence=hook.to_dict(),
                    remedy=None if https else "serve the webhook endpoint over HTTPS.")]  # fmt: skip
    needed = [e for c in params.settings.channels for e in CHANNEL_EVENTS[c]]
    missing = [e for e in needed if not hook.subscribes(e)]
    checks.append(Check("webhooks.events", "Needed events subscribed",
                        "FAIL" if missing else "PASS",
                        f"missing: {', '.join(missing)}" if missing
                        else f"{len(needed)} event type(s) covered by {', '.join(hook.events)}",
                        remedy="PUT /v1/webhooks/{id} with the missing events." if missing
                        else None))  # fmt: skip
    failures = hook.failure_count or 0
    checks.append(Check("webhooks.failures", "Webhook delivery failures",
                        "WARN" if failures else "PASS", f"failure_count {failures}",
                        remedy="read the endpoint's logs: SendAPI disables a hook after 50 "
                        "consecutive failures." if failures else None))  # fmt: skip
    return checks


def skipped_identity(reason: str) -> StepResult:
    return StepResult("account", "Key, account and webhooks",
                      (_skip("account.usage", "Key accepted (GET /account/usage)", reason),))  # fmt: skip


# -- senders, per declared channel --------------------------------------------------------------
def senders_step(client: Any, params: RunbookParameters, identity: Any) -> StepResult:
    s = params.settings
    checks: list[Check] = []
    resources: dict[str, Any] = {}
    for channel in s.channels:
        found, more = {"sms": _sms, "whatsapp": _whatsapp, "email": _email}[channel](client, params)
        resources[channel] = found
        checks += more
    snapshot = {c: (r.to_dict() if hasattr(r, "to_dict") else r) for c, r in resources.items()}
    return StepResult("senders", "Senders per channel", tuple(checks), resource=resources,
                      snapshot=snapshot)  # fmt: skip


def _sms(client: Any, params: RunbookParameters) -> tuple[Any, list[Check]]:
    title = "SMS sender id registered"
    want = params.settings.sender_id
    try:
        ids = client.sender_ids()
    except RunbookError as exc:
        return None, [_fail("sms.sender_id", title, exc)]
    found = next((i for i in ids if i.sender_id == want), None)
    ok = found is not None and found.usable
    return found, [Check("sms.sender_id", title, "PASS" if ok else "FAIL",
                         f"{want} is {found.status}" if found
                         else f"{want} is not among {', '.join(i.sender_id for i in ids) or 'none'}",
                         evidence=found.to_dict() if found else {},
                         remedy=None if ok else "register the sender id in the SendAPI dashboard "
                         "and wait for its approval.")]  # fmt: skip


def _whatsapp(client: Any, params: RunbookParameters) -> tuple[Any, list[Check]]:
    s = params.settings
    title = "WhatsApp session connected on the dedicated number"
    try:
        session = client.whatsapp_session(s.whatsapp_session_id)
    except RunbookError as exc:
        return None, [_fail("whatsapp.session", title, exc),
                      _skip("whatsapp.last_seen", "Session seen recently", "no session"),
                      _skip("whatsapp.contact", "Test handset is on WhatsApp", "no session")]  # fmt: skip
    problems = []
    if not session.connected:
        problems.append(f"status {session.status}")
    if session.phone_number != s.whatsapp_number:
        problems.append(f"on {session.phone_number}, not the dedicated {s.whatsapp_number}")
    checks = [Check("whatsapp.session", title, "FAIL" if problems else "PASS",
                    "; ".join(problems) if problems
                    else f"{session.id} connected on {session.phone_number}",
                    evidence=session.to_dict(),
                    remedy="reconnect the session (scan the QR from GET /whatsapp/sessions/{id}/qr "
                    "on the dedicated phone) and keep that phone online." if problems else None)]  # fmt: skip
    limit = s.session_seen_within_minutes * 60
    age = None if session.last_seen_at is None else time.time() - session.last_seen_at.timestamp()
    recent = age is not None and age <= limit
    checks.append(Check("whatsapp.last_seen", "Session seen recently",
                        "PASS" if recent else "FAIL",
                        f"last seen {age / 60:.1f} min ago (limit {s.session_seen_within_minutes:g})"
                        if age is not None else "no last_seen_at reported",
                        remedy=None if recent else "the phone is offline: keep it powered and "
                        "connected to the network."))  # fmt: skip
    handset = s.test_send.whatsapp
    if handset is None:
        checks.append(_skip("whatsapp.contact", "Test handset is on WhatsApp", "no test handset"))
        return session, checks
    try:
        contact = client.contact_check(handset, session_id=session.id)
    except RunbookError as exc:
        checks.append(_fail("whatsapp.contact", "Test handset is on WhatsApp", exc))
        return session, checks
    ok = bool(contact.on_whatsapp)
    checks.append(Check("whatsapp.contact", "Test handset is on WhatsApp", "PASS" if ok else "FAIL",
                        "the contact check passes" if ok else "the handset is not on WhatsApp",
                        remedy=None if ok else "use a test handset with WhatsApp installed."))  # fmt: skip
    return session, checks


def _email(client: Any, params: RunbookParameters) -> tuple[Any, list[Check]]:
    s = params.settings
    title = "Email domain verified"
    try:
        domains = client.email_domains()
    except RunbookError as exc:
        return None, [_fail("email.domain", title, exc)]
    domain = next((d for d in domains if d.domain.lower() == (s.email_domain or "").lower()), None)
    if domain is None:
        return None, [Check("email.domain", title, "FAIL", f"{s.email_domain} is not an account domain",
                            remedy="POST /v1/email/domains with it, publish its records, verify.")]  # fmt: skip
    checks = [Check("email.domain", title, "PASS" if domain.verified else "FAIL",
                    f"{domain.domain} is " + ("verified" if domain.verified else "not verified"),
                    evidence=domain.to_dict(),
                    remedy=None if domain.verified else "publish the records below, then POST "
                    f"/v1/email/domains/{domain.id}/verify (DNS takes 15 min to 48 h).")]  # fmt: skip
    checks.append(Check("email.from", "From address on the verified domain",
                        "PASS" if domain.verified else "FAIL",
                        f"{s.email_from} is on {domain.domain}",
                        remedy=None if domain.verified else "send from a verified domain."))  # fmt: skip
    resolver = ResolverSettings(nameserver=s.dns.nameserver, port=s.dns.port,
                                timeout=s.dns.timeout_seconds)  # fmt: skip
    try:
        report = check_domain_dns(domain, resolver=resolver)
    except RunbookError as exc:
        checks.append(_fail("email.dns", "SPF, DKIM and DMARC served by DNS", exc))
        return domain, checks
    for record in report.checks:
        checks.append(Check(f"email.dns.{record.purpose}",
                            f"{record.purpose.upper()} record served by DNS ({report.resolver})",
                            record.status, record.summary, evidence=record.to_dict(),
                            remedy=record.remedy))  # fmt: skip
    return domain, checks


def skipped_senders(reason: str) -> StepResult:
    return StepResult("senders", "Senders per channel",
                      (_skip("senders.all", "Senders per channel", reason),))  # fmt: skip


def context_snapshot(identity: Any, senders: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(identity, Usage):
        out["plan"] = identity.plan
    for channel, found in (senders or {}).items():
        out[channel] = found.to_dict() if hasattr(found, "to_dict") else None
    return out


# -- evidence and audit ------------------------------------------------------------------------
def evidence_rules(
    request_log: list[Any], *, recorded_send: Any = None
) -> dict[str, Callable[[], tuple[Any, ...]]]:
    """The catalogue's ``evidence`` rules over this run's requests (``evidence:`` in readiness.yaml)."""

    def every_send_has_a_key() -> tuple[Any, ...]:
        posts = [r for r in request_log if r.method == "POST" and r.path.endswith("/send")]
        missing = [r for r in posts if not r.idempotency_key]
        sent = recorded_send
        if not posts and sent is not None and sent.resumed and sent.message_id:
            return (
                True,
                f"the send was accepted earlier in this run under key {sent.idempotency_key}",
            )
        if not posts:  # because the send was BLOCKED (or FAILed): the gate names that root cause
            return False, "no send was made in this run", ("send.accepted*",)
        return (
            not missing,
            f"{len(posts) - len(missing)} of {len(posts)} send request(s) carried a key",
        )

    def request_ids_recorded() -> tuple[bool, str]:
        answered = [r for r in request_log if r.status is not None]
        missing = [r for r in answered if not r.request_id]
        return (bool(answered) and not missing,
                f"{len(answered) - len(missing)} of {len(answered)} answers carried a request id")  # fmt: skip

    return {"every_send_has_a_key": every_send_has_a_key,
            "request_ids_recorded": request_ids_recorded}  # fmt: skip


def audit_context_step(client: Any, params: RunbookParameters) -> StepResult:
    """The incident audit's read-only context: the account and the webhooks, and from them the
    audit's generic failure-domain facts (as Red Cloud's whoami gives them).

    ``details`` carries ``api`` (calls, errors, errorRate: the 5xx / 429 / unanswered requests the
    client saw over the context's reads and ``audit.api_probe_calls`` reads of
    ``GET /account/usage``), ``webhookStatus`` (``CONFIGURED`` | ``FAILING`` | ``INACTIVE`` |
    ``NOT CONFIGURED``, from ``GET /webhooks``) and ``webhookSignal`` when SendAPI's deliveries to
    the declared endpoint fail (its ``failure_count``), it is disabled, or none is registered.
    """
    identity = identity_step(client, params)
    status, signal = _webhook_delivery(client, _webhook_url(params))
    errors: list[str] = []
    for _ in range(params.audit.api_probe_calls):
        try:
            client.usage()
        except RunbookError as exc:
            errors.append(exc.message)
    api = list(client.request_log)
    bad = [r for r in api if r.status is None or r.status == 429 or r.status >= 500]
    rate = len(bad) / len(api) if api else 0.0
    health = Check(
        "audit.api", "Provider API health",
        "FAIL" if rate >= params.audit.api_error_rate_fail else "PASS",
        f"{len(bad)} of {len(api)} API answer(s) were 5xx/429 or failed to connect ({rate:.0%})",
        request_ids=tuple(r.request_id for r in bad if r.request_id)[:5],
    )  # fmt: skip
    return StepResult(
        "context", AUDIT_CONTEXT_TITLE, (*identity.checks, health), resource=identity.resource,
        details={
            "api": {"calls": len(api), "errors": len(bad), "errorRate": round(rate, 3)},
            "apiCalls": len(api), "apiErrors": errors,
            "identityRead": identity.resource is not None,
            "webhookStatus": status, "webhookSignal": signal,
        },
        snapshot=identity.snapshot,
    )  # fmt: skip


def _webhook_delivery(client: Any, url: str | None) -> tuple[str | None, str | None]:
    """The account webhook's status as the audit's rules read it (``GET /webhooks``), and the
    webhook-delivery signal: None when deliveries are healthy, or the list could not be read
    (then the API health says why), or no URL is declared to judge."""
    if url is None:
        return None, None
    try:
        hooks: tuple[Webhook, ...] = client.webhooks()
    except RunbookError:
        return None, None
    hook = next((h for h in hooks if h.url == url), None)
    if hook is None:
        listed = ", ".join(h.url for h in hooks) or "none"
        return "NOT CONFIGURED", f"GET /v1/webhooks lists no webhook at {url} (listed: {listed})"
    if not hook.is_active:
        return "INACTIVE", (f"GET /v1/webhooks shows the webhook at {url} disabled "
                            f"(failure_count {hook.failure_count or 0}): nothing is delivered")  # fmt: skip
    if hook.failure_count:
        return "FAILING", (f"GET /v1/webhooks shows failure_count {hook.failure_count} for {url}: "
                           "SendAPI's deliveries to it are failing")  # fmt: skip
    return "CONFIGURED", None
