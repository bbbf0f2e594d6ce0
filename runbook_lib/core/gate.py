"""The release gate: the readiness catalog evaluated against a run's checks and attestations.

Each catalog item (a provider's catalogue, e.g. ``runbook_lib/providers/redcloud/readiness.yaml``)
ends PASS, FAIL, BLOCKED, ATTESTED or NOT VERIFIED. The verdict is GO only when every blocking item
is PASS or ATTESTED; otherwise NO-GO, with what to do for each blocking item that is not met.

An item whose checks are BLOCKED is BLOCKED by their root cause ("fix X first"), never "enable and
run" them; an attestation stands in only for checks that did not run (NOT VERIFIED): a check that
FAILed or is BLOCKED in this run wins over it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

import yaml

from .checks import Check
from .rendering import badge, esc, rows_table

__all__ = ["CatalogItem", "GateItem", "GateReport", "evaluate_gate", "load_catalog"]

ItemStatus = str  # PASS | FAIL | BLOCKED | ATTESTED | NOT VERIFIED


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    area: str
    title: str
    blocking: bool
    checks: tuple[str, ...] = ()
    evidence: str | None = None
    attestation: bool = False

    @property
    def method(self) -> str:
        if self.attestation:
            return "attestation"
        return "checks + evidence" if self.evidence else "checks"


# The catalog is data shipped with the package, read by every run (the CLI validating parameters and
# the kernel): libyaml's loader reads it ~10x faster than the pure-Python one, same objects.
_CATALOG_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load_catalog(provider: str | None = None) -> tuple[CatalogItem, ...]:
    """A provider's readiness catalog (data shipped in its folder; the default provider's)."""
    from ..providers.base import get_provider  # the registry imports providers on first use

    text = get_provider(provider).readiness_catalog()
    items = []
    for raw in yaml.load(text, Loader=_CATALOG_LOADER)["items"]:
        verify = raw["verify"]
        items.append(
            CatalogItem(
                item_id=raw["id"], area=raw["area"], title=raw["title"], blocking=bool(raw["blocking"]),
                checks=tuple(verify.get("checks", ())), evidence=verify.get("evidence"),
                attestation=bool(verify.get("attestation", False)),
            )
        )  # fmt: skip
    return tuple(items)


@dataclass(frozen=True)
class GateItem:
    """One catalog item's outcome in this run."""

    item: CatalogItem
    status: ItemStatus
    detail: str
    todo: str | None = None
    attested_by: str | None = None
    rehearsal: bool = False
    caused_by: tuple[str, ...] = ()  # the run's root-cause checks that explain a FAIL or BLOCKED

    @property
    def met(self) -> bool:
        return self.status in ("PASS", "ATTESTED")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item.item_id,
            "area": self.item.area,
            "title": self.item.title,
            "blocking": self.item.blocking,
            "verifiedBy": self.item.method,
            "status": self.status,
            "detail": self.detail,
            "todo": self.todo,
            "attestedBy": self.attested_by,
            "rehearsalAttestation": self.rehearsal,
            "causedBy": list(self.caused_by),
        }


