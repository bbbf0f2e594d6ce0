"""The normalized webhook event model every event source produces.

A source (the receiver's SQLite store, exports, an integration's own database) turns what it holds
into :class:`WebhookEvent` records; lifecycle tracing only ever sees this model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INBOUND_EVENT",
    "OUTBOUND_EVENTS",
    "WebhookEvent",
    "event_from_envelope",
]

OUTBOUND_EVENTS = ("message.queued", "message.sent", "message.delivery", "message.failed")
INBOUND_EVENT = "message.inbound"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One webhook event as stored (retried deliveries of it share ``event_id``)."""

    event_id: str
    event_type: str
    message_id: str | None = None
    external_reference: str | None = None
    conversation_id: str | None = None
    sequence: int | None = None
    status: str | None = None
    number_id: str | None = None
    to: str | None = None
    from_: str | None = None
    occurred_at: str | None = None
    created_at: str | None = None
    received_at: str | None = None
    delivery_count: int = 1
    failure_code: str | None = None
    failure_reason: str | None = None
    arrival: int = 0
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_outbound(self) -> bool:
        return self.event_type in OUTBOUND_EVENTS

    @property
    def is_inbound(self) -> bool:
        return self.event_type == INBOUND_EVENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "messageId": self.message_id,
            "externalReference": self.external_reference,
            "conversationId": self.conversation_id,
            "sequence": self.sequence,
            "status": self.status,
            "numberId": self.number_id,
            "occurredAt": self.occurred_at,
            "createdAt": self.created_at,
            "receivedAt": self.received_at,
            "deliveryCount": self.delivery_count,
            "failureCode": self.failure_code,
            "failureReason": self.failure_reason,
        }


_INT64 = range(-(2**63), 2**63)


def _int_or_none(value: Any) -> int | None:
    """An integer field's value, or None when absent, not an integer, or beyond 64 bits.

    A sequence no store or engine can hold is as unusable as a missing one (the raw body keeps it).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return value if isinstance(value, int) and value in _INT64 else None


def event_from_envelope(
    envelope: dict[str, Any] | str | bytes,
    *,
    received_at: str | None = None,
    delivery_count: int = 1,
    arrival: int = 0,
) -> WebhookEvent:
    """Normalize one raw Red Cloud webhook envelope (a dict or its JSON text).

    Raises:
        ValueError: the envelope is not a JSON object with ``eventId`` and ``eventType``.
    """
    if isinstance(envelope, (str, bytes)):
        envelope = json.loads(envelope)
    if not isinstance(envelope, dict):
        raise ValueError("a webhook envelope must be a JSON object")
    event_id = envelope.get("eventId")
    event_type = envelope.get("eventType")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise ValueError("a webhook envelope needs string eventId and eventType fields")
    data = envelope.get("data")
    data = data if isinstance(data, dict) else {}
    failure = data.get("failure") if isinstance(data.get("failure"), dict) else {}

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        message_id=text("messageId"),
        external_reference=text("externalReference"),
        conversation_id=text("conversationId"),
        sequence=_int_or_none(data.get("sequence")),
        status=text("status"),
        number_id=text("numberId"),
        to=text("to"),
        from_=text("from"),
        occurred_at=text("occurredAt") or text("receivedAt"),
        created_at=envelope.get("createdAt")
        if isinstance(envelope.get("createdAt"), str)
        else None,
        received_at=received_at,
        delivery_count=delivery_count,
        failure_code=failure.get("code") if isinstance(failure.get("code"), str) else None,
        failure_reason=failure.get("reason") if isinstance(failure.get("reason"), str) else None,
        arrival=arrival,
        data=data,
    )
