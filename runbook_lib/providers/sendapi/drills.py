"""The drills SendAPI supports (the webhook-signature drill is common: runbooks.drills).

| drill                | provoked by                                          | safe behaviour asserted |
|----------------------|------------------------------------------------------|-------------------------|
| invalid_key          | a random ``sk_test_`` key                            | 401 ``invalid_api_key`` named with its fix, the key nowhere in the error, no retry |
| revoked_key          | sandbox: its revoked key                             | 401 ``revoked_api_key`` with its fix |
| scope_limited_key    | sandbox: its SMS-only key on a WhatsApp call         | 403 ``insufficient_scope`` with its fix, no retry |
| rate_limited         | sandbox: 429 with ``Retry-After: 1`` on every call   | the client waits Retry-After before retrying, then names 4029 |
| idempotency_mismatch | sandbox: one key, two different bodies               | 409 ``idempotency_key_mismatch``, no second message |
| missing_key          | a POST without Idempotency-Key; a client without key | the library refuses both before any request |
| endpoint_ack         | a burst of signed test events to the endpoint         | every one 2xx, p95 under 5 s; a duplicate acknowledged |
| webhook_outage       | sandbox: an endpoint outage window, then a send      | its events arrive after the outage (retried), none lost |
| session_disconnected | sandbox: the WhatsApp session is disconnected        | ``session.disconnected`` reaches the endpoint and is acknowledged |

Each takes the runbook's drill context and returns one check; drills needing provider-side
control SKIP unless the parameter file says ``provider.sandbox: true``.
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from ...core.checks import Check
from ...core.errors import RunbookError, SendPolicyError
from ...core.lifecycle import reconstruct
from ...reporting.progress import Waiting
from ...security.secrets import REGISTRY, Secret, secret_from_env
from .contract import LIFECYCLE
from .errors import CODE_NAMES
from .runbook_client import RunbookClient, channel_payload
from .sandbox.config import EXPIRED_KEY, REVOKED_KEY, SMS_ONLY_KEY
from .sandbox.control import SandboxControl
from .steps import SENDER_CHECKS

__all__ = ["DRILLS"]

DrillContext = Any  # runbook_lib.runbooks.drills.DrillContext (providers do not import runbooks)


def _name(exc: RunbookError) -> str | None:
    code = str(exc.code) if exc.code is not None else None
    return CODE_NAMES.get(code or "", code)


def _sandbox_only(check_id: str, title: str, ctx: DrillContext) -> Check | None:
    if ctx.sandbox_url:
        return None
    return Check(check_id, title, "SKIP", "needs the sandbox (provider.sandbox: true)")


def _refused(ctx: DrillContext, check_id: str, title: str, key: str, call: Callable[[Any], Any],
             status: int, name: str) -> Check:  # fmt: skip
    client = ctx.make_client(Secret(key, label="drill key"))
    attempts_before = 0
    try:
        call(client)
    except RunbookError as exc:
        text = f"{exc} {exc!r} {json.dumps(exc.to_dict(), default=str)}"
        attempts = len(client.request_log) - attempts_before
        problems = []
        if exc.status != status or _name(exc) != name:
            problems.append(f"answered {exc.status} {_name(exc)}, expected {status} {name}")
        if key in text:
            problems.append("the error contains the key")
        if attempts != 1:
            problems.append(f"{attempts} attempts (a {status} must not be retried)")
        if not exc.remedy:
            problems.append("no fix named")
        return Check(check_id, title, "FAIL" if problems else "PASS",
                     "; ".join(problems) if problems
                     else f"{status} {name}, one attempt, fix: {exc.remedy}",
                     request_ids=(exc.request_id,) if exc.request_id else ())  # fmt: skip
    finally:
        client.close()
    return Check(check_id, title, "FAIL", f"the call succeeded; expected {status} {name}",
                 remedy="the provider accepted a key it should refuse: raise it with SendAPI now.")  # fmt: skip


def _sending_channel(ctx: DrillContext, check_id: str, title: str) -> tuple[str, Check | None]:
    """The declared channel a sending drill uses: the first whose sender check is met (the
    primary one when all are, or when the run checked none), and None; else the drill's SKIP
    requiring the channels' sender checks, which the run shows BLOCKED by the failed one."""
    channels = ctx.params.settings.channels
    for channel in channels:
        if ctx.sender_unusable(check_id, title, SENDER_CHECKS[channel]) is None:
            return channel, None
    return channels[0], ctx.sender_unusable(check_id, title, *(SENDER_CHECKS[c] for c in channels))


