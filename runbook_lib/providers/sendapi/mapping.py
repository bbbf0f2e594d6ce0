"""SendAPI webhook events → a message lifecycle per channel, and session health apart.

SendAPI events carry no ``sequence`` and arrive in any order, duplicated, late. So a message's
state is ordered by *rank* within its channel and never moves backwards:

    channel   rank 0     1      2                      3        4         5
    sms       queued  →  sent → delivered | failed
    whatsapp  accepted → sent → delivered | failed  →  read
    email     queued  →  sent → delivered | bounced →  opened → clicked → complained

``failed`` and ``bounced`` are terminal: nothing moves a message out of them. ``complained`` can
come any time after ``delivered`` and outranks every other email state. Two different states of
one rank (``delivered`` after ``failed``) are a *conflict*: the first stays. Each event is applied
once (dedupe by envelope ``id``); an envelope older than the freshness window is rejected.
``first_seen`` keeps the earliest time each state was reported, applied or not, so the funnel
(``sent`` seen at …) is right whatever the arrival order.

``session.connected`` / ``session.disconnected`` are session health, not a message: a
:class:`SessionHealth` per session, latest timestamp wins.

This model stands alone for now; the provider seam (issue 12) maps it onto the common lifecycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from ...core.errors import WebhookVerificationError
from .resources import parse_time
from .signing import MAX_AGE_SECONDS, check_freshness

__all__ = [
    "EVENT_STATES",
    "EventBook",
    "RANKS",
    "SendApiEvent",
    "SendApiLifecycle",
    "SessionHealth",
    "TERMINAL",
    "fold_events",
]

Channel = Literal["sms", "whatsapp", "email"]

RANKS: dict[str, dict[str, int]] = {
    "sms": {"queued": 0, "sent": 1, "delivered": 2, "failed": 2},
    "whatsapp": {"accepted": 0, "sent": 1, "delivered": 2, "failed": 2, "read": 3},
    "email": {"queued": 0, "sent": 1, "delivered": 2, "bounced": 2, "opened": 3, "clicked": 4,
              "complained": 5},
}  # fmt: skip
TERMINAL: dict[str, frozenset[str]] = {
    "sms": frozenset({"delivered", "failed"}),
    "whatsapp": frozenset({"failed"}),
    "email": frozenset({"bounced"}),
}

# Event type → (kind, state); kind is a channel, "session", or "inbound".
EVENT_STATES: dict[str, tuple[str, str]] = {
    "sms.queued": ("sms", "queued"),  # no queued webhook is documented; read if a server sends one
    "message.accepted": ("whatsapp", "accepted"),
    "email.queued": ("email", "queued"),
    "sms.sent": ("sms", "sent"),
    "sms.delivered": ("sms", "delivered"),
    "sms.failed": ("sms", "failed"),
    "message.sent": ("whatsapp", "sent"),
    "message.delivered": ("whatsapp", "delivered"),
    "message.read": ("whatsapp", "read"),
    "message.failed": ("whatsapp", "failed"),
    "message.received": ("inbound", "received"),
    "email.sent": ("email", "sent"),
    "email.delivered": ("email", "delivered"),
    "email.opened": ("email", "opened"),
    "email.clicked": ("email", "clicked"),
    "email.bounced": ("email", "bounced"),
    "email.complained": ("email", "complained"),
    "session.connected": ("session", "connected"),
    "session.disconnected": ("session", "disconnected"),
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SendApiEvent:
    """One webhook envelope, read once: ``{"id", "event", "timestamp", "data"}``."""

    id: str
    type: str
    timestamp: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(cls, envelope: Mapping[str, Any]) -> SendApiEvent:
        """Raises ``WebhookVerificationError(code="bad_envelope")`` when a field is missing."""
        event_id, event_type = envelope.get("id"), envelope.get("event")
        stamp = parse_time(envelope.get("timestamp"))
        if not _text(event_id) or not _text(event_type) or stamp is None:
            raise WebhookVerificationError(
                "the envelope lacks id, event or an ISO-8601 timestamp.", code="bad_envelope"
            )
        data = envelope.get("data")
        return cls(str(event_id), str(event_type), stamp, data if isinstance(data, Mapping) else {})

    @property
    def kind(self) -> str | None:
        return EVENT_STATES.get(self.type, (None, None))[0]

    @property
    def state(self) -> str | None:
        return EVENT_STATES.get(self.type, (None, None))[1]

    @property
    def message_id(self) -> str | None:
        d = self.data
        return _text(d.get("id")) or _text(d.get("message_id")) or _text(d.get("messageId"))

    @property
    def session_id(self) -> str | None:
        d = self.data
        return (
            _text(d.get("session_id"))
            or _text(d.get("sessionId"))
            or (_text(d.get("id")) if self.kind == "session" else None)
        )

    @property
    def error_code(self) -> str | None:
        d = self.data
        nested = d.get("error") if isinstance(d.get("error"), Mapping) else {}
        return _text(d.get("error_code")) or _text(d.get("errorCode")) or _text(nested.get("code"))

    @property
    def text(self) -> str | None:
        """An inbound text, whichever documented spelling: ``text.body``, ``message``, ``content``."""
        d = self.data
        body = d.get("text")
        if isinstance(body, Mapping):
            return _text(body.get("body"))
        return _text(body) or _text(d.get("message")) or _text(d.get("content"))


@dataclass(frozen=True)
class SendApiLifecycle:
    """One message's state; the flags describe the last :meth:`apply`."""

    channel: Channel
    message_id: str
    state: str | None = None
    first_seen: tuple[tuple[str, datetime], ...] = ()
    seen_ids: frozenset[str] = frozenset()
    error_code: str | None = None
    applied: bool = False
    duplicate: bool = False
    regression: bool = False
    conflict: bool = False
    stale: bool = False

    @property
    def rank(self) -> int:
        return -1 if self.state is None else RANKS[self.channel][self.state]

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL[self.channel]

    def seen_at(self, state: str) -> datetime | None:
        return dict(self.first_seen).get(state)

    @classmethod
    def start(
        cls, channel: Channel, message_id: str, status: str | None = None
    ) -> SendApiLifecycle:
        """A lifecycle at the send's acceptance status (``queued``/``accepted``), if known."""
        if channel not in RANKS:
            raise ValueError(f"unknown SendAPI channel {channel!r}; use sms, whatsapp or email")
        state = status if status in RANKS[channel] else None
        return cls(channel=channel, message_id=message_id, state=state)

    def apply(
        self, event: SendApiEvent, *, now: float | None = None, max_age: float = MAX_AGE_SECONDS
    ) -> SendApiLifecycle:
        """The lifecycle after ``event``. ``now`` (unix s) enables the freshness window."""

        def flags(**on: bool) -> dict[str, bool]:
            return {"applied": False, "duplicate": False, "regression": False, "conflict": False,
                    "stale": False, **on}  # fmt: skip

        if event.kind != self.channel or event.state is None:
            raise ValueError(f"event {event.type} is not a {self.channel} message event")
        if event.message_id != self.message_id:
            raise ValueError(
                f"event {event.id} is for message {event.message_id}, not {self.message_id}"
            )
        if event.id in self.seen_ids:
            return replace(self, **flags(duplicate=True))
        if now is not None and _stale(event, now, max_age):
            return replace(self, **flags(stale=True))
        seen = dict(self.first_seen)
        if event.state not in seen or event.timestamp < seen[event.state]:
            seen[event.state] = event.timestamp
        base = replace(
            self, first_seen=tuple(sorted(seen.items())), seen_ids=self.seen_ids | {event.id}
        )
        rank = RANKS[self.channel][event.state]
        if self.terminal or rank < self.rank:
            return replace(base, **flags(regression=True))
        if rank == self.rank:
            same = event.state == self.state
            return replace(base, **flags(duplicate=same, conflict=not same))
        return replace(base, **flags(applied=True), state=event.state,
                       error_code=event.error_code or self.error_code)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "messageId": self.message_id, "state": self.state,
                "firstSeen": {s: t.isoformat() for s, t in self.first_seen},
                "errorCode": self.error_code, "events": len(self.seen_ids)}  # fmt: skip


