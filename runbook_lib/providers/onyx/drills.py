"""The drills only Onyx can run: each provokes one failure path on purpose and checks that the
client and the integration handle it (a refusal named, nothing sent, nothing retried).

The credential drills use the sandbox's rehearsal keys (revoked, limited) and need the sandbox
(``provider.sandbox: true``); elsewhere they are SKIPped with the reason, never passed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from ...core.checks import Check
from ...core.errors import AuthError, ParameterError, ProviderError
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


def _consent_revoked_mid_run(ctx: Any) -> Check:
    cid, title = "drill.consent_revoked", "Consent revoked mid-run: sends stop with NO_CONSENT"
    if (skip := _sandbox_only(cid, title, ctx)) is not None:
        return skip
    from .sandbox import OnyxSandboxControl

    s = ctx.params.settings
    with OnyxSandboxControl(ctx.sandbox_url) as control:
        control.set_consent(s.test_subject, "revoked")
        try:
            return _blocked_send(ctx, s.test_subject, s.thread_id, "NO_CONSENT", cid, title)
        finally:
            control.set_consent(s.test_subject, "granted")


DRILLS: dict[str, Callable[[Any], Check]] = {
    "revoked_credential": _revoked_credential,
    "wrong_environment_key": _wrong_environment_key,
    "missing_scope": _missing_scope,
    "blocked_send": _blocked_by_reason_code,
    "consent_revoked": _consent_revoked_mid_run,
}
