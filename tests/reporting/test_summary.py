"""summary.json: one typed writer and reader; the outcome and the counts are computed once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

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
    assert summary("PASS", "FAIL", "SKIP").counts == {
        "PASS": 1, "FAIL": 1, "BLOCKED": 0, "WARN": 0, "SKIP": 1,
    }  # fmt: skip


def test_a_blocked_check_is_counted_not_met_and_named_under_its_root_cause(tmp_path):
    """BLOCKED is its own count, the run exits 1 like a FAIL, and summary.json names the root
    cause first with how many checks it blocked."""
    root = Check("preflight.webhook_endpoint", "Webhook endpoint answers", "FAIL", "refused",
                 remedy="start the receiver.")  # fmt: skip
    blocked = [
        Check(f"lifecycle.{s}", s, "BLOCKED", "not run", blocked_by=root.check_id)
        for s in ("queued", "sent")
    ]
    data = {"runId": "run-1", "facts": {"verdict": {"outcome": "FAIL"}},
            "steps": [StepReport("s", "Step", (root, *blocked)).to_dict()]}  # fmt: skip
    written = Summary.from_evidence(data, kind="go-live", environment="sandbox", run_id=None,
                                    started=STARTED)  # fmt: skip
    assert (written.outcome, written.exit_code) == ("FAIL", 1)
    only_blocked = {"runId": "r", "facts": {"verdict": {}},
                    "steps": [StepReport("s", "S", tuple(blocked)).to_dict()]}  # fmt: skip
    assert Summary.from_evidence(only_blocked, kind="go-live", environment="sandbox",
                                 run_id=None, started=STARTED).exit_code == 1  # fmt: skip
    written.write(tmp_path)
    raw = json.loads((tmp_path / "summary.json").read_text())
    assert raw["counts"]["BLOCKED"] == 2 and raw["counts"]["FAIL"] == 1
    assert raw["rootCauses"] == [{"id": "preflight.webhook_endpoint", "title": "Webhook endpoint answers",
                                  "summary": "refused", "remedy": "start the receiver.", "blocked": 2}]  # fmt: skip
    read = Summary.load(tmp_path)
    assert read == written
    assert [c.blocked_by for c in read.checks] == [None, root.check_id, root.check_id]
    assert (
        read.verdict()
        .headline()
        .startswith(
            "FAIL: root cause preflight.webhook_endpoint (Webhook endpoint answers), 2 check(s) blocked"
        )
    )


def test_what_is_written_is_what_is_read_with_checks_as_objects(tmp_path):
    written = summary("PASS", "FAIL")
    written.write(tmp_path)
    read = Summary.load(tmp_path)
    assert read == written and read.path == tmp_path
    assert all(isinstance(c, Check) for c in read.checks)
    raw = json.loads((tmp_path / "summary.json").read_text())
    assert raw["counts"] == {"PASS": 1, "FAIL": 1, "BLOCKED": 0, "WARN": 0, "SKIP": 0}
    assert raw["runId"] == "run-1"


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


@pytest.mark.notebook
def test_the_failing_cell_is_named_as_the_notebook_and_papermill_name_it(tmp_path, monkeypatch):
    """cellIndex counts the cells a person sees (not papermill's injected ones); In [n] agrees
    with papermill's own error."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from runbook_lib.reporting.execute import execute_report

    cells = [
        nbformat.v4.new_markdown_cell("# Failing runbook"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## The step that breaks"),
        nbformat.v4.new_code_cell("y = x + 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('boom')"),
    ]
    source = tmp_path / "failing.ipynb"
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata.kernelspec = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    nbformat.write(notebook, source)
    with pytest.raises(PapermillExecutionError) as raised:
        papermill.execute_notebook(str(source), str(tmp_path / "direct.ipynb"),
                                   parameters={"x": 2}, progress_bar=False, kernel_name="python3")  # fmt: skip
    report = tmp_path / "report"
    report.mkdir()
    monkeypatch.chdir(tmp_path)  # the CLI runs from the folder it reports into
    run = execute_report(kind="trace", notebook=source, report_dir=report, environment="t",
                         parameters={"x": 2}, cwd=tmp_path)  # fmt: skip
    failed = run.summary.failed_cell
    assert failed, run.summary.error
    assert failed["cellIndex"] == 4 and failed["section"] == "The step that breaks"
    assert failed["executionCount"] == raised.value.exec_count
    assert f"In [{raised.value.exec_count}]" in run.summary.verdict().error


def test_input_the_notebook_refused_is_bad_input_with_its_fix():
    """A notebook that explains a missing setting instead of raising ends BAD_INPUT (exit 3)."""
    refused = evidence("FAIL", "SKIP")
    refused["facts"]["badInput"] = "nothing to trace. Fix: set message_id"
    s = Summary.from_evidence(refused, kind="trace", environment="sandbox", run_id=None,
                              started=STARTED)  # fmt: skip
    assert (s.outcome, s.exit_code, s.error) == ("BAD_INPUT", 3, refused["facts"]["badInput"])
