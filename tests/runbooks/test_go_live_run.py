"""GoLiveRun steps in-process against the real sandbox and receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from runbook_lib import GoLiveRun
from runbook_lib.core.parameters import load_parameters
from runbook_lib.receiver import EventStore
from tests.htmlcheck import python_reprs
from tests.stack import running_stack


def test_lifecycle_never_counts_events_received_before_the_acceptance(tmp_path):
    """An old session's events for the same messageId are a finding, not evidence."""
    with running_stack(tmp_path) as stack:
        params = stack.params()
        data = yaml.safe_load(params.read_text())
        data["test_send"].update(
            to="+15005550003",  # sandbox: stays queued, never sent or delivered
            allowlist=["+15005550003"],
            lifecycle_timeout_seconds=1.5,
        )
        params.write_text(yaml.safe_dump(data))
        golive = GoLiveRun(load_parameters(params), environ=stack.env, progress=lambda line: None)
        for step in (golive.preflight, golive.acquire_token, golive.identity):
            step()
        golive.senders()
        golive.test_send()
        assert golive.sent is not None and golive.sent.message_id
        message_id = golive.sent.message_id
        # The previous session's sent and delivery events for the same id, received an hour ago.
        earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        store = EventStore(stack.receiver.store_path)
        for sequence, (kind, status) in enumerate(
            [("message.sent", "SENT"), ("message.delivery", "DELIVERED")], start=2
        ):
            envelope = {
                "eventId": f"evt_previous_session_{sequence}",
                "eventType": kind,
                "createdAt": earlier,
                "data": {"messageId": message_id, "sequence": sequence, "status": status},
            }
            store.record(json.dumps(envelope).encode(), envelope["eventId"], received_at=earlier)
        store.close()

        report = golive.confirm_lifecycle(poll_interval=0.1)
        golive.close()
    by_id = {c.check_id: c for c in report.checks}
    assert by_id["lifecycle.queued"].status == "PASS"  # this send's own queued event counts
    assert by_id["lifecycle.sent"].status == "FAIL"
    # never sent, so never final: that is lifecycle.sent's root cause, not a FAIL of its own
    # (issue 15: this asserted FAIL before)
    assert by_id["lifecycle.final"].status == "BLOCKED"
    assert by_id["lifecycle.final"].blocked_by == "lifecycle.sent"
    # the queued event of this send arrived: the receiver is proven up, the message is stuck
    assert "raise it with support" in (by_id["lifecycle.sent"].remedy or "")
    prior = by_id["lifecycle.prior_events"]
    assert prior.status == "FAIL" and "evt_previous_session_2" in prior.summary
    assert {e["eventId"] for e in prior.evidence["events"]} == {
        "evt_previous_session_2",
        "evt_previous_session_3",
    }
    assert golive.sent.lifecycle is not None and golive.sent.lifecycle.state == "QUEUED"


def test_whether_the_target_is_a_sandbox_is_said_by_the_file_never_probed(tmp_path):
    """provider.sandbox false: the fault profile is refused and not applied, and the drills that
    need provider-side control are skipped — even when the URL is in fact our sandbox."""
    with running_stack(tmp_path) as stack:
        data = yaml.safe_load(stack.params().read_text())
        data["provider"]["sandbox"] = False
        data["fault_profile"] = {"api": {"send": {"rate_5xx": 0.5}}, "seed": 1}
        path = tmp_path / "not-a-sandbox.yaml"
        path.write_text(yaml.safe_dump(data))
        golive = GoLiveRun(load_parameters(path), environ=stack.env, progress=lambda line: None)
        try:
            preflight = golive.preflight()
            golive.acquire_token()
            drills = golive.failure_drills()
        finally:
            golive.close()
        faults = stack.sandbox.sandbox.state.faults.profile.to_dict()
    by_id = {c.check_id: c for c in (*preflight.checks, *drills.checks)}
    assert by_id["preflight.faults"].status == "FAIL"
    assert "provider.sandbox: true" in (by_id["preflight.faults"].remedy or "")
    assert by_id["drill.webhook_outage"].status == "SKIP"
    assert faults.get("api", {}).get("send", {}).get("rate_5xx", 0) == 0  # nothing was applied


def test_a_failed_preflight_sends_nothing(tmp_path):
    """With the event store missing, preflight fails and the controlled send never happens."""
    with running_stack(tmp_path) as stack:
        params = stack.params()
        data = yaml.safe_load(params.read_text())
        data["event_source"]["path"] = str(tmp_path / "no-receiver-here.sqlite")
        params.write_text(yaml.safe_dump(data))
        golive = GoLiveRun(load_parameters(params), environ=stack.env, progress=lambda line: None)
        preflight = golive.preflight()
        golive.acquire_token()
        golive.identity()
        golive.senders()
        report = golive.test_send()
        golive.close()
        sent = stack.sandbox.sandbox.message_count()
    assert preflight.status == "FAIL"
    (check,) = report.checks
    # BLOCKED by the failed preflight check (issue 15: this asserted SKIP before)
    assert check.status == "BLOCKED" and "preflight.event_source" in check.summary
    assert check.blocked_by == "preflight.event_source"
    assert sent == 0
    assert not (tmp_path / "no-receiver-here.sqlite").exists()


# -- root cause first (issue 15) --------------------------------------------------------------
GO_LIVE_CELLS = ("preflight", "acquire_token", "identity", "senders", "provider_steps",
                 "test_send", "replay_proof", "confirm_lifecycle", "support_handoff",
                 "failure_drills", "webhook_probe", "release_gate")  # fmt: skip


