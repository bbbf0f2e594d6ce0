"""What every notebook run shares: its parameters, its recorder, and a verdict at the end."""

from __future__ import annotations

from typing import Any

from ..core.checks import Check, StepReport, Verdict
from ..core.ledger import new_run_id
from ..core.parameters import RunbookParameters
from ..reporting.logs import configure_run_logging
from ..reporting.progress import report_progress
from ..reporting.recorder import RunRecorder
from ..security.privacy import mask_phone

__all__ = ["RecordedRun"]


class RecordedRun:
    """A notebook run that records steps for the report (go-live, trace, audit)."""

    kind = "run"
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

    def _record(self, step: str, title: str, checks: list[Check], **kwargs: Any) -> StepReport:
        report = self.recorder.add(StepReport(step, title, tuple(checks), **kwargs))
        report_progress(_step_line(report), in_cell=False)  # the console sees each step end
        return report

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
    return f"step {report.title}: {report.status} ({tally})" + (
        f" — failed: {'; '.join(failed)}" if failed else ""
    )
