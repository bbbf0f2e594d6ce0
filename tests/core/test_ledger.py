"""The send ledger: keys are written before sending and survive a restart."""

from __future__ import annotations

import pytest

from runbook_lib import SendLedger, SendPolicyError


def test_reserve_is_stable_across_reopen(tmp_path):
    ledger = SendLedger(tmp_path / "l.sqlite")
    run = ledger.start_run("sandbox", "go-live")
    first = ledger.reserve(run, "step", "key-1", {"to": "+1", "body": "x"})
    ledger.close()
    again = SendLedger(tmp_path / "l.sqlite").reserve(
        run, "step", "key-2", {"body": "x", "to": "+1"}
    )
    assert again.idempotency_key == first.idempotency_key == "key-1"


def test_changed_body_for_the_same_step_is_refused(tmp_path):
    ledger = SendLedger(tmp_path / "l.sqlite")
    ledger.reserve("r", "step", "k", {"body": "a"})
    with pytest.raises(SendPolicyError, match="different message"):
        ledger.reserve("r", "step", "k", {"body": "b"})


def test_unfinished_run_is_found_until_finished(tmp_path):
    ledger = SendLedger(tmp_path / "l.sqlite")
    run = ledger.start_run("sandbox", "go-live")
    assert ledger.unfinished_run("sandbox", "go-live") == run
    assert ledger.unfinished_run("production", "go-live") is None
    ledger.finish_run(run, "PASS")
    assert ledger.unfinished_run("sandbox", "go-live") is None


@pytest.mark.parametrize(("status", "message_id", "accepted"), [
    (202, "msg_1", True),   # Red Cloud, Onyx
    (201, "msg_1", True),   # SendAPI
    (200, "msg_1", True),   # a replayed acceptance
    (201, None, False),     # no message to follow
    (409, "msg_1", False),  # refused
    (503, None, False),
])  # fmt: skip
def test_any_provider_acceptance_is_final_in_the_ledger(tmp_path, status, message_id, accepted):
    """A SendAPI 201 is as final as a Red Cloud 202: a re-run reports it and never POSTs again."""
    ledger = SendLedger(tmp_path / "l.sqlite")
    ledger.reserve("r", "step", "k", {"body": "a"})
    ledger.record_response("r", "step", status=status, message_id=message_id,
                           external_reference=None, request_id="req_1")  # fmt: skip
    assert SendLedger(tmp_path / "l.sqlite").entry("r", "step").accepted is accepted
