"""Audit over Onyx events: blocked sends by reason code, consent changes, and the escalation
triggers Onyx documents for orders (stuck in provisioning past the expected window, or in
``manual_review``). Pure over the common event model; the audit runbook feeds it its window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ...core.checks import Check
from ...core.events import WebhookEvent
from ...core.ledger import parse_stamp
from ..base import StepResult

__all__ = ["OnyxAuditFindings", "audit_step", "find_escalations"]

_IN_FLIGHT = ("created", "reserved", "provisioning")


@dataclass(frozen=True)
class StuckOrder:
    order_id: str
    status: str
    since: str | None

    def row(self) -> list[str]:
        return [self.order_id, self.status, self.since or "—"]


@dataclass(frozen=True)
class OnyxAuditFindings:
    """What the window's Onyx events say, for the audit report."""

    blocked_by_reason: dict[str, int]
    consent_changes: dict[str, int]
    stuck_orders: tuple[StuckOrder, ...]
    manual_review: tuple[StuckOrder, ...]

    def checks(self, stuck_after: timedelta) -> tuple[Check, ...]:
        blocked = sum(self.blocked_by_reason.values())
        revoked = self.consent_changes.get("consent.revoked", 0)
        minutes = stuck_after.total_seconds() / 60
        return (
            Check("onyx.blocked", "Blocked sends by reason code", "WARN" if blocked else "PASS",
                  ", ".join(f"{k} {v}" for k, v in sorted(self.blocked_by_reason.items()))
                  or "no blocked send in the window",
                  evidence={"byReason": self.blocked_by_reason},
                  remedy="each reason code names the action a person must take (README, Onyx)."
                  if blocked else None),
            Check("onyx.consent", "Consent changes", "WARN" if revoked else "PASS",
                  ", ".join(f"{k} {v}" for k, v in sorted(self.consent_changes.items()))
                  or "no consent change in the window", evidence={"changes": self.consent_changes}),
            Check("onyx.orders_stuck", f"No order in provisioning past {minutes:g} min",
                  "FAIL" if self.stuck_orders else "PASS",
                  f"{len(self.stuck_orders)} stuck: "
                  + ", ".join(f"{o.order_id} ({o.status})" for o in self.stuck_orders[:5])
                  if self.stuck_orders else "none stuck",
                  remedy="escalate to Onyx support with the order ids (do not re-drive "
                  "provisioning without a state change)." if self.stuck_orders else None),
            Check("onyx.manual_review", "No order in manual_review",
                  "FAIL" if self.manual_review else "PASS",
                  f"{len(self.manual_review)} in manual_review: "
                  + ", ".join(o.order_id for o in self.manual_review[:5])
                  if self.manual_review else "none",
                  remedy="manual_review is Onyx's escalation trigger: quote the order ids to Onyx "
                  "support." if self.manual_review else None),
        )  # fmt: skip


def find_escalations(
    events: Iterable[WebhookEvent], *, as_of: datetime, stuck_after: timedelta
) -> OnyxAuditFindings:
    """Count blocks and consent changes; find each order's last state (by ``sequence``)."""
    blocked: Counter[str] = Counter()
    consent: Counter[str] = Counter()
    last: dict[str, WebhookEvent] = {}
    for e in events:
        if e.event_type == "message.blocked":
            blocked[e.failure_code or "unknown"] += 1
        elif e.event_type.startswith("consent."):
            consent[e.event_type] += 1
        elif e.event_type == "order.status_changed" and e.conversation_id:
            order_id = e.conversation_id.partition(":")[2]
            seen = last.get(order_id)
            if seen is None or (e.sequence or 0) > (seen.sequence or 0):
                last[order_id] = e
    stuck, review = [], []
    for order_id, e in sorted(last.items()):
        # in the state since the event was created: ``occurred_at`` in the model (a store or an
        # export read back), ``created_at`` too on an event parsed from its envelope
        since = e.occurred_at or e.created_at
        at = parse_stamp(since)
        entry = StuckOrder(order_id, e.status or "?", since)
        if e.status == "manual_review":
            review.append(entry)
        elif e.status in _IN_FLIGHT and at is not None and as_of - at > stuck_after:
            stuck.append(entry)
    return OnyxAuditFindings(dict(blocked), dict(consent), tuple(stuck), tuple(review))


def audit_step(run: Any) -> StepResult:
    """The audit's Onyx step over the run's window of stored events."""
    from ...sources import events_from_frame, open_event_source

    frame = open_event_source(run.params.event_source, provider=run.provider).load(
        since=run.start, until=run.end
    )
    stuck_after = timedelta(minutes=run.params.audit.stuck_after_minutes)
    findings = find_escalations(
        events_from_frame(frame), as_of=min(run.end, datetime.now(UTC)), stuck_after=stuck_after
    )
    rows = [o.row() for o in (*findings.stuck_orders, *findings.manual_review)]
    tables = (("Orders to escalate", ["orderId", "status", "since"], rows),) if rows else ()
    return StepResult("onyx_escalations", "Onyx: blocks, consent, escalation triggers",
                      findings.checks(stuck_after), resource=findings, tables=tables)  # fmt: skip
