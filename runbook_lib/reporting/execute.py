"""Dated audit reports: execute a notebook with papermill, then write summary JSON and HTML.

``reports/YYYY-MM-DD/<kind>-<env>-<HHMMSS>Z-<short id>/`` holds ``report.ipynb`` (executed),
``report.html`` (verdict first, code hidden) and ``summary.json`` (schema below). A failing cell
still leaves all three, saying which cell failed and why.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.invocation import INVOKED_BY_ENV
from ..security.leakguard import SecretChannel, scan_and_redact
from ..security.secrets import REGISTRY
from .html import verdict_html, warm_html_exporter, write_html
from .kernels import PrivateKernels, stop_promptly
from .notebook_format import load_nbformat, load_papermill
from .progress import ProgressChannel
from .recorder import EVIDENCE_FILE, REPORT_DIR_ENV
from .summary import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_NOTEBOOK_ERROR,
    EXIT_OK,
    EXIT_SECRET_LEAK,
    NOTEBOOK_FILE,
    SUMMARY_SCHEMA_VERSION,
    Summary,
    report_dir_name,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_NOTEBOOK_ERROR",
    "EXIT_OK",
    "EXIT_SECRET_LEAK",
    "SUMMARY_SCHEMA_VERSION",
    "NotebookRun",
    "execute_report",
    "new_report_dir",
    "write_config_error_report",
]


def new_report_dir(root: Path, kind: str, environment: str, *, now: datetime | None = None) -> Path:
    """A fresh dated folder; the short id keeps two runs in the same second apart."""
    now = now or datetime.now(UTC)
    folder = root / f"{now:%Y-%m-%d}" / report_dir_name(kind, environment, now)
    folder.mkdir(parents=True, exist_ok=False)
    return folder


@dataclass(frozen=True)
class NotebookRun:
    """How the papermill execution ended."""

    report_dir: Path
    summary: Summary

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code

    @property
    def outcome(self) -> str:
        return self.summary.outcome


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


_INJECTED_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def _failed_cell(nb: NotebookNode) -> dict[str, Any] | None:
    """The failing cell, named as the notebook file numbers it and as papermill does (In [n]).

    Cells papermill adds to the executed copy (injected parameters, its error banner) are not
    counted, so ``cellIndex`` is the cell's index in the notebook a person opens.
    """
    section = None
    index = -1
    for cell in nb.cells:
        if _INJECTED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        index += 1
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            section = cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return {
                    "cellIndex": index,
                    "executionCount": cell.get("execution_count"),
                    "section": section,
                    "error": output.get("ename"),
                    "message": str(output.get("evalue", ""))[:500],
                }
    return None


def execute_report(
    *,
    kind: str,
    notebook: Path,
    report_dir: Path,
    environment: str,
    parameters: dict[str, Any],
    cwd: Path,
    run_id: str | None = None,
    extra_env: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    invoked_by: str = "cli",
    lock_taken_over: dict[str, Any] | None = None,
) -> NotebookRun:
    """Run ``notebook`` under papermill into ``report_dir`` and write summary + HTML, always.

    ``lock_taken_over`` (the run whose stale environment lock the caller took over) goes into
    the summary as ``lockTakenOver`` whatever the notebook did, so a scheduler sees it.

    ``progress`` receives the run's progress lines while it runs (the CLI prints them);
    ``invoked_by`` tells the kernel who runs it, so its fixes name the CLI's flags
    (:mod:`runbook_lib.core.invocation`).
    """
    papermill = load_papermill()
    from papermill.exceptions import PapermillExecutionError

    started = datetime.now(UTC)
    t0 = time.monotonic()
    output = report_dir / NOTEBOOK_FILE
    channel = SecretChannel().__enter__()
    live = ProgressChannel(progress).__enter__() if progress else None
    kernel_env = {REPORT_DIR_ENV: str(report_dir), INVOKED_BY_ENV: invoked_by, **channel.env,
                  **(live.env if live else {}), **(extra_env or {})}  # fmt: skip
    saved_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    error: str | None = None
    kernels = PrivateKernels()
    warm_html_exporter()  # while the kernel runs, this process mostly waits on it
    try:
        with stop_promptly(kernels):
            papermill.execute_notebook(
                _relative(notebook, cwd),
                _relative(output, cwd),
                parameters=parameters,
                cwd=str(cwd),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                report_mode=False,
                kernel_manager_class=kernels.manager_class(),
            )
    except PapermillExecutionError:
        pass  # the failing cell is read back from the executed notebook below
    except Exception as exc:  # kernel died, notebook unreadable: still leave a report
        error = f"{type(exc).__name__}: {exc}"
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        channel.__exit__(None, None, None)
        if live is not None:
            live.__exit__(None, None, None)
        kernels.close()
    evidence_path = report_dir / EVIDENCE_FILE
    evidence = json.loads(evidence_path.read_text()) if evidence_path.exists() else {}
    failed_cell = (
        _failed_cell(load_nbformat().read(output, as_version=4)) if output.exists() else None
    )
    summary = Summary.from_evidence(
        evidence,
        kind=kind,
        environment=environment,
        run_id=run_id,
        started=started,
        failed_cell=failed_cell,
        error=error,
    )
    summary = replace(
        summary,
        duration_seconds=round(time.monotonic() - t0, 2),
        lock_taken_over=lock_taken_over,
    )
    return _finish(report_dir, summary, [*REGISTRY.items(), *channel.received], cwd)


def _finish(
    report_dir: Path, summary: Summary, secrets: list[tuple[str, str]], cwd: Path
) -> NotebookRun:
    """Write summary and HTML, then let the leak guard scan and redact every artifact.

    The HTML is rebuilt after the scan from the redacted notebook and the summary that carries the
    leak guard's result, and scanned once more. When the scan left the notebook as it was and the
    header reads the same, that rebuild would render the very same page (the HTML on disk is
    already scanned), so it is skipped.
    """
    notebook = report_dir / NOTEBOOK_FILE
    summary.write(report_dir)
    notebook_before = _contents(notebook)
    header = write_html(report_dir, summary)
    leak = scan_and_redact(report_dir, secrets=secrets, project_root=cwd)
    redacted = Summary.load(report_dir) or summary  # what the guard left of it
    error = None
    if not leak.clean:
        error = "a secret value was found in the artifacts (now redacted): " + "; ".join(
            f"{h.label} ({h.encoding}) in {h.artifact}" for h in leak.hits
        )
    summary = redacted.with_leak_guard(leak.to_dict(), error=error)
    summary.write(report_dir)
    if _contents(notebook) != notebook_before or verdict_html(summary) != header:
        write_html(report_dir, summary)
        scan_and_redact(
            report_dir, secrets=secrets, project_root=cwd
        )  # the rebuilt HTML, once more
    return NotebookRun(report_dir=report_dir, summary=summary)


def _contents(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def write_config_error_report(
    report_dir: Path, *, kind: str, environment: str, message: str
) -> NotebookRun:
    """Bad input found before execution: a summary and HTML that say what to fix (exit 3)."""
    summary = Summary.from_evidence(
        {},
        kind=kind,
        environment=environment,
        run_id=None,
        started=datetime.now(UTC),
        error=message,
        outcome=("BAD_INPUT", EXIT_BAD_INPUT),
    )
    return _finish(report_dir, summary, REGISTRY.items(), Path.cwd())
