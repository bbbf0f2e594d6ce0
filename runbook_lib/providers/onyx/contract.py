"""Onyx's events in the common event model: lifecycle states, envelope parsing, probe envelopes.

Onyx says a message's delivery state in ``data.status`` of one type, ``message.delivery_updated``;
the common model keys states by event type, so an envelope of that type is stored under
``message.delivery_updated.<status>`` (``…delivered``, ``…failed``, ``…sent``). Every event is
correlated to its resource as ``conversation_id`` = ``"<kind>:<id>"`` (``webhook:wh_…``,
``order:pp_order_…``), so the go-live can find a test event or an order's events in the store.
"""

from __future__ import annotations

import json
from typing import Any

from ...core.errors import EventSourceError
from ...core.events import WebhookEvent, int_or_none
from ...core.lifecycle import LifecycleModel
from .events import EVENT_TYPES, OnyxEvent

__all__ = [
    "DELIVERY_UPDATED",
    "LIFECYCLE",
    "REQUIRED_SCOPES",
    "event_from_envelope",
    "probe_envelope",
    "resource_key",
]

DELIVERY_UPDATED = "message.delivery_updated"
#: the model's event type → common state
EVENT_STATES = {
    "message.allowed": "QUEUED",
    f"{DELIVERY_UPDATED}.sent": "SENT",
    f"{DELIVERY_UPDATED}.delivered": "DELIVERED",
    f"{DELIVERY_UPDATED}.failed": "FAILED",
}
LIFECYCLE = LifecycleModel(
    state_by_event=EVENT_STATES, ordered_by="sequence", first_event="message.allowed"
)
#: every scope the go-live itself uses (a parameter file declares what the integration needs)
REQUIRED_SCOPES = (
    "catalogue:read",
    "orders:write",
    "orders:read",
    "usage:read",
    "webhooks:manage",
    "events:replay",
)


def resource_key(kind: str, resource_id: str) -> str:
    return f"{kind}:{resource_id}"


def _model_type(event: OnyxEvent) -> str:
    if event.type == DELIVERY_UPDATED:
        return f"{DELIVERY_UPDATED}.{event.state}"
    return event.type


def event_from_envelope(
    envelope: dict[str, Any] | str | bytes,
    *,
    received_at: str | None = None,
    delivery_count: int = 1,
    arrival: int = 0,
) -> WebhookEvent:
    """One Onyx envelope → the common event model.

    Raises:
        ValueError: not an onyx-v1 envelope (the message names what is missing).
    """
    if isinstance(envelope, (str, bytes)):
        try:
            envelope = json.loads(envelope)
        except ValueError:
            raise ValueError("an Onyx event body is not JSON") from None
    if isinstance(envelope, dict) and envelope.get("type") not in EVENT_TYPES:
        return _unknown_type(envelope, received_at, delivery_count, arrival)
    try:
        event = OnyxEvent.from_wire(envelope)
    except EventSourceError as exc:
        raise ValueError(exc.message) from None
    kind, resource_id = event.resource
    data = dict(event.data)
    return WebhookEvent(
        event_id=event.event_id,
        event_type=_model_type(event),
        message_id=resource_id if kind == "message" else None,
        conversation_id=resource_key(kind, resource_id),
        sequence=event.sequence,
        status=event.state,
        occurred_at=event.created_at,
        created_at=event.created_at,
        received_at=received_at,
        delivery_count=delivery_count,
        failure_code=data.get("reasonCode") if isinstance(data.get("reasonCode"), str) else None,
        arrival=arrival,
        data=data,
    )


def _unknown_type(
    envelope: dict[str, Any], received_at: str | None, delivery_count: int, arrival: int
) -> WebhookEvent:
    """A type this contract does not know: kept (a receiver acknowledges and ignores it), with
    no resource and no state; only ``id`` and ``type`` are required."""
    event_id, event_type = envelope.get("id"), envelope.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise ValueError("an Onyx event needs string id and type fields")
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    created = envelope.get("createdAt") if isinstance(envelope.get("createdAt"), str) else None
    return WebhookEvent(event_id=event_id, event_type=event_type,
                        sequence=int_or_none(envelope.get("sequence")), occurred_at=created,
                        created_at=created, received_at=received_at,
                        delivery_count=delivery_count, arrival=arrival, data=dict(data))  # fmt: skip


def probe_envelope(
    event_type: str,
    *,
    event_id: str,
    message_id: str,
    sequence: int,
    conversation_id: str = "",
    now: str,
) -> dict[str, Any]:
    """A marked test envelope as Onyx would send it (``…delivery_updated.<status>`` puts the
    status in ``data``; ``partnerId`` is ``runbook-probe``, the marker the probe alters)."""
    wire_type, _, status = event_type.partition(f"{DELIVERY_UPDATED}.")
    data: dict[str, Any] = {"messageId": message_id}
    if not wire_type:
        wire_type, data["status"] = DELIVERY_UPDATED, status
    return {"id": event_id, "type": wire_type or event_type, "createdAt": now,
            "environment": "sandbox", "partnerId": "runbook-probe", "sequence": sequence,
            "data": data}  # fmt: skip


def envelope_json(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, separators=(",", ":"))
