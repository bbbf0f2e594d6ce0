"""The go-live runbook: each notebook cell is one method of :class:`GoLiveRun`.

Steps never raise for an operational failure: they record a FAIL check carrying the requestId and
the fix, and later steps that depend on it are SKIPped with the reason, so the report always
reaches its verdict. Only a bug ends a run early (the CLI then exits 2 and says where).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .checks import Check, StepReport, Verdict
from .client import RedCloudClient, build_client
from .errors import RunbookError
from .events import WebhookEvent
from .gate import GateReport, evaluate_gate
from .ledger import SendLedger, parse_stamp
from .lifecycle import MessageLifecycle, reconstruct
from .locks import LOCK_NOTE_ENV
from .logs import configure_run_logging
from .parameters import RunbookParameters, load_parameters
from .recorder import RunRecorder
from .reports_index import previous_report, reports_root_of
from .runs import RecordedRun
from .secrets import secret_from_env
from .sends import ReplayWindow, SentMessage, controlled_send, idempotency_key_for, prove_replay
from .snapshot import context_snapshot, diff_snapshots, load_snapshot

__all__ = ["GoLiveRun"]

REQUIRED_SCOPES = ("messages:send", "numbers:read")
# Receiver and provider clocks may disagree this much (plus the measured skew) before an event
# received "before" the acceptance is judged to predate it.
EVENT_CLOCK_ALLOWANCE_SECONDS = 5.0


def _fail_from(check_id: str, title: str, exc: RunbookError, **evidence: Any) -> Check:
    return Check(
        check_id,
        title,
        "FAIL",
        str(exc.message),
        evidence={**evidence, "error": exc.to_dict()},
        request_ids=(exc.request_id,) if exc.request_id else (),
        remedy=exc.remedy or None,
    )


def _skip(check_id: str, title: str, reason: str) -> Check:
    return Check(check_id, title, "SKIP", reason)


class GoLiveRun(RecordedRun):
    """One go-live run against one environment."""

    kind = "go-live"

    def __init__(
        self,
        params: RunbookParameters,
        *,
        run_id: str = "",
        environ: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        kind: str = "go-live",
    ) -> None:
        self.kind = kind
        self.params = params
        self._environ = dict(os.environ if environ is None else environ)
        self._sleep = sleep
        self._progress = progress or (lambda line: print(line, flush=True, file=sys.stdout))
        self.ledger = SendLedger(params.ledger_path)
        self.run_id = self.ledger.start_run(params.environment, self.kind, run_id or None)
        self.recorder = RunRecorder.from_environment(
            kind=self.kind, environment=params.environment, run_id=self.run_id
        )
        configure_run_logging(self.recorder.report_dir, run_id=self.run_id, level=params.log_level)
        self.recorder.note(
            runId=self.run_id,
            environment=params.environment,
            baseUrl=params.provider.base_url,
        )
        self.client: RedCloudClient | None = None
        self.token_ok = False
        self.whoami: dict[str, Any] | None = None
        self.numbers: list[dict[str, Any]] | None = None
        self.sent: SentMessage | None = None
        self.clock_skew: float | None = None
        self.window = ReplayWindow(seconds=params.provider.idempotency_window_hours * 3600)

    @classmethod
    def open(cls, params_file: str | Path, *, run_id: str = "", **kwargs: Any) -> GoLiveRun:
        """Load and validate the parameter file, then open the run (no network yet)."""
        return cls(load_parameters(params_file), run_id=run_id, **kwargs)

    # -- helpers ------------------------------------------------------------------------------
    def _run_age_seconds(self) -> float | None:
        return self.ledger.age_seconds(self.ledger.run_started_at(self.run_id))

    def _outside_window(self) -> bool:
        """This run began longer ago than the provider remembers keys: it must send nothing."""
        return not self.window.holds(self._run_age_seconds())

    # -- 1. preflight -------------------------------------------------------------------------
    def preflight(self) -> StepReport:
        """Parameters, the secret's presence (never its value), the clock, where evidence goes."""
        p = self.params
        checks = [
            Check(
                "preflight.parameters",
                "Parameter file valid",
                "PASS",
                f"environment {p.environment}: {len(p.numbers)} expected number(s), "
                f"test send {p.test_send.send_from} → {self.show_phone(p.test_send.to)}",
                evidence={"environment": p.environment, "baseUrl": p.provider.base_url},
            )
        ]
        try:
            self.client = build_client(self.params, environ=self._environ, sleep=self._sleep)
            checks.append(
                Check(
                    "preflight.secret",
                    "Client secret available",
                    "PASS",
                    f"read from ${p.provider.client_secret_env} (value not shown)",
                )
            )
        except RunbookError as exc:
            checks.append(_fail_from("preflight.secret", "Client secret available", exc))
        checks.append(self._clock_check())
        if p.fault_profile is not None:
            checks.append(self._apply_fault_profile())
        source = p.event_source.path
        if source.exists():
            checks.append(
                Check(
                    "preflight.event_source",
                    "Webhook event store readable",
                    "PASS",
                    f"{p.event_source.kind} store {source.name}",
                )
            )
        else:
            checks.append(
                Check(
                    "preflight.event_source",
                    "Webhook event store readable",
                    "FAIL",
                    f"no event store at {source.name}: lifecycle events cannot be confirmed.",
                    remedy="start the receiver (runbook receiver --db ...) with the same path as "
                    "event_source.path, and point the account webhook at it.",
                )
            )
        lock_note = self._environ.get(
            LOCK_NOTE_ENV
        )  # set by the CLI when it took a dead run's lock
        return self._record(
            "preflight", "Preflight", checks, notes=(lock_note,) if lock_note else ()
        )

    def _apply_fault_profile(self) -> Check:
        from .sandbox.control import SandboxControl, is_sandbox

        title = "Sandbox fault profile applied"
        if not is_sandbox(self.params.provider.base_url):
            return Check("preflight.faults", title, "FAIL", "fault_profile is set but the provider is not the sandbox",
                         remedy="remove fault_profile from a parameter file for a real provider.")  # fmt: skip
        with SandboxControl(self.params.provider.base_url) as control:
            applied = control.set_faults(self.params.fault_profile or {})
        return Check(
            "preflight.faults", title, "PASS", "rehearsing under injected faults", evidence=applied
        )

    def _clock_check(self) -> Check:
        title = "Local clock agrees with the provider"
        if self.client is None:
            return _skip("preflight.clock", title, "no client (secret missing)")
        server = self.client.server_clock()
        if server is None:
            return Check(
                "preflight.clock",
                title,
                "WARN",
                "the provider sent no Date header; clock skew not measured.",
                remedy="make sure this host runs NTP: webhook timestamps are checked to ±5 min.",
            )
        skew = time.time() - server
        self.clock_skew = skew
        evidence = {"skewSeconds": round(skew, 1)}
        limit_warn = self.params.clock_skew_warn_seconds
        limit_fail = self.params.clock_skew_fail_seconds
        status = "PASS" if abs(skew) < limit_warn else "WARN" if abs(skew) < limit_fail else "FAIL"
        return Check(
            "preflight.clock",
            title,
            status,
            f"skew {skew:+.1f} s (warn at {limit_warn:g} s, fail at {limit_fail:g} s)",
            evidence=evidence,
            remedy="sync this host's clock (NTP); receivers reject webhooks more than 5 min off."
            if status != "PASS"
            else None,
        )

    # -- 2. token -----------------------------------------------------------------------------
    def acquire_token(self) -> StepReport:
        """Client credentials grant against the runtime token URL; shows expiry and scope."""
        title = "Access token acquired"
        if self.client is None:
            return self._record(
                "token", "Token acquisition", [_skip("auth.token", title, "no client secret")]
            )
        try:
            info = self.client.acquire_token()
        except RunbookError as exc:
            return self._record(
                "token", "Token acquisition", [_fail_from("auth.token", title, exc)]
            )
        self.token_ok = True
        granted = set((info.scope or "").split())
        missing = [s for s in REQUIRED_SCOPES if info.scope is not None and s not in granted]
        checks = [
            Check(
                "auth.token",
                title,
                "PASS",
                f"Bearer token, expires in {info.expires_in} s (refreshed 60 s early)",
                evidence=info.to_dict(),
                request_ids=(info.request_id,) if info.request_id else (),
            ),
            Check(
                "auth.scopes",
                "Token scopes cover the runbook",
                "FAIL" if missing else "PASS",
                f"missing {', '.join(missing)}"
                if missing
                else f"granted: {info.scope or '(not stated)'}",
                remedy="grant the API client the missing scopes in the console."
                if missing
                else None,
            ),
        ]
        return self._record("token", "Token acquisition", checks)

    # -- 3. whoami ----------------------------------------------------------------------------
    def check_whoami(self) -> StepReport:
        """The active client context: who we are, which environment, numbers, webhook."""
        step, step_title = "whoami", "Client context (whoami)"
        if not self.token_ok or self.client is None:
            return self._record(
                step, step_title, [_skip("whoami.context", "Client context", "no token")]
            )
        try:
            result = self.client.whoami()
        except RunbookError as exc:
            return self._record(
                step, step_title, [_fail_from("whoami.context", "Client context", exc)]
            )
        who = result.data
        self.whoami = who
        self.recorder.note(snapshot=context_snapshot(who, None))
        p = self.params.provider
        rid = (result.request_id,) if result.request_id else ()
        problems = []
        if p.expected_environment and who.get("environment") != p.expected_environment:
            problems.append(
                f"environment is {who.get('environment')!r}, expected {p.expected_environment!r}"
            )
        if p.expected_client_id and who.get("clientId") != p.expected_client_id:
            problems.append(
                f"clientId is {who.get('clientId')!r}, expected {p.expected_client_id!r}"
            )
        checks = [
            Check(
                "whoami.context",
                "Active client context identified",
                "FAIL" if problems else "PASS",
                "; ".join(problems)
                or f"{who.get('clientName')} ({who.get('clientId')}), account {who.get('accountId')}, "
                f"{who.get('environment')}",
                evidence={
                    k: who.get(k) for k in ("clientId", "clientName", "accountId", "environment")
                },
                request_ids=rid,
                remedy="the credentials belong to another client or environment: check client_id "
                "and base_url."
                if problems
                else None,
            )
        ]
        assigned = (
            who.get("assignedNumbers") if isinstance(who.get("assignedNumbers"), dict) else {}
        )
        total, active = assigned.get("total"), assigned.get("active")
        expected = len(self.params.numbers)
        count_ok = isinstance(active, int) and active >= 1 and isinstance(total, int)
        checks.append(
            Check(
                "whoami.numbers",
                "Assigned number counts",
                "PASS" if count_ok else "FAIL",
                f"{total} assigned, {active} active ({expected} expected by this runbook)",
                evidence={"total": total, "active": active, "expected": expected},
                request_ids=rid,
                remedy=None if count_ok else "no active number is assigned to this client.",
            )
        )
        hook = who.get("webhook") if isinstance(who.get("webhook"), dict) else {}
        status = hook.get("status")
        if self.params.webhooks.expect_configured:
            ok = status == "CONFIGURED" and hook.get("signingSecretSet") is True
            summary = f"status {status}, signing secret {'set' if hook.get('signingSecretSet') else 'NOT set'}"
            checks.append(
                Check(
                    "whoami.webhook",
                    "Account webhook configured",
                    "PASS" if ok else "FAIL",
                    summary,
                    evidence={
                        k: hook.get(k)
                        for k in ("status", "signingSecretSet", "lastSuccessAt", "lastFailureAt")
                    },
                    request_ids=rid,
                    remedy=None
                    if ok
                    else "configure the webhook URL and signing secret in the console; FAILING means "
                    "the provider cannot deliver to it.",
                )
            )
        return self._record(step, step_title, checks)

    # -- 4. numbers ---------------------------------------------------------------------------
    def check_numbers(self) -> StepReport:
        """Every expected number: present, ACTIVE, SMS/MMS as expected, webhook override intended."""
        step, step_title = "numbers", "Numbers"
        if not self.token_ok or self.client is None:
            return self._record(
                step, step_title, [_skip("numbers.list", "Numbers listed", "no token")]
            )
        try:
            listing = self.client.list_numbers()
        except RunbookError as exc:
            return self._record(
                step, step_title, [_fail_from("numbers.list", "Numbers listed", exc)]
            )
        self.numbers = listing.numbers
        self.recorder.note(snapshot=context_snapshot(self.whoami, self.numbers))
        by_id = {n.get("numberId"): n for n in listing.numbers}
        rids = listing.request_ids
        checks = [
            Check(
                "numbers.list",
                "Numbers listed",
                "PASS",
                f"{len(listing.numbers)} number(s) over {listing.pages} page(s)",
                evidence={"count": len(listing.numbers), "pages": listing.pages},
                request_ids=rids,
            )
        ]
        for expected in self.params.numbers:
            checks.append(self._number_check(expected, by_id.get(expected.number_id), rids))
        if self.whoami:
            assigned = self.whoami.get("assignedNumbers") or {}
            active = sum(1 for n in listing.numbers if n.get("status") == "ACTIVE")
            agree = (
                assigned.get("total") == len(listing.numbers) and assigned.get("active") == active
            )
            checks.append(
                Check(
                    "numbers.counts_agree",
                    "whoami counts match the listing",
                    "PASS" if agree else "WARN",
                    f"whoami {assigned.get('total')}/{assigned.get('active')} vs listing "
                    f"{len(listing.numbers)}/{active} (total/active)",
                    remedy=None
                    if agree
                    else "a number may have changed state during the run; re-run.",
                )
            )
        rows = [
            (
                n.get("numberId"),
                n.get("phoneNumber"),
                n.get("status"),
                n.get("smsEnabled"),
                n.get("mmsEnabled"),
                (n.get("webhookOverride") or {}).get("url")
                if (n.get("webhookOverride") or {}).get("enabled")
                else "—",
            )
            for n in listing.numbers
        ]
        return self._record(
            step,
            step_title,
            checks,
            tables=(
                (
                    "All numbers assigned to this client",
                    ("numberId", "phone", "status", "SMS", "MMS", "webhook override"),
                    rows,
                ),
            ),
        )

    def _number_check(
        self, expected: Any, actual: dict[str, Any] | None, rids: tuple[str, ...]
    ) -> Check:
        cid = f"numbers.{expected.number_id}"
        title = f"Number {expected.number_id}"
        if actual is None:
            return Check(
                cid,
                title,
                "FAIL",
                "not assigned to this client",
                request_ids=rids,
                remedy="check the numberId in the parameter file against the console.",
            )
        problems = []
        if actual.get("status") != "ACTIVE":
            problems.append(f"status {actual.get('status')} (must be ACTIVE)")
        if bool(actual.get("smsEnabled")) != expected.sms:
            problems.append(
                f"SMS {'enabled' if actual.get('smsEnabled') else 'disabled'}, expected {'on' if expected.sms else 'off'}"
            )
        if bool(actual.get("mmsEnabled")) != expected.mms:
            problems.append(
                f"MMS {'enabled' if actual.get('mmsEnabled') else 'disabled'}, expected {'on' if expected.mms else 'off'}"
            )
        override = actual.get("webhookOverride") or {}
        active_url = override.get("url") if override.get("enabled") else None
        want = expected.webhook_override
        if want == "none" and active_url:
            problems.append(f"unexpected webhook override {active_url}")
        elif want == "any" and not active_url:
            problems.append("no enabled webhook override")
        elif want not in ("none", "any") and active_url != want:
            problems.append(f"webhook override {active_url or 'none'}, expected {want}")
        evidence = {
            k: actual.get(k)
            for k in ("numberId", "phoneNumber", "status", "smsEnabled", "mmsEnabled")
        }
        evidence["webhookOverride"] = active_url
        if problems:
            return Check(
                cid,
                title,
                "FAIL",
                "; ".join(problems),
                evidence=evidence,
                request_ids=rids,
                remedy="fix the number in the console, or correct the expectation in the parameter file.",
            )
        return Check(
            cid,
            title,
            "PASS",
            f"{actual.get('phoneNumber')} ACTIVE, SMS {'on' if expected.sms else 'off'}, "
            f"MMS {'on' if expected.mms else 'off'}, override {active_url or 'none'}",
            evidence=evidence,
            request_ids=rids,
        )

    # -- 5. controlled send -------------------------------------------------------------------
    def _send_payload(self) -> dict[str, Any]:
        t = self.params.test_send
        return {
            "sendFrom": t.send_from,
            "to": t.to,
            "body": t.body.replace("{run_id}", self.run_id),
            "externalReference": f"{t.external_reference_prefix}-{self.run_id}-1"[:128],
        }

    def test_send(self) -> StepReport:
        """One controlled send: allowlisted, capped, key in the ledger before the request."""
        step, step_title = "send", "Controlled test send"
        title = "Send accepted (202 QUEUED)"
        if not self.params.test_send.enabled:
            return self._record(
                step, step_title, [_skip("send.accepted", title, "test_send.enabled is false")]
            )
        if not self.token_ok or self.client is None:
            return self._record(step, step_title, [_skip("send.accepted", title, "no token")])
        blocked = [
            c
            for c in self.recorder.checks
            if c.check_id == f"numbers.{self.params.test_send.send_from}" and c.failed
        ]
        if blocked:
            return self._record(
                step,
                step_title,
                [
                    _skip(
                        "send.accepted",
                        title,
                        f"sending number {self.params.test_send.send_from} failed its check",
                    )
                ],
            )
        outcome = controlled_send(
            self.client,
            self.ledger,
            run_id=self.run_id,
            step="test-send-1",
            environment=self.params.environment,
            payload=self._send_payload(),
            allowlist=self.params.test_send.allowlist,
            max_sends=self.params.test_send.max_sends,
            show_phone=self.show_phone,
            window=self.window,
            run_started_at=self.ledger.run_started_at(self.run_id),
        )
        self.sent = outcome.message
        self.recorder.note(messages=[outcome.message.to_dict()])
        return self._record(step, step_title, [outcome.check], details=outcome.details)

    def replay_proof(self) -> StepReport:
        """Send the same request with the same key: the provider must answer with the same messageId."""
        step, step_title = "replay", "Idempotent replay proof"
        title = "Same key replays, no second message"
        if self.sent is None or self.sent.message_id is None or self.client is None:
            return self._record(
                step, step_title, [_skip("send.replay", title, "no accepted send to replay")]
            )
        check = prove_replay(
            self.client, self.ledger, run_id=self.run_id, message=self.sent, window=self.window
        )
        self.recorder.note(messages=[self.sent.to_dict()])
        return self._record(step, step_title, [check])

    # -- 6. lifecycle -------------------------------------------------------------------------
    def _read_events(self, message_id: str) -> list[WebhookEvent]:
        from .receiver import EventStore

        path = self.params.event_source.path
        if not path.exists():
            return []
        store = EventStore(path)
        try:
            return store.events_for_message(message_id)
        finally:
            store.close()

    def confirm_lifecycle(self, *, poll_interval: float = 0.5) -> StepReport:
        """Wait (with progress) for queued → sent → delivered|failed; each state is its own check."""
        step, step_title = "lifecycle", "Lifecycle confirmation (webhooks)"
        states = ("queued", "sent", "final")
        if self.sent is None or self.sent.message_id is None:
            return self._record(
                step,
                step_title,
                [_skip(f"lifecycle.{s}", f"message.{s}", "no accepted send") for s in states],
            )
        expect = self.params.test_send.expect
        timeout = self.params.test_send.lifecycle_timeout_seconds
        message_id = self.sent.message_id
        self._progress(
            f"Waiting up to {timeout:g} s for webhooks of {message_id} (expecting {expect}) …"
        )
        started = time.monotonic()
        seen: set[str] = set()
        lifecycle: MessageLifecycle | None = None
        accepted = self._acceptance_instant()
        allowance = EVENT_CLOCK_ALLOWANCE_SECONDS + abs(self.clock_skew or 0.0)
        prior: list[WebhookEvent] = []
        try:
            while True:
                events, prior = _split_at_acceptance(
                    self._read_events(message_id), accepted, allowance
                )
                lifecycle = reconstruct(events).messages.get(message_id)
                if lifecycle:
                    for state in ("QUEUED", "SENT", "DELIVERED", "FAILED"):
                        if lifecycle.seen(state) and state not in seen:
                            seen.add(state)
                            self._progress(
                                f"  {time.monotonic() - started:5.1f} s  {state:<9} "
                                f"(now {lifecycle.state}, sequence {lifecycle.highest_sequence})"
                            )
                if lifecycle and _reached(lifecycle, expect):
                    break
                if time.monotonic() - started >= timeout:
                    self._progress(f"  timed out after {timeout:g} s")
                    break
                self._sleep(poll_interval)
        except (sqlite3.Error, RunbookError) as exc:
            msg = f"event store unreadable: {exc}"
            return self._record(
                step,
                step_title,
                [Check(f"lifecycle.{s}", f"message.{s}", "FAIL", msg) for s in states],
            )
        self.sent.lifecycle = lifecycle
        self.recorder.note(messages=[self.sent.to_dict()])
        waited = round(time.monotonic() - started, 1)
        checks = _lifecycle_checks(lifecycle, expect, timeout)
        if prior:
            checks.append(_prior_events_check(message_id, accepted, prior))
        return self._record(
            step,
            step_title,
            checks,
            details={
                "messageId": message_id,
                "waitedSeconds": waited,
                "finalState": lifecycle.state if lifecycle else None,
            },
            tables=(_events_table(lifecycle),) if lifecycle else (),
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

    # -- 7. support ---------------------------------------------------------------------------
    def support_handoff(self) -> StepReport:
        """What support needs to trace this send later, and a check that it can."""
        step, step_title = "support", "Support handoff"
        title = "Send traceable by messageId and externalReference"
        if self.sent is None or self.sent.message_id is None:
            return self._record(
                step, step_title, [_skip("support.trace", title, "no accepted send")]
            )
        from .receiver import EventStore

        by_id = by_ref = 0
        path = self.params.event_source.path
        if path.exists():
            store = EventStore(path)
            try:
                by_id = len(store.events_for_message(self.sent.message_id))
                if self.sent.external_reference:
                    by_ref = len(store.events_for_external_reference(self.sent.external_reference))
            finally:
                store.close()
        ok = by_id > 0 and by_ref > 0
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
            "trace it": f"runbook trace --params <file> --message-id {self.sent.message_id}",
        }
        self.recorder.note(requestIds=all_rids)
        return self._record(
            step,
            step_title,
            [check],
            details=details,
            notes=(
                "Quote the messageId and the acceptance requestId to Red Cloud support; "
                "202 QUEUED proves acceptance only, the webhook states above prove the rest.",
            ),
        )

    # -- 8. failure drills and webhook probe ----------------------------------------------------
    def failure_drills(self) -> StepReport:
        """Provoke each failure path on purpose; see :mod:`runbook_lib.drills`."""
        from .drills import DrillContext, client_factory, run_drills
        from .sandbox.control import is_sandbox

        step, step_title = "drills", "Failure drills"
        if not self.params.drills.enabled:
            return self._record(
                step, step_title, [_skip("drill.all", "Failure drills", "drills.enabled is false")]
            )
        if not self.token_ok or self.client is None:
            return self._record(
                step, step_title, [_skip("drill.all", "Failure drills", "no token")]
            )
        if self._outside_window():
            reason = (
                f"this run started beyond the provider's {self.window.describe()} idempotency "
                "window: its drill sends could not be replayed, so none is made (start a new run)"
            )
            return self._record(step, step_title, [_skip("drill.all", "Failure drills", reason)])
        sandbox_url = (
            self.params.provider.base_url if is_sandbox(self.params.provider.base_url) else None
        )
        ctx = DrillContext(
            client=self.client,
            make_client=client_factory(self.client),
            send_from=self.params.test_send.send_from,
            to=self.params.test_send.to,
            endpoint_url=self.params.webhooks.endpoint_url,
            event_store=self.params.event_source.path,
            sandbox_url=sandbox_url,
            key_prefix=idempotency_key_for(self.params.environment, self.run_id, "drills"),
            outage_seconds=self.params.drills.outage_seconds,
            timeout=self.params.drills.timeout_seconds,
            sleep=self._sleep,
            progress=self._progress,
        )
        notes = (
            ()
            if sandbox_url
            else (
                "The provider is not the sandbox: drills that need provider-side control are skipped, not passed.",
            )
        )
        return self._record(step, step_title, run_drills(ctx), notes=notes)

    def webhook_probe(self) -> StepReport:
        """Conformance-probe the integration's webhook endpoint; see :mod:`runbook_lib.probe`."""
        from .probe import StoreReader, run_probe

        step, step_title = "probe", "Webhook conformance probe"
        title = "Webhook endpoint conformance"
        if not self.params.probe.enabled:
            return self._record(
                step, step_title, [_skip("probe.all", title, "probe.enabled is false")]
            )
        hooks = self.params.webhooks
        try:
            secret = secret_from_env(
                hooks.signing_secret_env or "",
                purpose="webhook signing secret",
                environ=self._environ,
            )
        except RunbookError as exc:
            return self._record(step, step_title, [_fail_from("probe.all", title, exc)])
        source = self.params.event_source.path
        result = run_probe(
            hooks.endpoint_url or "",
            secret.reveal().split()[-1],
            reader=StoreReader(source) if source.exists() else None,
            burst=self.params.probe.burst,
            progress=self._progress,
        )
        report = result.report()
        return self._record(step, step_title, list(report.checks), details=report.details)

    # -- 9. release gate ------------------------------------------------------------------------
    def _evidence_rules(self) -> dict[str, Callable[[], tuple[bool, str]]]:
        log = self.client.request_log if self.client else []

        def every_send_has_a_key() -> tuple[bool, str]:
            sends = [r for r in log if r.path.endswith("/messages/send") and not r.deliberate]
            missing = [r for r in sends if not r.idempotency_key]
            recorded = self.sent is not None and self.sent.resumed and self.sent.message_id
            if not sends and recorded:
                return True, (
                    f"the send was accepted earlier in this run under key "
                    f"{self.sent.idempotency_key} (recorded in the ledger; not sent again)"
                )
            if not sends:
                return False, "no send was made in this run"
            return (
                not missing,
                f"{len(sends) - len(missing)} of {len(sends)} send request(s) carried a key",
            )

        def request_ids_recorded() -> tuple[bool, str]:
            answered = [r for r in log if r.status is not None]
            missing = [r for r in answered if not r.request_id]
            return (bool(answered) and not missing,
                    f"{len(answered) - len(missing)} of {len(answered)} answers carried X-Request-Id")  # fmt: skip

        return {
            "every_send_has_a_key": every_send_has_a_key,
            "request_ids_recorded": request_ids_recorded,
        }

    def release_gate(self) -> GateReport:
        """The readiness catalog: PASS, FAIL, ATTESTED or NOT VERIFIED per item; GO or NO-GO."""
        gate = evaluate_gate(
            self.recorder.checks, self.params.attestations, evidence_rules=self._evidence_rules()
        )
        self.recorder.note(gate=gate.to_dict())
        self._record("gate", "Release gate", [gate.as_check()])
        return gate

    # -- 10. changes since the previous go-live -----------------------------------------------
    def changes_since_previous(self, reports_root: str | Path | None = None) -> StepReport:
        """Provider context and check outcomes compared with the previous go-live report here."""
        title = "Since the previous go-live"
        root = Path(reports_root) if reports_root else reports_root_of(self.recorder.report_dir)
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        previous = previous_report(
            root, kind=self.kind, environment=self.params.environment, before=now
        )
        if self.recorder.report_dir is not None and previous == self.recorder.report_dir:
            previous = None
        if previous is None:
            check = Check(
                "changes.previous", title, "SKIP", "no earlier go-live report of this environment"
            )
            return self._record("changes", title, [check])
        drift = diff_snapshots(load_snapshot(previous), self.recorder.facts.get("snapshot") or {})
        before = {c["id"]: c["status"] for c in _summary_checks(previous)}
        changed = [(cid, before.get(cid, "—"), c.status) for c in self.recorder.checks
                   for cid in [c.check_id] if before.get(cid) != c.status and cid in before]  # fmt: skip
        rows = [tuple(map(str, r)) for r in drift] + [
            (f"check {cid}", b, a) for cid, b, a in changed
        ]
        self.recorder.note(changes={"previous": previous.name, "rows": rows})
        check = Check(
            "changes.previous", title, "WARN" if drift else "PASS",
            f"{len(drift)} provider-side change(s), {len(changed)} check(s) changed outcome since {previous.name}"
            if rows else f"nothing changed since {previous.name}",
        )  # fmt: skip
        return self._record(
            "changes",
            title,
            [check],
            tables=(("Changes", ["what", "before", "now"], rows),) if rows else (),
        )

    # -- 11. verdict ---------------------------------------------------------------------------
    def verdict(self) -> Verdict:
        """All checks in one table; closes the run in the ledger."""
        result = Verdict(
            run_id=self.run_id,
            environment=self.params.environment,
            checks=tuple(self.recorder.checks),
        )
        self.ledger.finish_run(self.run_id, result.outcome)
        self.recorder.note(verdict=result.to_dict())
        return result

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.ledger.close()


