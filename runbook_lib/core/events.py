"""The normalized webhook event model every event source produces.

A source (the receiver's SQLite store, exports, an integration's own database) turns what it holds
into :class:`WebhookEvent` records; lifecycle tracing only ever sees this model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WebhookEvent", "int_or_none"]


_REPORTED = (
    "event_id", "event_type", "message_id", "external_reference", "conversation_id", "sequence",
    "status", "number_id", "occurred_at", "created_at", "received_at", "delivery_count",
    "failure_code", "failure_reason",
)  # fmt: skip


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


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

    def to_dict(self) -> dict[str, Any]:
        """The model's fields in camelCase (``event_id`` → ``eventId``), as reports show them."""
        return {_camel(name): getattr(self, name) for name in _REPORTED}


_INT64 = range(-(2**63), 2**63)


def int_or_none(value: Any) -> int | None:
    """An integer field's value, or None when absent, not an integer, or beyond 64 bits.

    A sequence no store or engine can hold is as unusable as a missing one (the raw body keeps it).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return value if isinstance(value, int) and value in _INT64 else None
