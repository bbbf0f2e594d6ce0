"""SendAPI webhook signatures: body-only HMAC, plus the freshness and dedupe rules it needs.

``X-SendAPI-Signature: sha256=<hex HMAC-SHA256(key, raw body)>``, the key being the *whole*
``whsec_…`` string as UTF-8 (not base64-decoded, unlike Standard Webhooks). During a secret
rotation the header may carry several space-separated ``sha256=`` values, and a receiver may hold
several secrets (a sequence, or one space-separated string); any pair that matches is enough.

No timestamp is signed, so a captured delivery could be replayed for ever: :func:`verify_webhook`
also parses the envelope ``{"id", "event", "timestamp", "data"}`` and rejects a ``timestamp``
older than 5 minutes or further in the future than the clock-skew tolerance. The envelope ``id``
(``evt_…``, stable across retries) is the dedupe key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as _random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...core.errors import WebhookVerificationError
from ...security.secrets import Secret
from .resources import parse_time

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "FUTURE_TOLERANCE_SECONDS",
    "MAX_AGE_SECONDS",
    "SIGNATURE_HEADER",
    "VerifiedEvent",
    "check_freshness",
    "generate_secret",
    "sign",
    "signed_headers",
    "verify_signature",
    "verify_webhook",
]

SIGNATURE_HEADER = "X-SendAPI-Signature"
EVENT_HEADER = "X-SendAPI-Event"
DELIVERY_HEADER = "X-SendAPI-Delivery"
MAX_AGE_SECONDS = 300
FUTURE_TOLERANCE_SECONDS = 60
_SCHEME = "sha256="


def generate_secret() -> str:
    """A fresh ``whsec_`` signing secret."""
    return "whsec_" + _random.token_urlsafe(32)


Secrets = str | Secret | Sequence[str | Secret]


def _keys(secrets: Secrets) -> list[str]:
    items = [secrets] if isinstance(secrets, (str, Secret)) else list(secrets)
    keys = [k for s in items for k in (s.reveal() if isinstance(s, Secret) else s).split()]
    if not keys:
        raise WebhookVerificationError(
            "no webhook signing secret is configured.",
            code="bad_secret",
            remedy="set the environment variable named for the SendAPI webhook secret (whsec_…).",
        )
    return keys


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=<hex>``."""
    return _SCHEME + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_headers(
    secrets: Secrets, body: bytes, *, event_type: str, delivery_id: str
) -> dict[str, str]:
    """Headers of one delivery attempt (several secrets give a rotation-style list)."""
    return {
        SIGNATURE_HEADER: " ".join(sign(k, body) for k in _keys(secrets)),
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id,
        "Content-Type": "application/json",
    }


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def verify_signature(secrets: Secrets, header: str | None, body: bytes) -> None:
    """Check ``header`` against the raw ``body``, in constant time per comparison.

    Raises:
        WebhookVerificationError: ``missing_header``, ``malformed_signature`` or
            ``invalid_signature``.
    """
    if not header or not header.strip():
        raise WebhookVerificationError(
            f"the {SIGNATURE_HEADER} header is missing.", code="missing_header"
        )
    offered = []
    for part in header.split():
        if not part.startswith(_SCHEME):
            continue  # another scheme in a rotation list: not ours to judge
        hexdigest = part[len(_SCHEME) :].lower()
        try:
            offered.append(bytes.fromhex(hexdigest))
        except ValueError:
            continue
    if not offered:
        raise WebhookVerificationError(
            f"{SIGNATURE_HEADER} holds no sha256=<hex> value.", code="malformed_signature"
        )
    matched = False
    for key in _keys(secrets):
        expected = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
        for sig in offered:
            matched |= hmac.compare_digest(expected, sig)  # no early exit: timing stays flat
    if not matched:
        raise WebhookVerificationError(
            "no signature matches the raw body with the configured secret(s).",
            code="invalid_signature",
            remedy="sign with the full whsec_… string as the key, over the raw body bytes.",
        )


@dataclass(frozen=True)
class VerifiedEvent:
    """A delivery whose signature and freshness passed."""

    id: str  # the dedupe key
    event: str
    timestamp: datetime
    data: Mapping[str, Any]
    delivery_id: str | None = None

    @property
    def dedupe_key(self) -> str:
        return self.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.event, "timestamp": self.timestamp.isoformat(),
                "deliveryId": self.delivery_id, "data": dict(self.data)}  # fmt: skip


def check_freshness(
    timestamp: datetime,
    *,
    now: float | None = None,
    max_age: float = MAX_AGE_SECONDS,
    future_tolerance: float = FUTURE_TOLERANCE_SECONDS,
) -> None:
    """Reject an envelope older than ``max_age`` or ahead of the clock by more than the tolerance.

    Raises:
        WebhookVerificationError: ``stale_timestamp`` or ``future_timestamp``.
    """
    current = time.time() if now is None else now
    age = current - timestamp.timestamp()
    if age > max_age:
        raise WebhookVerificationError(
            f"the envelope timestamp is {age:.0f} s old (more than {max_age:.0f} s).",
            code="stale_timestamp",
            remedy="a replayed or long-delayed delivery: check the receiver's clock (NTP) and queue.",
        )
    if -age > future_tolerance:
        raise WebhookVerificationError(
            f"the envelope timestamp is {-age:.0f} s in the future.",
            code="future_timestamp",
            remedy="the receiver's clock is behind: synchronise it (NTP).",
        )


def verify_webhook(
    secrets: Secrets,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    max_age: float = MAX_AGE_SECONDS,
    future_tolerance: float = FUTURE_TOLERANCE_SECONDS,
) -> VerifiedEvent:
    """Verify one delivery against the raw body, then its envelope's freshness.

    Raises:
        WebhookVerificationError: a signature code (see :func:`verify_signature`),
            ``bad_envelope``, ``stale_timestamp`` or ``future_timestamp``.
    """
    verify_signature(secrets, _get(headers, SIGNATURE_HEADER), body)
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, Mapping):
        raise WebhookVerificationError("the body is not a JSON object.", code="bad_envelope")
    event_id, event, stamp = (
        envelope.get("id"),
        envelope.get("event"),
        parse_time(envelope.get("timestamp")),
    )
    if not isinstance(event_id, str) or not event_id or not isinstance(event, str) or stamp is None:
        raise WebhookVerificationError(
            "the envelope lacks id, event or an ISO-8601 timestamp.", code="bad_envelope"
        )
    check_freshness(stamp, now=now, max_age=max_age, future_tolerance=future_tolerance)
    data = envelope.get("data")
    return VerifiedEvent(
        id=event_id,
        event=event,
        timestamp=stamp,
        data=data if isinstance(data, Mapping) else {},
        delivery_id=_get(headers, DELIVERY_HEADER),
    )