@dataclass(frozen=True)
class GateReport:
    """The whole catalog with statuses, and the GO / NO-GO verdict."""

    items: tuple[GateItem, ...]
    expired_attestations: tuple[str, ...] = ()
    unknown_attestations: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return "GO" if all(i.met for i in self.items if i.item.blocking) else "NO-GO"

    @property
    def blocking_unmet(self) -> list[GateItem]:
        return [i for i in self.items if i.item.blocking and not i.met]

    @property
    def missing_attestations(self) -> list[str]:
        return [i.item.item_id for i in self.items if i.item.attestation and i.status != "ATTESTED"]

    def as_check(self) -> Check:
        """The gate as a check: FAIL when it holds go-live back for a reason of its own (an
        attestation missing, a check not run, an evidence rule), BLOCKED by the root cause when
        every unmet item only repeats checks that failed in this run."""
        unmet = self.blocking_unmet
        if unmet and all(i.caused_by for i in unmet):
            roots = list(dict.fromkeys(r for i in unmet for r in i.caused_by))
            return Check(
                "gate.verdict", "Release gate", "BLOCKED",
                f"NO-GO: {len(unmet)} blocking item(s) not met, all because of "
                f"{', '.join(roots)}: " + ", ".join(i.item.item_id for i in unmet),
                remedy=f"fix {roots[0]} first, then re-run.", blocked_by=roots[0],
            )  # fmt: skip
        return Check(
            "gate.verdict", "Release gate", "PASS" if not unmet else "FAIL",
            "GO: every blocking item is PASS or ATTESTED" if not unmet
            else f"NO-GO: {len(unmet)} blocking item(s) not met: " + ", ".join(i.item.item_id for i in unmet),
            remedy=None if not unmet else "see the release gate's to-do list.",
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for i in self.items:
            counts[i.status] = counts.get(i.status, 0) + 1
        return {
            "verdict": self.verdict,
            "counts": counts,
            "items": [i.to_dict() for i in self.items],
            "blockingUnmet": [{"id": i.item.item_id, "todo": i.todo} for i in self.blocking_unmet],
            "missingAttestations": self.missing_attestations,
            "expiredAttestations": list(self.expired_attestations),
            "unknownAttestations": list(self.unknown_attestations),
            "rehearsalAttestations": [i.item.item_id for i in self.items if i.rehearsal],
        }

    def _repr_html_(self) -> str:
        colour = {"ATTESTED": "PASS", "NOT VERIFIED": "WARN"}
        rows = []
        for g in self.items:
            status = badge(colour.get(g.status, g.status), g.status)
            who = esc(g.attested_by or "")
            if g.rehearsal:
                who += " <b>(REHEARSAL — not a real attestation)</b>"
            rows.append((esc(g.item.item_id), esc(g.item.area), esc(g.item.title), "yes" if g.item.blocking else "no",
                         status, esc(g.item.method), esc(g.detail) + (f"<br>{who}" if who else "")))  # fmt: skip
        parts = [
            f"<h3 style='margin:6px 0'>Release gate: {badge(self.verdict)}</h3>",
            rows_table(
                ["id", "area", "item", "blocking", "status", "verified by", "evidence"],
                rows,
                raw=range(7),
            ),
        ]
        if self.blocking_unmet:
            todo = "".join(
                f"<li><b>{esc(i.item.item_id)}</b> {esc(i.item.title)} — {esc(i.todo)}</li>"
                for i in self.blocking_unmet
            )
            parts.append(f"<div><b>To do before go-live:</b><ul>{todo}</ul></div>")
        for label, ids in (
            ("Expired attestations", self.expired_attestations),
            ("Attestations for unknown items", self.unknown_attestations),
        ):
            if ids:
                parts.append(f"<p><b>{label}:</b> {esc(', '.join(ids))}</p>")
        return "\n".join(parts)


def _blocked_todo(roots: Sequence[str], by_id: Mapping[str, Check]) -> str:
    """What to do for an item held up by ``roots``: fix them first (their fix is shown once, with
    the root cause)."""
    title = by_id[roots[0]].title if roots[0] in by_id else ""
    return (f"blocked by {', '.join(roots)}: fix {roots[0]}" + (f" ({title})" if title else "")
            + " first, then re-run.")  # fmt: skip


def _stand_in(pattern: str, by_id: Mapping[str, Check]) -> Check | None:
    """What the run recorded instead of a family's checks that did not run: its ``<family>.all``
    (``drill.all`` for ``drill.expired_token``), else a BLOCKED check of the family (the step was
    stopped before it could record the rest: ``whoami.context`` for ``whoami.numbers``)."""
    family = pattern.split(".", 1)[0]
    found = by_id.get(f"{family}.all")
    if found is None:
        found = next((c for c in by_id.values()
                      if c.status == "BLOCKED" and c.check_id.split(".", 1)[0] == family), None)  # fmt: skip
    return found if found is not None and found.check_id != pattern else None


def _matching(patterns: Sequence[str], statuses: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for pattern in patterns:
        for check_id, status in statuses.items():
            if fnmatch.fnmatchcase(check_id, pattern):
                found[check_id] = status
    return found


def evaluate_gate(
    checks: Sequence[Check],
    attestations: Sequence[Any],
    *,
    evidence_rules: Mapping[str, Callable[[], tuple[Any, ...]]] | None = None,
    today: date | None = None,
    provider: str | None = None,
) -> GateReport:
    """Evaluate the catalog. ``attestations`` are parameter-file entries (item, by, on, ...).

    Args:
        provider: whose readiness catalogue (the default provider's when None).
    """
    today = today or date.today()
    statuses = {c.check_id: c.status for c in checks}
    by_id = {c.check_id: c for c in checks}
    remedies = {c.check_id: c.remedy for c in checks if c.remedy}
    catalog = load_catalog(provider)
    known = {i.item_id for i in catalog}
    current: dict[str, Any] = {}
    expired: list[str] = []
    for a in attestations:
        if a.item not in known:
            continue
        if a.when + timedelta(days=a.valid_days) < today:
            expired.append(a.item)
        else:
            current[a.item] = a
    rules = evidence_rules or {}
    items = []
    for item in catalog:
        status, detail, todo = "NOT VERIFIED", "", None
        caused_by: tuple[str, ...] = ()
        if item.checks:
            found = _matching(item.checks, statuses)
            failed = sorted(k for k, v in found.items() if v == "FAIL")
            unverified = [
                p
                for p in item.checks
                if not any(v in ("PASS", "WARN") for v in _matching([p], statuses).values())
            ]
            stand_ins = [c for p in unverified if not _matching([p], statuses)
                         and (c := _stand_in(p, by_id)) is not None]  # fmt: skip
            blocked = sorted(k for k, v in found.items() if v == "BLOCKED") + [
                c.check_id for c in stand_ins if c.status == "BLOCKED"
            ]
            if failed:
                status = "FAIL"
                detail = "failed: " + ", ".join(failed)
                todo = (
                    " ".join(dict.fromkeys(remedies.get(k, "") for k in failed)).strip()
                    or "fix the failed checks and re-run."
                )
                caused_by = tuple(failed)
            elif blocked:
                roots = tuple(dict.fromkeys(str(by_id[k].blocked_by) for k in blocked))
                status, caused_by = "BLOCKED", roots
                detail = f"blocked by {', '.join(roots)}: " + ", ".join(dict.fromkeys(blocked))
                todo = _blocked_todo(roots, by_id)
            elif not found or unverified:
                names = ", ".join(unverified or item.checks)
                detail = "not run: " + names
                skipped = [c for c in stand_ins if c.status == "SKIP"]
                todo = (
                    f"run {names}: not run this time ({skipped[0].check_id}: "
                    f"{skipped[0].summary}), or attest it."
                    if skipped
                    else f"enable and run {names} (drills / probe sections), or attest it."
                )
            else:
                status, detail = "PASS", "passed: " + ", ".join(sorted(found))
        if (
            item.evidence
            and status in ("PASS", "NOT VERIFIED")
            and not (item.checks and status == "NOT VERIFIED")
        ):
            rule = rules.get(item.evidence)
            if rule is None:
                status, detail, todo = (
                    "NOT VERIFIED",
                    f"no evidence for {item.evidence}",
                    "run go-live to collect it.",
                )
            else:
                # a rule may name the checks its evidence comes from (``needs``): evidence missing
                # because one of them FAILed or is BLOCKED is BLOCKED by that root cause
                ok, text, *needs = rule()
                detail = (detail + "; " if detail else "") + text
                unmet = [c for c in checks if not c.met and needs
                         and _matching(needs[0], {c.check_id: c.status})]  # fmt: skip
                if not ok and unmet:
                    roots = tuple(dict.fromkeys(c.blocked_by or c.check_id for c in unmet))
                    status, caused_by, todo = "BLOCKED", roots, _blocked_todo(roots, by_id)
                elif not ok:
                    status, todo = "FAIL", text
        attester = None
        rehearsal = False
        # an attestation stands in for checks that did not run, never for one that failed
        if status == "NOT VERIFIED" and item.item_id in current:
            a = current[item.item_id]
            status = "ATTESTED"
            attester = f"attested by {a.by} on {a.when.isoformat()}" + (
                f": {a.note}" if a.note else ""
            )
            rehearsal = a.rehearsal
            todo = None
        elif item.attestation and status == "NOT VERIFIED":
            detail = "expired attestation" if item.item_id in expired else "no attestation recorded"
            todo = (f"record a current attestation for {item.item_id} in the parameter file "
                    "(attestations: - item, by, when, note).")  # fmt: skip
        items.append(GateItem(item, status, detail, todo, attester, rehearsal, caused_by))
    unknown = tuple(a.item for a in attestations if a.item not in known)
    return GateReport(tuple(items), tuple(expired), unknown)
