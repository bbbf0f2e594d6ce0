"""The lifecycle step's checks: each later state needs the earlier one, and the fix for a message
that never reached "sent" blames the provider's queue only when the receiver was proven up."""

from __future__ import annotations

from runbook_lib import WebhookEvent, reconstruct
from runbook_lib.core.checks import resolve_blocked
from runbook_lib.core.lifecycle_checks import lifecycle_checks

STUCK = "stuck in the provider's queue"


def queued_only():
    event = WebhookEvent(event_id="evt_q", event_type="message.queued", message_id="msg_1",
                         external_reference="ref", sequence=1, status="QUEUED", arrival=1,
                         received_at="t1")  # fmt: skip
    return reconstruct([event]).messages["msg_1"]


def checks(lifecycle, **kw):
    found = lifecycle_checks(
        lifecycle, "delivered", 2, lambda s: f"message.{s.lower()}", "whoami", **kw
    )
    return {c.check_id: c for c in resolve_blocked(found)}


def test_no_webhook_at_all_is_one_root_cause_and_never_blamed_on_the_provider():
    by_id = checks(None)
    assert by_id["lifecycle.queued"].status == "FAIL"
    assert by_id["lifecycle.sent"].status == by_id["lifecycle.final"].status == "BLOCKED"
    assert {c.blocked_by for c in by_id.values() if c.status == "BLOCKED"} == {"lifecycle.queued"}
    assert not [c for c in by_id.values() if STUCK in (c.remedy or "")]
    assert not [c for c in by_id.values() if "carrier" in (c.remedy or "")]


def test_a_message_whose_queued_event_arrived_is_stuck_at_the_provider():
    by_id = checks(queued_only())
    sent = by_id["lifecycle.sent"]
    assert sent.status == "FAIL" and STUCK in (sent.remedy or "")
    assert by_id["lifecycle.final"].status == "BLOCKED"  # not sent: never final either
    assert by_id["lifecycle.final"].blocked_by == "lifecycle.sent"


def test_without_a_queued_webhook_stuck_is_said_only_when_the_endpoint_answered():
    unproven = checks(None, queued_on_acceptance=True)["lifecycle.sent"]
    assert unproven.status == "FAIL" and STUCK not in (unproven.remedy or "")
    assert "check that the receiver runs" in (unproven.remedy or "")
    proven = checks(None, queued_on_acceptance=True, receiver_up=True)["lifecycle.sent"]
    assert STUCK in (proven.remedy or "")
