"""Onyx webhook signatures: Standard Webhooks, as :mod:`runbook_lib.core.signing` implements them.

Onyx signs exactly as Red Cloud does (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<b64 HMAC-SHA256 of "{id}.{ts}.{body}">``, key from ``whsec_…``,
rotation lists, 5-minute tolerance), so verification is the shared implementation. What Onyx
adds: secrets arrive as :class:`~runbook_lib.security.secrets.Secret`, the verified body is parsed into an
:class:`~runbook_lib.providers.onyx.events.OnyxEvent`, and its envelope ``id`` must equal the
``webhook-id`` that was signed (a body replayed under another delivery's id is refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...core.errors import EventSourceError, WebhookVerificationError
from ...core.signing import TIMESTAMP_TOLERANCE_SECONDS, signed_headers, verify_webhook
from ...security.secrets import Secret
from .events import OnyxEvent

__all__ = ["TIMESTAMP_TOLERANCE_SECONDS", "sign_delivery", "verify_delivery"]

SecretLike = Secret | str
_REMEDY = (
    "use the whsec_ secret Onyx returned when this endpoint was registered (it is shown once; "
    "during a rotation configure both the old and the new secret)."
)


def _values(secrets: SecretLike | Sequence[SecretLike]) -> list[str]:
    items = [secrets] if isinstance(secrets, (Secret, str)) else list(secrets)
    return [s.reveal() if isinstance(s, Secret) else s for s in items]


def sign_delivery(
    secrets: SecretLike | Sequence[SecretLike], event_id: str, body: bytes, *, timestamp: int
) -> dict[str, str]:
    """Headers for one delivery attempt (several secrets: a rotation-style signature list)."""
    return signed_headers(_values(secrets), event_id, body, timestamp=timestamp)


def verify_delivery(
    secrets: SecretLike | Sequence[SecretLike],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TIMESTAMP_TOLERANCE_SECONDS,
) -> OnyxEvent:
    """Verify one delivery against its raw body and return the event it carries.

    Raises:
        WebhookVerificationError: every code of :func:`runbook_lib.core.signing.verify_webhook`, plus
            ``malformed_body`` (not an Onyx envelope) and ``id_mismatch`` (envelope ``id`` is
            not the signed ``webhook-id``).
    """
    try:
        webhook_id = verify_webhook(_values(secrets), headers, body, now=now, tolerance=tolerance)
    except WebhookVerificationError as exc:
        if exc.code == "bad_secret":
            raise WebhookVerificationError(exc.message, code=exc.code, remedy=_REMEDY) from None
        raise
    try:
        event = OnyxEvent.from_wire(body)
    except EventSourceError as exc:
        raise WebhookVerificationError(exc.message, code="malformed_body") from None
    if event.event_id != webhook_id:
        raise WebhookVerificationError(
            f"the envelope id {event.event_id} is not the signed webhook-id {webhook_id}.",
            code="id_mismatch",
            remedy="Onyx sends the event id as webhook-id; refuse the delivery and report it.",
        )
    return event