def _sends_on(channel: str, check: Check) -> Check:
    """A sending drill's check, requiring its channel's sender check (the send depended on it)."""
    return replace(check, requires=(*check.requires, SENDER_CHECKS[channel]))


def _to(ctx: DrillContext, channel: str) -> str:
    """The allowlisted destination of ``channel`` (the controlled send's is the primary's)."""
    return getattr(ctx.params.settings.test_send, channel, None) or ctx.to


def _drill_invalid_key(ctx: DrillContext) -> Check:
    canary = "sk_test_drill_wrong_" + secrets.token_hex(12)
    REGISTRY.register(canary, "drill canary key")
    return _refused(ctx, "drill.invalid_key", "An invalid key fails cleanly", canary,
                    lambda c: c.usage(), 401, "invalid_api_key")  # fmt: skip


def _drill_revoked_key(ctx: DrillContext) -> Check:
    title = "A revoked key fails cleanly"
    return _sandbox_only("drill.revoked_key", title, ctx) or _refused(
        ctx, "drill.revoked_key", title, REVOKED_KEY, lambda c: c.usage(), 401, "revoked_api_key"
    )


def _drill_expired_key(ctx: DrillContext) -> Check:
    title = "An expired key fails cleanly"
    return _sandbox_only("drill.expired_key", title, ctx) or _refused(
        ctx, "drill.expired_key", title, EXPIRED_KEY, lambda c: c.usage(), 401, "expired_api_key"
    )


def _drill_scope_limited_key(ctx: DrillContext) -> Check:
    title = "A channel-scoped key is refused on another channel (403)"
    return _sandbox_only("drill.scope_limited_key", title, ctx) or _refused(
        ctx, "drill.scope_limited_key", title, SMS_ONLY_KEY, lambda c: c.whatsapp_sessions(),
        403, "insufficient_scope")  # fmt: skip


def _drill_rate_limited(ctx: DrillContext) -> Check:
    check_id, title = "drill.rate_limited", "429 honoured: Retry-After waited, then named"
    skipped = _sandbox_only(check_id, title, ctx)
    if skipped:
        return skipped
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the client's waits, recorded and really waited
        waits.append(seconds)
        ctx.sleep(seconds)

    base: RunbookClient = ctx.client
    options = {**base._options, "sleep": sleep}
    options["retry"] = type(base.retry)(max_attempts=2, base_delay=0.1, max_delay=1.0)
    client = RunbookClient(key_check=base.key_check, **options)
    with SandboxControl(ctx.sandbox_url) as control:
        control.set_faults({"api": {"usage": {"rate_429": 1.0, "retry_after": 1}}})
        try:
            client.usage()
            outcome: Check | None = Check(check_id, title, "FAIL", "no 429 was answered")
        except RunbookError as exc:
            # Retry-After: 1, waited (to within the clock's resolution) before the one retry
            ok = exc.status == 429 and sum(waits) >= 0.95 and len(client.request_log) == 2
            outcome = Check(check_id, title, "PASS" if ok else "FAIL",
                            f"429 {_name(exc)} after {len(client.request_log)} attempt(s); waited "
                            f"{', '.join(f'{w:.1f}' for w in waits) or 'never'} s",
                            request_ids=(exc.request_id,) if exc.request_id else (),
                            remedy=None if ok else "wait Retry-After before the retry.")  # fmt: skip
        finally:
            control.clear_faults()
            client.close()
    return outcome


def _drill_idempotency_mismatch(ctx: DrillContext) -> Check:
    check_id, title = "drill.idempotency_mismatch", "A reused key with another body is a 409"
    skipped = _sandbox_only(check_id, title, ctx)
    if skipped:
        return skipped
    channel, blocked = _sending_channel(ctx, check_id, title)
    return blocked or _sends_on(channel, _idempotency_mismatch(ctx, check_id, title, channel))


