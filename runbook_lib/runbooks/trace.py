"""Message trace for support: one send's journey, from acceptance to its last webhook.

Found by ``messageId`` or ``externalReference``. The acceptance comes from the runbook's send
ledger when the runbook sent it (otherwise support takes it from the integration's own send log);
every webhook is listed in arrival order with its sequence (or, for a provider whose events carry
none, its state rank: ``LifecycleModel.ordered_by``), what was decided (applied, duplicate,
late, regression refused) and the state after it; anomalies are explained in plain words; a
timeline shows the picture; and the escalation block lists what to capture before escalating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.checks import Check, StepReport
from ..core.events import WebhookEvent
from ..core.invocation import command_line, from_cli, set_setting
from ..core.ledger import LedgerEntry, SendLedger
from ..core.lifecycle import MessageLifecycle, reconstruct
from ..core.parameters import RunbookParameters, load_parameters
from ..core.rendering import esc, kv_table, show
from ..providers.base import get_provider
from ..reporting.plots import Plot, timeline
from ..sources import open_event_source
from .base import RecordedRun

__all__ = ["EscalationNote", "TraceRun"]


@dataclass(frozen=True)
class EscalationNote:
    """What to capture before escalating to Red Cloud support, ready to paste."""

    fields: dict[str, Any]
    advice: tuple[str, ...] = field(default=())

    def text(self) -> str:
        lines = [f"{k}: {show(v)}" for k, v in self.fields.items()]
        return "\n".join(lines + [""] + [f"- {a}" for a in self.advice])

    def to_dict(self) -> dict[str, Any]:
        return {"fields": self.fields, "advice": list(self.advice)}

    def _repr_html_(self) -> str:
        advice = "".join(f"<li>{esc(a)}</li>" for a in self.advice)
        return (
            "<h4 style='margin:6px 0'>Before escalating, capture</h4>"
            + kv_table({k: v for k, v in self.fields.items()})
            + (f"<ul>{advice}</ul>" if advice else "")
            + f"<details><summary>as text</summary><pre>{esc(self.text())}</pre></details>"
        )


def _position_field(lc: MessageLifecycle | None, ordered_by: str) -> dict[str, Any]:
    """Where the message's state is, for support, in the order its events follow: the highest
    sequence, or (ordered by state rank, no sequence) the last applied event type; "none" when
    nothing was applied, never a sequence 0 that no event carried."""
    if (lc.ordered_by if lc else ordered_by) == "rank":
        return {
            "last applied event (by state rank)": (lc.last_applied_event if lc else None) or "none"
        }
    return {"highest sequence": lc.highest_sequence if lc and lc.applied else "none"}


def _missing_target() -> Check:
    """The trace's target is unset: which parameter to set, with examples for each way to run."""
    remedy = set_setting(("message_id", "msg_..."), ("external_reference", "order-123"))
    if not from_cli():
        remedy += f" Headless: {command_line('trace', ('message_id', 'msg_...'))}"
    return Check(
        "trace.target",
        "What to trace",
        "FAIL",
        "nothing to trace: neither a messageId nor an externalReference was given.",
        remedy=remedy,
    )


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class TraceRun(RecordedRun):
    """One support trace. Read-only: it never sends and never changes provider state."""

    kind = "trace"

    def __init__(
        self,
        params: RunbookParameters,
        *,
        message_id: str = "",
        external_reference: str = "",
        run_id: str = "",
    ) -> None:
        self._open_recorder(params, run_id or None)
        # Opened with its defaults (no target): every step explains what to set, none raises.
        self.missing: Check | None = None
        if not (message_id or external_reference):
            self.missing = _missing_target()
            self.recorder.note(badInput=f"{self.missing.summary} Fix: {self.missing.remedy}")
            self._record("target", "What to trace", [self.missing])
        self.provider = get_provider(params.provider.kind)
        self.message_id = message_id or None
        self.external_reference = external_reference or None
        self.recorder.note(
            target={"messageId": self.message_id, "externalReference": self.external_reference}
        )
        self.acceptance_entry: LedgerEntry | None = None
        self.lifecycle: MessageLifecycle | None = None
        self.other_messages: list[str] = []
        # the send's events outside the lifecycle that carry a failure code (Onyx's
        # message.blocked with its reason code): the provider refused it, nothing was sent
        self.refusal: WebhookEvent | None = None

    @classmethod
    def open(cls, params_file: str | Path, **kwargs: Any) -> TraceRun:
        return cls(load_parameters(params_file), **kwargs)

    def _skip(self, step: str, title: str, check_id: str) -> StepReport:
        """A step that cannot run without a target: SKIP, saying what to set."""
        assert self.missing is not None
        why = f"not run: nothing to trace. {self.missing.remedy}"
        return self._record(step, title, [Check(check_id, title, "SKIP", why)])

    # -- 1. acceptance ------------------------------------------------------------------------
    def acceptance(self) -> StepReport:
        """The send's acceptance (requestId, messageId) from the send ledger, when the runbook sent it."""
        if self.missing is not None:
            return self._skip("acceptance", "Acceptance", "trace.acceptance")
        ledger_path = self.params.ledger_path
        entry = None
        if ledger_path.exists():
            ledger = SendLedger(ledger_path)
            try:
                entry = ledger.find_send(
                    message_id=self.message_id, external_reference=self.external_reference
                )
            finally:
                ledger.close()
        self.acceptance_entry = entry
        accepted_status, answer = self.provider.acceptance
        title = f"Acceptance ({accepted_status} {answer})"
        if entry is None:
            check = Check(
                "trace.acceptance", title, "SKIP",
                "not sent by the runbook: take the acceptance requestId and messageId from the "
                "integration's send log",
            )  # fmt: skip
            return self._record("acceptance", "Acceptance", [check])
        self.message_id = self.message_id or entry.message_id
        self.external_reference = self.external_reference or entry.external_reference
        accepted = entry.status == accepted_status
        details = {
            "messageId": entry.message_id,
            "externalReference": entry.external_reference,
            "requestId": entry.request_id,
            "httpStatus": entry.status,
            "sendFrom": entry.request.get("sendFrom"),
            "to": self.show_phone(entry.request.get("to")),
            "reservedAt": entry.reserved_at,
            "attempts": entry.attempts,
            "runId": entry.run_id,
        }
        check = Check(
            "trace.acceptance", title, "PASS" if accepted else "FAIL",
            f"accepted as {entry.message_id} (requestId {entry.request_id}); acceptance is not delivery"
            if accepted else f"the send was answered {entry.status}, not {accepted_status}",
            evidence=details, request_ids=(entry.request_id,) if entry.request_id else (),
        )  # fmt: skip
        self.recorder.note(acceptance=details)
        return self._record("acceptance", "Acceptance", [check], details=details)

    # -- 2. webhooks --------------------------------------------------------------------------
    def webhooks(self) -> StepReport:
        """Every webhook received for the send, in arrival order, with the state after each."""
        if self.missing is not None:
            return self._skip("webhooks", "Webhooks received", "trace.found")
        source = open_event_source(self.params.event_source, provider=self.provider)
        events = source.events_for(
            message_id=self.message_id, external_reference=self.external_reference
        )
        lifecycles = reconstruct(events, self.provider.lifecycle).messages
        if self.message_id in lifecycles:
            chosen = self.message_id
        elif lifecycles:
            chosen = max(lifecycles, key=lambda m: len(lifecycles[m].events))
        else:
            chosen = None
        self.other_messages = sorted(m for m in lifecycles if m != chosen)
        self.lifecycle = lifecycles.get(chosen) if chosen else None
        title = "Webhooks received"
        refused = [e for e in events if e.failure_code] if self.lifecycle is None else []
        if refused:
            self.refusal = e = refused[-1]
            rows = [(n + 1, x.received_at, x.event_type, x.sequence, x.event_id, x.failure_code or "—")
                    for n, x in enumerate(events)]  # fmt: skip
            self.recorder.note(trace={"messageId": e.message_id, "refusedBy": e.event_type,
                                      "reasonCode": e.failure_code})  # fmt: skip
            check = Check(
                "trace.found", title, "PASS",
                f"{len(events)} webhook(s) for {e.message_id or self.message_id}: {e.event_type} "
                f"{e.failure_code}: {self.provider.title} refused the send, nothing was sent",
            )  # fmt: skip
            table = ("In arrival order", ["#", "received at", "event", "sequence", "event id",
                                          "reason code"], rows)  # fmt: skip
            return self._record("webhooks", title, [check], tables=(table,))
        if self.lifecycle is None:
            found = self.acceptance_entry is not None
            check = Check(
                "trace.found", title, "WARN" if found else "FAIL",
                "accepted, but no webhook has arrived for it" if found
                else "no send and no webhook found for "
                + (f"messageId {self.message_id}" if self.message_id else f"externalReference {self.external_reference}"),
                remedy="check the id, and that event_source points at the store the integration's "
                "receiver writes; if the send is recent, webhooks may still be in flight.",
            )  # fmt: skip
            return self._record("webhooks", title, [check])
        lc = self.lifecycle
        self.message_id = lc.message_id
        self.external_reference = self.external_reference or lc.external_reference
        # the order column: the event's sequence, or its state rank when the events carry none
        by_rank = lc.ordered_by == "rank"
        order = self.provider.lifecycle.rank if by_rank else None
        rows = [
            (
                n + 1,
                event.received_at,
                event.event_type,
                order(event.event_type) if order else event.sequence,
                event.event_id,
                decision,
                state or "—",
            )
            for n, (event, decision, state) in enumerate(lc.journal)
        ]
        self.recorder.note(
            trace={"messageId": lc.message_id, "externalReference": lc.external_reference,
                   "orderedBy": lc.ordered_by,
                   "journey": [dict(zip(("n", "receivedAt", "eventType",
                                         "stateRank" if by_rank else "sequence", "eventId",
                                         "decision", "stateAfter"), r, strict=True)) for r in rows]},
        )  # fmt: skip
        check = Check(
            "trace.found", title, "PASS",
            f"{len(lc.journal)} webhook arrival(s) for {lc.message_id}; state {lc.state or 'none'} "
            f"{lc.position()}",
        )  # fmt: skip
        return self._record(
            "webhooks",
            title,
            [check],
            tables=(
                (
                    "In arrival order",
                    [
                        "#",
                        "received at",
                        "event",
                        lc.order_name,
                        "event id",
                        "decision",
                        "state after",
                    ],
                    rows,
                ),
            ),
        )

    # -- 3. outcome and anomalies -------------------------------------------------------------
    def outcome(self) -> StepReport:
        """Accepted, sent, delivered and failed, each on its own line; anomalies in plain words."""
        lc = self.lifecycle
        title = "Outcome"
        if self.missing is not None:
            return self._skip("outcome", title, "trace.outcome")
        if lc is None and self.refusal is not None:
            r = self.refusal
            check = Check(
                "trace.outcome", "Final state", "WARN",
                f"refused: {r.event_type} {r.failure_code} — never accepted; the reason code names "
                "what a person must do before a new send (do not retry it unchanged)",
                evidence={"eventId": r.event_id, "reasonCode": r.failure_code},
            )  # fmt: skip
            self.recorder.note(outcome={"state": "REFUSED", "reasonCode": r.failure_code})
            return self._record("outcome", title, [check])
        if lc is None:
            return self._record(
                "outcome", title, [Check("trace.outcome", title, "SKIP", "no webhook to judge")]
            )
        states = {
            f"accepted ({self.provider.acceptance[0]})": "yes"
            if self.acceptance_entry
            else "unknown (not sent by the runbook)",
            "queued": lc.first_seen.get("QUEUED") or "not seen",
            "sent": lc.first_seen.get("SENT") or "not seen",
            "delivered": lc.first_seen.get("DELIVERED") or "not seen",
            "failed": lc.first_seen.get("FAILED") or "not seen",
        }
        if lc.state == "DELIVERED":
            # the event that made it final (email.complained, message.read), not the model's first
            delivered = lc.last_applied_event or self.provider.lifecycle.event_of("DELIVERED")
            status, summary = "PASS", f"delivered ({delivered} applied)"
        elif lc.state == "FAILED":
            status = "WARN"
            summary = (
                f"failed: {lc.failure_code or 'no code'} — {lc.failure_reason or 'no reason given'}"
            )
        else:
            status = "WARN"
            summary = (
                f"not final: last applied state {lc.state or 'none'}; delivery is not confirmed"
            )
        checks = [Check("trace.outcome", "Final state", status, summary, evidence=states)]
        flags = lc.flags()
        if self.other_messages:
            flags.append(
                f"{len(self.other_messages)} other message(s) carry the same externalReference "
                f"({', '.join(self.other_messages[:5])}): a possible duplicate send"
            )
        checks.append(
            Check(
                "trace.anomalies",
                "Anomalies",
                "WARN" if flags else "PASS",
                "; ".join(flags)
                if flags
                else f"none: every event arrived once, in {lc.order_name} order",
            )  # fmt: skip
        )
        self.recorder.note(outcome={"state": lc.state, "firstSeen": states, "anomalies": flags})
        return self._record("outcome", title, checks, details=states, notes=tuple(flags))

    # -- 4. timeline --------------------------------------------------------------------------
    def timeline(self) -> Plot | str:
        """Each webhook at its arrival time and state; hollow markers were not applied."""
        if self.missing is not None:
            return f"nothing to plot: {self.missing.remedy}"
        if self.lifecycle is None:
            return "no webhooks to plot"
        points = []
        for event, decision, _state in self.lifecycle.journal:
            at = _parse(event.received_at)
            state = self.provider.lifecycle.state_by_event[event.event_type]
            if at is not None:
                points.append((at, state, event.sequence, decision.startswith("applied")))
        return timeline(points, title=f"{self.lifecycle.message_id}: webhooks as they arrived")

    # -- 5. escalation ------------------------------------------------------------------------
    def escalation(self) -> EscalationNote:
        """The fields Red Cloud support asks for, and what to check first."""
        if self.missing is not None:
            return EscalationNote({"messageId": "not set", "externalReference": "not set"},
                                  (self.missing.remedy or "",))  # fmt: skip
        lc, entry = self.lifecycle, self.acceptance_entry
        fields = {
            "environment": self.params.environment,
            "messageId": self.message_id or "unknown",
            "externalReference": self.external_reference or "unknown",
            "acceptance requestId": (entry.request_id if entry else None) or "from the integration's send log",
            f"sendFrom ({self.provider.sender_label})": (entry.request.get("sendFrom") if entry else None)
            or (lc.events[0].number_id if lc and lc.events else "unknown"),
            "destination": self.show_phone(entry.request.get("to")) if entry else "from the send log (masked)",
            "last applied state": (lc.state if lc else None) or "none",
            **_position_field(lc, self.provider.lifecycle.ordered_by),
            "failure": f"{lc.failure_code}: {lc.failure_reason}" if lc and lc.failure_code
            else f"{self.refusal.failure_code}: refused ({self.refusal.event_type} {self.refusal.event_id})"
            if self.refusal else "—",
            "webhook event ids": ", ".join(e.event_id for e in lc.events) if lc else "none",
            "first / last webhook": (
                f"{lc.events[0].received_at} / {lc.events[-1].received_at}" if lc and lc.events else "—"
            ),
        }  # fmt: skip
        advice = []
        if self.refusal is not None:
            advice.append(f"{self.refusal.failure_code} is a policy outcome: act on it (consent, "
                          "thread, trust, approval) before sending again; retrying changes nothing.")  # fmt: skip
        elif lc is None or lc.state in (None, "QUEUED", "SENT"):
            advice.append("no final state yet: check the receiver's rejections (signature, 5xx) "
                          f"and the account webhook status in {self.provider.identity_name} before blaming the provider.")  # fmt: skip
        if lc is not None and lc.missing_queued:
            advice.append(
                f"{lc.first_event or 'the first event'} never arrived: ask whether it was dropped "
                "or rejected by your endpoint."
            )
        if lc is not None and lc.state == "FAILED":
            advice.append("a failure code is final for this message; resending needs a NEW "
                          "Idempotency-Key (the same key replays the failure).")  # fmt: skip
        advice.append(
            f"quote the acceptance requestId first: it is what {self.provider.title} support searches by."
        )
        note = EscalationNote(fields, tuple(advice))
        self.recorder.note(escalation=note.to_dict())
        return note
