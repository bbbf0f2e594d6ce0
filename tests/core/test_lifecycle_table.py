"""The bulk lifecycle engine: the same answers as the per-message engine and as the SQL reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lib import WebhookEvent, reconstruct
from runbook_lib.core.lifecycle_table import audit_lifecycles
from runbook_lib.providers.redcloud.sandbox.synthetic import synthetic_events
from runbook_lib.sources import frame_from_events

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KINDS = ["message.queued", "message.sent", "message.delivery", "message.failed"]
ORDER_FREE = ("state", "highest_sequence", "duplicate_deliveries", "sequence_gaps",
              "terminal_conflict", "missing_queued")  # fmt: skip


def event(mid: str, seq: int | None, kind: str, eid: str, arrival: int, **kw) -> WebhookEvent:
    at = (T0 + timedelta(seconds=arrival)).isoformat().replace("+00:00", "Z")
    return WebhookEvent(
        event_id=eid, event_type=kind, message_id=mid, external_reference=f"ref-{mid}",
        sequence=seq, status=kind.split(".")[1].upper(), arrival=arrival, received_at=at, **kw,
    )  # fmt: skip


@st.composite
def message_histories(draw):
    """A few messages: some sequence numbers, some duplicated deliveries, any arrival order."""
    events = []
    for m in range(draw(st.integers(1, 4))):
        mid = f"msg_{m}"
        top = draw(st.integers(1, 5))
        for seq in draw(st.sets(st.integers(1, top), min_size=1)):
            kind = KINDS[min(seq, 4) - 1] if seq < 4 else draw(st.sampled_from(KINDS[2:]))
            events.append((mid, seq, kind, f"evt_{mid}_{seq}"))
            if draw(st.booleans()):  # the same event delivered again
                events.append((mid, seq, kind, f"evt_{mid}_{seq}"))
            if draw(st.integers(0, 9)) == 0:  # a second event id with the same sequence
                events.append((mid, seq, kind, f"evt_{mid}_{seq}_b"))
    order = draw(st.permutations(range(len(events))))
    return [event(*events[i], arrival=n) for n, i in enumerate(order)]


def row_engine(events: list[WebhookEvent]) -> dict[str, dict]:
    out = {}
    for mid, lc in reconstruct(events).messages.items():
        out[mid] = {
            "state": lc.state, "highest_sequence": lc.highest_sequence,
            "duplicate_deliveries": lc.duplicate_deliveries, "out_of_order": lc.out_of_order,
            "regressions_refused": lc.regressions_refused, "sequence_gaps": len(lc.sequence_gaps),
            "terminal_conflict": lc.terminal_conflict, "missing_queued": lc.missing_queued,
        }  # fmt: skip
    return out


def bulk_engine(events: list[WebhookEvent]) -> dict[str, dict]:
    table = audit_lifecycles(frame_from_events(events))
    keys = ("state", "highest_sequence", "duplicate_deliveries", "out_of_order",
            "regressions_refused", "sequence_gaps", "terminal_conflict", "missing_queued")  # fmt: skip
    return {r["message_id"]: {k: r[k] for k in keys} for r in table.messages.iter_rows(named=True)}


@settings(max_examples=150, deadline=None)
@given(message_histories())
def test_bulk_engine_agrees_with_the_per_message_engine(events):
    assert bulk_engine(events) == row_engine(events)


@settings(max_examples=100, deadline=None)
@given(message_histories(), st.randoms())
def test_any_permutation_and_duplication_gives_the_same_order_free_answers(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    again = [
        event(e.message_id, e.sequence, e.event_type, e.event_id, n) for n, e in enumerate(shuffled)
    ]
    first, second = bulk_engine(events), bulk_engine(again)
    assert {m: {k: v[k] for k in ORDER_FREE} for m, v in first.items()} == {
        m: {k: v[k] for k in ORDER_FREE} for m, v in second.items()
    }


def test_flags_on_a_known_history():
    events = [
        event("m", 2, "message.sent", "e2", 0),
        event("m", 1, "message.queued", "e1", 1),  # late: refused, a regression
        event("m", 2, "message.sent", "e2", 2),  # retried delivery
        event("m", 4, "message.failed", "e4", 3, failure_code="carrier_rejected"),
        event("m", 5, "message.delivery", "e5", 4),  # both outcomes reported
    ]
    row = audit_lifecycles(frame_from_events(events)).messages.row(0, named=True)
    assert row["state"] == "DELIVERED" and row["highest_sequence"] == 5
    assert row["out_of_order"] == 1 and row["regressions_refused"] == 1
    assert row["duplicate_deliveries"] == 1 and row["sequence_gaps"] == 1
    assert row["terminal_conflict"] and not row["missing_queued"]
    assert row["failure_code"] == "carrier_rejected"
    assert row["queued_at"] == T0 + timedelta(seconds=1)


def test_inbound_is_grouped_by_conversation_and_unknown_types_are_counted():
    events = [
        event("m", 1, "message.queued", "e1", 0),
        WebhookEvent("i1", "message.inbound", message_id="in_1", conversation_id="c1", arrival=1),
        WebhookEvent("i2", "message.inbound", message_id="in_2", conversation_id="c1", arrival=2),
        WebhookEvent("x1", "message.reaction", message_id="m", arrival=3),
    ]
    table = audit_lifecycles(frame_from_events(events))
    assert table.messages["message_id"].to_list() == ["m"]  # inbound never updates outbound
    assert table.conversations.row(0, named=True)["messages"] == 2
    assert table.unknown_event_types == {"message.reaction": 1}


def test_synthetic_window_counts_come_back_out():
    window = synthetic_events(3000, seed=11)
    table = audit_lifecycles(window.events, as_of=window.end + timedelta(hours=1))
    states = table.states()
    assert table.messages.height == 3000
    assert states.get("FAILED", 0) == window.failed
    assert states.get("DELIVERED", 0) == window.delivered
    assert table.flag_counts()["stuck"] == window.stuck


def test_engine_matches_the_duckdb_reference(tmp_path):
    from benchmarks.lifecycle_audit import duckdb_audit

    window = synthetic_events(4000, seed=5, duplicate_rate=0.3, out_of_order_rate=0.3)
    path = tmp_path / "events.parquet"
    window.events.write_parquet(path)
    cutoff = window.end - timedelta(minutes=30)
    ours = audit_lifecycles(window.events, as_of=cutoff, stuck_after=timedelta(0)).messages
    ref = pl.from_arrow(duckdb_audit(path, cutoff))
    ours, ref = ours.sort("message_id"), ref.sort("message_id").select(ours.columns)
    for column in ours.columns:
        assert (
            ours[column].cast(pl.Utf8).fill_null("-") == ref[column].cast(pl.Utf8).fill_null("-")
        ).all(), column


# -- a provider whose events carry no sequence: ordered by its own ranks per channel ----------
SENDAPI_CHANNELS = {
    "sms": ["sms.sent", "sms.delivered", "sms.failed"],
    "whatsapp": ["message.sent", "message.delivered", "message.read", "message.failed"],
    "email": ["email.sent", "email.delivered", "email.opened", "email.clicked", "email.bounced",
              "email.complained"],
}  # fmt: skip


def sendapi_model():
    from runbook_lib.providers.base import get_provider

    return get_provider("sendapi").lifecycle


def unsequenced(mid: str, kind: str, eid: str, arrival: int, **kw) -> WebhookEvent:
    return event(mid, None, kind, eid, arrival, **kw)


@st.composite
def unsequenced_histories(draw):
    """SendAPI-like messages (no sequence), any channel: any subset of its events, retried
    deliveries of one event id, any arrival order."""
    events = []
    for m in range(draw(st.integers(1, 4))):
        channel = draw(st.sampled_from(sorted(SENDAPI_CHANNELS)))
        mid = f"{channel}_{m}"
        for kind in draw(st.sets(st.sampled_from(SENDAPI_CHANNELS[channel]), min_size=1)):
            events.append((mid, kind, f"evt_{mid}_{kind}"))
            if draw(st.booleans()):
                events.append((mid, kind, f"evt_{mid}_{kind}"))
    order = draw(st.permutations(range(len(events))))
    return [unsequenced(*events[i], arrival=n) for n, i in enumerate(order)]


def rows_of_both(events: list[WebhookEvent], model) -> tuple[dict, dict]:
    keys = ("state", "highest_sequence", "duplicate_deliveries", "out_of_order",
            "regressions_refused", "sequence_gaps", "terminal_conflict", "missing_queued")  # fmt: skip
    table = audit_lifecycles(frame_from_events(events), model=model)
    bulk = {r["message_id"]: {k: r[k] for k in keys} for r in table.messages.iter_rows(named=True)}
    per_message = {
        mid: {"state": lc.state, "highest_sequence": lc.highest_sequence,
              "duplicate_deliveries": lc.duplicate_deliveries, "out_of_order": lc.out_of_order,
              "regressions_refused": lc.regressions_refused,
              "sequence_gaps": len(lc.sequence_gaps), "terminal_conflict": lc.terminal_conflict,
              "missing_queued": lc.missing_queued}
        for mid, lc in reconstruct(events, model).messages.items()
    }  # fmt: skip
    return bulk, per_message


@settings(max_examples=150, deadline=None)
@given(unsequenced_histories())
def test_bulk_engine_agrees_with_the_per_message_engine_on_unsequenced_events(events):
    bulk, per_message = rows_of_both(events, sendapi_model())
    assert bulk == per_message


@settings(max_examples=100, deadline=None)
@given(unsequenced_histories(), st.randoms())
def test_unsequenced_final_state_does_not_depend_on_arrival_order(events, rnd):
    """Ranked, a message that reached a final state shows it whatever the order and duplication."""
    shuffled = list(events)
    rnd.shuffle(shuffled)
    again = [unsequenced(e.message_id, e.event_type, e.event_id, n) for n, e in enumerate(shuffled)]
    model = sendapi_model()
    first, second = rows_of_both(events, model)[0], rows_of_both(again, model)[0]
    for mid, row in first.items():
        kinds = {e.event_type for e in events if e.message_id == mid}
        if not (kinds & {"sms.failed", "message.failed", "email.bounced"}):
            # without a failure report, the highest-ranked event decides: order-free
            assert row["state"] == second[mid]["state"]
        assert row["state"] is not None and not row["missing_queued"]
        assert row["duplicate_deliveries"] == second[mid]["duplicate_deliveries"]


def test_sendapi_events_out_of_order_and_duplicated_end_final():
    """The audit funnel's rows: delivered is final, never moved backwards, duplicates count once,
    read after delivered is progress, and FAILED (bounced) is final."""
    events = [
        unsequenced("sms_1", "sms.delivered", "e1", 0),
        unsequenced("sms_1", "sms.sent", "e2", 1),  # late: would move it backwards
        unsequenced("sms_1", "sms.delivered", "e1", 2),  # a retried delivery
        unsequenced("msg_1", "message.sent", "e3", 3),
        unsequenced("msg_1", "message.delivered", "e4", 4),
        unsequenced("msg_1", "message.read", "e5", 5),  # progress, not out of order
        unsequenced("eml_1", "email.sent", "e6", 6),
        unsequenced("eml_1", "email.bounced", "e7", 7, failure_code="hard"),
        unsequenced("eml_1", "email.opened", "e8", 8),  # nothing moves a bounce
    ]
    table = audit_lifecycles(frame_from_events(events), model=sendapi_model())
    rows = {r["message_id"]: r for r in table.messages.iter_rows(named=True)}
    assert rows["sms_1"]["state"] == "DELIVERED" and rows["sms_1"]["regressions_refused"] == 1
    assert rows["sms_1"]["duplicate_deliveries"] == 1 and rows["sms_1"]["sent_at"] is not None
    assert rows["msg_1"]["state"] == "DELIVERED" and rows["msg_1"]["out_of_order"] == 0
    assert rows["eml_1"]["state"] == "FAILED" and rows["eml_1"]["failure_code"] == "hard"
    assert rows["eml_1"]["regressions_refused"] == 1
    assert not any(r["missing_queued"] for r in rows.values())  # acceptance is the queued state
    assert table.states() == {"DELIVERED": 2, "FAILED": 1}
    assert table.unknown_event_types == {}


def test_a_sequenced_provider_orders_a_message_without_sequences_by_rank():
    """Red Cloud's model: a message whose events carry no sequence still gets its state."""
    events = [
        unsequenced("m", "message.delivery", "e3", 0),
        unsequenced("m", "message.sent", "e2", 1),
        event("n", 1, "message.queued", "f1", 2),
        event("n", 2, "message.sent", "f2", 3),
    ]
    bulk, per_message = rows_of_both(events, None)
    assert bulk == per_message
    assert bulk["m"]["state"] == "DELIVERED" and bulk["m"]["regressions_refused"] == 1
    assert bulk["n"]["state"] == "SENT" and bulk["n"]["highest_sequence"] == 2