def _idempotency_mismatch(ctx: DrillContext, check_id: str, title: str, channel: str) -> Check:
    key = ctx.send_key("mismatch")
    client: RunbookClient = ctx.client

    def body(text: str) -> dict[str, Any]:
        return channel_payload(ctx.params.settings, channel, _to(ctx, channel), text, "drill")

    first = ctx.send("mismatch", body("drill body A"))  # in the run's send ledger
    try:
        client.send(body("drill body B"), idempotency_key=key)
    except RunbookError as exc:
        ok = exc.status == 409 and bool(exc.remedy)
        return Check(check_id, title, "PASS" if ok else "FAIL",
                     f"{exc.status} {_name(exc)} (first send {first.message_id} kept); fix: {exc.remedy}",
                     request_ids=(exc.request_id,) if exc.request_id else ())  # fmt: skip
    return Check(check_id, title, "FAIL", "the second body was accepted under the same key",
                 remedy="the provider must refuse a reused key with another body (409).")  # fmt: skip


def _drill_missing_key(ctx: DrillContext) -> Check:
    check_id, title = (
        "drill.missing_key",
        "The library refuses a POST without key and a client without API key",
    )
    problems = []
    before = len(ctx.client.request_log)
    try:
        ctx.client._json(
            "POST", "sms/send", json={"to": ctx.to, "message": "x"}, idempotency_key=None
        )
        problems.append("a POST without Idempotency-Key was sent")
    except SendPolicyError:
        pass
    if len(ctx.client.request_log) != before:
        problems.append("a request left the library")
    try:
        secret_from_env("SENDAPI_DRILL_UNSET_" + secrets.token_hex(4).upper(), purpose="API key",
                        environ={})  # fmt: skip
        problems.append("a client could be built without an API key")
    except RunbookError:
        pass
    return Check(check_id, title, "FAIL" if problems else "PASS",
                 "; ".join(problems) or "refused both locally, before any request")  # fmt: skip


def _post_signed(ctx: DrillContext, envelope: dict[str, Any], secret: str) -> tuple[int, float]:
    body = json.dumps(envelope).encode()
    headers = ctx.provider.signature.sign(secret, envelope["id"], body)
    started = time.monotonic()
    status = httpx.post(ctx.endpoint_url, content=body, headers=headers, timeout=10).status_code
    return status, time.monotonic() - started


def _drill_endpoint_ack(ctx: DrillContext) -> Check:
    check_id, title = "drill.endpoint_ack", "Endpoint answers signed events 2xx within 5 s (p95)"
    secret = ctx.webhook_secret
    if not ctx.endpoint_url or not secret:
        return Check(
            check_id, title, "SKIP", "webhooks.endpoint_url or its signing secret is not set"
        )
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    answers, times = [], []
    try:
        for n in range(10):
            envelope = ctx.provider.probe_envelope(
                "sms.delivered", event_id=f"evt_drill_{secrets.token_hex(6)}",
                message_id=f"msg_probe_{secrets.token_hex(6)}", now=now)  # fmt: skip
            status, took = _post_signed(ctx, envelope, secret)
            answers.append(status)
            times.append(took)
            if n == 0:  # a retried delivery: the same event again
                answers.append(_post_signed(ctx, envelope, secret)[0])
    except httpx.HTTPError as exc:
        return Check(check_id, title, "FAIL", f"endpoint unreachable: {type(exc).__name__}",
                     remedy="check webhooks.endpoint_url and that the receiver runs.")  # fmt: skip
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
    ok = all(200 <= a < 300 for a in answers) and p95 < 5.0
    return Check(check_id, title, "PASS" if ok else "FAIL",
                 f"{len(answers)} deliveries (one a duplicate): answers {sorted(set(answers))}, "
                 f"p95 {p95 * 1000:.0f} ms", evidence={"answers": answers, "p95Seconds": p95},
                 remedy=None if ok else "acknowledge with 2xx within 5 s, before any slow work.")  # fmt: skip


