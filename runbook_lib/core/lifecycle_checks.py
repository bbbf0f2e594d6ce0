"""The lifecycle step's evidence: which events count for a send, and the checks per state.

An event received before the send was accepted is a finding, never evidence; each state (queued,
sent, final) is its own check, named in the provider's event types.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .checks import Check
from .events import WebhookEvent
from .ledger import parse_stamp
from .lifecycle import MessageLifecycle

__all__ = [
    "EVENT_CLOCK_ALLOWANCE_SECONDS",
    "events_table",
    "lifecycle_checks",
    "prior_events_check",
    "reached",
    "split_at_acceptance",
]

# Receiver and provider clocks may disagree this much (plus the measured skew) before an event
# received "before" the acceptance is judged to predate it.
EVENT_CLOCK_ALLOWANCE_SECONDS = 5.0


def split_at_acceptance(
    events: list[WebhookEvent], accepted: datetime | None, allowance: float
) -> tuple[list[WebhookEvent], list[WebhookEvent]]:
    """Events received after the acceptance (evidence), and those received before it (a finding).

    An event cannot describe a message before the provider accepted it: one received earlier
    belongs to another message that had the same id (a reissued id, another session's store).
    """
    if accepted is None:
        return events, []
    counted, prior = [], []
    for event in events:
        received = parse_stamp(event.received_at)
        early = received is not None and (accepted - received).total_seconds() > allowance
        (prior if early else counted).append(event)
    return counted, prior


def prior_events_check(
    message_id: str, accepted: datetime | None, prior: list[WebhookEvent]
) -> Check:
    first = prior[0]
    return Check(
        "lifecycle.prior_events",
        "No event predates the acceptance",
        "FAIL",
        f"{len(prior)} stored event(s) for {message_id} were received before it was accepted "
        f"({accepted.isoformat(timespec='seconds') if accepted else '?'}), e.g. "
        f"{first.event_type} {first.event_id} received {first.received_at}: not counted as "
        "evidence of this send",
        evidence={
            "events": [
                {"eventId": e.event_id, "eventType": e.event_type, "receivedAt": e.received_at}
                for e in prior[:20]
            ]
        },  # fmt: skip
        remedy="the provider reissued a messageId, or the event store holds another session's "
        "events: quote these eventIds to the provider and check which store event_source reads.",
    )


def reached(lifecycle: MessageLifecycle, expect: str) -> bool:
    if expect in ("delivered", "failed"):
        return lifecycle.is_terminal
    if expect == "sent":
        return lifecycle.seen("SENT") or lifecycle.is_terminal
    return lifecycle.seen("QUEUED")


def lifecycle_checks(
    lifecycle: MessageLifecycle | None,
    expect: str,
    timeout: float,
    event_of: Callable[[str], str],
    identity_name: str,
    *,
    queued_on_acceptance: bool = False,
    receiver_up: bool = False,
) -> list[Check]:
    """One check per state up to ``expect``. ``queued_on_acceptance``: the provider sends no
    queued webhook (SendAPI), so the accepted send is the queued state.

    A later state's check requires the earlier one: when no webhook arrived at all, the queued
    check is the root cause and the others are BLOCKED by it. "Stuck in the provider's queue" is
    said only when the receiver was proven up: this message's queued event arrived, or (no queued
    webhook) the endpoint answered (``receiver_up``).
    """

    def seen(state: str) -> bool:
        return lifecycle is not None and lifecycle.seen(state)

    def at(state: str) -> str:
        return str(lifecycle.first_seen.get(state)) if lifecycle else ""

    queued = Check(
        "lifecycle.queued",
        "send accepted (queued)",
        "PASS",
        "queued at acceptance: the provider sends no queued webhook",
    )
    checks = [
        queued
        if queued_on_acceptance
        else Check(
            "lifecycle.queued",
            f"{event_of('QUEUED')} received",
            "PASS" if seen("QUEUED") else "FAIL",
            f"queued event received at {at('QUEUED')}"
            if seen("QUEUED")
            else f"no {event_of('QUEUED')} within {timeout:g} s",
            remedy=None
            if seen("QUEUED")
            else f"check the receiver and the webhook URL ({identity_name} webhook status).",
        )
    ]
    if expect == "queued":
        return checks
    sent_ok = seen("SENT")
    proven_up = seen("QUEUED") or (queued_on_acceptance and receiver_up)
    checks.append(
        Check(
            "lifecycle.sent",
            f"{event_of('SENT')} received",
            "PASS" if sent_ok else "FAIL",
            f"sent event received at {at('SENT')}"
            if sent_ok
            else f"no {event_of('SENT')} within {timeout:g} s (still {lifecycle.state if lifecycle else 'unknown'})",
            remedy=None
            if sent_ok
            else "the message is stuck in the provider's queue: raise it with support quoting the messageId."
            if proven_up
            else f"no webhook of this message arrived: check that the receiver runs and that the "
            f"webhook URL points at it ({identity_name} webhook status); if both are right, raise "
            "it with support quoting the messageId.",
            requires=() if queued_on_acceptance else ("lifecycle.queued",),
        )
    )
    if expect == "sent":
        return checks
    final = lifecycle.state if lifecycle else None
    requires: tuple[str, ...] = ()
    if final == expect.upper():
        status, summary, remedy = "PASS", f"final state {final}", None
        if final == "FAILED" and lifecycle:
            summary += f" ({lifecycle.failure_code}: {lifecycle.failure_reason})"
    elif final in ("DELIVERED", "FAILED"):
        reason = (
            f" — {lifecycle.failure_code}: {lifecycle.failure_reason}"
            if lifecycle and final == "FAILED"
            else ""
        )
        status, summary = "FAIL", f"final state {final}, expected {expect.upper()}{reason}"
        remedy = (
            "read the failure reason; check the destination and the sending number's capabilities."
        )
    else:
        status, summary = (
            "FAIL",
            f"no delivery or failure within {timeout:g} s (last state {final})",
        )
        remedy = "sent but not delivered: the carrier has not reported back; trace it with support."
        requires = ("lifecycle.sent",)  # not even sent: that check is the root cause
    checks.append(
        Check("lifecycle.final", f"Final state {expect.upper()}", status, summary, remedy=remedy,
              requires=requires)
    )  # fmt: skip
    return checks


def events_table(
    lifecycle: MessageLifecycle,
) -> tuple[str, tuple[str, ...], list[tuple[Any, ...]]]:
    applied = set(lifecycle.applied)
    rows = [
        (
            e.arrival,
            e.event_type,
            e.sequence,
            e.status,
            e.received_at,
            e.delivery_count,
            "applied" if e.event_id in applied else "late, ignored (lower sequence)",
        )
        for e in lifecycle.events
    ]
    return (
        "Webhooks in arrival order",
        ("arrival", "event", "sequence", "status", "received at", "deliveries", "effect"),
        rows,
    )
