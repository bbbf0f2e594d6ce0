"""The Onyx webhook envelope as a typed event, and which resource and state each type names.

    {"id": "evt_…", "type": "order.status_changed", "createdAt": "…", "environment": "sandbox",
     "partnerId": "ptn_…", "sequence": 3, "data": {"orderId": "pp_order_…",
     "previousStatus": "reserved", "status": "provisioning"}}

``sequence`` rises per resource; the resource of an event is read from its type (messages by
``messageId``, consent by ``subject``, orders by ``orderId``, eSIMs and usage by ``iccid``…).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ...core.errors import EventSourceError

__all__ = ["EVENT_TYPES", "RESOURCE_FIELDS", "STATE_FROM_TYPE", "OnyxEvent", "parse_event"]

# event type prefix → (resource kind, the data field that identifies the resource)
RESOURCE_FIELDS: dict[str, tuple[str, str]] = {
    "message": ("message", "messageId"),
    "consent": ("consent", "subject"),
    "order": ("order", "orderId"),
    "esim": ("esim", "iccid"),
    "usage": ("usage", "iccid"),
    "thread": ("thread", "threadId"),
    "app": ("app", "appId"),
    "webhook": ("webhook", "webhookId"),
}
EVENT_TYPES = (
    "app.review_changed",
    "consent.expired",
    "consent.granted",
    "consent.revoked",
    "esim.status_changed",
    "message.allowed",
    "message.blocked",
    "message.delivery_updated",
    "order.status_changed",
    "thread.state_changed",
    "usage.threshold_reached",
    "webhook.test",
)
# types whose name is the state; every other type carries it in data.status
STATE_FROM_TYPE = {
    "message.allowed": "allowed",
    "message.blocked": "blocked",
    "consent.granted": "granted",
    "consent.revoked": "revoked",
    "consent.expired": "expired",
    "webhook.test": "test",
}


def _bad(problem: str) -> EventSourceError:
    return EventSourceError(
        f"an Onyx event {problem}.",
        code="malformed_event",
        remedy="the event does not follow the onyx-v1 envelope; quote its id to Onyx support.",
    )


@dataclass(frozen=True)
class OnyxEvent:
    """One event; ``data`` is read-only."""

    event_id: str
    type: str
    created_at: str
    environment: str | None
    partner_id: str | None
    sequence: int
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_wire(cls, body: Any) -> OnyxEvent:
        """Parse an envelope (a dict, or raw JSON bytes/str).

        Raises:
            EventSourceError: not JSON, or a required field is missing or mistyped.
        """
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body)
            except ValueError:
                raise _bad("body is not JSON") from None
        if not isinstance(body, Mapping):
            raise _bad("is not a JSON object")
        for name in ("id", "type", "createdAt"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _bad(f"has no {name}")
        sequence = body.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise _bad(f"{body['id']} has no whole-number sequence")
        data = body.get("data") or {}
        if not isinstance(data, Mapping):
            raise _bad(f"{body['id']} has data that is not an object")
        event = cls(
            event_id=body["id"],
            type=body["type"],
            created_at=body["createdAt"],
            environment=body.get("environment"),
            partner_id=body.get("partnerId"),
            sequence=sequence,
            data=MappingProxyType(dict(data)),
        )
        event.resource  # noqa: B018 - fail here, not later, when the resource id is missing
        event.state  # noqa: B018
        return event

    @property
    def resource(self) -> tuple[str, str]:
        """``(kind, id)`` of the resource whose lifecycle this event moves."""
        prefix = self.type.split(".", 1)[0]
        kind, id_field = RESOURCE_FIELDS.get(prefix, (prefix, "id"))
        value = self.data.get(id_field)
        if not isinstance(value, str) or not value:
            raise _bad(f"{self.event_id} ({self.type}) has no data.{id_field}")
        return kind, value

    @property
    def state(self) -> str:
        """The state the resource is in after this event (verbatim from the wire)."""
        if self.type in STATE_FROM_TYPE:
            return STATE_FROM_TYPE[self.type]
        status = self.data.get("status")
        if not isinstance(status, str) or not status:
            raise _bad(f"{self.event_id} ({self.type}) has no data.status")
        return status

    @property
    def previous_state(self) -> str | None:
        value = self.data.get("previousStatus")
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.type,
            "createdAt": self.created_at,
            "environment": self.environment,
            "partnerId": self.partner_id,
            "sequence": self.sequence,
            "data": dict(self.data),
        }


def parse_event(body: Any) -> OnyxEvent:
    """:meth:`OnyxEvent.from_wire`, as a function for readers that map over rows."""
    return OnyxEvent.from_wire(body)
