"""The reports index: every run under ``reports/``, newest first, as HTML, JSON and console text.

Rebuilt after every run and by ``runbook reports``; it reads only each run's ``summary.json``,
through :meth:`~runbook_lib.reporting.summary.Summary.load`. Each run shows its kind, environment,
outcome, GO/NO-GO, failure domain and exit code. A run folder without a (readable) summary is
listed as INCOMPLETE (still running, or killed), not dropped; runs refused before anything ran
(exit 3) are listed apart. The HTML filters by environment and kind with CSS alone (no script,
nothing loaded from elsewhere), so it works offline and from a file share.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.rendering import badge, esc, show
from .recorder import write_json_atomic
from .summary import SUMMARY_FILE, Summary, parse_report_dir_name

__all__ = [
    "ReportEntry",
    "ReportIndex",
    "build_index",
    "previous_summary",
    "read_index",
    "reports_root_of",
]

INDEX_HTML, INDEX_JSON = "index.html", "index.json"
INCOMPLETE = "INCOMPLETE"


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
    gate: str | None = None  # GO / NO-GO, when the run reached its release gate
    failure_domain: str | None = None  # what an audit found (healthy, auth, provider, ...)
    exit_code: int | None = None  # None: the run never wrote its summary
    error: str | None = None
    never_started: bool = False  # refused its input before anything ran (exit 3)

    @classmethod
    def of(cls, summary: Summary, path: str) -> ReportEntry:
        return cls(
            path=path,
            kind=summary.kind,
            environment=summary.environment,
            outcome=summary.outcome,
            started_at=summary.started_at,
            run_id=summary.run_id,
            counts=summary.counts,
            gate=summary.gate_verdict,
            failure_domain=summary.failure_domain_name,
            exit_code=summary.exit_code,
            error=summary.error,
            never_started=summary.never_started,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "environment": self.environment,
            "outcome": self.outcome,
            "startedAt": self.started_at,
            "runId": self.run_id,
            "counts": self.counts,
            "gate": self.gate,
            "failureDomain": self.failure_domain,
            "exitCode": self.exit_code,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReportIndex:
    """The runs of a reports root: ``runs`` (newest first) and those that ``never_started``."""

    runs: tuple[ReportEntry, ...] = ()
    never_started: tuple[ReportEntry, ...] = ()
    filters: dict[str, str] = field(default_factory=dict)

    def filtered(self, *, environment: str | None = None, kind: str | None = None) -> ReportIndex:
        """Only the runs of ``environment`` and ``kind`` (None: any)."""

        def keep(e: ReportEntry) -> bool:
            return (environment in (None, e.environment)) and (kind in (None, e.kind))

        chosen = {k: v for k, v in (("environment", environment), ("kind", kind)) if v}
        return replace(
            self,
            runs=tuple(e for e in self.runs if keep(e)),
            never_started=tuple(e for e in self.never_started if keep(e)),
            filters=chosen,
        )

    @property
    def environments(self) -> list[str]:
        return sorted({e.environment for e in (*self.runs, *self.never_started)})

    @property
    def kinds(self) -> list[str]:
        return sorted({e.kind for e in (*self.runs, *self.never_started)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": 2,
            "runs": [e.to_dict() for e in self.runs],
            "neverStarted": [e.to_dict() for e in self.never_started],
        }

    # -- console ---------------------------------------------------------------------------------
    def text(self) -> str:
        """The index as ``runbook reports`` prints it: aligned columns, one run a line."""
        if not self.runs and not self.never_started:
            what = " ".join(f"{k} {v}" for k, v in self.filters.items())
            return f"no run{' of ' + what if what else ''} under this reports root."
        head = ("started (UTC)", "kind", "environment", "outcome", "GO/NO-GO", "failure domain",
                "exit", "report")  # fmt: skip
        rows = [
            (e.started_at, e.kind, e.environment, e.outcome, e.gate or "—",
             e.failure_domain or "—", "—" if e.exit_code is None else str(e.exit_code), e.path)
            for e in self.runs
        ]  # fmt: skip
        lines = [f"{len(self.runs)} run(s), newest first:"] + _columns(head, rows)
        if self.never_started:
            lines.append(f"\n{len(self.never_started)} run(s) never started (exit 3, bad input):")
            lines += _columns(
                ("started (UTC)", "kind", "environment", "what was wrong", "report"),
                [(e.started_at, e.kind, e.environment, _first_line(e.error), e.path)
                 for e in self.never_started],
            )  # fmt: skip
        return "\n".join(lines)

    # -- HTML ------------------------------------------------------------------------------------
    def html(self) -> str:
        envs, kinds = self.environments, self.kinds
        env_n = {v: i for i, v in enumerate(envs)}
        kind_n = {v: i for i, v in enumerate(kinds)}

        def row_class(e: ReportEntry) -> str:
            return f"r e{env_n[e.environment]} k{kind_n[e.kind]}"

        def link(e: ReportEntry) -> str:
            return f"<a href='{esc(e.path)}/report.html'>{esc(e.path)}</a>"

        runs = "".join(
            f"<tr class='{row_class(e)}'>"
            f"<td>{esc(e.started_at)}</td><td>{esc(e.kind)}</td><td>{esc(e.environment)}</td>"
            f"<td title='{esc(_outcome_hint(e))}'>{badge(e.outcome)}</td>"
            f"<td>{badge(e.gate) if e.gate else '—'}</td>"
            f"<td>{esc(e.failure_domain or '—')}</td>"
            f"<td>{esc(show(e.exit_code))}</td>"
            f"<td>{esc(', '.join(f'{v} {k.lower()}' for k, v in e.counts.items() if v) or '—')}</td>"
            f"<td>{link(e)}</td></tr>"
            for e in self.runs
        )
        never = "".join(
            f"<tr class='{row_class(e)}'><td>{esc(e.started_at)}</td><td>{esc(e.kind)}</td>"
            f"<td>{esc(e.environment)}</td><td class='why'>{esc(e.error or '—')}</td><td>{link(e)}</td></tr>"
            for e in self.never_started
        )
        # One radio per value, before everything it filters: `:checked ~` hides what does not match.
        radios, rules, env_labels, kind_labels = [], [], [], []
        for group, values, letter, labels in (
            ("env", envs, "e", env_labels),
            ("kind", kinds, "k", kind_labels),
        ):
            radios.append(f"<input type='radio' class='fi' name='{group}' id='f{letter}' checked>")
            labels.append(f"<label for='f{letter}'>all</label>")
            for i, value in enumerate(values):
                radios.append(f"<input type='radio' class='fi' name='{group}' id='f{letter}{i}'>")
                labels.append(f"<label for='f{letter}{i}'>{esc(value)}</label>")
                rules.append(f"#f{letter}{i}:checked~* .r:not(.{letter}{i}){{display:none}}")
            rules += [f"#f{letter}{i}:checked~.filters label[for=f{letter}{i}]"
                      "{background:#0969da;color:#fff}" for i in ("", *range(len(values)))]  # fmt: skip
        never_section = (
            "<section><h2>Runs that never started</h2><p>Refused before anything ran (exit 3): "
            "the parameter file or a setting was wrong. Each says what to fix.</p>"
            "<table><thead><tr><th>started (UTC)</th><th>kind</th><th>environment</th>"
            f"<th>what was wrong</th><th>report</th></tr></thead><tbody>{never}</tbody></table>"
            "</section>"
            if self.never_started
            else ""
        )
        return (
            "<!doctype html><meta charset='utf-8'><title>Runbook reports</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:24px}"
            "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top;"
            "white-space:nowrap}td.why{white-space:normal}"
            "table{border-collapse:collapse}.fi{position:absolute;opacity:0;pointer-events:none}"
            ".filters label{display:inline-block;border:1px solid #d0d7de;border-radius:12px;"
            "padding:1px 9px;margin:2px;cursor:pointer}.filters b{display:inline-block;width:7em}"
            + "".join(rules)
            + "</style><h1>Runbook reports</h1>"
            + "".join(radios)
            + "<div class='filters'>"
            f"<div><b>environment</b>{''.join(env_labels)}</div>"
            f"<div><b>kind</b>{''.join(kind_labels)}</div></div>"
            f"<section><p>{len(self.runs)} run(s), newest first"
            + (f"; {len(self.never_started)} that never started are listed below" if never else "")
            + ".</p><table><thead><tr><th>started (UTC)</th><th>kind</th><th>environment</th>"
            "<th>outcome</th><th>GO/NO-GO</th><th>failure domain</th><th>exit code</th>"
            f"<th>checks</th><th>report</th></tr></thead><tbody>{runs}</tbody></table></section>"
            + never_section
        )


def _columns(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in [head, *rows]]  # fmt: skip


def _first_line(text: str | None) -> str:
    return (text or "—").splitlines()[0] if text else "—"


def _outcome_hint(entry: ReportEntry) -> str:
    if entry.outcome == INCOMPLETE:
        return "no summary.json: the run is still going, or it was killed before it finished"
    return entry.error or entry.outcome


def _summaries(root: Path) -> list[Summary]:
    """Every run's summary under ``root``, newest first (one still being written is skipped)."""
    found = [Summary.load(p.parent) for p in root.glob(f"*/*/{SUMMARY_FILE}")]
    summaries = [s for s in found if s is not None]
    summaries.sort(key=lambda s: (s.started_at, s.path.relative_to(root).as_posix()), reverse=True)
    return summaries


