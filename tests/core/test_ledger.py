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