def _summary_checks(report_dir: Path) -> list[dict[str, Any]]:
    try:
        return json.loads((report_dir / "summary.json").read_text(encoding="utf-8")).get(
            "checks", []
        )
    except (OSError, ValueError):
        return []


def _split_at_acceptance(
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


def _prior_events_check(
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


def _reached(lifecycle: MessageLifecycle, expect: str) -> bool:
    if expect in ("delivered", "failed"):
        return lifecycle.is_terminal
    if expect == "sent":
        return lifecycle.seen("SENT") or lifecycle.is_terminal
    return lifecycle.seen("QUEUED")


def _lifecycle_checks(
    lifecycle: MessageLifecycle | None, expect: str, timeout: float
) -> list[Check]:
    def seen(state: str) -> bool:
        return lifecycle is not None and lifecycle.seen(state)

    def at(state: str) -> str:
        return str(lifecycle.first_seen.get(state)) if lifecycle else ""

    checks = [
        Check(
            "lifecycle.queued",
            "message.queued received",
            "PASS" if seen("QUEUED") else "FAIL",
            f"queued event received at {at('QUEUED')}"
            if seen("QUEUED")
            else f"no message.queued within {timeout:g} s",
            remedy=None
            if seen("QUEUED")
            else "check the receiver and the webhook URL (whoami webhook status).",
        )
    ]
    if expect == "queued":
        return checks
    sent_ok = seen("SENT")
    checks.append(
        Check(
            "lifecycle.sent",
            "message.sent received",
            "PASS" if sent_ok else "FAIL",
            f"sent event received at {at('SENT')}"
            if sent_ok
            else f"no message.sent within {timeout:g} s (still {lifecycle.state if lifecycle else 'unknown'})",
            remedy=None
            if sent_ok
            else "the message is stuck in the provider's queue: raise it with support quoting the messageId.",
        )
    )
    if expect == "sent":
        return checks
    final = lifecycle.state if lifecycle else None
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
    checks.append(
        Check("lifecycle.final", f"Final state {expect.upper()}", status, summary, remedy=remedy)
    )
    return checks


def _events_table(
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
