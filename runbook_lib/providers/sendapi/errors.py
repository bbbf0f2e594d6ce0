"""SendAPI's error bodies → the runbook's one exception tree, with a fix per code.

The vendor documents two envelopes, and the contract's superset of them:

    {"error": {"type": "invalid_request_error", "code": "missing_parameter", "param": "to", "message": …}}
    {"success": false, "error": {"type": "rate_limit_exceeded", "code": 4029, "message": …,
                                 "request_id": "req_…", "retry_after": 12}}

:func:`parse_error_body` reads either into one :class:`WireError`; :func:`error_from_response`
builds the exception: 401/403 → :class:`~runbook_lib.errors.AuthError`, anything else →
:class:`~runbook_lib.errors.ProviderError` (``retryable`` for 429 and 5xx). ``code`` is the
numeric code as text when there is one (``"4012"``), else the named code; ``request_id`` comes
from the body, else from the ``X-Request-Id`` header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ...core.errors import AuthError, ProviderError, RunbookError

__all__ = [
    "CODE_NAMES",
    "REMEDIES",
    "WireError",
    "error_from_response",
    "parse_error_body",
    "redact",
]

# Numeric codes and the names the vendor gives them [contract §2, §5].
CODE_NAMES: dict[str, str] = {
    "4000": "invalid_request",
    "4001": "invalid_phone",
    "4010": "missing_api_key",
    "4011": "invalid_api_key",
    "4012": "revoked_api_key",
    "4013": "expired_api_key",
    "4020": "quota_exceeded",
    "4021": "sms_balance_low",
    "4028": "quota_exceeded",
    "4029": "rate_limit_exceeded",
    "4030": "insufficient_scope",
}

_QUOTA = "the plan's quota for this channel is used up: raise it in the SendAPI dashboard (Billing) or wait for the next billing period; GET /account/usage shows the consumption."
REMEDIES: dict[str, str] = {
    "missing_api_key": "no API key was sent: set the environment variable named by api_key_env to the sk_… key.",
    "invalid_api_key": "the API key is not one SendAPI knows: copy it again from the dashboard (API keys) into the environment variable named by api_key_env.",
    "revoked_api_key": "this API key was revoked: create a new key in the dashboard and put it in the environment variable named by api_key_env.",
    "expired_api_key": "this API key has expired: create a new key in the dashboard and put it in the environment variable named by api_key_env.",
    "insufficient_scope": "the key is scoped to other channels: use a key whose scopes include this channel, or drop the channel from the parameter file.",
    "quota_exceeded": _QUOTA,
    "email_quota_exceeded": _QUOTA,
    "sms_balance_low": "the SMS balance is too low: top up the account in the SendAPI dashboard (Billing).",
    "subscription_required": "this feature needs a paid plan (webhooks are not in the trial): upgrade in the dashboard.",
    "subscription_expired": "the subscription has expired: renew it in the SendAPI dashboard (Billing).",
    "idempotency_key_mismatch": "this Idempotency-Key was already used with a different body: a retry must resend the identical body, a new send needs a new key (start a new run id).",
    "idempotency_in_progress": "the first request with this Idempotency-Key is still running: wait a few seconds, then retry with the same key and body.",
    "session_not_connected": "the WhatsApp session is not connected: scan its QR code again (GET /whatsapp/sessions/{id}/qr) and keep the phone online.",
    "invalid_from_domain": "the from address is not on a verified domain: verify the domain (POST /email/domains/{id}/verify once SPF, DKIM and DMARC are published) or use an address on a verified one.",
    "conflict": "the request conflicts with the current state (e.g. an Idempotency-Key reused with another body): see message; a new send needs a new key.",
    "missing_idempotency_key": "every POST needs an Idempotency-Key header (SendApiClient adds the one it is given; a raw request forgot it).",
    "invalid_sender_id": "use a sender id the account has approved (GET /sms/sender-ids shows each one's status).",
    "invalid_destination": "the destination cannot receive messages: check the number with GET /phone/validate, or use another.",
    "unprocessable": "the request is valid but cannot be carried out (e.g. a dead number): check the destination and sender.",
    "rate_limit_exceeded": "too many requests for this key: the client waits for Retry-After; lower the send rate or raise the plan's limit.",
    "sending_limited": "sending is limited for this key or session (per-session caps: 30/min, 1,000/day): slow down.",
    "content_blocked": "the content was blocked by SendAPI's filters: change the message text.",
    "invalid_request": "the request was rejected as malformed: see message and param.",
    "missing_parameter": "a required field is missing: see param.",
    "invalid_phone": "the phone number is not valid E.164 (+ and digits): fix the destination.",
    "not_found": "the resource does not exist for this key: check the id in the parameter file.",
    "server_error": "SendAPI failed on its side: retried with backoff; if it persists, quote the request id to SendAPI support.",
}
# The status's family, for bodies that name no code we know.
_BY_STATUS = {401: "invalid_api_key", 402: "quota_exceeded", 403: "insufficient_scope",
              404: "not_found", 409: "conflict", 422: "unprocessable",
              429: "rate_limit_exceeded"}  # fmt: skip
_GENERIC = "quote the request id to SendAPI support."

_SECRETISH = re.compile(r"(?i)(bearer\s+)\S+|\b(sk_(?:live|test)_|whsec_)[A-Za-z0-9_+/=-]+")


def redact(text: str, limit: int = 300) -> str:
    """A short body excerpt with keys, signing secrets and bearer values masked."""
    text = _SECRETISH.sub(lambda m: (m.group(1) or m.group(2) or "") + "****", text)
    return text[:limit] + ("…" if len(text) > limit else "")


@dataclass(frozen=True)
class WireError:
    """One error body, whichever envelope it came in."""

    type: str | None
    code: str | None  # numeric code as text ("4029") or a named code
    name: str | None  # the named code ("rate_limit_exceeded"), derived from a numeric one
    message: str | None
    param: str | None
    request_id: str | None
    retry_after: float | None


def parse_error_body(content: bytes) -> WireError:
    """Read either documented error envelope; an unreadable body gives an empty :class:`WireError`."""
    try:
        body = json.loads(content or b"{}")
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, str):  # {"error": "…", "message": …} seen on some gateways
        error = {"code": error, "message": body.get("message")}
    if not isinstance(error, Mapping):
        error = {}
    raw_code = error.get("code")
    code = (
        str(raw_code)
        if isinstance(raw_code, (int, str)) and not isinstance(raw_code, bool)
        else None
    )
    name = CODE_NAMES.get(code or "") or (code if code and not code.isdigit() else None)
    etype = error.get("type") if isinstance(error.get("type"), str) else None
    if name is None and etype in REMEDIES:
        name = etype
    rid = error.get("request_id") or (body.get("request_id") if isinstance(body, Mapping) else None)
    retry_after = error.get("retry_after")
    return WireError(
        type=etype,
        code=code or name,
        name=name,
        message=error.get("message") if isinstance(error.get("message"), str) else None,
        param=error.get("param") if isinstance(error.get("param"), str) else None,
        request_id=rid if isinstance(rid, str) else None,
        retry_after=float(retry_after)
        if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool)
        else None,
    )


def remedy_for(status: int, wire: WireError) -> str:
    """The one line of fix for this status and code."""
    if wire.name in REMEDIES:
        return REMEDIES[wire.name]
    if status >= 500:
        return REMEDIES["server_error"]
    family = _BY_STATUS.get(status)
    return REMEDIES[family] if family else _GENERIC


def error_from_response(
    method: str, path: str, response: httpx.Response, *, attempts: int = 1
) -> RunbookError:
    """The exception for a non-2xx answer (never raised here: the caller raises it)."""
    status = response.status_code
    wire = parse_error_body(response.content)
    rid = wire.request_id or response.headers.get("x-request-id")
    detail = wire.message or response.reason_phrase or "error"
    named = wire.name if wire.name and wire.name != wire.code else None
    what = " ".join(p for p in (named, wire.type, f"({wire.param})" if wire.param else None) if p)
    message = f"{method} {path} failed: {detail}" + (f" [{what}]" if what else "")
    retryable = status == 429 or status >= 500
    if retryable and attempts > 1:
        message += f" (gave up after {attempts} attempts)"
    kwargs: dict[str, Any] = {
        "status": status,
        "code": wire.code or wire.name or _BY_STATUS.get(status),
        "request_id": rid,
        "remedy": remedy_for(status, wire),
        "body_excerpt": redact(response.text),
    }
    if status in (401, 403):
        return AuthError(message, **kwargs)
    return ProviderError(message, retryable=retryable, **kwargs)
