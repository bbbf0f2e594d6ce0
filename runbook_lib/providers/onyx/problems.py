"""Onyx problem+json answers → the runbook's exception tree, and what a person must do.

    401 unauthenticated           → AuthError (missing, revoked or wrong-environment key)
    any answer with a reasonCode
      among POLICY_REASON_CODES   → BlockedByPolicyError (422 send_blocked, 403 feature_gated…)
    everything else               → ProviderError (retryable for 429 and 5xx)

A policy outcome is never retried: only a change of state (consent granted again, approval
given, thread reopened) can make the same request succeed, so each reason code carries the action
a person must take (:data:`REASON_ACTIONS`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from ...core.errors import AuthError, BlockedByPolicyError, ProviderError
from ...security.privacy import redact_excerpt

__all__ = [
    "POLICY_REASON_CODES",
    "REASON_ACTIONS",
    "action_for",
    "error_from_response",
    "is_retryable_status",
    "problem_of",
    "redact",
]

REASON_ACTIONS: dict[str, str] = {
    "NO_CONSENT": "the user has not granted (or has revoked) messaging consent: ask them to "
    "approve it in the app's consent flow; send nothing until consent.granted arrives.",
    "CONSENT_EXPIRED": "the user's consent expired: ask them to renew it in the app; access "
    "stays stopped until a new consent.granted arrives.",
    "APP_NOT_VERIFIED": "the app is not verified: finish ownership and production-domain "
    "verification in the Partner Portal and wait for app.review_changed to say approved.",
    "INSUFFICIENT_TRUST": "the app's trust level does not allow this intent: use a lower-risk "
    "intent or ask the Onyx partner manager to review the app's trust level.",
    "THREAD_BLOCKED": "the user blocked this thread: only the user can unblock it; do not open "
    "another thread to get around the block.",
    "THREAD_CLOSED": "the thread is closed: the user must start (or reopen) a conversation in "
    "the app before a message can be sent.",
    "FEATURE_GATED": "this market × capability × environment has no launch approval: request "
    "it in the Partner Portal and wait until it shows approved.",
}
POLICY_REASON_CODES = frozenset(REASON_ACTIONS)
_UNKNOWN_REASON = (
    "look the reason code up in Onyx's reason-codes page; do not retry until the state it names "
    "has changed."
)

_REMEDIES: dict[str, str] = {
    "unauthenticated": "the partner credential was refused (missing, revoked, rotated or for the "
    "other environment): check its state in the Partner Portal and that its prefix "
    "(onyx_sk_live_/onyx_sk_test_) matches the host.",
    "insufficient_scope": "grant the missing scope to this credential in the Partner Portal "
    "(only the scopes the integration needs).",
    "invalid_request": "the request was rejected as malformed; see detail.",
    "idempotency_conflict": "this idempotency-key was used with a different body: resend the "
    "first body unchanged, or use a new key for a new order.",
    "event_not_replayable": "only events under 30 days old, of this environment and of a type "
    "still subscribed can be replayed; pick an eligible event.",
    "unknown_package": "re-read the catalogue; the package is unknown or not orderable now.",
    "package_not_found": "re-read the catalogue; this package id is not in it.",
    "order_not_found": "check the orderId (pp_order_…) and the environment.",
    "esim_not_found": "check the ICCID and that its order reached esim_ready.",
    "event_not_found": "check the eventId (evt_…) and the environment.",
    "rate_limited": "slow down: the credential's budget is 600 requests a minute; the client "
    "honours Retry-After.",
}
_DEFAULT_REMEDY = "see Onyx's status page; quote the requestId to Onyx support."
_ONYX_SECRETS = re.compile(r"(onyx_sk_(?:live|test)_|whsec_)[A-Za-z0-9+/=_-]+")


def action_for(reason_code: str | None) -> str | None:
    """The action a person must take for ``reason_code`` (None for no reason code)."""
    if not reason_code:
        return None
    return REASON_ACTIONS.get(reason_code, _UNKNOWN_REASON)


def is_retryable_status(status: int) -> bool:
    """The contract retries only 429 and 5xx (and timeouts, which have no status)."""
    return status == 429 or 500 <= status <= 599


def redact(text: str, limit: int = 300) -> str:
    """A body excerpt with bearer tokens, Onyx credentials and webhook secrets masked."""
    return redact_excerpt(_ONYX_SECRETS.sub(lambda m: m.group(1) + "****", text), limit)


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body as a dict ({} when it is not JSON)."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(problem: dict[str, Any], name: str) -> str | None:
    value = problem.get(name)
    return value if isinstance(value, str) and value else None


def error_from_response(
    method: str, path: str, response: httpx.Response, *, attempts: int = 1
) -> ProviderError | AuthError:
    """The exception for one failed answer, with requestId, code, reasonCode and remedy."""
    problem = problem_of(response)
    code = _text(problem, "code")
    reason = _text(problem, "reasonCode")
    rid = _text(problem, "requestId") or response.headers.get("x-request-id")
    detail = _text(problem, "detail") or _text(problem, "title") or response.reason_phrase
    status = response.status_code
    context: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": rid,
        "body_excerpt": redact(response.text),
    }
    if reason in POLICY_REASON_CODES or (reason and code in ("send_blocked", "feature_gated")):
        return BlockedByPolicyError(
            f"{method} {path} blocked by policy ({reason}): {detail}",
            reason_code=reason,
            remedy=action_for(reason),
            **context,
        )
    if status == 401:
        return AuthError(
            f"{method} {path} refused the partner credential: {detail}",
            remedy=_REMEDIES["unauthenticated"],
            **context,
        )
    retryable = is_retryable_status(status)
    message = f"{method} {path} failed: {detail}"
    if retryable:
        message += f" (gave up after {attempts} attempt(s))"
    return ProviderError(
        message,
        retryable=retryable,
        remedy=_REMEDIES.get(code or "", _DEFAULT_REMEDY),
        **context,
    )
