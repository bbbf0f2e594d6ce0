"""Result objects: a check, a step of checks, and the verdict — each renders itself.

``_repr_html_`` is what Lab and the HTML report show; ``to_dict`` is what goes into the summary
JSON. Nothing here imports IPython.

A check names what it ``requires`` (check ids, ``*`` patterns allowed). When one of those FAILed or
is itself BLOCKED, the check is BLOCKED — not FAIL, not SKIP — pointing at the root cause (the
FAIL that nothing blocked), with the fix "fix <root> first": :func:`resolve_blocked` is the one
place that decides it. The verdict names its root causes first (:func:`root_causes`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .rendering import badge, esc, kv_table, rows_table

__all__ = [
    "STATUSES",
    "Check",
    "ProviderSteps",
    "RootCause",
    "Status",
    "StepReport",
    "Verdict",
    "resolve_blocked",
    "root_causes",
]

Status = Literal["PASS", "FAIL", "BLOCKED", "WARN", "SKIP"]
STATUSES: tuple[str, ...] = ("PASS", "FAIL", "BLOCKED", "WARN", "SKIP")  # the order counts show
NOT_MET = ("FAIL", "BLOCKED")


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
    requires: tuple[str, ...] = ()  # check ids (or ``*`` patterns) this outcome depends on
    blocked_by: str | None = None  # BLOCKED: the root-cause check (a FAIL nothing blocked)
    asked: bool = True  # False: a SKIP the parameter file chose (nothing it needs can block it)

    @property
    def failed(self) -> bool:
        """FAIL: this check is a root cause (a BLOCKED one is not)."""
        return self.status == "FAIL"

    @property
    def met(self) -> bool:
        """Neither FAIL nor BLOCKED: nothing that depends on it is held up."""
        return self.status not in NOT_MET

    def needs(self, check_id: str) -> bool:
        return any(fnmatch.fnmatchcase(check_id, p) for p in self.requires)

    def blocked_as(self, via: Check, root: Check) -> Check:
        """This check BLOCKED: ``via`` (which it requires) failed, or is blocked by ``root``."""
        because = (
            f"needs {via.check_id}, which failed"
            if via is root
            else f"needs {via.check_id}, which is blocked by {root.check_id}"
        )
        summary = (
            f"not run: {because}"
            if self.status == "SKIP"
            else f"not conclusive, {because} (it found: {self.summary})"
        )
        return replace(
            self,
            status="BLOCKED",
            summary=summary,
            blocked_by=root.check_id,
            remedy=f"fix {root.check_id} ({root.title}) first, then re-run.",
            evidence={**self.evidence, "unblockedStatus": self.status},
        )

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.check_id,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "evidence": self.evidence,
            "requestIds": list(self.request_ids),
            "remedy": self.remedy,
        }
        if self.requires:
            data["requires"] = list(self.requires)
        if self.blocked_by:
            data["blockedBy"] = self.blocked_by
        if not self.asked:
            data["asked"] = False
        return data

    def _repr_html_(self) -> str:
        return _checks_table([self])


def _checks_table(checks: Sequence[Check]) -> str:
    rows = []
    for c in checks:
        note = esc(c.summary)
        if c.remedy and c.status in ("FAIL", "BLOCKED", "WARN"):
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
        for s in ("FAIL", "BLOCKED", "WARN", "PASS"):
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


def resolve_blocked(checks: Iterable[Check]) -> tuple[Check, ...]:
    """``checks`` with every check whose requirement is not met turned BLOCKED (order kept).

    A PASS stays PASS (it verified what it says, whatever else failed). Any other check that
    ``requires`` a FAIL or BLOCKED check becomes BLOCKED by the root cause: the FAIL at the end of
    the chain. A check never blocks itself, so a cycle of failures keeps one root.
    """
    out = list(checks)
    while (found := _next_blocked(out)) is not None:
        i, blocked = found
        out[i] = blocked
    return tuple(out)


def _next_blocked(checks: list[Check]) -> tuple[int, Check] | None:
    """The first check that must turn BLOCKED, as it then reads; None when none must."""
    by_id = {c.check_id: c for c in checks}
    # a requirement that is itself the root cause names it best: FAILs before BLOCKEDs
    unmet = sorted((c for c in checks if not c.met), key=lambda c: c.status != "FAIL")
    for i, check in enumerate(checks):
        if check.status in ("PASS", "BLOCKED") or not check.requires or not check.asked:
            continue
        for via in unmet:
            if via.check_id == check.check_id or not check.needs(via.check_id):
                continue
            root = by_id.get(via.blocked_by, via) if via.blocked_by else via
            if root.check_id != check.check_id:
                return i, check.blocked_as(via, root)
    return None


@dataclass(frozen=True)
class RootCause:
    """A FAIL that nothing blocked, and how many checks it blocked."""

    check: Check
    blocked: int

    def describe(self) -> str:
        text = f"{self.check.check_id} ({self.check.title}): {self.check.summary}"
        return text + (f" — {self.blocked} check(s) blocked by it" if self.blocked else "")

    def to_dict(self) -> dict[str, Any]:
        c = self.check
        return {"id": c.check_id, "title": c.title, "summary": c.summary, "remedy": c.remedy,
                "blocked": self.blocked}  # fmt: skip


def root_causes(checks: Sequence[Check]) -> list[RootCause]:
    """The run's root causes in check order, those blocking the most first."""
    roots = [c for c in checks if c.failed]
    blocked = {r.check_id: sum(1 for c in checks if c.blocked_by == r.check_id) for r in roots}
    ranked = sorted(enumerate(roots), key=lambda ic: (-blocked[ic[1].check_id], ic[0]))
    return [RootCause(c, blocked[c.check_id]) for _, c in ranked]


