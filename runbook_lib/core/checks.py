"""Result objects: a check, a step of checks, and the verdict — each renders itself.

``_repr_html_`` is what Lab and the HTML report show; ``to_dict`` is what goes into the summary
JSON. Nothing here imports IPython.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .rendering import badge, esc, kv_table, rows_table

__all__ = ["Check", "ProviderSteps", "Status", "StepReport", "Verdict"]

Status = Literal["PASS", "FAIL", "WARN", "SKIP"]


@dataclass(frozen=True)
class Check:
    """One verified expectation, with the evidence and request ids behind it."""

    check_id: str
    title: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    request_ids: tuple[str, ...] = ()
    remedy: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check_id,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "evidence": self.evidence,
            "requestIds": list(self.request_ids),
            "remedy": self.remedy,
        }

    def _repr_html_(self) -> str:
        return _checks_table([self])


def _checks_table(checks: Sequence[Check]) -> str:
    rows = []
    for c in checks:
        note = esc(c.summary)
        if c.remedy and c.status in ("FAIL", "WARN"):
            note += f"<br><b>Fix:</b> {esc(c.remedy)}"
        rids = ", ".join(c.request_ids[:4]) + (" …" if len(c.request_ids) > 4 else "")
        rows.append((badge(c.status), esc(c.title), note, esc(rids)))
    return rows_table(["Status", "Check", "Result", "requestIds"], rows, raw=(0, 1, 2, 3))


@dataclass(frozen=True)
class StepReport:
    """What one runbook step found: its checks plus optional detail tables."""

    step: str
    title: str
    checks: tuple[Check, ...]
    details: dict[str, Any] = field(default_factory=dict)
    tables: tuple[tuple[str, Sequence[str], Sequence[Sequence[Any]]], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        statuses = {c.status for c in self.checks}
        for s in ("FAIL", "WARN", "PASS"):
            if s in statuses:
                return s  # type: ignore[return-value]
        return "SKIP"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "title": self.title,
            "status": self.status,
            "checks": [c.to_dict() for c in self.checks],
            "details": self.details,
        }

    def _repr_html_(self) -> str:
        parts = [f"<h4 style='margin:6px 0'>{badge(self.status)} {esc(self.title)}</h4>"]
        parts.append(_checks_table(self.checks))
        if self.details:
            parts.append(kv_table(self.details))
        for caption, headers, rows in self.tables:
            parts.append(f"<div style='font-weight:600;margin-top:6px'>{esc(caption)}</div>")
            parts.append(rows_table(headers, rows))
        for note in self.notes:
            parts.append(f"<p style='margin:4px 0'>{esc(note)}</p>")
        return "\n".join(parts)

    def __repr__(self) -> str:  # plain-text fallback (terminal, logs)
        lines = [f"[{self.status}] {self.title}"]
        lines += [f"  [{c.status}] {c.title}: {c.summary}" for c in self.checks]
        return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    """The run's verdict: PASS only when no check failed."""

    run_id: str
    environment: str
    checks: tuple[Check, ...]
    error: str | None = None

    @property
    def outcome(self) -> str:
        if self.error:
            return "ERROR"
        return "FAIL" if any(c.failed for c in self.checks) else "PASS"

    @property
    def counts(self) -> dict[str, int]:
        out = {"PASS": 0, "FAIL": 0, "WARN": 0, "SKIP": 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "counts": self.counts, "error": self.error}

    def _repr_html_(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items() if v)
        head = (
            f"<h3 style='margin:6px 0'>Verdict: {badge(self.outcome)} "
            f"<span style='font-weight:400'>environment <b>{esc(self.environment)}</b>, "
            f"run <code>{esc(self.run_id)}</code> — {esc(counts)}</span></h3>"
        )
        if self.error:
            head += f"<p style='color:#a40e26'><b>The run stopped early:</b> {esc(self.error)}</p>"
        return head + _checks_table(self.checks)

    def __repr__(self) -> str:
        return f"Verdict({self.outcome}, {self.counts})"


class ProviderSteps(tuple):
    """A provider's own step reports (go-live's or the audit's), shown one after the other."""

    def _repr_html_(self) -> str:
        return "".join(r._repr_html_() for r in self)
