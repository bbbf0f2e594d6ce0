"""Controlled sends against the real sandbox: a recorded acceptance is final, keys expire.

The sandbox here forgets idempotency keys after half a second, as Red Cloud does after 24 h; the
ledger's timestamps are moved back 25 h, as if the run were resumed a day later. Any POST of the
same key would then create a second message.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runbook_lib import GoLiveRun, SendLedger
from runbook_lib.core.invocation import INVOKED_BY_ENV
from runbook_lib.core.parameters import load_parameters
from runbook_lib.core.sends import Acceptance, controlled_send
from runbook_lib.providers.base import get_provider, provider_names
from runbook_lib.providers.redcloud.sandbox import SandboxControl
from tests.stack import running_stack


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, idempotency_window=0.5) as s:
        yield s


def age_ledger(path: Path, hours: float) -> None:
    """Move every timestamp of the ledger ``hours`` into the past (a run resumed later)."""
    shift = f"-{hours} hours"

    def back(column: str) -> str:
        return (
            f"{column} = CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"strftime('%Y-%m-%dT%H:%M:%SZ', {column}, '{shift}') END"
        )

    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(sends)")}
    stamps = [c for c in ("reserved_at", "responded_at", "accepted_at") if c in columns]
    with db:
        db.execute(f"UPDATE runs SET {back('started_at')}")
        db.execute(f"UPDATE sends SET {', '.join(back(c) for c in stamps)}")
    db.close()


def open_run(stack, params: Path, run_id: str = "") -> GoLiveRun:
    golive = GoLiveRun(
        load_parameters(params), run_id=run_id, environ=stack.env, progress=lambda line: None
    )
    golive.preflight()
    golive.acquire_token()
    golive.identity()
    golive.senders()
    return golive


def send_posts(golive: GoLiveRun) -> list[str]:
    """Idempotency keys of the send POSTs this run's client made."""
    assert golive.client is not None
    return [r.idempotency_key for r in golive.client.request_log if r.path.endswith("/send")]


def golive_messages(stack) -> list[dict]:
    with SandboxControl(stack.sandbox.url) as control:
        return [m for m in control.messages() if m["externalReference"].startswith("golive-")]


def test_rerunning_the_send_cell_reports_the_recorded_acceptance_without_a_post(stack):
    golive = open_run(stack, stack.params())
    first = golive.test_send()
    again = golive.test_send()
    assert first.checks[0].status == again.checks[0].status == "PASS"
    assert len(send_posts(golive)) == 1  # the re-run cell made no request
    assert golive.sent is not None and golive.sent.resumed
    assert again.checks[0].evidence["messageId"] == first.checks[0].evidence["messageId"]
    assert "nothing was sent again" in again.checks[0].summary
    golive.close()


def test_a_resumed_run_past_the_window_reports_its_acceptance_and_never_posts(stack):
    params = stack.params()
    first = open_run(stack, params)
    first.test_send()
    assert first.sent is not None
    accepted = (first.sent.message_id, first.sent.accepted_request_id, first.sent.accepted_at)
    run_id = first.run_id
    first.close()  # no verdict: the run is unfinished, as after a crash
    age_ledger(load_parameters(params).ledger_path, 25)

    resumed = open_run(stack, params, run_id=run_id)
    send = resumed.test_send()
    replay = resumed.replay_proof()
    assert send_posts(resumed) == []  # neither the send nor the replay POSTed the old key
    assert len(golive_messages(stack)) == 1
    assert send.checks[0].status == "PASS"
    message = resumed.sent
    assert message is not None and message.resumed
    assert (message.message_id, message.accepted_request_id) == accepted[:2]
    assert message.accepted_at and message.accepted_at < accepted[2]  # the ledger's, moved back
    (check,) = replay.checks
    assert check.status == "SKIP" and "idempotency window" in check.summary
    resumed.close()


def test_an_attempted_key_without_acceptance_is_not_resent_past_the_window(stack):
    params = stack.params()
    golive = open_run(stack, params)
    ledger = golive.ledger
    payload = golive.provider.send_payload(golive.params, golive.run_id)
    from runbook_lib.core.sends import idempotency_key_for

    key = idempotency_key_for("sandbox", golive.run_id, "test-send-1")
    ledger.reserve(golive.run_id, "test-send-1", key, payload)
    ledger.record_attempt(golive.run_id, "test-send-1")  # sent, then the host crashed
    golive.close()
    # The request went out a day ago and may have created a message: nobody knows.
    age_ledger(load_parameters(params).ledger_path, 25)
    db = sqlite3.connect(load_parameters(params).ledger_path)
    with db:  # only the key is old: the run itself was re-opened recently
        db.execute("UPDATE runs SET started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')")
    db.close()

    resumed = open_run(stack, params, run_id=golive.run_id)
    (check,) = resumed.test_send().checks
    assert check.status == "FAIL" and "idempotency window" in check.summary
    assert check.evidence["error"]["code"] == "key_outside_idempotency_window"
    assert send_posts(resumed) == [] and golive_messages(stack) == []
    resumed.close()