def run_every_cell(params, stack):
    """The go-live notebook's cells in its order, in-process; the gate and the verdict."""
    golive = GoLiveRun(load_parameters(params), environ=stack.env, progress=lambda line: None)
    try:
        for cell in GO_LIVE_CELLS:
            result = getattr(golive, cell)()
        return result, golive.verdict()
    finally:
        golive.close()


def fixes_shown(verdict, gate) -> list[str]:
    """Every check's fix and the gate's to-do list (its blocking items not met)."""
    return [c.remedy or "" for c in verdict.checks] + [i.todo or "" for i in gate.blocking_unmet]


@pytest.mark.parametrize("provider", ["redcloud", "sendapi", "onyx"])
def test_a_receiver_down_go_live_has_one_root_cause_and_its_dependants_blocked(tmp_path, provider):
    """The receiver stopped: one FAIL (the endpoint does not answer), what waits for webhooks is
    BLOCKED by it, nothing is sent, and no fix sends ops to the provider for a local outage."""
    with running_stack(tmp_path, provider=provider) as stack:
        params = stack.params()
        stack.receiver.server.stop()  # the receiver is down; its store is still there
        gate, verdict = run_every_cell(params, stack)
        golive_sends = stack.sandbox.sandbox.message_count() if provider == "redcloud" else None
    failed = [c.check_id for c in verdict.checks if c.status == "FAIL"]
    assert failed == ["preflight.webhook_endpoint"], failed
    blocked = {c.check_id: c for c in verdict.checks if c.status == "BLOCKED"}
    assert {"drill.webhook_signature", "gate.verdict"} <= set(blocked)
    if provider != "onyx":  # Onyx's send and its lifecycle are its own steps (below)
        assert {"send.accepted", "lifecycle.queued", "support.trace"} <= set(blocked)
    assert all(c.blocked_by == "preflight.webhook_endpoint" for c in blocked.values())
    assert [(r.check.check_id, r.blocked) for r in verdict.root_causes] == [
        ("preflight.webhook_endpoint", len(blocked))
    ]
    assert verdict.outcome == "FAIL" and gate.verdict == "NO-GO"
    shown = " ".join(fixes_shown(verdict, gate))
    for untrue in ("raise it with support", "carrier has not reported back", "enable and run"):
        assert untrue not in shown
    if provider == "redcloud":
        assert golive_sends == 0  # a send whose outcome cannot be confirmed is not made
        assert {"lifecycle.sent", "lifecycle.final", "probe.all", "drill.webhook_outage"} <= set(
            blocked
        )
    if provider == "onyx":
        assert {"messaging.send", "messaging.lifecycle", "webhooks.test_event"} <= set(blocked)


def test_a_wrong_base_url_fails_its_token_only_and_blocks_everything_needing_the_api(tmp_path):
    """Drills are enabled: the gate never says "enable and run drill.X", it says what blocked it."""
    with running_stack(tmp_path) as stack:
        data = yaml.safe_load(stack.params().read_text())
        data["provider"]["base_url"] = "http://127.0.0.1:9"  # nothing listens on port 9
        assert data["drills"]["enabled"] is True
        params = tmp_path / "wrong-base-url.yaml"
        params.write_text(yaml.safe_dump(data))
        gate, verdict = run_every_cell(params, stack)
    assert [c.check_id for c in verdict.checks if c.status == "FAIL"] == ["auth.token"]
    by_id = {c.check_id: c for c in verdict.checks}
    for check_id in ("whoami.context", "numbers.list", "send.accepted", "lifecycle.final",
                     "drill.all", "preflight.clock", "gate.verdict"):  # fmt: skip
        assert by_id[check_id].status == "BLOCKED", by_id[check_id]
        assert by_id[check_id].blocked_by == "auth.token"
    todos = [i.todo or "" for i in gate.blocking_unmet]
    assert not [t for t in todos if "enable and run" in t], todos
    assert sum("blocked by auth.token" in t for t in todos) == len(todos) - 1  # AUTH-1 is its own


@pytest.mark.notebook
def test_the_report_summary_and_cli_name_the_root_cause_first(tmp_path, capsys):
    """The go-live run end to end (papermill) with the receiver down: exit 1 as for a FAIL,
    summary.json counts BLOCKED and names the root cause, the HTML report and the CLI lead with it."""
    from runbook_lib.cli import _print_run, run_go_live
    from runbook_lib.core.rendering import STATUS_COLOURS

    with running_stack(tmp_path) as stack:
        params = stack.params()
        stack.receiver.server.stop()
        run = run_go_live(params, reports_root=tmp_path / "reports", extra_env=stack.env)
    assert run.exit_code == 1
    raw = json.loads((run.report_dir / "summary.json").read_text())
    assert raw["counts"]["FAIL"] == 1 and raw["counts"]["BLOCKED"] >= 8
    (root,) = raw["rootCauses"]
    assert (
        root["id"] == "preflight.webhook_endpoint" and root["blocked"] == raw["counts"]["BLOCKED"]
    )
    assert raw["gate"]["verdict"] == "NO-GO"
    html = (run.report_dir / "report.html").read_text()
    assert html.index("Root cause") < html.index("Preflight")
    assert STATUS_COLOURS["BLOCKED"] in html and "raise it with support" not in html
    assert python_reprs(html) == []  # a failing report reads for people too
    _print_run(run)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("FAIL: root cause preflight.webhook_endpoint (Webhook endpoint")
    assert f"{raw['counts']['BLOCKED']} check(s) blocked by it" in lines[-1]
    assert "enable and run" not in "\n".join(lines)
