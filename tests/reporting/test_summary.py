"""summary.json: one typed writer and reader; the outcome and the counts are computed once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from runbook_lib.core.checks import Check, StepReport
from runbook_lib.reporting.index import build_index, previous_summary
from runbook_lib.reporting.summary import Summary

STARTED = datetime(2026, 11, 23, 7, 15, 2, tzinfo=UTC)


def evidence(*statuses: str, verdict: bool = True) -> dict:
    checks = tuple(Check(f"c.{i}", f"check {i}", s, "why") for i, s in enumerate(statuses))
    facts = {"verdict": {"outcome": "x"}} if verdict else {}
    return {"runId": "run-1", "steps": [StepReport("s", "Step", checks).to_dict()], "facts": facts}


def summary(*statuses: str, verdict: bool = True, **kw) -> Summary:
    return Summary.from_evidence(
        evidence(*statuses, verdict=verdict), kind="go-live", environment="sandbox",
        run_id=None, started=STARTED, **kw,
    )  # fmt: skip


def test_outcome_and_exit_code_follow_the_checks_and_the_verdict_cell():
    assert (summary("PASS", "WARN").outcome, summary("PASS").exit_code) == ("PASS", 0)
    assert (summary("PASS", "FAIL").outcome, summary("FAIL").exit_code) == ("FAIL", 1)
    assert (summary("PASS", verdict=False).outcome, summary().exit_code) == ("ERROR", 2)
    failed = summary(
        "PASS", failed_cell={"cellIndex": 3, "section": "x", "error": "E", "message": "m"}
    )
    assert (failed.outcome, failed.exit_code) == ("ERROR", 2)
    assert summary("PASS", "FAIL", "SKIP").counts == {"PASS": 1, "FAIL": 1, "WARN": 0, "SKIP": 1}


def test_what_is_written_is_what_is_read_with_checks_as_objects(tmp_path):
    written = summary("PASS", "FAIL")
    written.write(tmp_path)
    read = Summary.load(tmp_path)
    assert read == written and read.path == tmp_path
    assert all(isinstance(c, Check) for c in read.checks)
    raw = json.loads((tmp_path / "summary.json").read_text())
    assert raw["counts"] == {"PASS": 1, "FAIL": 1, "WARN": 0, "SKIP": 0} and raw["runId"] == "run-1"


def test_a_missing_or_damaged_summary_reads_as_none(tmp_path):
    assert Summary.load(tmp_path) is None
    (tmp_path / "summary.json").write_text("{half")
    assert Summary.load(tmp_path) is None
    (tmp_path / "summary.json").write_text("[]")
    assert Summary.load(tmp_path) is None


def test_the_index_and_the_previous_report_read_summaries_the_same_way(tmp_path):
    for day, statuses in (("2026-11-22", ("PASS",)), ("2026-11-23", ("FAIL",))):
        folder = tmp_path / day / f"go-live-sandbox-{day}"
        folder.mkdir(parents=True)
        s = Summary.from_evidence(evidence(*statuses), kind="go-live", environment="sandbox",
                                  run_id=day, started=datetime.fromisoformat(day + "T08:00:00+00:00"))  # fmt: skip
        s.write(folder)
    (tmp_path / "2026-11-23" / "broken").mkdir()
    (tmp_path / "2026-11-23" / "broken" / "summary.json").write_text("{")
    runs = json.loads((build_index(tmp_path).parent / "index.json").read_text())["runs"]
    assert [r["runId"] for r in runs] == ["2026-11-23", "2026-11-22"]
    found = previous_summary(
        tmp_path, kind="go-live", environment="sandbox", before="9999", outcome="PASS"
    )
    assert found is not None and found.run_id == "2026-11-22" and found.path.name.endswith("22")
