"""The go-live runbook: each notebook cell is one method of :class:`GoLiveRun`.

Orchestration only, over the provider protocol: the provider builds the client and judges its own
identity and sender inventory (:mod:`runbook_lib.providers.base`); the controlled send and its
replay are :mod:`runbook_lib.core.sends`; webhooks are read through :mod:`runbook_lib.sources`;
the release gate is :mod:`runbook_lib.core.gate`; the previous report is read with
:meth:`runbook_lib.reporting.summary.Summary.load`. Steps never raise for an operational failure
(see :mod:`runbook_lib.runbooks.provider_run`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.checks import Check, ProviderSteps, StepReport
from ..core.errors import RunbookError
from ..core.events import WebhookEvent
from ..core.gate import GateReport, evaluate_gate
from ..core.invocation import other_runbook
from ..core.ledger import parse_stamp
from ..core.lifecycle import STATES, MessageLifecycle, reconstruct
from ..core.lifecycle_checks import (
    EVENT_CLOCK_ALLOWANCE_SECONDS,
    events_table,
    lifecycle_checks,
    prior_events_check,
    reached,
    split_at_acceptance,
)
from ..core.sends import SentMessage, acceptance_title, controlled_send, prove_replay
from ..providers.base import StepResult
from ..reporting.index import previous_summary, reports_root_of
from ..reporting.progress import Waiting
from ..reporting.snapshot import diff_snapshots
from ..security.secrets import secret_from_env
from .provider_run import (
    PROVIDER_STEP_REQUIRES,
    WEBHOOK_ENDPOINT,
    ProviderRun,
    fail_from,
    not_asked,
    skip,
)

__all__ = ["GoLiveRun"]


class GoLiveRun(ProviderRun):
    """One go-live run against one environment."""

    kind = "go-live"

    def __init__(self, params: Any, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.identity_resource: Any = None
        self.senders_resource: Any = None
        self.sent: SentMessage | None = None
        self.extra_sent: list[tuple[str, SentMessage]] = []  # the provider's extra sends

    def _record_step(self, result: StepResult) -> StepReport:
        """A provider-defined step: all of its checks need the token (PROVIDER_STEP_REQUIRES)."""
        if result.snapshot is not None:
            self.recorder.note(snapshot=dict(result.snapshot))
        return self._record(
            result.step,
            result.title,
            list(result.checks),
            requires=PROVIDER_STEP_REQUIRES,
            tables=tuple(result.tables),
            details=dict(result.details),
        )

    @property
    def send_settings(self) -> Any:
        """The controlled send's settings, as the provider reads them from the parameter file."""
        return self.provider.send_settings(self.params)

    # -- identity and sender inventory (the provider's steps) -----------------------------------
    def identity(self) -> StepReport:
        """Who the credentials are (Red Cloud: whoami): client, environment, webhook."""
        if not self.token_ok or self.client is None:
            return self._record_step(self.provider.skipped_identity("no token"))
        result = self.provider.identity_step(self.client, self.params)
        self.identity_resource = result.resource
        return self._record_step(result)

    def senders(self) -> StepReport:
        """The sender inventory (Red Cloud: every expected number ACTIVE, SMS/MMS as expected)."""
        if not self.token_ok or self.client is None:
            return self._record_step(self.provider.skipped_senders("no token"))
        result = self.provider.senders_step(self.client, self.params, self.identity_resource)
        self.senders_resource = result.resource
        return self._record_step(result)

    # -- the provider's own steps ----------------------------------------------------------------
    def provider_steps(self) -> ProviderSteps | None:
        """The provider's own go-live steps (Onyx: messaging in its order, webhooks, connectivity,
        support first checks); None when it has none (Red Cloud), so the cell shows nothing."""
        reports = ProviderSteps(self._record_step(r) for r in self.provider.golive_steps(self))
        return reports or None

    # -- controlled send -------------------------------------------------------------------------
    def send_blocked_by_preflight(self) -> str | None:
        """Why no controlled send may be made (a failed preflight: its outcome could not be
        confirmed), or None. Every controlled send asks this: the common one with the provider's
        extra sends, and a provider's own send step (Onyx's messaging)."""
        failed = [c.check_id for c in self.recorder.checks
                  if c.check_id.startswith("preflight.") and not c.met]  # fmt: skip
        return f"not sent: preflight failed ({', '.join(failed)}); fix it first" if failed else None

    def test_send(self) -> StepReport:
        """One controlled send: allowlisted, capped, key in the ledger before the request."""
        step, step_title = "send", "Controlled test send"
        title = acceptance_title(self.provider.acceptance)
        if self.send_settings is None:
            reason = f"no test_send section: {self.provider.title}'s send is its own step"
            return self._record(step, step_title, [not_asked("send.accepted", title, reason)])
        if not self.send_settings.enabled:
            return self._record(
                step, step_title, [not_asked("send.accepted", title, "test_send.enabled is false")]
            )
        sender_check = self.provider.sender_check_id(self.params)
        # a send whose outcome cannot be confirmed is not made (a failed preflight, no token,
        # its sender failing its check): it is BLOCKED by what failed
        blocked = self.unmet_requirement("send.accepted", sender_check)
        if blocked is not None or not self.token_ok or self.client is None:
            reason = f"not sent: {blocked.check_id} is not met" if blocked else "no token"
            return self._record(
                step, step_title, [skip("send.accepted", title, reason)], requires=(sender_check,)
            )
        outcome = controlled_send(
            self.client,
            self.ledger,
            run_id=self.run_id,
            step="test-send-1",
            environment=self.params.environment,
            payload=self.provider.send_payload(self.params, self.run_id),
            allowlist=self.send_settings.allowlist,
            max_sends=self.send_settings.max_sends,
            acceptance=self.provider.acceptance,
            show_phone=self.show_phone,
            window=self.window,
            run_started_at=self.ledger.run_started_at(self.run_id),
        )
        self.sent = outcome.message
        self._note_messages()
        checks = [outcome.check, *self._extra_sends()]
        return self._record(
            step, step_title, checks, requires=(sender_check,), details=outcome.details
        )

    def _note_messages(self) -> None:
        """The run's controlled sends in the summary: the first, then the provider's extra ones."""
        sent = [self.sent] if self.sent is not None else []
        self.recorder.note(messages=[m.to_dict() for m in sent + [m for _, m in self.extra_sent]])

    def _extra_sends(self) -> list[Check]:
        """The provider's further controlled sends (SendAPI: one per further channel)."""
        checks = []
        for extra in self.provider.extra_sends(self.params, self.run_id):
            check_id, title = f"send.accepted.{extra.label}", f"{extra.label} send accepted"
            needs = (extra.sender_check,)
            if self.unmet_requirement(check_id, *needs) is not None:
                checks.append(skip(check_id, title, f"{extra.sender_check} failed", requires=needs))
                continue
            outcome = controlled_send(
                self.client, self.ledger, run_id=self.run_id, step=f"test-send-{extra.label}",
                environment=self.params.environment, payload=extra.payload,
                allowlist=self.send_settings.allowlist, max_sends=self.send_settings.max_sends,
                acceptance=self.provider.acceptance, show_phone=self.show_phone, window=self.window,
                run_started_at=self.ledger.run_started_at(self.run_id),
            )  # fmt: skip
            checks.append(replace(outcome.check, check_id=check_id, title=title, requires=needs))
            if outcome.message.message_id:
                self.extra_sent.append((extra.label, outcome.message))
                self._note_messages()
        return checks

    def _extra_lifecycles(self, expect: str, timeout: float, poll_interval: float) -> list[Check]:
        """Each extra send's final state, ordered by the provider's model."""
        checks = []
        model = self.provider.lifecycle
        started = time.monotonic()
        live = Waiting("the extra sends' webhooks", timeout, say=self._progress)
        for label, message in self.extra_sent:
            lifecycle: MessageLifecycle | None = None
            while True:
                events = self._read_events(message.message_id or "")
                lifecycle = reconstruct(events, model).messages.get(message.message_id or "")
                if lifecycle and reached(lifecycle, expect):
                    break
                live.update(
                    f"{label} {(lifecycle.state or 'no state') if lifecycle else 'no webhook yet'}"
                )
                if time.monotonic() - started >= timeout:
                    break
                self._sleep(poll_interval)
            message.lifecycle = lifecycle
            self._note_messages()
            state = lifecycle.state if lifecycle else None
            ok = state == expect.upper() or (expect in ("sent", "queued") and state is not None)
            checks.append(Check(
                f"lifecycle.{label}.final", f"{label} lifecycle reaches {expect}",
                "PASS" if ok else "FAIL", f"{message.message_id}: final state {state}",
                remedy=None if ok else "read its events in the report; quote the message id.",
                requires=(f"send.accepted.{label}",),
            ))  # fmt: skip
        return checks

    def replay_proof(self) -> StepReport:
        """Send the same request with the same key: the provider must answer with the same messageId."""
        step, step_title = "replay", "Idempotent replay proof"
        title = "Same key replays, no second message"
        if self.sent is None or self.sent.message_id is None or self.client is None:
            return self._record(
                step, step_title, [skip("send.replay", title, "no accepted send to replay")]
            )
        check = prove_replay(
            self.client, self.ledger, run_id=self.run_id, message=self.sent, window=self.window,
            provider_title=self.provider.title,
        )  # fmt: skip
        self._note_messages()
        return self._record(step, step_title, [check])

    # -- lifecycle -------------------------------------------------------------------------------
    def _read_events(self, message_id: str) -> list[WebhookEvent]:
        return self.events.events_for(message_id=message_id)

    def confirm_lifecycle(self, *, poll_interval: float = 0.5) -> StepReport:
        """Wait (with progress) for queued → sent → delivered|failed; each state is its own check."""
        step, step_title = "lifecycle", "Lifecycle confirmation (webhooks)"
        states = ("queued", "sent", "final")
        if self.send_settings is None or not self.send_settings.enabled:
            reason = "no controlled send in this run to follow"
            return self._record(step, step_title, [not_asked(f"lifecycle.{s}", f"message.{s}", reason)
                                                   for s in states])  # fmt: skip
        blocked = self.unmet_requirement("lifecycle.queued")
        if blocked is not None or self.sent is None or self.sent.message_id is None:
            reason = (
                f"not waited for: {blocked.check_id} is not met" if blocked else "no accepted send"
            )
            return self._record(
                step,
                step_title,
                [skip(f"lifecycle.{s}", f"message.{s}", reason) for s in states],
            )
        expect = self.send_settings.expect
        timeout = self.send_settings.lifecycle_timeout_seconds
        message_id = self.sent.message_id
        model = self.provider.lifecycle
        self._progress(
            f"Waiting up to {timeout:g} s for webhooks of {message_id} (expecting {expect}) …"
        )
        started = time.monotonic()
        live = Waiting(f"webhooks of {message_id}", timeout, say=self._progress)
        seen: set[str] = set()
        lifecycle: MessageLifecycle | None = None
        accepted = self._acceptance_instant()
        allowance = EVENT_CLOCK_ALLOWANCE_SECONDS + abs(self.clock_skew or 0.0)
        prior: list[WebhookEvent] = []
        try:
            while True:
                events, prior = split_at_acceptance(
                    self._read_events(message_id), accepted, allowance
                )
                lifecycle = reconstruct(events, model).messages.get(message_id)
                if lifecycle:
                    for state in STATES:
                        if lifecycle.seen(state) and state not in seen:
                            seen.add(state)
                            self._progress(
                                f"  {time.monotonic() - started:5.1f} s  {state:<9} "
                                f"(now {lifecycle.state} {lifecycle.position()})"
                            )
                if lifecycle and reached(lifecycle, expect):
                    break
                live.update(" → ".join(s.lower() for s in STATES if s in seen))
                if time.monotonic() - started >= timeout:
                    self._progress(f"  timed out after {timeout:g} s")
                    break
                self._sleep(poll_interval)
        except RunbookError as exc:
            msg = f"event store unreadable: {exc}"
            return self._record(
                step,
                step_title,
                [Check(f"lifecycle.{s}", f"message.{s}", "FAIL", msg) for s in states],
            )
        self.sent.lifecycle = lifecycle
        self._note_messages()
        waited = round(time.monotonic() - started, 1)
        checks = lifecycle_checks(
            lifecycle, expect, timeout, model.event_of, self.provider.identity_name,
            queued_on_acceptance=model.queued_on_acceptance,
            receiver_up=any(c.check_id == WEBHOOK_ENDPOINT and c.status == "PASS"
                            for c in self.recorder.checks),
        )  # fmt: skip
        if prior:
            checks.append(prior_events_check(message_id, accepted, prior))
        checks += self._extra_lifecycles(expect, timeout, poll_interval)
        return self._record(
            step,
            step_title,
            checks,
            details={
                "messageId": message_id,
                "waitedSeconds": waited,
                "finalState": lifecycle.state if lifecycle else None,
            },
            tables=(events_table(lifecycle),) if lifecycle else (),
            notes=tuple(
                f"Handled: {flag}."
                for flag in (lifecycle.flags() if lifecycle else [])
                if "missing" not in flag
            ),
        )

    def _acceptance_instant(self) -> datetime | None:
        """The earliest the send can have been accepted: its acceptedAt or its ledger key."""
        assert self.sent is not None
        entry = self.ledger.entry(self.run_id, self.sent.step)
        stamps = [
            parse_stamp(self.sent.accepted_at),
            parse_stamp(entry.reserved_at if entry else None),
        ]
        known = [s for s in stamps if s is not None]
        return min(known) if known else None

    # -- support -------------------------------------------------------------------------------
    def support_handoff(self) -> StepReport:
        """What support needs to trace this send later, and a check that it can."""
        step, step_title = "support", "Support handoff"
        title = "Send traceable by messageId and externalReference"
        if self.send_settings is None or not self.send_settings.enabled:
            reason = "no controlled send in this run to trace"
            return self._record(step, step_title, [not_asked("support.trace", title, reason)])
        blocked = self.unmet_requirement("support.trace")
        if blocked is not None or self.sent is None or self.sent.message_id is None:
            reason = f"not traced: {blocked.check_id} is not met" if blocked else "no accepted send"
            return self._record(step, step_title, [skip("support.trace", title, reason)])
        by_id = by_ref = 0
        try:
            by_id = len(self._read_events(self.sent.message_id))
            if self.sent.external_reference:
                by_ref = len(
                    self.events.events_for(external_reference=self.sent.external_reference)
                )
        except RunbookError:
            pass  # an unreadable store finds nothing: the check below says so
        # a provider without an external reference (SendAPI) is traced by its message id alone
        ok = by_id > 0 and (by_ref > 0 or not self.sent.external_reference)
        check = Check(
            "support.trace",
            title,
            "PASS" if ok else "FAIL",
            f"{by_id} stored event(s) by messageId, {by_ref} by externalReference",
            evidence={"byMessageId": by_id, "byExternalReference": by_ref},
            request_ids=tuple(self.sent.request_ids),
            remedy=None
            if ok
            else "the receiver must persist messageId and externalReference of every event.",
        )
        all_rids = (
            [r.request_id for r in self.client.request_log if r.request_id] if self.client else []
        )
        details = {
            "messageId": self.sent.message_id,
            "externalReference": self.sent.external_reference,
            "idempotencyKey": self.sent.idempotency_key,
            "acceptance requestId": self.sent.accepted_request_id,
            "acceptedAt": self.sent.accepted_at,
            "final state": self.sent.lifecycle.state if self.sent.lifecycle else None,
            "trace it": other_runbook("trace", ("message_id", self.sent.message_id or "")),
        }
        self.recorder.note(requestIds=all_rids)
        return self._record(
            step, step_title, [check], details=details, notes=(self.provider.support_note,)
        )

    # -- webhook probe ---------------------------------------------------------------------------
    def webhook_probe(self) -> StepReport:
        """Conformance-probe the integration's webhook endpoint; see :mod:`runbook_lib.runbooks.probe`."""
        from .probe import SourceReader, run_probe

        step, step_title = "probe", "Webhook conformance probe"
        title = "Webhook endpoint conformance"
        if not self.params.probe.enabled:
            return self._record(
                step, step_title, [not_asked("probe.all", title, "probe.enabled is false")]
            )
        blocked = self.unmet_requirement("probe.all")
        if blocked is not None:  # every probe request would go unanswered: one root cause
            reason = f"not probed: {blocked.check_id} is not met"
            return self._record(step, step_title, [skip("probe.all", title, reason)])
        hooks = self.params.webhooks
        try:
            secret = secret_from_env(
                hooks.signing_secret_env or "",
                purpose="webhook signing secret",
                environ=self._environ,
            )
        except RunbookError as exc:
            return self._record(step, step_title, [fail_from("probe.all", title, exc)])
        source = self.params.event_source
        readable = source.kind == "sql" or source.path.exists()
        result = run_probe(
            hooks.endpoint_url or "",
            secret.reveal().split()[-1],
            reader=SourceReader(self.events) if readable else None,
            burst=self.params.probe.burst,
            progress=self._progress,
            provider=self.provider,
        )
        report = result.report()
        return self._record(step, step_title, list(report.checks), details=report.details)

    # -- release gate ----------------------------------------------------------------------------
    def release_gate(self) -> GateReport:
        """The readiness catalog: PASS, FAIL, ATTESTED or NOT VERIFIED per item; GO or NO-GO."""
        log = self.client.request_log if self.client else []
        gate = evaluate_gate(
            self.recorder.checks,
            self.params.attestations,
            evidence_rules=self.provider.evidence_rules(log, recorded_send=self.sent),
            provider=self.provider.kind,
        )
        self.recorder.note(gate=gate.to_dict())
        self._record("gate", "Release gate", [gate.as_check()])
        return gate

    # -- changes since the previous go-live ------------------------------------------------------
    def changes_since_previous(self, reports_root: str | Path | None = None) -> StepReport:
        """Provider context and check outcomes compared with the previous go-live report here."""
        title = "Since the previous go-live"
        root = Path(reports_root) if reports_root else reports_root_of(self.recorder.report_dir)
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        previous = previous_summary(
            root, kind=self.kind, environment=self.params.environment, before=now
        )
        if previous is not None and previous.path == self.recorder.report_dir:
            previous = None
        if previous is None or previous.path is None:
            check = Check(
                "changes.previous", title, "SKIP", "no earlier go-live report of this environment"
            )
            return self._record("changes", title, [check])
        name = previous.path.name
        drift = diff_snapshots(previous.snapshot, self.recorder.facts.get("snapshot") or {})
        before = previous.check_statuses()
        changed = [(cid, before.get(cid, "—"), c.status) for c in self.recorder.checks
                   for cid in [c.check_id] if before.get(cid) != c.status and cid in before]  # fmt: skip
        rows = [tuple(map(str, r)) for r in drift] + [
            (f"check {cid}", b, a) for cid, b, a in changed
        ]
        self.recorder.note(changes={"previous": name, "rows": rows})
        check = Check(
            "changes.previous", title, "WARN" if drift else "PASS",
            f"{len(drift)} provider-side change(s), {len(changed)} check(s) changed outcome since {name}"
            if rows else f"nothing changed since {name}",
        )  # fmt: skip
        return self._record(
            "changes",
            title,
            [check],
            tables=(("Changes", ["what", "before", "now"], rows),) if rows else (),
        )
