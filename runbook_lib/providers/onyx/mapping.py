"""Onyx events → one lifecycle per resource, the same whatever order or how often they arrive.

Per resource (a message, a subject's consent, an order, an eSIM…) only a newer event moves the
state: newer means a higher ``sequence``, and at an equal sequence the contract's precedence
(``message.allowed|blocked`` before ``message.delivery_updated``; ``consent.granted`` before
``revoked|expired``). A repeated event id is a duplicate and changes nothing; an older event that
arrives after a newer one is *late* and changes nothing either, but its state still counts for
``first_seen``. So the final state, the states in order and ``first_seen`` depend only on the
set of events — :class:`LifecycleTracker` is the incremental form a receiver can use,
:func:`reconstruct` the batch form.

Anomalies are contract breaches worth a look: a delivery update with no ``message.allowed``
before it, a delivery for a blocked message, an order transition §6 does not allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ...core.rendering import rows_table
from .events import OnyxEvent

__all__ = [
    "ORDER_TRANSITIONS",
    "Applied",
    "LifecycleBook",
    "LifecycleTracker",
    "ResourceLifecycle",
    "reconstruct",
]

# onyx-v1 §6: the order transitions the contract allows (previousStatus → status)
ORDER_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("created", "reserved"),
        ("reserved", "provisioning"),
        ("provisioning", "esim_ready"),
        ("esim_ready", "installed"),
        ("reserved", "failed"),
        ("reserved", "manual_review"),
        ("provisioning", "failed"),
        ("provisioning", "manual_review"),
        ("manual_review", "provisioning"),
        ("manual_review", "failed"),
        ("esim_ready", "refunded"),
        ("installed", "refunded"),
        ("failed", "refunded"),
    }
)
# precedence at an equal sequence: lower goes first
_RANK = {
    "message.allowed": 0,
    "message.blocked": 0,
    "message.delivery_updated": 1,
    "consent.granted": 0,
    "consent.revoked": 1,
    "consent.expired": 1,
}

Applied = Literal["applied", "duplicate", "late"]


def _order_key(event: OnyxEvent) -> tuple[int, int, str]:
    return (event.sequence, _RANK.get(event.type, 0), event.event_id)


@dataclass(frozen=True)
class ResourceLifecycle:
    """One resource's lifecycle; ``states`` and ``first_seen`` follow sequence order."""

    kind: str
    resource_id: str
    final_state: str
    last_sequence: int
    states: tuple[str, ...]
    first_seen: tuple[tuple[str, str], ...]  # (state, createdAt of the first event reaching it)
    event_ids: tuple[str, ...]
    reason_code: str | None = None
    duplicates: int = 0
    late: int = 0
    anomalies: tuple[str, ...] = ()

    def first_seen_at(self, state: str) -> str | None:
        return dict(self.first_seen).get(state)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resourceId": self.resource_id,
            "finalState": self.final_state,
            "lastSequence": self.last_sequence,
            "states": list(self.states),
            "firstSeen": dict(self.first_seen),
            "eventIds": list(self.event_ids),
            "reasonCode": self.reason_code,
            "duplicates": self.duplicates,
            "late": self.late,
            "anomalies": list(self.anomalies),
        }


@dataclass
class _Resource:
    events: dict[str, OnyxEvent] = field(default_factory=dict)
    current: OnyxEvent | None = None
    duplicates: int = 0
    late: int = 0


class LifecycleTracker:
    """Apply events one at a time (a receiver's view); :meth:`book` gives the results."""

    def __init__(self) -> None:
        self._resources: dict[tuple[str, str], _Resource] = {}
        self._seen: set[str] = set()

    def apply(self, event: OnyxEvent) -> Applied:
        """``applied`` (the state moved), ``duplicate`` (id seen) or ``late`` (older event)."""
        res = self._resources.setdefault(event.resource, _Resource())
        if event.event_id in self._seen:
            res.duplicates += 1
            return "duplicate"
        self._seen.add(event.event_id)
        res.events[event.event_id] = event
        if res.current is None or _order_key(event) > _order_key(res.current):
            res.current = event
            return "applied"
        res.late += 1
        return "late"

    def book(self) -> LifecycleBook:
        return LifecycleBook(
            {key: _lifecycle(key, res) for key, res in sorted(self._resources.items())}
        )


def _lifecycle(key: tuple[str, str], res: _Resource) -> ResourceLifecycle:
    ordered = sorted(res.events.values(), key=_order_key)
    assert res.current is not None
    states: list[str] = []
    first_seen: dict[str, str] = {}
    for event in ordered:
        if not states or states[-1] != event.state:
            states.append(event.state)
        first_seen.setdefault(event.state, event.created_at)
    blocked = [e for e in ordered if e.type == "message.blocked"]
    reason = blocked[-1].data.get("reasonCode") if blocked else None
    return ResourceLifecycle(
        kind=key[0],
        resource_id=key[1],
        final_state=res.current.state,
        last_sequence=res.current.sequence,
        states=tuple(states),
        first_seen=tuple(first_seen.items()),
        event_ids=tuple(e.event_id for e in ordered),
        reason_code=reason if isinstance(reason, str) else None,
        duplicates=res.duplicates,
        late=res.late,
        anomalies=tuple(_anomalies(key[0], ordered)),
    )


def _anomalies(kind: str, ordered: list[OnyxEvent]) -> list[str]:
    found: list[str] = []
    if kind == "message":
        types = [e.type for e in ordered]
        if "message.delivery_updated" in types:
            first_update = types.index("message.delivery_updated")
            if "message.blocked" in types:
                found.append("a delivery update for a message that was blocked")
            elif "message.allowed" not in types[:first_update]:
                found.append("a delivery update with no message.allowed before it")
    if kind == "order":
        for event in ordered:
            prev = event.previous_state
            if prev is not None and (prev, event.state) not in ORDER_TRANSITIONS:
                found.append(
                    f"order transition {prev} → {event.state} (event {event.event_id}) is not "
                    "one the contract allows"
                )
    return found


@dataclass(frozen=True)
class LifecycleBook:
    """Every resource's lifecycle, by ``(kind, id)``."""

    resources: dict[tuple[str, str], ResourceLifecycle]

    def get(self, kind: str, resource_id: str) -> ResourceLifecycle | None:
        return self.resources.get((kind, resource_id))

    def of_kind(self, kind: str) -> tuple[ResourceLifecycle, ...]:
        return tuple(r for (k, _), r in self.resources.items() if k == kind)

    @property
    def duplicates(self) -> int:
        return sum(r.duplicates for r in self.resources.values())

    def to_dict(self) -> dict[str, Any]:
        return {"resources": [r.to_dict() for r in self.resources.values()]}

    def _repr_html_(self) -> str:
        rows = [
            (r.kind, r.resource_id, " → ".join(r.states), r.final_state, r.duplicates, r.late)
            for r in self.resources.values()
        ]
        return rows_table(["kind", "id", "states", "final", "duplicates", "late"], rows)


def reconstruct(events: Iterable[OnyxEvent]) -> LifecycleBook:
    """Every resource's lifecycle from events in arrival order (duplicates and late ones too)."""
    tracker = LifecycleTracker()
    for event in events:
        tracker.apply(event)
    return tracker.book()
