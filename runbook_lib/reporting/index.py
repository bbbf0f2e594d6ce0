"""The reports index: every run under ``reports/``, newest first, as HTML and JSON.

Rebuilt after every run and by ``runbook reports``; it reads only each run's ``summary.json``,
through :meth:`~runbook_lib.reporting.summary.Summary.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.rendering import badge, esc
from .recorder import write_json_atomic
from .summary import SUMMARY_FILE, Summary

__all__ = ["ReportEntry", "build_index", "previous_summary", "reports_root_of"]

INDEX_HTML, INDEX_JSON = "index.html", "index.json"


@dataclass(frozen=True)
class ReportEntry:
    """One run as the index lists it."""

    path: str
    kind: str
    environment: str
    outcome: str
    started_at: str
    run_id: str | None
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "environment": self.environment,
            "outcome": self.outcome,
            "startedAt": self.started_at,
            "runId": self.run_id,
            "counts": self.counts,
        }


def _summaries(root: Path) -> list[Summary]:
    """Every run's summary under ``root``, newest first (one still being written is skipped)."""
    found = [Summary.load(p.parent) for p in root.glob(f"*/*/{SUMMARY_FILE}")]
    summaries = [s for s in found if s is not None]
    summaries.sort(key=lambda s: (s.started_at, s.path.relative_to(root).as_posix()), reverse=True)
    return summaries


def _entries(root: Path) -> list[ReportEntry]:
    return [
        ReportEntry(
            path=s.path.relative_to(root).as_posix(),
            kind=s.kind,
            environment=s.environment,
            outcome=s.outcome,
            started_at=s.started_at,
            run_id=s.run_id,
            counts=s.counts,
        )
        for s in _summaries(root)
        if s.path is not None
    ]


def reports_root_of(report_dir: Path | None) -> Path:
    """The reports root a run's folder sits in (``root/YYYY-MM-DD/<run>``); ``reports/`` in Lab."""
    if report_dir is not None:
        return report_dir.parent.parent
    return Path(__file__).resolve().parents[2] / "reports"


def previous_summary(
    root: Path, *, kind: str, environment: str, before: str, outcome: str | None = None
) -> Summary | None:
    """The newest summary of ``kind``/``environment`` started before ``before`` (ISO time)."""
    for summary in _summaries(root):
        if summary.kind != kind or summary.environment != environment:
            continue
        if summary.started_at >= before:
            continue
        if outcome is None or summary.outcome == outcome:
            return summary
    return None


def build_index(root: Path) -> Path:
    """Write ``index.json`` and ``index.html`` under ``root``; return the HTML path."""
    root.mkdir(parents=True, exist_ok=True)
    entries = _entries(root)
    write_json_atomic(
        root / INDEX_JSON, {"schemaVersion": 1, "runs": [e.to_dict() for e in entries]}
    )
    rows = "".join(
        "<tr>"
        f"<td>{esc(e.started_at)}</td><td>{esc(e.kind)}</td><td>{esc(e.environment)}</td>"
        f"<td>{badge(e.outcome)}</td>"
        f"<td>{esc(', '.join(f'{v} {k}' for k, v in e.counts.items() if v))}</td>"
        f"<td><a href='{esc(e.path)}/report.html'>{esc(e.path)}</a></td>"
        "</tr>"
        for e in entries
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>Red Cloud runbook reports</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:24px}"
        "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}"
        "table{border-collapse:collapse}</style>"
        f"<h1>Red Cloud runbook reports</h1><p>{len(entries)} run(s), newest first.</p>"
        "<table><thead><tr><th>started (UTC)</th><th>kind</th><th>environment</th>"
        f"<th>outcome</th><th>checks</th><th>report</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    html_path = root / INDEX_HTML
    html_path.write_text(page, encoding="utf-8")
    return html_path
