"""The drills only Onyx can run: each provokes one failure path on purpose and checks that the
client and the integration handle it (a refusal named, nothing sent, nothing retried).

The credential drills use the sandbox's rehearsal keys (revoked, limited) and need the sandbox
(``provider.sandbox: true``); elsewhere they are SKIPped with the reason, never passed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from ...core.checks import Check
from ...core.errors import AuthError, ParameterError, ProviderError
from ...reporting.progress import Waiting
from ...security.secrets import Secret
from .messaging import checked_send

__all__ = ["DRILLS"]

_REVOKED = "onyx_sk_test_sbx_rehearsal_revoked"  # the sandbox's rehearsal keys (protect nothing)
_LIMITED = "onyx_sk_test_sbx_rehearsal_limited"


def _sandbox_only(check_id: str, title: str, ctx: Any) -> Check | None:
    if ctx.sandbox_url:
        return None
    return Check(check_id, title, "SKIP", "needs the sandbox (provider.sandbox: true)")


def _revoked_credential(ctx: Any) -> Check:
    cid, title = "drill.revoked_credential", "Revoked credential refused (401), not retried"
    if (skip := _sandbox_only(cid, title, ctx)) is not None:
        return skip
    client = ctx.make_client(Secret(_REVOKED, label="sandbox revoked key"))
    try:
        client.me()
    except AuthError as exc:
        attempts = [e for e in client.request_log if e.path.endswith("/me")]
        ok = len(attempts) == 1
        return Check(cid, title, "PASS" if ok else "FAIL",
                     f"{exc.code or 'unauthenticated'} after {len(attempts)} request(s)",
                     request_ids=tuple(r for r in (exc.request_id,) if r),
                     remedy=None if ok else "never retry a 401: the credential must change first.")  # fmt: skip
    finally:
        client.close()
    return Check(cid, title, "FAIL", "the revoked credential was accepted",
                 remedy="revoke the credential in the Partner Portal and re-run.")  # fmt: skip


def _wrong_environment_key(ctx: Any) -> Check:
    cid, title = "drill.wrong_environment_key", "A live key is refused for a non-production run"
    fake = "onyx_sk_live_" + secrets.token_hex(12)  # never a real key: random, for this call only
    try:
        ctx.make_client(Secret(fake, label="drill live key")).close()
    except ParameterError as exc:
        return Check(cid, title, "PASS", f"refused before any request: {exc.message}")
    return Check(cid, title, "FAIL", "a live key was accepted for this environment",
                 remedy="the client must check the key's prefix against the environment.")  # fmt: skip


def _missing_scope(ctx: Any) -> Check:
    cid, title = (
        "drill.missing_scope",
        "A call outside the granted scopes is 403 insufficient_scope",
    )
    if (skip := _sandbox_only(cid, title, ctx)) is not None:
        return skip
    client = ctx.make_client(Secret(_LIMITED, label="sandbox limited key"))
    try:
        client.webhooks()
    except ProviderError as exc:
        ok = exc.code == "insufficient_scope"
        return Check(cid, title, "PASS" if ok else "FAIL", f"{exc.code}: {exc.message}",
                     request_ids=tuple(r for r in (exc.request_id,) if r))  # fmt: skip
    finally:
        client.close()
    return Check(cid, title, "FAIL", "the limited credential could manage webhooks")


def _blocked_send(ctx: Any, subject: str, thread: str, reason: str, cid: str, title: str) -> Check:
    s = ctx.params.settings
    attempt = checked_send(ctx.client, app_id=s.app_id, subject=subject, thread_id=thread,
                           intent=s.intent, body="drill",
                           idempotency_key=f"{ctx.key_prefix}-{cid}-{secrets.token_hex(4)}")  # fmt: skip
    ok = not attempt.sent and attempt.reason_code == reason and attempt.action is not None
    return Check(cid, title, "PASS" if ok else "FAIL",
                 f"blocked at {attempt.blocked_at} with {attempt.reason_code}; action: {attempt.action}"
                 if not attempt.sent else "the send was accepted",
                 evidence=attempt.to_dict(),
                 remedy=None if ok else f"a {reason} subject must be blocked before the send.")  # fmt: skip


def _blocked_by_reason_code(ctx: Any) -> Check:
    cid, title = "drill.blocked_send", "A blocked thread stops the send with THREAD_BLOCKED"
    if (skip := _sandbox_only(cid, title, ctx)) is not None:
        return skip
    return _blocked_send(ctx, "sub_thread_blocked", "thr_blocked", "THREAD_BLOCKED", cid, title)


def _consent_changed(ctx: Any, state: str, reason: str, cid: str, title: str) -> Check:
    """The test subject's consent set to ``state`` for one checked send, then granted again."""
    if (skip := _sandbox_only(cid, title, ctx)) is not None:
        return skip
    from .sandbox import OnyxSandboxControl

    s = ctx.params.settings
    with OnyxSandboxControl(ctx.sandbox_url) as control:
        control.set_consent(s.test_subject, state)
        try:
            return _blocked_send(ctx, s.test_subject, s.thread_id, reason, cid, title)
        finally:
            control.set_consent(s.test_subject, "granted")


