"""The go-live notebook executed by papermill against the live sandbox and receiver."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook_lib.cli import run_go_live
from runbook_lib.reporting.execute import execute_report
from runbook_lib.reporting.summary import Summary
from tests.stack import ROOT, running_stack

pytestmark = pytest.mark.notebook


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path) as s:
        yield s


def test_go_live_passes_on_the_sandbox_and_writes_a_dated_report(stack, tmp_path):
    run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    summary = run.summary
    failing = [c for c in summary.checks if c.status not in ("PASS", "SKIP")]
    assert run.exit_code == 0, failing
    assert summary.outcome == "PASS" and failing == []
    skipped = [c.check_id for c in summary.checks if c.status == "SKIP"]
    assert skipped == ["changes.previous"]  # a first go-live has nothing to compare with
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run.report_dir.parent.name)
    assert re.fullmatch(r"go-live-sandbox-\d{6}Z-[0-9a-f]{6}", run.report_dir.name)
    for name in ("report.ipynb", "report.html", "summary.json"):
        assert (run.report_dir / name).exists()
    ids = {c.check_id for c in summary.checks}
    assert {
        "auth.token",
        "whoami.context",
        "whoami.webhook",
        "numbers.num_sbx_primary",
        "send.accepted",
        "send.replay",
        "lifecycle.queued",
        "lifecycle.sent",
        "lifecycle.final",
        "support.trace",
    } <= ids
    (message,) = summary.messages
    assert message["messageId"].startswith("msg_") and message["externalReference"]
    assert message["lifecycle"]["state"] == "DELIVERED"
    assert json.loads((run.report_dir / "summary.json").read_text())["schemaVersion"] == 1
    assert Summary.load(run.report_dir) == run.summary  # the one reader reads what was written
    html = (run.report_dir / "report.html").read_text()
    assert html.index("Verdict") < html.index("Preflight")  # the verdict opens the report
    assert "golive = GoLiveRun.open" not in html  # code hidden
    assert golive_sends(stack) == 1


def golive_sends(stack) -> int:
    """Messages the go-live test send created (the outage drill sends its own, marked)."""
    return sum(
        1 for m in stack.sandbox.sandbox.messages() if m["externalReference"].startswith("golive-")
    )


def test_suspended_expected_number_fails_with_exit_1(stack, tmp_path):
    numbers = [
        {"number_id": "num_sbx_primary", "sms": True, "mms": True, "webhook_override": "none"},
        {"number_id": "num_sbx_suspended", "sms": True, "mms": False, "webhook_override": "none"},
    ]
    run = run_go_live(
        stack.params(numbers=numbers), reports_root=tmp_path / "r", extra_env=stack.env
    )
    assert run.exit_code == 1
    by_id = {c.check_id: c for c in run.summary.checks}
    assert by_id["numbers.num_sbx_suspended"].status == "FAIL"
    assert "SUSPENDED" in by_id["numbers.num_sbx_suspended"].summary
    assert by_id["numbers.num_sbx_primary"].status == "PASS"


def test_rerun_of_the_same_run_id_sends_no_second_message(stack, tmp_path):
    params = stack.params()
    first = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
    run_id = first.summary.run_id
    second = run_go_live(params, reports_root=tmp_path / "r", run_id=run_id, extra_env=stack.env)
    assert second.exit_code == 0
    assert golive_sends(stack) == 1
    assert stack.sandbox.sandbox.message_count() == 2  # plus the outage drill's own, also replayed
    assert first.summary.messages[0]["messageId"] == second.summary.messages[0]["messageId"]
    assert second.summary.messages[0]["resumedFromLedger"] is True


def test_failed_destination_is_reported_as_failed_not_delivered(stack, tmp_path):
    params = stack.params()
    text = params.read_text().replace("to: '+15005550001'", "to: '+15005550002'")
    params.write_text(text.replace("expect: delivered", "expect: failed"))
    run = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
    assert run.exit_code == 0, run.summary.checks
    lifecycle = run.summary.messages[0]["lifecycle"]
    assert lifecycle["state"] == "FAILED" and lifecycle["failureCode"]


def test_bad_parameters_exit_3_with_a_report(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: sandbox\nprovider: {}\n")
    run = run_go_live(bad, reports_root=tmp_path / "r")
    assert run.exit_code == 3
    assert "provider.base_url: required" in run.summary.error
    assert (run.report_dir / "report.html").exists()


def test_missing_secret_env_exits_3_naming_the_variable(stack, tmp_path):
    run = run_go_live(stack.params(), reports_root=tmp_path / "r")
    assert run.exit_code == 3
    assert "REDCLOUD_CLIENT_SECRET" in run.summary.error


def test_a_failing_cell_still_leaves_a_report_that_says_where(tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    run = execute_report(
        kind="go-live",
        notebook=ROOT / "notebooks" / "go_live.ipynb",
        report_dir=folder,
        environment="sandbox",
        parameters={"params_file": str(tmp_path / "missing.yaml"), "run_id": ""},
        cwd=Path.cwd(),
    )
    assert run.exit_code == 2 and run.summary.outcome == "ERROR"
    assert run.summary.failed_cell["error"] == "ParameterError"
    assert "does not exist" in run.summary.failed_cell["message"]
    html = (folder / "report.html").read_text()
    assert "ParameterError" in html[: html.index("does not exist") + 100]


def test_go_live_rehearsed_under_a_fault_profile_still_passes(stack, tmp_path):
    faults = {
        "api": {
            "send": {"rate_5xx": 0.3, "rate_429": 0.2, "retry_after": 0},
            "whoami": {"latency_ms": 50},
        },
        "webhooks": {"duplicate_rate": 0.5, "reorder": True},
        "seed": 7,
    }
    run = run_go_live(
        stack.params(fault_profile=faults), reports_root=tmp_path / "r", extra_env=stack.env
    )
    assert run.exit_code == 0, [c for c in run.summary.checks if c.status != "PASS"]
    by_id = {c.check_id: c for c in run.summary.checks}
    assert by_id["preflight.faults"].status == "PASS"
    assert golive_sends(stack) == 1


def test_a_second_go_live_reports_what_changed_since_the_first(stack, tmp_path):
    first = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    second = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    assert first.exit_code == second.exit_code == 0
    change = next(c for c in second.summary.checks if c.check_id == "changes.previous")
    assert change.status == "PASS" and first.report_dir.name in change.summary
    assert second.summary.snapshot["numbers"]["num_sbx_primary"]["status"] == "ACTIVE"


def test_auto_resume_past_the_window_sends_nothing_and_a_dead_runs_lock_is_taken_over(
    tmp_path, capsys
):
    from runbook_lib import GoLiveRun
    from runbook_lib.core.locks import lock_path_for
    from runbook_lib.core.parameters import load_parameters
    from tests.core.test_locks import holder
    from tests.core.test_sends import age_ledger

    with running_stack(tmp_path, idempotency_window=0.5) as stack:
        params = stack.params()
        loaded = load_parameters(params)
        crashed = GoLiveRun(loaded, environ=stack.env, progress=lambda line: None)
        for step in (crashed.preflight, crashed.acquire_token, crashed.identity):
            step()
        crashed.senders()
        crashed.test_send()
        assert crashed.sent is not None
        message_id, run_id = crashed.sent.message_id, crashed.run_id
        crashed.close()  # no verdict: unfinished, and its lock left behind by a dead process
        holder(lock_path_for(loaded.ledger_path, "sandbox"), run_id, "die").communicate("")
        age_ledger(loaded.ledger_path, 25)
        capsys.readouterr()

        run = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
        out = capsys.readouterr().out
        assert golive_sends(stack) == 1  # the resumed run POSTed nothing
    assert f"Resuming unfinished run {run_id}" in out and "sends nothing" in out
    assert "Took over the sandbox run lock" in out and run_id in out
    summary = run.summary
    assert summary.run_id == run_id
    assert "Took over the sandbox run lock" in (run.report_dir / "report.html").read_text()
    (message,) = summary.messages
    assert message["messageId"] == message_id and message["resumedFromLedger"] is True
    by_id = {c.check_id: c for c in summary.checks}
    assert by_id["send.accepted"].status == "PASS"
    assert by_id["send.replay"].status == "SKIP"
    assert "idempotency window" in by_id["send.replay"].summary
    assert by_id["drill.all"].status == "SKIP"


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_go_live_reads_webhooks_from_an_export_event_source(stack, tmp_path, suffix):
    """event_source.kind jsonl/parquet: lifecycle, support, drills and probe read the export."""
    import threading

    from runbook_lib.sources.export import export_events

    export = tmp_path / f"events.{suffix}"
    export_events(stack.receiver.store_path, export)
    stop = threading.Event()

    def keep_exporting() -> None:  # an integration's exporter refreshing the file as events come
        while not stop.wait(0.1):
            export_events(stack.receiver.store_path, export)

    exporter = threading.Thread(target=keep_exporting, daemon=True)
    exporter.start()
    try:
        params = stack.params(event_source={"kind": suffix, "path": str(export)})
        run = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
    finally:
        stop.set()
        exporter.join()
    failing = [(c.check_id, c.summary) for c in run.summary.checks if c.status == "FAIL"]
    assert run.exit_code == 0, failing or run.summary.error
    by_id = {c.check_id: c for c in run.summary.checks}
    assert by_id["preflight.event_source"].summary == f"{suffix} store {export.name}"
    assert by_id["lifecycle.final"].status == "PASS"
    assert by_id["support.trace"].status == "PASS"
    assert by_id["drill.webhook_outage"].status == "PASS"
    assert by_id["probe.stored_once"].status == "PASS"
