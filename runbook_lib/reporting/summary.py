"""``summary.json``: the machine-readable result of a run, written and read here only.

:meth:`Summary.from_evidence` builds it from what the run recorded (``evidence.json``), computing
the outcome and the counts once; :meth:`Summary.write` writes it; :meth:`Summary.load` is the one
reader (the CLI's printout, the reports index, the previous report a go-live compares with, the
drift snapshot an audit reads, the HTML verdict). Checks come back as :class:`Check` objects.

Schema (``schemaVersion`` 1), camelCase keys: kind, environment, runId, startedAt, finishedAt,
outcome, exitCode, counts, rootCauses, checks, steps, messages, requestIds, gate, snapshot, changes,
failureDomain, status, window, rehearsalExcluded, failedCell, error, artifacts, durationSeconds,
leakGuard.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.checks import STATUSES, Check, RootCause, Verdict, root_causes
from ..core.invocation import NOTEBOOK_FOR
from .recorder import write_json_atomic

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_NOTEBOOK_ERROR",
    "EXIT_OK",
    "EXIT_SECRET_LEAK",
    "SUMMARY_FILE",
    "SUMMARY_SCHEMA_VERSION",
    "Summary",
    "failed_cell_name",
    "parse_report_dir_name",
    "report_dir_name",
]

SUMMARY_SCHEMA_VERSION = 1
SUMMARY_FILE = "summary.json"
NOTEBOOK_FILE, HTML_FILE = "report.ipynb", "report.html"
EXIT_OK, EXIT_CHECK_FAILED, EXIT_NOTEBOOK_ERROR, EXIT_BAD_INPUT, EXIT_SECRET_LEAK = 0, 1, 2, 3, 4
_GATE_KEEP = ("verdict", "counts", "blockingUnmet", "missingAttestations", "expiredAttestations",
              "rehearsalAttestations")  # fmt: skip


# A run's folder: reports/YYYY-MM-DD/<kind>-<environment>-<HHMMSS>Z-<6 hex>; written and read here.
_RUN_DIR = re.compile(
    rf"^(?P<kind>{'|'.join(map(re.escape, NOTEBOOK_FOR))})-(?P<env>.+)-(?P<hms>\d{{6}})Z-[0-9a-f]{{6}}$"
)


def report_dir_name(kind: str, environment: str, now: datetime) -> str:
    """The folder name of a run started at ``now`` (the short id keeps two in one second apart)."""
    return f"{kind}-{environment}-{now:%H%M%S}Z-{secrets.token_hex(3)}"


def parse_report_dir_name(folder: Path) -> tuple[str, str, str] | None:
    """``(kind, environment, startedAt)`` of a run folder ``YYYY-MM-DD/<name>``; None otherwise."""
    match = _RUN_DIR.match(folder.name)
    day = folder.parent.name
    if match is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        return None
    h = match["hms"]
    return match["kind"], match["env"], f"{day}T{h[:2]}:{h[2:4]}:{h[4:]}Z"


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_from_dict(data: dict[str, Any]) -> Check:
    """A check as ``Check.to_dict`` wrote it."""
    return Check(
        data["id"],
        data["title"],
        data["status"],
        data["summary"],
        data.get("evidence", {}),
        tuple(data.get("requestIds", [])),
        data.get("remedy"),
        tuple(data.get("requires", [])),
        data.get("blockedBy"),
        bool(data.get("asked", True)),
    )


def _outcome(
    checks: tuple[Check, ...], reached_verdict: bool, failed_cell: Any, error: str | None
) -> tuple[str, int]:
    if failed_cell or error:
        return "ERROR", EXIT_NOTEBOOK_ERROR
    if not checks:
        return "ERROR", EXIT_NOTEBOOK_ERROR
    if any(not c.met for c in checks):  # a FAIL, or a check BLOCKED by one
        return "FAIL", EXIT_CHECK_FAILED
    if not reached_verdict:
        return "ERROR", EXIT_NOTEBOOK_ERROR  # never reached its verdict cell
    return "PASS", EXIT_OK


def _rehearsal_excluded(facts: dict[str, Any]) -> dict[str, int] | None:
    """How much of the runbook's own drill and probe traffic an audit left out, when it counted."""
    found = {
        key: int(facts[name])
        for key, name in (("events", "rehearsalEventsExcluded"),
                          ("deliveries", "rehearsalDeliveriesExcluded"))
        if facts.get(name) is not None
    }  # fmt: skip
    return found or None


