"""`runbook trace` and `runbook audit` executed by papermill into dated reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook_lib.cli import main, run_read_only
from runbook_lib.reporting.summary import Summary

pytestmark = pytest.mark.notebook

# ``golive`` (one passing go-live on the sandbox, shared by the session) is in tests/conftest.py


def test_trace_by_message_id_shows_the_journey(golive, monkeypatch):
    stack, params, go = golive
    message = go.summary.messages[0]
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    run = run_read_only(
        "trace", params, reports_root=go.report_dir.parent.parent,
        notebook_parameters={"message_id": message["messageId"], "external_reference": ""},
    )  # fmt: skip
    assert run.exit_code == 0, run.summary.error
    ids = {c.check_id: c.status for c in run.summary.checks}
    assert ids["trace.acceptance"] == "PASS" and ids["trace.found"] == "PASS"
    assert ids["trace.outcome"] == "PASS"
    evidence = json.loads((run.report_dir / "evidence.json").read_text())
    journey = evidence["facts"]["trace"]["journey"]
    assert [j["eventType"] for j in journey][:1] == ["message.queued"]
    assert journey[-1]["stateAfter"] == "DELIVERED"
    escalation = evidence["facts"]["escalation"]["fields"]
    assert escalation["acceptance requestId"].startswith("req_")
    html = (run.report_dir / "report.html").read_text()
    assert "data:image/png;base64" in html and "Before escalating" in html


def test_trace_by_external_reference_and_not_found(golive, monkeypatch, capsys):
    stack, params, go = golive
    message = go.summary.messages[0]
    reports = str(go.report_dir.parent.parent)
    code = main(
        [
            "trace",
            "--params",
            str(params),
            "--external-reference",
            message["externalReference"],
            "--reports",
            reports,
        ]
    )
    assert code == 0
    code = main(
        [
            "trace",
            "--params",
            str(params),
            "--message-id",
            "msg_does_not_exist",
            "--reports",
            reports,
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "no send and no webhook found" in out


def test_audit_of_a_healthy_window_with_drift_against_the_go_live(golive, monkeypatch, capsys):
    stack, params, go = golive
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    reports = str(go.report_dir.parent.parent)
    code = main(["audit", "--params", str(params), "--since", "1h", "--reports", reports])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "failure domain: healthy" in out
    index = json.loads((go.report_dir.parent.parent / "index.json").read_text())
    kinds = [r["kind"] for r in index["runs"]]
    assert "audit" in kinds and "go-live" in kinds
    audit_dir = go.report_dir.parent.parent / next(
        r["path"] for r in index["runs"] if r["kind"] == "audit"
    )
    summary = Summary.load(audit_dir)
    drift = next(c for c in summary.checks if c.check_id == "audit.drift")
    assert drift.status == "PASS" and go.report_dir.name in drift.summary
    assert summary.failure_domain["domain"] == "healthy"
    assert summary.status["What broke"].startswith("nothing")
    html = (audit_dir / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 3  # funnel, events per minute, latency
    # the paste-ready status and the rehearsal traffic left out sit next to the verdict, on top
    assert summary.rehearsal_excluded["events"] > 0  # the go-live's drills and probe
    first_section = html.index("1. Context")
    assert html.index("Status (ready to paste)") < first_section
    assert html.index("drill and probe traffic is left out") < first_section


def test_audit_without_a_window_is_bad_input(golive, capsys):
    _, params, go = golive
    code = main(["audit", "--params", str(params), "--reports", str(go.report_dir.parent.parent)])
    assert code == 3
    assert "needs a window" in capsys.readouterr().err


SANDBOX_PARAMS = Path(__file__).resolve().parents[2] / "parameters" / "sandbox.yaml"


def test_a_trace_opened_with_its_defaults_explains_what_to_set_and_never_raises():
    """Lab: every cell runs; each says which parameter to set, with a papermill and CLI example."""
    from runbook_lib import TraceRun

    trace = TraceRun.open(SANDBOX_PARAMS)  # message_id = external_reference = ""
    steps = [trace.acceptance(), trace.webhooks(), trace.outcome()]
    assert all(s.status == "SKIP" for s in steps)
    fix = trace.missing.remedy
    assert 'message_id = "msg_..."' in fix and "-p message_id msg_..." in fix
    assert "runbook trace --params <file> --message-id msg_..." in fix
    assert fix in steps[0].checks[0].summary and fix in str(trace.timeline())
    assert trace.escalation().advice == (fix,)
    assert trace.verdict().checks[0].check_id == "trace.target"


def test_the_trace_notebook_under_papermill_with_its_defaults_exits_bad_input(
    tmp_path, monkeypatch
):
    """papermill with no message id: no traceback, exit 3, the summary says what was missing."""
    from runbook_lib.cli import notebooks_dir
    from runbook_lib.reporting.execute import execute_report

    report = tmp_path / "report"
    report.mkdir()
    monkeypatch.chdir(tmp_path)  # papermill resolves paths from the process's folder
    run = execute_report(
        kind="trace", notebook=notebooks_dir() / "message_trace.ipynb", report_dir=report,
        environment="sandbox", parameters={"params_file": str(SANDBOX_PARAMS)},
        cwd=tmp_path, invoked_by="papermill",
    )  # fmt: skip
    s = run.summary
    assert s.failed_cell is None, s.failed_cell
    assert (s.outcome, s.exit_code) == ("BAD_INPUT", 3)
    assert "nothing to trace" in s.error and "-p message_id" in s.error
    assert "--" not in s.error.split("Headless:")[0]  # flags only in the shell example
    assert "Traceback" not in (report / "report.ipynb").read_text()
    assert "message_id" in (report / "report.html").read_text()
