"""Lifecycle reconstruction: from webhook events to each message's true state.

The common lifecycle model: QUEUED → SENT → DELIVERED | FAILED. A provider maps its event types
onto it (:class:`LifecycleModel`, one per provider) and says how its events are ordered: by
``sequence`` where its events carry one (apply an outbound event only if its sequence is higher
than the highest already applied for that message), by the rank of each event type otherwise
(:meth:`LifecycleModel.rank`: the provider's own ranks per channel, e.g. read above delivered, or
the common state's rank). Ranked, a message is applied an event only if it ranks higher than the
current one, and FAILED is final. Either way a state never moves backwards, and timestamps never
order events. Retried deliveries (same event
id) count once; a lower-sequence event arriving late is recorded but never overrides. Inbound
messages are new messages, grouped by conversation, never updates of an outbound one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .events import WebhookEvent

__all__ = [
    "STATES",
    "STATE_RANK",
    "TERMINAL_STATES",
    "InboundConversation",
    "LifecycleModel",
    "LifecycleSet",
    "MessageLifecycle",
    "default_model",
    "reconstruct",
]

STATES = ("QUEUED", "SENT", "DELIVERED", "FAILED")
TERMINAL_STATES = frozenset({"DELIVERED", "FAILED"})
# A late event whose state ranks below the current one would move the message backwards.
STATE_RANK = {"QUEUED": 1, "SENT": 2, "DELIVERED": 3, "FAILED": 3}


@dataclass(frozen=True)
class LifecycleModel:
    """A provider's event types mapped onto the common states, and how its events are ordered."""

    state_by_event: Mapping[str, str]
    inbound_events: frozenset[str] = frozenset()
    ordered_by: Literal["sequence", "rank"] = "sequence"
    first_event: str = ""  # the event every message starts with (its absence is flagged)
    # The provider sends no queued webhook: its acceptance of the send is the queued state.
    queued_on_acceptance: bool = False
    # event type → rank (≥ 1) where the provider ranks finer than the common states (its
    # channels' own orders: WhatsApp read after delivered); others rank as STATE_RANK.
    rank_by_event: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low = {t: r for t, r in self.rank_by_event.items() if not isinstance(r, int) or r < 1}
        if low:
            raise ValueError(f"lifecycle ranks must be integers ≥ 1, not {low}")
        unknown = sorted(set(self.rank_by_event) - set(self.state_by_event))
        if unknown:
            raise ValueError(f"ranked event types {unknown} are not in state_by_event")

    @property
    def outbound_events(self) -> tuple[str, ...]:
        return tuple(self.state_by_event)

    def rank(self, event_type: str) -> int:
        """How far along an outbound event puts a message (a later, higher-ranked event is newer)."""
        ranked = self.rank_by_event.get(event_type)
        return ranked if ranked is not None else STATE_RANK[self.state_by_event[event_type]]

    def by_rank(self, sequences: Iterable[int | None]) -> bool:
        """Whether a message whose events carry ``sequences`` is ordered by rank: the provider
        orders by rank, or none of the message's events carries a sequence."""
        return self.ordered_by == "rank" or all(s is None for s in sequences)

    def state_of(self, event_type: str) -> str | None:
        return self.state_by_event.get(event_type)

    def event_of(self, state: str) -> str:
        """The provider's event type that reports ``state`` (its first, if several do)."""
        return next((t for t, s in self.state_by_event.items() if s == state), state.lower())


def default_model() -> LifecycleModel:
    """The default provider's model (``redcloud``), for callers that name no provider."""
    from ..providers.base import get_provider  # the registry imports providers on first use

    return get_provider().lifecycle


