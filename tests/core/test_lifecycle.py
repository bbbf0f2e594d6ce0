"""Lifecycle reconstruction: sequence order, duplicates, late events, inbound kept apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runbook_lib import WebhookEvent, reconstruct

TYPES = {
    1: ("message.queued", "QUEUED"),
    2: ("message.sent", "SENT"),
    3: ("message.delivery", "DELIVERED"),
}


def ev(
    seq: int,
    arrival: int,
    *,
    mid: str = "msg_1",
    eid: str | None = None,
    etype=None,
    status=None,
    deliveries=1,
):
    etype_, status_ = TYPES.get(seq, ("message.failed", "FAILED"))
    return WebhookEvent(
        event_id=eid or f"evt_{mid}_{seq}",
        event_type=etype or etype_,
        message_id=mid,
        external_reference="ref",
        sequence=seq,
        status=status or status_,
        arrival=arrival,
        received_at=f"t{arrival}",
        delivery_count=deliveries,
    )


def test_in_order_events_reach_delivered():
    lc = reconstruct([ev(1, 1), ev(2, 2), ev(3, 3)]).messages["msg_1"]
    assert lc.state == "DELIVERED" and lc.highest_sequence == 3
    assert lc.flags() == []


def test_late_lower_sequence_never_overrides():
    lc = reconstruct([ev(3, 1), ev(1, 2), ev(2, 3)]).messages["msg_1"]
    assert lc.state == "DELIVERED"
    assert lc.out_of_order == 2
    assert lc.seen("QUEUED") and lc.seen("SENT")


def test_duplicates_count_once():
    lc = reconstruct([ev(1, 1), ev(1, 2), ev(2, 3, deliveries=2)]).messages["msg_1"]
    assert lc.state == "SENT" and lc.duplicate_deliveries == 2


def test_gap_and_missing_queued_are_flagged():
    lc = reconstruct([ev(3, 1)]).messages["msg_1"]
    assert lc.sequence_gaps == (1, 2) and lc.missing_queued


def test_failed_keeps_reason_and_terminal_conflict_is_flagged():
    failed = WebhookEvent(
        "evt_f",
        "message.failed",
        message_id="msg_1",
        sequence=3,
        status="FAILED",
        failure_code="carrier_rejected",
        failure_reason="no",
        arrival=4,
    )
    lc = reconstruct([ev(1, 1), ev(2, 2), failed]).messages["msg_1"]
    assert lc.state == "FAILED" and lc.failure_code == "carrier_rejected"
    both = reconstruct(
        [
            ev(1, 1),
            ev(3, 2),
            WebhookEvent("evt_x", "message.failed", message_id="msg_1", sequence=4, arrival=3),
        ]
    )
    assert both.messages["msg_1"].terminal_conflict


def test_inbound_is_a_new_message_never_an_update():
    inbound = WebhookEvent(
        "evt_in", "message.inbound", message_id="msg_1", conversation_id="conv_1", arrival=5
    )
    result = reconstruct([ev(1, 1), inbound])
    assert result.messages["msg_1"].state == "QUEUED"
    assert list(result.conversations) == ["conv_1"]


def test_unknown_types_are_counted_and_ignored():
    result = reconstruct([ev(1, 1), WebhookEvent("evt_u", "message.reaction", message_id="msg_1")])
    assert result.unknown_event_types == {"message.reaction": 1}
    assert result.messages["msg_1"].state == "QUEUED"


@given(st.permutations([1, 2, 3]), st.lists(st.integers(1, 3), max_size=4))
def test_any_order_and_duplication_gives_the_same_final_state(order, dupes):
    events = [ev(seq, i) for i, seq in enumerate(order + dupes)]
    lc = reconstruct(events).messages["msg_1"]
    assert lc.state == "DELIVERED" and lc.highest_sequence == 3
    assert lc.sequence_gaps == () and not lc.missing_queued and not lc.terminal_conflict


def test_a_provider_without_sequence_is_ordered_by_state_rank_never_backwards():
    """ordered_by="rank": a later-arriving lower state is refused; duplicates count once."""
    from runbook_lib.core.lifecycle import LifecycleModel

    model = LifecycleModel(
        state_by_event={"sms.queued": "QUEUED", "sms.sent": "SENT", "sms.delivered": "DELIVERED"},
        ordered_by="rank",
        first_event="sms.queued",
    )

    def unsequenced(etype: str, arrival: int, eid: str | None = None) -> WebhookEvent:
        return WebhookEvent(event_id=eid or f"e_{etype}", event_type=etype, message_id="m",
                            arrival=arrival, received_at=f"t{arrival}")  # fmt: skip

    events = [
        unsequenced("sms.delivered", 0),
        unsequenced("sms.sent", 1),
        unsequenced("sms.delivered", 2),  # a retried delivery of the first event
        unsequenced("sms.queued", 3),
    ]
    lc = reconstruct(events, model).messages["m"]
    assert lc.state == "DELIVERED" and lc.applied == ("e_sms.delivered",)
    assert lc.regressions_refused == 2 and lc.duplicate_deliveries == 1
    assert not lc.missing_queued and lc.sequence_gaps == ()