@pytest.mark.parametrize("invoked_by", ["cli", "notebook"])
def test_a_run_started_beyond_the_window_sends_nothing(stack, monkeypatch, invoked_by):
    """The fix starts a new run as this context starts one (--new-run, or an empty run_id)."""
    if invoked_by == "cli":
        monkeypatch.setenv(INVOKED_BY_ENV, "cli")
    params = stack.params()
    ledger = SendLedger(load_parameters(params).ledger_path)
    run_id = ledger.start_run("sandbox", "go-live")
    ledger.close()
    age_ledger(load_parameters(params).ledger_path, 25)

    resumed = open_run(stack, params, run_id=run_id)
    (check,) = resumed.test_send().checks
    assert check.status == "FAIL"
    assert check.evidence["error"]["code"] == "run_outside_idempotency_window"
    if invoked_by == "cli":
        assert "--new-run" in (check.remedy or "")
    else:
        assert 'run_id = ""' in check.remedy and "--" not in check.remedy
    drills = resumed.failure_drills()
    assert all(c.status == "SKIP" for c in drills.checks)
    assert send_posts(resumed) == [] and golive_messages(stack) == []
    resumed.close()


def test_the_replay_proof_still_replays_inside_the_window(tmp_path):
    with running_stack(tmp_path) as stack:
        golive = open_run(stack, stack.params())
        golive.test_send()
        (check,) = golive.replay_proof().checks
        assert check.status == "PASS" and len(send_posts(golive)) == 2
        assert len(golive_messages(stack)) == 1
        golive.close()


def test_the_window_comes_from_the_parameter_file(tmp_path):
    with running_stack(tmp_path) as stack:  # a sandbox that remembers keys for its 24 h
        provider = load_parameters(stack.params()).provider.model_dump(mode="json")
        params = stack.params(provider={**provider, "idempotency_window_hours": 48})
        golive = open_run(stack, params)
        golive.test_send()
        run_id = golive.run_id
        golive.close()
        age_ledger(load_parameters(params).ledger_path, 25)
        resumed = open_run(stack, params, run_id=run_id)
        resumed.test_send()
        (check,) = resumed.replay_proof().checks
        assert resumed.window.seconds == 48 * 3600
        assert check.status == "PASS"  # 25 h is inside the declared 48 h: the replay is proved
        assert len(golive_messages(stack)) == 1
        resumed.close()


# -- the check names the provider's own acceptance -----------------------------------------------
class _Accepting:
    """A client that accepts every send the way ``answer`` (http status, status field) says."""

    def __init__(self, answer: tuple[int, str]) -> None:
        self.answer, self.keys = answer, []

    def send(self, payload, *, idempotency_key):
        self.keys.append(idempotency_key)
        code, status = self.answer
        return Acceptance(
            message_id="msg_accepted_1", external_reference=payload.get("externalReference"),
            status=status, accepted_at="2026-11-23T07:00:00Z", http_status=code,
            request_id="req_1", request_ids=("req_1",),
            expected_http_status=code, expected_status=status,
        )  # fmt: skip


def _send(tmp_path, acceptance, client, to="+15005550001"):
    ledger = SendLedger(tmp_path / "ledger.sqlite")
    run_id = ledger.start_run("sandbox", "go-live")
    try:
        return controlled_send(
            client, ledger, run_id=run_id, step="test-send-1", environment="sandbox",
            payload={"to": to, "externalReference": "golive-1"}, allowlist=["+15005550001"],
            max_sends=1, acceptance=acceptance,
        )  # fmt: skip
    finally:
        ledger.close()


@pytest.mark.parametrize("kind", provider_names())
def test_the_send_check_names_its_providers_acceptance(tmp_path, kind):
    """Title and summary say what this provider answers (SendAPI 201 queued, Onyx 202 accepted)."""
    acceptance = get_provider(kind).acceptance
    code, status = acceptance
    outcome = _send(tmp_path, acceptance, _Accepting(acceptance))
    check = outcome.check
    assert check.status == "PASS"
    assert check.title == f"Send accepted ({code} {status})"
    assert f"({code} {status})" in check.summary and "msg_accepted_1" in check.summary
    if acceptance != (202, "QUEUED"):
        assert "QUEUED" not in check.title + check.summary and "202 QUEUED" not in check.summary


@pytest.mark.parametrize("kind", provider_names())
def test_a_refused_send_is_titled_with_its_providers_acceptance(tmp_path, kind):
    acceptance = get_provider(kind).acceptance
    client = _Accepting(acceptance)
    outcome = _send(tmp_path, acceptance, client, to="+19999999999")
    assert outcome.check.status == "FAIL" and client.keys == []
    assert outcome.check.title == "Send accepted ({} {})".format(*acceptance)


def test_the_title_names_what_the_client_expected_of_this_send(tmp_path):
    """A SendAPI WhatsApp send answers 201 accepted, not the provider's usual 201 queued."""
    outcome = _send(tmp_path, (201, "queued"), _Accepting((201, "accepted")))
    assert outcome.check.status == "PASS"
    assert outcome.check.title == "Send accepted (201 accepted)"