@dataclass(frozen=True)
class MessageLifecycle:
    """One outbound message's reconstructed lifecycle."""

    message_id: str
    external_reference: str | None
    state: str | None
    highest_sequence: int
    first_seen: dict[str, str | None]
    events: tuple[WebhookEvent, ...]
    applied: tuple[str, ...]
    duplicate_deliveries: int
    out_of_order: int
    sequence_gaps: tuple[int, ...]
    regressions_refused: int
    terminal_conflict: bool
    missing_queued: bool
    failure_code: str | None = None
    failure_reason: str | None = None
    # every event in arrival order, with what was decided and the state after it (for traces)
    journal: tuple[tuple[WebhookEvent, str, str | None], ...] = field(default=(), repr=False)
    first_event: str = field(default="", repr=False)
    # how its events were ordered: by their sequence, or (none carries one) by state rank
    ordered_by: Literal["sequence", "rank"] = field(default="sequence", repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def last_applied_event(self) -> str | None:
        """The event type of the last event applied (the one the state is at), None if none."""
        by_id = {e.event_id: e.event_type for e in self.events}
        return by_id.get(self.applied[-1]) if self.applied else None

    @property
    def order_name(self) -> str:
        """How its events are ordered, for people: "sequence" or "state rank"."""
        return "state rank" if self.ordered_by == "rank" else "sequence"

    def position(self) -> str:
        """Where the state is, in the order its events follow: "at sequence 3", or for a
        provider ordered by rank (no sequence) "by state rank, at sms.delivered" — never a
        sequence number that was not sent."""
        if not self.applied:
            return "no event applied yet"
        if self.ordered_by == "rank":
            return f"by state rank, at {self.last_applied_event}"
        return f"at sequence {self.highest_sequence}"

    def seen(self, state: str) -> bool:
        """True once an event for ``state`` arrived (applied or late)."""
        return state in self.first_seen

    def flags(self) -> list[str]:
        """Anomalies in plain words."""
        out = []
        if self.duplicate_deliveries:
            out.append(f"{self.duplicate_deliveries} duplicate delivery(ies) ignored")
        if self.out_of_order:
            out.append(f"{self.out_of_order} event(s) arrived out of order (not applied)")
        if self.regressions_refused:
            out.append(
                f"{self.regressions_refused} late event(s) would have moved the state backwards "
                "(refused)"
            )
        if self.sequence_gaps:
            out.append("missing sequence(s) " + ", ".join(map(str, self.sequence_gaps)))
        if self.terminal_conflict:
            out.append("both delivered and failed were reported")
        if self.missing_queued:
            out.append(f"no {self.first_event or 'first'} event received")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "externalReference": self.external_reference,
            "state": self.state,
            "highestSequence": self.highest_sequence,
            "firstSeen": dict(self.first_seen),
            "duplicateDeliveries": self.duplicate_deliveries,
            "outOfOrder": self.out_of_order,
            "sequenceGaps": list(self.sequence_gaps),
            "regressionsRefused": self.regressions_refused,
            "terminalConflict": self.terminal_conflict,
            "missingQueued": self.missing_queued,
            "failureCode": self.failure_code,
            "failureReason": self.failure_reason,
            "flags": self.flags(),
        }


@dataclass(frozen=True)
class InboundConversation:
    """Inbound messages of one conversation, in arrival order."""

    conversation_id: str
    messages: tuple[WebhookEvent, ...]


@dataclass(frozen=True)
class LifecycleSet:
    """All reconstructed outbound messages, inbound conversations, and ignored event types."""

    messages: dict[str, MessageLifecycle] = field(default_factory=dict)
    conversations: dict[str, InboundConversation] = field(default_factory=dict)
    unknown_event_types: dict[str, int] = field(default_factory=dict)