@dataclass(frozen=True)
class Verdict:
    """The run's verdict: PASS only when every check is met (none FAIL or BLOCKED).

    It names the root causes first: the FAILs nothing blocked, and how many checks each blocked.
    """

    run_id: str
    environment: str
    checks: tuple[Check, ...]
    error: str | None = None

    @property
    def outcome(self) -> str:
        if self.error:
            return "ERROR"
        return "FAIL" if any(not c.met for c in self.checks) else "PASS"

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] += 1
        return out

    @property
    def root_causes(self) -> list[RootCause]:
        return root_causes(self.checks)

    def headline(self) -> str:
        """One line: the outcome, then the root cause(s) and what they blocked."""
        roots = self.root_causes
        if not roots:
            return self.outcome
        first = roots[0]
        text = f"{self.outcome}: root cause {first.check.check_id} ({first.check.title})"
        if first.blocked:
            text += f", {first.blocked} check(s) blocked by it"
        if len(roots) > 1:
            text += f"; {len(roots) - 1} more root cause(s): " + ", ".join(
                r.check.check_id for r in roots[1:]
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "counts": self.counts, "error": self.error,
                "rootCauses": [r.to_dict() for r in self.root_causes]}  # fmt: skip

    def _repr_html_(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items() if v)
        head = (
            f"<h3 style='margin:6px 0'>Verdict: {badge(self.outcome)} "
            f"<span style='font-weight:400'>environment <b>{esc(self.environment)}</b>, "
            f"run <code>{esc(self.run_id)}</code> — {esc(counts)}</span></h3>"
        )
        if self.error:
            head += f"<p style='color:#a40e26'><b>The run stopped early:</b> {esc(self.error)}</p>"
        head += _root_causes_html(self.root_causes)
        return head + _checks_table(self.checks)

    def __repr__(self) -> str:
        return f"Verdict({self.outcome}, {self.counts})"


def _root_causes_html(roots: Sequence[RootCause]) -> str:
    if not roots:
        return ""
    items = "".join(
        f"<li>{badge('FAIL')} <b>{esc(r.check.check_id)}</b> {esc(r.check.title)}: "
        f"{esc(r.check.summary)}"
        + (f"<br><b>Fix:</b> {esc(r.check.remedy)}" if r.check.remedy else "")
        + (f"<br>{badge('BLOCKED', f'{r.blocked} check(s) blocked by it')}" if r.blocked else "")
        + "</li>"
        for r in roots
    )
    label = "Root cause" if len(roots) == 1 else "Root causes"
    return f"<div style='margin:4px 0 8px 0'><b>{label} (fix first):</b><ul>{items}</ul></div>"


class ProviderSteps(tuple):
    """A provider's own step reports (go-live's or the audit's), shown one after the other."""

    def _repr_html_(self) -> str:
        return "".join(r._repr_html_() for r in self)