def _consent_revoked_mid_run(ctx: Any) -> Check:
    cid, title = "drill.consent_revoked", "Consent revoked mid-run: sends stop with NO_CONSENT"
    return _consent_changed(ctx, "revoked", "NO_CONSENT", cid, title)


def _consent_expired(ctx: Any) -> Check:
    """Expired access stops working: the subject's consent (the user's grant to this app, which
    a Connect SDK session carries) expired, so the send stops before it is attempted."""
    cid, title = "drill.consent_expired", "Expired access stops working: CONSENT_EXPIRED"
    return _consent_changed(ctx, "expired", "CONSENT_EXPIRED", cid, title)


def _signed_in_without_consent(ctx: Any) -> Check:
    """Login does not assume messaging permission: a subject who signed in (consent
    ``requested``, not yet approved) is refused NO_CONSENT, and nothing is sent."""
    cid, title = (
        "drill.signed_in_without_consent",
        "Signed in is not permission: consent requested, not granted → NO_CONSENT",
    )
    return _consent_changed(ctx, "requested", "NO_CONSENT", cid, title)


def _endpoint(ctx: Any) -> Any:
    url = ctx.params.settings.webhook_url
    return next((h for h in ctx.client.webhooks() if h.url == url and h.status != "disabled"), None)


def _replay_known_event(ctx: Any) -> Check:
    """Replay an event the receiver already stored: it must be taken (2xx) and kept once."""
    from .steps import replay_deduplicated

    cid, title = "drill.replay_known_event", "Replay of an event the receiver has: deduplicated"
    history = ctx.client.events()
    source = ctx.source
    known = [
        e for e in history.events if e.delivery_status == "delivered" and e.type != "webhook.test"
    ]
    for record in reversed(known):  # the newest first: well inside the replay window
        check = replay_deduplicated(ctx.client, source, record.event_id, check_id=cid, title=title,
                                    key=f"{ctx.key_prefix}-replay-{secrets.token_hex(4)}",
                                    timeout=ctx.timeout, sleep=ctx.sleep)  # fmt: skip
        if check.status != "SKIP":
            return check
    return Check(cid, title, "SKIP", "no delivered event of this partner is in the event store")


def _endpoint_outage(ctx: Any) -> Check:
    """The endpoint is down for ``drills.outage_seconds``: Onyx retries, the event arrives once."""
    from .contract import resource_key
    from .sandbox import OnyxSandboxControl

    cid, title = "drill.endpoint_outage", "Endpoint outage: deliveries retried, the event arrives"
    if (skip := _sandbox_only(cid, title, ctx)) is not None:
        return skip
    hook = _endpoint(ctx)
    if hook is None:
        return Check(cid, title, "SKIP", "no endpoint registered for onyx.webhook_url")
    with OnyxSandboxControl(ctx.sandbox_url) as control:
        control.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": ctx.outage_seconds}]}})
        try:
            sent = ctx.client.test_webhook(hook.webhook_id)
            key, deadline = resource_key("webhook", hook.webhook_id), time.monotonic() + ctx.timeout
            live = Waiting(f"test event {sent.event_id} through the outage", ctx.timeout,
                           say=ctx.progress)  # fmt: skip
            while time.monotonic() < deadline:
                stored = [e for e in ctx.source.events_for(conversation_id=key)
                          if e.event_id == sent.event_id]  # fmt: skip
                if stored:
                    break
                live.update("not stored yet")
                ctx.sleep(0.2)
        finally:
            control.clear_faults()
    record = ctx.client.events().find(sent.event_id)
    attempts = record.attempts if record else 0
    ok = bool(stored) and attempts >= 2
    return Check(cid, title, "PASS" if ok else "FAIL",
                 f"{sent.event_id}: {'stored' if stored else 'NOT stored'} after {attempts} attempt(s)",
                 evidence=record.to_dict() if record else {},
                 remedy=None if ok else "the endpoint must take redeliveries once it is back; "
                 "check the event history and replay what failed.")  # fmt: skip


DRILLS: dict[str, Callable[[Any], Check]] = {
    "revoked_credential": _revoked_credential,
    "wrong_environment_key": _wrong_environment_key,
    "missing_scope": _missing_scope,
    "blocked_send": _blocked_by_reason_code,
    "consent_revoked": _consent_revoked_mid_run,
    "consent_expired": _consent_expired,
    "signed_in_without_consent": _signed_in_without_consent,
    "replay_known_event": _replay_known_event,
    "endpoint_outage": _endpoint_outage,
}