def _build(message_id: str, events: list[WebhookEvent], model: LifecycleModel) -> MessageLifecycle:
    # One pass in arrival order; every event gets a decision, written to the journal.
    events.sort(key=lambda e: (e.arrival, e.received_at or ""))
    seen_ids: set[str] = set()
    unique: list[WebhookEvent] = []
    journal: list[tuple[WebhookEvent, str, str | None]] = []
    duplicates = highest = out_of_order = regressions = current_rank = 0
    state: str | None = None
    applied: list[str] = []
    first_seen: dict[str, str | None] = {}
    sequences: set[int] = set()
    failure_code = failure_reason = None
    external_reference = None
    by_rank = model.by_rank(e.sequence for e in events)
    for event in events:
        duplicates += max(0, event.delivery_count - 1)
        if event.event_id in seen_ids:
            duplicates += 1
            journal.append(
                (event, "duplicate delivery of an event already received: ignored", state)
            )
            continue
        seen_ids.add(event.event_id)
        unique.append(event)
        event_state = model.state_by_event[event.event_type]
        first_seen.setdefault(event_state, event.received_at)
        external_reference = external_reference or event.external_reference
        if by_rank:
            # No sequence: a higher-ranked event is newer; never go backwards, FAILED is final.
            rank = model.rank(event.event_type)
            if rank > current_rank and state != "FAILED":
                state, current_rank = event_state, rank
                applied.append(event.event_id)
                journal.append((event, f"applied: {event_state}", state))
            else:
                out_of_order += 1
                regressed = rank < current_rank or (state == "FAILED" and rank > current_rank)
                regressions += regressed
                journal.append((event, ("would move the state backwards (or off FAILED), refused"
                                        if regressed else "ranks at the current state: recorded, "
                                        "not applied"), state))  # fmt: skip
            if event_state == "FAILED":
                failure_code, failure_reason = event.failure_code, event.failure_reason
            continue
        seq = event.sequence if event.sequence is not None else 0
        if seq in sequences:
            duplicates += 1  # same sequence under another event id: a provider-side duplicate
            journal.append(
                (event, f"sequence {seq} already received under another event id: ignored", state)
            )
            continue
        sequences.add(seq)
        if seq > highest:
            highest = seq
            state = event_state
            current_rank = model.rank(event.event_type)
            applied.append(event.event_id)
            journal.append((event, f"applied: {event_state}", state))
        else:
            out_of_order += 1
            regressed = model.rank(event.event_type) < current_rank
            regressions += regressed
            journal.append((event, f"late (sequence {seq} ≤ {highest} already applied): "
                            + ("would move the state backwards, refused" if regressed else "recorded, not applied"),
                            state))  # fmt: skip
        if event_state == "FAILED":
            failure_code, failure_reason = event.failure_code, event.failure_reason
    gaps = tuple(s for s in range(1, highest) if s not in sequences)
    return MessageLifecycle(
        message_id=message_id,
        external_reference=external_reference,
        state=state,
        highest_sequence=highest,
        first_seen=first_seen,
        events=tuple(unique),
        applied=tuple(applied),
        duplicate_deliveries=duplicates,
        out_of_order=out_of_order,
        sequence_gaps=gaps,
        regressions_refused=regressions,
        terminal_conflict="DELIVERED" in first_seen and "FAILED" in first_seen,
        # a provider whose acceptance is the queued state sends no queued event to miss
        missing_queued="QUEUED" not in first_seen and not model.queued_on_acceptance,
        failure_code=failure_code,
        failure_reason=failure_reason,
        journal=tuple(journal),
        first_event=model.first_event,
        ordered_by="rank" if by_rank else "sequence",
    )


def reconstruct(
    events: Iterable[WebhookEvent], model: LifecycleModel | None = None
) -> LifecycleSet:
    """Rebuild every message's lifecycle from events in any order, with any duplication.

    Args:
        model: the provider's lifecycle model (the default provider's when None).
    """
    model = model or default_model()
    outbound: dict[str, list[WebhookEvent]] = {}
    inbound: dict[str, list[WebhookEvent]] = {}
    unknown: dict[str, int] = {}
    for event in events:
        if event.event_type in model.state_by_event and event.message_id:
            outbound.setdefault(event.message_id, []).append(event)
        elif event.event_type in model.inbound_events:
            key = event.conversation_id or event.message_id or event.event_id
            inbound.setdefault(key, []).append(event)
        else:
            unknown[event.event_type] = unknown.get(event.event_type, 0) + 1
    return LifecycleSet(
        messages={mid: _build(mid, evs, model) for mid, evs in outbound.items()},
        conversations={
            cid: InboundConversation(cid, tuple(sorted(evs, key=lambda e: e.arrival)))
            for cid, evs in inbound.items()
        },
        unknown_event_types=unknown,
    )