@dataclass(frozen=True)
class SessionHealth:
    """A WhatsApp session's connection as the webhooks report it: latest timestamp wins."""

    session_id: str
    status: str | None = None
    reason: str | None = None
    changed_at: datetime | None = None
    disconnections: int = 0
    seen_ids: frozenset[str] = frozenset()

    def apply(self, event: SendApiEvent) -> SessionHealth:
        if event.kind != "session" or event.id in self.seen_ids:
            return self
        seen = self.seen_ids | {event.id}
        disconnections = self.disconnections + (event.state == "disconnected")
        if self.changed_at is not None and event.timestamp <= self.changed_at:
            return replace(self, seen_ids=seen, disconnections=disconnections)
        return replace(self, status=event.state, reason=_text(event.data.get("reason")),
                       changed_at=event.timestamp, seen_ids=seen, disconnections=disconnections)  # fmt: skip

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    def to_dict(self) -> dict[str, Any]:
        return {"sessionId": self.session_id, "status": self.status, "reason": self.reason,
                "changedAt": self.changed_at.isoformat() if self.changed_at else None,
                "disconnections": self.disconnections}  # fmt: skip


@dataclass(frozen=True)
class EventBook:
    """Every message's lifecycle and every session's health after a batch of events."""

    lifecycles: Mapping[str, SendApiLifecycle]
    sessions: Mapping[str, SessionHealth]
    duplicates: int = 0
    stale: int = 0
    regressions: int = 0
    ignored: int = 0  # inbound, verify.* and unknown types

    def to_dict(self) -> dict[str, Any]:
        return {"lifecycles": [lc.to_dict() for lc in self.lifecycles.values()],
                "sessions": [s.to_dict() for s in self.sessions.values()],
                "duplicates": self.duplicates, "stale": self.stale,
                "regressions": self.regressions, "ignored": self.ignored}  # fmt: skip


