"""The run recorder: every step's result, written as the run goes, for the summary JSON.

Under the CLI the report folder is handed to the kernel in ``RUNBOOK_REPORT_DIR``; each step
rewrites ``evidence.json`` there atomically, so a run that dies half-way still leaves what it
found. In Lab (no report folder) results stay in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.checks import Check, StepReport, resolve_blocked

__all__ = ["EVIDENCE_FILE", "REPORT_DIR_ENV", "RunRecorder"]

REPORT_DIR_ENV = "RUNBOOK_REPORT_DIR"
EVIDENCE_FILE = "evidence.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunRecorder:
    """Collects step reports and run facts; mirrors them to ``evidence.json`` when asked to."""

    def __init__(
        self, *, kind: str, environment: str, run_id: str, report_dir: Path | None
    ) -> None:
        self.kind = kind
        self.environment = environment
        self.run_id = run_id
        self.report_dir = report_dir
        self.steps: dict[str, StepReport] = {}
        self.facts: dict[str, Any] = {}

    @classmethod
    def from_environment(cls, *, kind: str, environment: str, run_id: str) -> RunRecorder:
        folder = os.environ.get(REPORT_DIR_ENV)
        return cls(
            kind=kind,
            environment=environment,
            run_id=run_id,
            report_dir=Path(folder) if folder else None,
        )

    def resolved_steps(self) -> list[StepReport]:
        """The steps as recorded, with every check whose requirement failed BLOCKED.

        Resolved over the whole run each time, so a root cause found by a later step blocks what
        an earlier one recorded, and a re-run cell that now passes unblocks its dependants.
        """
        steps = list(self.steps.values())
        resolved = iter(resolve_blocked(c for s in steps for c in s.checks))
        return [replace(s, checks=tuple(next(resolved) for _ in s.checks)) for s in steps]

    @property
    def checks(self) -> list[Check]:
        return [c for step in self.resolved_steps() for c in step.checks]

    def add(self, step: StepReport) -> StepReport:
        """Record ``step``; returns it as the run resolves it so far (BLOCKED checks shown so)."""
        # Re-running a cell replaces that step's result instead of adding a second copy.
        self.steps[step.step] = step
        self.flush()
        return next(s for s in self.resolved_steps() if s.step == step.step)

    def note(self, **facts: Any) -> None:
        self.facts.update(facts)
        self.flush()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "environment": self.environment,
            "runId": self.run_id,
            "steps": [s.to_dict() for s in self.resolved_steps()],
            "facts": self.facts,
        }

    def flush(self) -> None:
        if self.report_dir is None:
            return
        self.report_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.report_dir / EVIDENCE_FILE, self.to_dict())
