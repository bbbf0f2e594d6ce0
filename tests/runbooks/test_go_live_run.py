"""GoLiveRun steps in-process against the real sandbox and receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml

from runbook_lib import GoLiveRun
from runbook_lib.core.parameters import load_parameters
from runbook_lib.receiver import EventStore
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
