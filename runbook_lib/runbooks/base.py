"""What every notebook run shares: its parameters, its recorder, and a verdict at the end."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..core.checks import Check, StepReport, Verdict
from ..core.ledger import new_run_id
from ..core.parameters import RunbookParameters
from ..core.rendering import Note
from ..reporting.logs import configure_run_logging
from ..reporting.progress import report_progress
from ..reporting.recorder import RunRecorder
from ..security.privacy import mask_phone

__all__ = ["RecordedRun"]


class RecordedRun:
    """A notebook run that records steps for the report (go-live, trace, audit)."""

    kind = "run"
    # What a check needs (check-id pattern → the check ids it requires); see core.checks
    preconditions: Mapping[str, tuple[str, ...]] = {}
    params: RunbookParameters
    recorder: RunRecorder
    run_id: str

    def _open_recorder(
        self, params: RunbookParameters, run_id: str | None = None, **facts: Any
    ) -> None:
        """Set the run's parameters and id, its recorder and its run.log; note ``facts``."""
        self.params = params
        self.run_id = run_id or new_run_id()
        self.recorder = RunRecorder.from_environment(
            kind=self.kind, environment=params.environment, run_id=self.run_id
        )
        configure_run_logging(self.recorder.report_dir, run_id=self.run_id, level=params.log_level)
        self.recorder.note(runId=self.run_id, environment=params.environment, **facts)

    def _record(
        self,
        step: str,
        title: str,
        checks: list[Check],
        *,
        requires: Sequence[str] = (),
        **kwargs: Any,
    ) -> StepReport:
        """Record a step; each check also requires what :attr:`preconditions` and ``requires``
        (the whole step's) say, so one whose requirement failed is shown BLOCKED by it."""
        checks = [self._with_requirements(c, requires) for c in checks]
        report = self.recorder.add(StepReport(step, title, tuple(checks), **kwargs))
        report_progress(_step_line(report), in_cell=False)  # the console sees each step end
        return report

    def _with_requirements(self, check: Check, requires: Sequence[str]) -> Check:
        declared = [need for pattern, needs in self.preconditions.items()
                    if fnmatch.fnmatchcase(check.check_id, pattern) for need in needs]  # fmt: skip
        merged = tuple(dict.fromkeys([*check.requires, *declared, *requires]))
        return replace(check, requires=merged) if merged != check.requires else check

    def unmet_requirement(self, check_id: str, *extra: str) -> Check | None:
        """The first check recorded so far that ``check_id`` requires (by :attr:`preconditions`,
        or ``extra``) and that FAILed or is BLOCKED; None when nothing it needs failed. A step
        asks this before it acts: what depends on a failed check is not done."""
        wanted = self._with_requirements(Check(check_id, check_id, "SKIP", ""), extra)
        return next(
            (c for c in self.recorder.checks if not c.met and wanted.needs(c.check_id)), None
        )

    def about(self) -> Note:
        """What this run is, as the notebook's first output reads it (no quoted Python string)."""
        from ..providers.base import get_provider

        provider = get_provider(self.params.provider.kind).title
        return Note(f"{self.kind} run {self.run_id} — {provider}, environment "
                    f"{self.params.environment}{self._about_detail()}")  # fmt: skip

    def _about_detail(self) -> str:
        return ""

    def show_phone(self, number: str | None) -> str | None:
        """A phone number as reports may show it (masked unless privacy.mask_destinations is off)."""
        return mask_phone(number) if self.params.privacy.mask_destinations else number

    def verdict(self) -> Verdict:
        """All checks of the run in one table."""
        result = Verdict(
            run_id=self.run_id,
            environment=self.params.environment,
            checks=tuple(self.recorder.checks),
        )
        self.recorder.note(verdict=result.to_dict())
        return result


def _step_line(report: StepReport) -> str:
    """One console line for a finished step: its status and what failed."""
    counts: dict[str, int] = {}
    for check in report.checks:
        counts[check.status] = counts.get(check.status, 0) + 1
    tally = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    failed = [c.title for c in report.checks if c.status == "FAIL"][:3]
    roots = sorted({c.blocked_by for c in report.checks if c.blocked_by})
    return (
        f"step {report.title}: {report.status} ({tally})"
        + (f" — failed: {'; '.join(failed)}" if failed else "")
        + (f" — blocked by {', '.join(roots)}" if roots else "")
    )