def _stale(event: SendApiEvent, now: float, max_age: float) -> bool:
    try:
        check_freshness(event.timestamp, now=now, max_age=max_age)
    except WebhookVerificationError:
        return True
    return False


def fold_events(
    events: Iterable[SendApiEvent | Mapping[str, Any]],
    *,
    now: float | None = None,
    max_age: float = MAX_AGE_SECONDS,
    start: Mapping[str, SendApiLifecycle] | None = None,
) -> EventBook:
    """Apply events in arrival order; ``start`` seeds lifecycles from the sends' acceptances."""
    lifecycles = dict(start or {})
    sessions: dict[str, SessionHealth] = {}
    counts = {"duplicates": 0, "stale": 0, "regressions": 0, "ignored": 0}
    for item in events:
        event = item if isinstance(item, SendApiEvent) else SendApiEvent.from_envelope(item)
        kind = event.kind
        if kind == "session" and event.session_id:
            health = sessions.get(event.session_id) or SessionHealth(event.session_id)
            if event.id in health.seen_ids:
                counts["duplicates"] += 1
            elif now is not None and _stale(event, now, max_age):
                counts["stale"] += 1
            else:
                sessions[event.session_id] = health.apply(event)
            continue
        if kind not in RANKS or not event.message_id:
            counts["ignored"] += 1
            continue
        current = lifecycles.get(event.message_id) or SendApiLifecycle.start(kind, event.message_id)  # type: ignore[arg-type]
        after = current.apply(event, now=now, max_age=max_age)
        counts["duplicates"] += after.duplicate
        counts["stale"] += after.stale
        counts["regressions"] += after.regression
        lifecycles[event.message_id] = after
    return EventBook(lifecycles=lifecycles, sessions=sessions, **counts)
