"""The Red Cloud v1 wire contract in one place: paths, event types, their lifecycle states, envelopes.

Everything else in the provider (client, checks, sandbox, drills) and the common lifecycle engine
read the event → state mapping from :data:`LIFECYCLE` here; nowhere else spells it.
"""

from __future__ import annotations

import json
from typing import Any

from ...core.events import WebhookEvent, int_or_none
from ...core.lifecycle import LifecycleModel

__all__ = [
    "API",
    "EVENT_STATES",
    "INBOUND_EVENT",
    "LIFECYCLE",
    "OUTBOUND_EVENTS",
    "REQUIRED_SCOPES",
    "event_from_envelope",
    "probe_envelope",
]

#: API paths (the base URL comes from the parameter file)
API = {
    "token": "/oauth/token",
    "whoami": "/api/core/whoami",
    "numbers": "/api/core/numbers",
    "send": "/api/core/messages/send",
}
REQUIRED_SCOPES = ("messages:send", "numbers:read")

#: outbound event type → lifecycle state of the common model
EVENT_STATES = {
    "message.queued": "QUEUED",
    "message.sent": "SENT",
    "message.delivery": "DELIVERED",
    "message.failed": "FAILED",
}
OUTBOUND_EVENTS = tuple(EVENT_STATES)
INBOUND_EVENT = "message.inbound"

#: Red Cloud orders each message's events by ``data.sequence``.
LIFECYCLE = LifecycleModel(
    state_by_event=EVENT_STATES,
    inbound_events=frozenset({INBOUND_EVENT}),
    ordered_by="sequence",
    first_event="message.queued",
)


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
        sequence=int_or_none(data.get("sequence")),
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


def probe_envelope(
    event_type: str,
    *,
    event_id: str,
    message_id: str,
    sequence: int,
    conversation_id: str,
    now: str,
) -> dict[str, Any]:
    """A test envelope of ``event_type`` as Red Cloud would send it (probe events are marked:
    ``messageId`` starts with ``msg_probe_``, ``externalReference`` is ``runbook-probe``)."""
    if event_type == INBOUND_EVENT:
        data: dict[str, Any] = {"messageId": message_id, "conversationId": conversation_id,
                                "numberId": "num_probe", "from": "+15005550199", "to": "+15005550198",
                                "body": "probe", "media": [], "receivedAt": now}  # fmt: skip
    else:
        data = {"messageId": message_id, "externalReference": "runbook-probe", "sequence": sequence,
                "status": EVENT_STATES.get(event_type, "UNKNOWN"), "numberId": "num_probe",
                "to": "+15005550199", "occurredAt": now}  # fmt: skip
        if event_type == "message.failed":
            data["failure"] = {"code": "probe", "reason": "conformance probe"}
    return {"eventId": event_id, "eventType": event_type, "createdAt": now, "data": data}
