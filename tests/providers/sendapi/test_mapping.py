"""SendAPI events → lifecycle by state rank: never backwards, dedupe, freshness, session health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lib.providers.sendapi.mapping import SendApiEvent, SendApiLifecycle, fold_events

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NOW = (T0 + timedelta(seconds=60)).timestamp()

# Every valid path the contract allows, per channel.
PATHS = {
    ("sms", "sms_1"): [["sms.sent", "sms.delivered"], ["sms.sent", "sms.failed"]],
    ("whatsapp", "msg_1"): [["message.sent", "message.delivered", "message.read"],
                            ["message.sent", "message.delivered"], ["message.sent", "message.failed"]],
    ("email", "eml_1"): [["email.sent", "email.delivered", "email.opened", "email.clicked"],
                         ["email.sent", "email.bounced"],
                         ["email.sent", "email.delivered", "email.complained"],
                         ["email.sent", "email.delivered", "email.opened", "email.complained"]],
}  # fmt: skip
FINAL = {"sms.delivered": "delivered", "sms.failed": "failed", "message.read": "read",
         "message.delivered": "delivered", "message.failed": "failed", "email.clicked": "clicked",
         "email.bounced": "bounced", "email.complained": "complained"}  # fmt: skip


def envelope(
    event_type: str, message_id: str, second: int, event_id: str | None = None, **data
) -> dict:
    return {"id": event_id or f"evt_{message_id}_{second}", "event": event_type,
            "timestamp": (T0 + timedelta(seconds=second)).isoformat(),
            "data": {"id": message_id, **data}}  # fmt: skip


def path_events(message_id: str, path: list[str]) -> list[dict]:
    extra = {
        "sms.failed": {"error_code": "EC_INVALID_NUMBER"},
        "message.failed": {"error_code": "E_BLOCKED"},
    }
    return [envelope(t, message_id, i, **extra.get(t, {})) for i, t in enumerate(path)]


@st.composite
def shuffled_with_duplicates(draw):
    (channel, message_id), paths = draw(st.sampled_from(sorted(PATHS.items())))
    path = draw(st.sampled_from(paths))
    events = path_events(message_id, path)
    extra = draw(st.lists(st.sampled_from(events), max_size=6))
    return path, events, draw(st.permutations(events + extra))


@settings(max_examples=300, deadline=None)
@given(shuffled_with_duplicates())
def test_any_permutation_and_duplication_of_a_valid_path_gives_the_same_final_state(case):
    path, events, arrived = case
    in_order = fold_events(events, now=NOW)
    shuffled = fold_events(arrived, now=NOW)
    (expected,) = in_order.lifecycles.values()
    (got,) = shuffled.lifecycles.values()
    assert got.state == expected.state == FINAL[path[-1]]
    assert got.first_seen == expected.first_seen and got.error_code == expected.error_code
    assert shuffled.duplicates == len(arrived) - len(events)


def test_a_status_never_moves_backwards_and_says_so():
    lc = SendApiLifecycle.start("sms", "sms_1", "queued")
    lc = lc.apply(SendApiEvent.from_envelope(envelope("sms.delivered", "sms_1", 5)))
    assert lc.applied and lc.state == "delivered"
    lc = lc.apply(SendApiEvent.from_envelope(envelope("sms.sent", "sms_1", 1)))
    assert lc.regression and not lc.applied and lc.state == "delivered"
    assert lc.seen_at("sent") == T0 + timedelta(seconds=1)  # still in the funnel


def test_terminal_states_hold_against_anything_later():
    lc = SendApiLifecycle.start("email", "eml_1")
    lc = lc.apply(SendApiEvent.from_envelope(envelope("email.bounced", "eml_1", 2)))
    lc = lc.apply(SendApiEvent.from_envelope(envelope("email.opened", "eml_1", 3)))
    assert lc.state == "bounced" and lc.regression


def test_a_duplicate_event_id_is_applied_once():
    event = SendApiEvent.from_envelope(envelope("message.sent", "msg_1", 1))
    lc = SendApiLifecycle.start("whatsapp", "msg_1", "accepted").apply(event)
    again = lc.apply(event)
    assert again.duplicate and not again.applied
    assert (again.state, again.first_seen, again.seen_ids) == (lc.state, lc.first_seen, lc.seen_ids)


def test_a_conflicting_state_of_the_same_rank_keeps_the_first():
    lc = SendApiLifecycle.start("email", "m")
    lc = lc.apply(SendApiEvent.from_envelope(envelope("email.delivered", "m", 2)))
    lc = lc.apply(SendApiEvent.from_envelope(envelope("email.bounced", "m", 3)))
    assert lc.state == "delivered" and lc.conflict and not lc.applied


def test_whatsapp_failed_is_terminal():
    lc = SendApiLifecycle.start("whatsapp", "m")
    lc = lc.apply(SendApiEvent.from_envelope(envelope("message.failed", "m", 2)))
    lc = lc.apply(SendApiEvent.from_envelope(envelope("message.read", "m", 3)))
    assert lc.state == "failed" and lc.regression


def test_envelopes_older_than_the_window_are_rejected():
    # At T0+300.5 s the event of T0 is 300.5 s old (rejected), the one of T0+1 s is not.
    book = fold_events([envelope("sms.sent", "sms_1", 0), envelope("sms.delivered", "sms_1", 1)],
                       now=(T0 + timedelta(seconds=300.5)).timestamp())  # fmt: skip
    assert book.stale == 1 and book.lifecycles["sms_1"].state == "delivered"
    assert book.lifecycles["sms_1"].seen_at("sent") is None
    fresh = fold_events(
        [envelope("sms.delivered", "sms_1", 1)], now=(T0 + timedelta(seconds=400)).timestamp()
    )
    assert fresh.stale == 1 and fresh.lifecycles["sms_1"].state is None


def test_failed_carries_its_error_code():
    book = fold_events(path_events("sms_9", ["sms.sent", "sms.failed"]), now=NOW)
    assert book.lifecycles["sms_9"].error_code == "EC_INVALID_NUMBER"


def test_sessions_are_kept_apart_from_messages_latest_wins():
    events = [
        {"id": "evt_s2", "event": "session.connected", "timestamp": (T0 + timedelta(seconds=9)).isoformat(),
         "data": {"session_id": "sess_1", "status": "connected"}},
        {"id": "evt_s1", "event": "session.disconnected", "timestamp": (T0 + timedelta(seconds=5)).isoformat(),
         "data": {"session_id": "sess_1", "status": "disconnected", "reason": "phone_offline"}},
        envelope("message.sent", "msg_1", 1),
    ]  # fmt: skip
    book = fold_events(events, now=NOW)
    assert set(book.lifecycles) == {"msg_1"}
    health = book.sessions["sess_1"]
    assert health.connected and health.disconnections == 1
    only_down = fold_events(events[1:], now=NOW).sessions["sess_1"]
    assert only_down.status == "disconnected" and only_down.reason == "phone_offline"


@pytest.mark.parametrize(
    "data",
    [{"text": {"body": "hi"}}, {"message": "hi"}, {"content": "hi"}],
)
def test_inbound_text_reads_each_documented_spelling(data):
    event = SendApiEvent.from_envelope({"id": "evt_in", "event": "message.received",
                                        "timestamp": T0.isoformat(), "data": data})  # fmt: skip
    assert event.text == "hi" and event.kind == "inbound"
    assert fold_events([event], now=NOW).ignored == 1


def test_message_id_reads_each_spelling():
    for key in ("id", "message_id", "messageId"):
        event = SendApiEvent.from_envelope({"id": "e", "event": "sms.sent", "timestamp": T0.isoformat(),
                                            "data": {key: "sms_7"}})  # fmt: skip
        assert event.message_id == "sms_7"


def test_stale_session_events_are_rejected_too():
    late = {"id": "evt_s", "event": "session.disconnected", "timestamp": T0.isoformat(),
            "data": {"session_id": "sess_1", "status": "disconnected"}}  # fmt: skip
    book = fold_events([late], now=(T0 + timedelta(seconds=301)).timestamp())
    assert book.stale == 1 and "sess_1" not in book.sessions


def test_behind_the_seam_events_order_by_rank_and_no_queued_event_is_missed():
    """The common engine with SendAPI's model: acceptance is the queued state, never flagged."""
    from runbook_lib.core.lifecycle import reconstruct
    from runbook_lib.providers.base import get_provider

    provider = get_provider("sendapi")

    def event(n: int, event_type: str) -> object:
        envelope = provider.probe_envelope(event_type, event_id=f"evt_{n}", message_id="sms_1",
                                           now="2026-12-01T00:00:00Z")  # fmt: skip
        return provider.event_from_envelope(envelope, arrival=n)

    events = [event(1, "sms.delivered"), event(2, "sms.sent"), event(1, "sms.delivered")]
    lifecycle = reconstruct(events, provider.lifecycle).messages["sms_1"]
    assert lifecycle.state == "DELIVERED"  # the late sms.sent never moves it back
    assert lifecycle.duplicate_deliveries == 1  # evt_1 twice: a retry, counted once
    assert lifecycle.seen("SENT") and not lifecycle.missing_queued
    assert not any("event received" in flag for flag in lifecycle.flags())
