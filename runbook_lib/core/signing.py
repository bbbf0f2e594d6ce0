"""Standard Webhooks v1 signatures (Red Cloud and Onyx sign their webhooks this way).

``webhook-signature`` is ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{raw body}"``, keyed
with the base64-decoded part of a ``whsec_`` secret; several space-separated signatures appear
during a secret rotation. Receivers verify against the raw bytes and reject timestamps more than
five minutes from their clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from .errors import WebhookVerificationError

__all__ = [
    "STANDARD_WEBHOOKS",
    "TIMESTAMP_TOLERANCE_SECONDS",
    "StandardWebhooks",
    "generate_webhook_secret",
    "sign_webhook",
    "signed_headers",
    "verify_webhook",
]

TIMESTAMP_TOLERANCE_SECONDS = 300
_PREFIX = "whsec_"


def generate_webhook_secret() -> str:
    """A fresh ``whsec_`` secret with a 32-byte key."""
    return _PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError(
            "the webhook signing secret is not a whsec_<base64> value.",
            code="bad_secret",
            remedy="copy the signing secret exactly as the Red Cloud console shows it.",
        ) from exc


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: str | Sequence[str], msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Headers for one delivery attempt; several secrets give a rotation-style signature list."""
    ts = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(sign_webhook(k, msg_id, ts, body) for k in keys),
        "content-type": "application/json",
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    if not value:
        raise WebhookVerificationError(f"the {name} header is missing.", code="missing_header")
    return value


def verify_webhook(
    secrets: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TIMESTAMP_TOLERANCE_SECONDS,
) -> str:
    """Verify one delivery against the raw body; return its ``webhook-id``.

    Raises:
        WebhookVerificationError: with ``code`` one of ``missing_header``, ``bad_timestamp``,
            ``stale_timestamp``, ``future_timestamp``, ``malformed_signature``,
            ``invalid_signature``.
    """
    msg_id = _header(headers, "webhook-id")
    ts_text = _header(headers, "webhook-timestamp")
    sig_header = _header(headers, "webhook-signature")
    try:
        ts = int(ts_text)
    except ValueError as exc:
        raise WebhookVerificationError(
            "webhook-timestamp is not unix seconds.", code="bad_timestamp"
        ) from exc
    current = time.time() if now is None else now
    if ts < current - tolerance:
        raise WebhookVerificationError(
            "webhook-timestamp is more than 5 minutes old.", code="stale_timestamp"
        )
    if ts > current + tolerance:
        raise WebhookVerificationError(
            "webhook-timestamp is more than 5 minutes in the future.", code="future_timestamp"
        )
    offered: list[bytes] = []
    for part in sig_header.split():
        version, sep, value = part.partition(",")
        if not sep or not value:
            raise WebhookVerificationError(
                "webhook-signature is not a list of 'version,signature'.",
                code="malformed_signature",
            )
        if version != "v1":
            continue  # unknown versions are skipped, per Standard Webhooks
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise WebhookVerificationError(
            "webhook-signature holds no v1 signature.", code="invalid_signature"
        )
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    signed = f"{msg_id}.{ts}.".encode() + body
    for key in keys:
        expected = hmac.new(_key(key), signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return msg_id
    raise WebhookVerificationError(
        "no signature matches the raw body with the configured secret.", code="invalid_signature"
    )


class StandardWebhooks:
    """The Standard Webhooks scheme as a :class:`~runbook_lib.providers.base.SignatureScheme`."""

    name = "standard-webhooks"
    headers = ("webhook-id", "webhook-timestamp", "webhook-signature")
    id_header = "webhook-id"
    # the longest value accepted per header: ids are short, and a rotation list holds a few
    # ``v1,<44 characters>`` signatures
    header_limits: Mapping[str, int] = MappingProxyType(
        {"webhook-id": 256, "webhook-timestamp": 32, "webhook-signature": 2048}
    )
    tolerance = TIMESTAMP_TOLERANCE_SECONDS
    signature_header = "webhook-signature"

    def sign(
        self,
        secrets: str | Sequence[str],
        msg_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        return signed_headers(secrets, msg_id, body, timestamp=timestamp)

    def unknown_version(self, value: str) -> str:
        """``value``'s signature under a version nobody defined (``v9,…``): must be refused."""
        return "v9," + value.split(",", 1)[1]

    def malformed_signatures(self) -> tuple[tuple[str, str], ...]:
        """Unparseable ``webhook-signature`` values (label, value): each must get a 4xx."""
        return (("garbage", "garbage"), ("'v1' alone", "v1"), ("'v1,' empty", "v1,"),
                ("',abc'", ",abc"))  # fmt: skip

    def verify(
        self,
        secrets: str | Sequence[str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        tolerance: int = TIMESTAMP_TOLERANCE_SECONDS,
    ) -> str:
        return verify_webhook(secrets, headers, body, now=now, tolerance=tolerance)

    def generate_secret(self) -> str:
        return generate_webhook_secret()

    def valid_secret(self, secret: str) -> bool:
        """``whsec_`` followed by base64 of a non-empty key."""
        if not secret.startswith(_PREFIX):
            return False
        try:
            return bool(_key(secret))
        except WebhookVerificationError:
            return False


STANDARD_WEBHOOKS = StandardWebhooks()