def read_index(root: Path) -> ReportIndex:
    """Every run folder under ``root``: its summary, or INCOMPLETE when it has none readable."""
    entries = []
    for folder in root.glob("*/*/"):
        if not folder.is_dir():
            continue
        rel = folder.relative_to(root).as_posix()
        summary = Summary.load(folder)
        if summary is not None:
            entries.append(ReportEntry.of(summary, rel))
            continue
        named = parse_report_dir_name(folder)
        if named is None:  # not a run's folder
            continue
        kind, environment, started_at = named
        entries.append(
            ReportEntry(
                path=rel,
                kind=kind,
                environment=environment,
                outcome=INCOMPLETE,
                started_at=started_at,
                run_id=None,
                counts={},
            )  # fmt: skip
        )
    entries.sort(key=lambda e: (e.started_at, e.path), reverse=True)
    return ReportIndex(
        runs=tuple(e for e in entries if not e.never_started),
        never_started=tuple(e for e in entries if e.never_started),
    )


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


def build_index(root: Path, index: ReportIndex | None = None) -> Path:
    """Write ``index.json`` and ``index.html`` under ``root``; return the HTML path."""
    root.mkdir(parents=True, exist_ok=True)
    index = index or read_index(root)
    write_json_atomic(root / INDEX_JSON, index.to_dict())
    html_path = root / INDEX_HTML
    html_path.write_text(index.html(), encoding="utf-8")
    return html_path