@dataclass(frozen=True)
class Summary:
    """One run's ``summary.json``, typed."""

    kind: str
    environment: str
    run_id: str | None
    started_at: str
    finished_at: str
    outcome: str
    exit_code: int
    checks: tuple[Check, ...] = ()
    steps: tuple[dict[str, Any], ...] = ()
    messages: tuple[dict[str, Any], ...] = ()
    request_ids: tuple[str, ...] = ()
    gate: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None
    changes: dict[str, Any] | None = None
    failure_domain: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    window: dict[str, Any] | None = None
    rehearsal_excluded: dict[str, int] | None = (
        None  # the runbook's own drill/probe traffic left out
    )
    failed_cell: dict[str, Any] | None = None
    error: str | None = None
    # the run whose stale lock this one took over (pid, runId, startedAt, host, kind), if any
    lock_taken_over: dict[str, Any] | None = None
    duration_seconds: float | None = None
    leak_guard: dict[str, Any] | None = None
    schema_version: int = SUMMARY_SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)  # the report folder it was read from

    # -- built from a run ------------------------------------------------------------------------
    @classmethod
    def from_evidence(
        cls,
        evidence: dict[str, Any],
        *,
        kind: str,
        environment: str,
        run_id: str | None,
        started: datetime,
        failed_cell: dict[str, Any] | None = None,
        error: str | None = None,
        outcome: tuple[str, int] | None = None,
    ) -> Summary:
        """What the recorder wrote, with the outcome and counts computed here, once."""
        steps = evidence.get("steps", [])
        checks = tuple(check_from_dict(c) for step in steps for c in step.get("checks", []))
        facts = evidence.get("facts", {})
        if outcome is None and facts.get("badInput") and not failed_cell:
            # the notebook refused its input (e.g. a trace with no target) and said what to set
            outcome, error = ("BAD_INPUT", EXIT_BAD_INPUT), error or str(facts["badInput"])
        result, exit_code = outcome or _outcome(
            checks, bool(facts.get("verdict")), failed_cell, error
        )
        gate = facts.get("gate")
        return cls(
            kind=kind,
            environment=environment,
            run_id=run_id or evidence.get("runId"),
            started_at=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            finished_at=_iso_now(),
            outcome=result,
            exit_code=exit_code,
            checks=checks,
            steps=tuple(
                {"step": s["step"], "title": s["title"], "status": s["status"]} for s in steps
            ),
            messages=tuple(facts.get("messages", [])),
            request_ids=tuple(facts.get("requestIds", [])),
            gate={k: gate.get(k) for k in _GATE_KEEP} if gate else None,
            snapshot=facts.get("snapshot"),
            changes=facts.get("changes"),
            failure_domain=facts.get("failureDomain"),
            status=facts.get("status"),
            window=facts.get("window"),
            rehearsal_excluded=_rehearsal_excluded(facts),
            failed_cell=failed_cell,
            error=error,
        )

    def with_leak_guard(self, leak: dict[str, Any], *, error: str | None = None) -> Summary:
        """The summary after the leak guard: a leak turns the outcome into SECRET_LEAK (exit 4)."""
        if error is None:
            return replace(self, leak_guard=leak)
        return replace(
            self, leak_guard=leak, outcome="SECRET_LEAK", exit_code=EXIT_SECRET_LEAK, error=error
        )

    # -- derived -----------------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}

    @property
    def root_causes(self) -> list[RootCause]:
        """The FAILs nothing blocked, each with how many checks it blocked (most first)."""
        return root_causes(self.checks)

    def verdict(self) -> Verdict:
        """The verdict table of the HTML report (the failing cell named as the error)."""
        error = self.error
        if self.failed_cell:
            f = self.failed_cell
            error = f"{failed_cell_name(f)} raised {f['error']}: {f['message']}"
        return Verdict(
            run_id=self.run_id or "-", environment=self.environment, checks=self.checks, error=error
        )

    @property
    def gate_verdict(self) -> str | None:
        """GO or NO-GO when the run reached its release gate (go-live), else None."""
        return (self.gate or {}).get("verdict")

    @property
    def failure_domain_name(self) -> str | None:
        """The failure domain an audit named (``healthy`` when none); for another run that failed,
        its root cause(s) first (``root cause auth.token``); else None."""
        if self.failure_domain:
            return self.failure_domain.get("domain")
        causes = self.root_causes
        if not causes:
            return None
        return (
            "root cause "
            + ", ".join(r.check.check_id for r in causes[:2])
            + (f" (+{len(causes) - 2})" if len(causes) > 2 else "")
        )

    @property
    def never_started(self) -> bool:
        """Refused its input before anything ran (exit 3): a bad parameter file, no target."""
        return self.exit_code == EXIT_BAD_INPUT

    def check_statuses(self) -> dict[str, str]:
        return {c.check_id: c.status for c in self.checks}

    # -- the file ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schemaVersion": self.schema_version,
            "kind": self.kind,
            "environment": self.environment,
            "runId": self.run_id,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "outcome": self.outcome,
            "exitCode": self.exit_code,
            "counts": self.counts,
            "rootCauses": [r.to_dict() for r in self.root_causes],
            "checks": [c.to_dict() for c in self.checks],
            "steps": list(self.steps),
            "messages": list(self.messages),
            "requestIds": list(self.request_ids),
            "gate": self.gate,
            "snapshot": self.snapshot,
            "changes": self.changes,
            "failureDomain": self.failure_domain,
            "status": self.status,
            "window": self.window,
            "rehearsalExcluded": self.rehearsal_excluded,
            "failedCell": self.failed_cell,
            "error": self.error,
            "lockTakenOver": self.lock_taken_over,
            "artifacts": {"notebook": NOTEBOOK_FILE, "html": HTML_FILE, "summary": SUMMARY_FILE},
        }
        if self.duration_seconds is not None:
            data["durationSeconds"] = self.duration_seconds
        if self.leak_guard is not None:
            data["leakGuard"] = self.leak_guard
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: Path | None = None) -> Summary:
        return cls(
            kind=str(data.get("kind", "?")),
            environment=str(data.get("environment", "?")),
            run_id=data.get("runId"),
            started_at=str(data.get("startedAt", "")),
            finished_at=str(data.get("finishedAt", "")),
            outcome=str(data.get("outcome", "?")),
            exit_code=int(data.get("exitCode", EXIT_NOTEBOOK_ERROR)),
            checks=tuple(check_from_dict(c) for c in data.get("checks", [])),
            steps=tuple(data.get("steps", [])),
            messages=tuple(data.get("messages", [])),
            request_ids=tuple(data.get("requestIds", [])),
            gate=data.get("gate"),
            snapshot=data.get("snapshot"),
            changes=data.get("changes"),
            failure_domain=data.get("failureDomain"),
            status=data.get("status"),
            window=data.get("window"),
            rehearsal_excluded=data.get("rehearsalExcluded"),
            failed_cell=data.get("failedCell"),
            error=data.get("error"),
            lock_taken_over=data.get("lockTakenOver"),
            duration_seconds=data.get("durationSeconds"),
            leak_guard=data.get("leakGuard"),
            schema_version=int(data.get("schemaVersion", SUMMARY_SCHEMA_VERSION)),
            path=path,
        )

    def write(self, report_dir: Path) -> Path:
        path = report_dir / SUMMARY_FILE
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, report_dir: Path | None) -> Summary | None:
        """The summary of ``report_dir``; None when there is none (yet) or it is damaged."""
        if report_dir is None:
            return None
        try:
            data = json.loads((report_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                return None
            return cls.from_dict(data, path=report_dir)
        except (OSError, ValueError, KeyError, TypeError):
            return None


def failed_cell_name(cell: dict[str, Any]) -> str:
    """The failing cell as both the notebook and papermill name it: ``cell 5 (In [4], section …)``."""
    count = cell.get("executionCount")
    shown = f"In [{count}], " if count is not None else ""
    return f"cell {cell['cellIndex']} ({shown}section “{cell.get('section') or '?'}”)"
