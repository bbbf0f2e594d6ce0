"""The drills Red Cloud supports (the webhook-signature drill is common: runbooks.drills).

| drill                  | provoked by                                   | safe behaviour asserted |
|------------------------|-----------------------------------------------|-------------------------|
| invalid_credentials    | a random wrong client secret                  | ``invalid_client`` named, the secret nowhere in the error |
| expired_token          | sandbox: revoke all tokens; elsewhere: a token the provider never issued | refreshed transparently with exactly one extra token call |
| invalid_send_from      | a numberId that does not exist                | 422 ``invalid_send_from`` with its requestId, no retry |
| missing_idempotency_key| a send request without the header             | the provider refuses it (400) and the library never sends one |
| webhook_outage         | sandbox: an endpoint outage window            | every event arrives once the endpoint is back, none lost |

Each takes the runbook's drill context (``runbook_lib.runbooks.drills.DrillContext``) and returns
one check; drills needing provider-side control SKIP unless the parameter file says
``provider.sandbox: true``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from ...core.checks import Check
from ...core.errors import InvalidClientError, ProviderError, RunbookError
from ...core.lifecycle import STATES, reconstruct
from ...reporting.progress import Waiting
from ...security.secrets import REGISTRY, Secret
from .contract import API, LIFECYCLE
from .sandbox.control import SandboxControl

__all__ = ["DRILLS", "DRILL_SEND_FROM"]

DRILL_SEND_FROM = "num_drill_does_not_exist"
DrillContext = Any  # runbook_lib.runbooks.drills.DrillContext (providers do not import runbooks)


def _drill_invalid_credentials(ctx: DrillContext) -> Check:
    title = "Invalid credentials fail cleanly"
    canary = "drill-wrong-secret-" + secrets.token_hex(12)
    REGISTRY.register(canary, "drill canary secret")
    client = ctx.make_client(Secret(canary, label="drill"))
    try:
        client.acquire_token()
    except InvalidClientError as exc:
        text = f"{exc} {exc!r} {json.dumps(exc.to_dict())}"
        if canary in text:
            return Check("drill.invalid_credentials", title, "FAIL", "the error message contains the secret",
                         remedy="error messages must be built from codes, never from request data.")  # fmt: skip
        return Check("drill.invalid_credentials", title, "PASS",
                     f"refused with invalid_client; the message names the fix and not the secret: “{exc.message}”",
                     request_ids=(exc.request_id,) if exc.request_id else ())  # fmt: skip
    except RunbookError as exc:
        return Check(
            "drill.invalid_credentials", title, "FAIL", f"expected invalid_client, got {exc}"
        )
    finally:
        client.close()
    return Check("drill.invalid_credentials", title, "FAIL", "the provider issued a token for a wrong secret",
                 remedy="the token endpoint accepted wrong credentials: raise it with the provider now.")  # fmt: skip


def _drill_expired_token(ctx: DrillContext) -> Check:
    title = "Revoked token refreshed transparently"
    client = ctx.client
    before = client.auth.fetch_count
    how = "the sandbox revoked every token"
    if ctx.sandbox_url:
        with SandboxControl(ctx.sandbox_url) as control:
            control.revoke_tokens()
    else:
        client.auth.replace_token("drill-revoked-" + secrets.token_hex(8))
        how = "the cached token was swapped for one the provider never issued"
    try:
        result = client.whoami()
    except RunbookError as exc:
        return Check("drill.expired_token", title, "FAIL", f"{how}; the next call failed: {exc}",
                     remedy="on 401 invalid_token, fetch one new token and repeat the call once.")  # fmt: skip
    extra = client.auth.fetch_count - before
    ok = extra == 1
    return Check("drill.expired_token", title, "PASS" if ok else "FAIL",
                 f"{how}; whoami answered {result.status} after {extra} extra token call(s)",
                 {"extraTokenCalls": extra}, result.request_ids,
                 remedy=None if ok else "exactly one token refetch is expected.")  # fmt: skip


def _drill_invalid_send_from(ctx: DrillContext) -> Check:
    title = "Invalid sendFrom refused with 422, not retried"
    key = "drill-invalid-sendfrom-" + secrets.token_hex(6)
    try:
        ctx.client.send_message(
            {"sendFrom": DRILL_SEND_FROM, "to": ctx.to, "body": "runbook drill"},
            idempotency_key=key,
        )
    except ProviderError as exc:
        attempts = [r for r in ctx.client.request_log if r.idempotency_key == key]
        # Retries of transient faults before the 422 are fine; nothing may follow the 422.
        final_only = [r.status for r in attempts].count(422) == 1 and attempts[-1].status == 422
        ok = (
            exc.status == 422
            and exc.code == "invalid_send_from"
            and final_only
            and bool(exc.request_id)
        )
        return Check("drill.invalid_send_from", title, "PASS" if ok else "FAIL",
                     f"{exc.status} {exc.code} with requestId {exc.request_id}; "
                     f"{'no retry after the 422' if final_only else 'RETRIED after the 422'} "
                     f"({len(attempts)} attempt(s) in all)",
                     {"status": exc.status, "code": exc.code, "attempts": len(attempts)},
                     (exc.request_id,) if exc.request_id else (),
                     remedy=None if ok else "a 422 must carry its requestId and never be retried.")  # fmt: skip
    return Check("drill.invalid_send_from", title, "FAIL", f"the provider accepted sendFrom {DRILL_SEND_FROM}",
                 remedy="the provider accepted an unknown number: raise it with the provider.")  # fmt: skip


def _drill_missing_key(ctx: DrillContext) -> Check:
    title = "Send without Idempotency-Key refused"
    try:
        ctx.client.send_message({}, idempotency_key="")
        library_refuses = False
    except ValueError:
        library_refuses = True
    # An unknown sendFrom as well: even a provider that ignored the rule could not send this.
    body = {"sendFrom": DRILL_SEND_FROM, "to": ctx.to, "body": "runbook drill"}
    response = ctx.client.request_raw("POST", API["send"], json=body)
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    ok = library_refuses and response.status_code == 400 and code == "missing_idempotency_key"
    rid = response.headers.get("x-request-id")
    return Check("drill.missing_idempotency_key", title, "PASS" if ok else "FAIL",
                 f"library refuses to send without a key: {'yes' if library_refuses else 'NO'}; "
                 f"provider answered {response.status_code} {code}",
                 {"status": response.status_code, "code": code}, (rid,) if rid else (),
                 remedy=None if ok else "every send must carry an Idempotency-Key.")  # fmt: skip


def _drill_webhook_outage(ctx: DrillContext) -> Check:
    title = "Webhook endpoint outage loses no event"
    if not ctx.sandbox_url:
        return Check("drill.webhook_outage", title, "SKIP",
                     "not runnable: needs provider-side control of webhook delivery (sandbox only)")  # fmt: skip
    blocked = ctx.sender_unusable("drill.webhook_outage", title)  # it sends from send_from
    if blocked is not None:
        return blocked
    with SandboxControl(ctx.sandbox_url) as control:
        control.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": ctx.outage_seconds}]}})
        try:
            # in the run's ledger, under a key of the run: re-running the run replays, never resends
            accepted = ctx.send("outage", {"sendFrom": ctx.send_from, "to": ctx.to,
                                           "body": "runbook drill: webhook outage",
                                           "externalReference": "drill-outage"})  # fmt: skip
            message_id = accepted.message_id
            ctx.progress(
                f"  outage drill: endpoint down for {ctx.outage_seconds:g} s, waiting for {message_id} …"
            )
            deadline = time.monotonic() + ctx.timeout
            live = Waiting(f"{message_id} through the outage", ctx.timeout, say=ctx.progress)
            lifecycle = None
            while time.monotonic() < deadline:
                lifecycle = reconstruct(ctx.events_for(message_id), LIFECYCLE).messages.get(
                    message_id
                )
                if (
                    lifecycle
                    and lifecycle.is_terminal
                    and lifecycle.seen("QUEUED")
                    and lifecycle.seen("SENT")
                ):
                    break
                live.update(
                    " → ".join(s.lower() for s in STATES if lifecycle and lifecycle.seen(s))
                )
                ctx.sleep(0.25)
            failed = [
                a
                for a in control.webhook_attempts()
                if a.get("messageId") == message_id and a.get("error")
            ]
        finally:
            control.clear_faults()
    complete = bool(
        lifecycle
        and lifecycle.is_terminal
        and not lifecycle.sequence_gaps
        and not lifecycle.missing_queued
    )
    ok = complete and bool(failed)
    return Check("drill.webhook_outage", title, "PASS" if ok else "FAIL",
                 f"{len(failed)} delivery attempt(s) failed during the outage; afterwards "
                 + (f"all {lifecycle.highest_sequence} events arrived (final {lifecycle.state})" if complete
                    else f"events still missing after {ctx.timeout:g} s"),
                 {"failedAttempts": len(failed), "messageId": message_id},
                 accepted.request_ids,
                 remedy=None if ok else "webhooks must be retried until acknowledged; check the receiver.")  # fmt: skip


DRILLS: dict[str, Callable[[DrillContext], Check]] = {
    "invalid_credentials": _drill_invalid_credentials,
    "expired_token": _drill_expired_token,
    "invalid_send_from": _drill_invalid_send_from,
    "missing_idempotency_key": _drill_missing_key,
    "webhook_outage": _drill_webhook_outage,
}