def _drill_session_disconnected(ctx: DrillContext) -> Check:
    check_id, title = "drill.session_disconnected", "session.disconnected reaches the endpoint"
    skipped = _sandbox_only(check_id, title, ctx)
    session = getattr(ctx.params.settings, "whatsapp_session_id", None)
    if skipped or not session:
        return skipped or Check(check_id, title, "SKIP", "no WhatsApp session declared")
    with SandboxControl(ctx.sandbox_url) as control:
        event_id = control.disconnect_session(session, reason="drill")
        deadline, acked = time.monotonic() + ctx.timeout, None
        live = Waiting(f"the endpoint to acknowledge {event_id}", ctx.timeout, say=ctx.progress)
        try:
            while time.monotonic() < deadline and acked is None:
                acked = next((d for d in control.deliveries() if d["eventId"] == event_id
                              and d["status"] is not None and 200 <= d["status"] < 300), None)  # fmt: skip
                if acked is None:
                    live.update("session disconnected, no acknowledgement yet")
                    ctx.sleep(0.2)
        finally:
            control.connect_session(session)
    return Check(check_id, title, "PASS" if acked else "FAIL",
                 f"event {event_id} acknowledged with {acked['status']} (attempt {acked['attempt']}); "
                 "the session was reconnected after the drill" if acked
                 else f"event {event_id} was not acknowledged within {ctx.timeout:g} s",
                 remedy=None if acked else "the endpoint must accept session.* events (2xx) and "
                 "alert on session.disconnected.")  # fmt: skip


def _drill_webhook_outage(ctx: DrillContext) -> Check:
    check_id, title = (
        "drill.webhook_outage",
        "Events sent during an endpoint outage arrive after it",
    )
    skipped = _sandbox_only(check_id, title, ctx)
    if skipped:
        return skipped
    channel, blocked = _sending_channel(ctx, check_id, title)
    return blocked or _sends_on(channel, _webhook_outage(ctx, check_id, title, channel))


def _webhook_outage(ctx: DrillContext, check_id: str, title: str, channel: str) -> Check:
    payload = channel_payload(
        ctx.params.settings, channel, _to(ctx, channel), "drill: webhook outage", "drill"
    )
    with SandboxControl(ctx.sandbox_url) as control:
        control.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": ctx.outage_seconds}]}})
        try:
            sent = ctx.send("outage", payload)  # in the run's send ledger
            deadline, lifecycle = time.monotonic() + ctx.timeout, None
            live = Waiting(f"{sent.message_id} through the outage", ctx.timeout, say=ctx.progress)
            while time.monotonic() < deadline:
                events = ctx.events_for(sent.message_id or "")
                lifecycle = reconstruct(events, LIFECYCLE).messages.get(sent.message_id or "")
                if lifecycle and lifecycle.is_terminal:
                    break
                live.update(" → ".join(e.event_type for e in lifecycle.events) if lifecycle else "")
                ctx.sleep(0.2)
            ids = {e.event_id for e in (lifecycle.events if lifecycle else ())}
            refused = [d for d in control.deliveries()
                       if d["eventId"] in ids and d["error"] and "outage" in d["error"]]  # fmt: skip
        finally:
            control.clear_faults()
    ok = lifecycle is not None and lifecycle.is_terminal and bool(refused)
    return Check(check_id, title, "PASS" if ok else "FAIL",
                 f"{sent.message_id}: {len(refused)} delivery attempt(s) hit the "
                 f"{ctx.outage_seconds:g} s outage; final state "
                 f"{lifecycle.state if lifecycle else 'none'} after the retries",
                 request_ids=(sent.request_id,) if sent.request_id else (),
                 remedy=None if ok else "SendAPI retries unacknowledged events: the endpoint "
                 "must accept them once it is back, and dedupe by event id.")  # fmt: skip


DRILLS: dict[str, Callable[[DrillContext], Check]] = {
    "invalid_key": _drill_invalid_key,
    "revoked_key": _drill_revoked_key,
    "expired_key": _drill_expired_key,
    "scope_limited_key": _drill_scope_limited_key,
    "rate_limited": _drill_rate_limited,
    "idempotency_mismatch": _drill_idempotency_mismatch,
    "missing_key": _drill_missing_key,
    "endpoint_ack": _drill_endpoint_ack,
    "webhook_outage": _drill_webhook_outage,
    "session_disconnected": _drill_session_disconnected,
}
