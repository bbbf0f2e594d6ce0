"""Event sources: the receiver store, JSONL and Parquet exports all yield the same model."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from runbook_lib.core.errors import EventSourceError
from runbook_lib.core.parameters import EventSourceParameters
from runbook_lib.receiver import EventStore
from runbook_lib.sources import (
    EVENT_SCHEMA,
    JsonlSource,
    ParquetSource,
    ReceiverStoreSource,
    open_event_source,
)


def envelope(eid, etype, mid, seq=None, **data):
    body = {"messageId": mid, "externalReference": f"ref-{mid}", "numberId": "num_1", **data}
    if seq is not None:
        body["sequence"] = seq
    return {"eventId": eid, "eventType": etype, "createdAt": "2026-11-23T09:00:00Z", "data": body}


ENVELOPES = [
    envelope("e1", "message.queued", "m1", 1, status="QUEUED", occurredAt="2026-11-23T09:00:00Z"),
    envelope(
        "e3",
        "message.failed",
        "m1",
        3,
        status="FAILED",
        failure={"code": "carrier_rejected", "reason": "no"},
    ),  # fmt: skip
    envelope("e2", "message.sent", "m1", 2, status="SENT"),
    envelope(
        "i1", "message.inbound", "in1", conversationId="c1", receivedAt="2026-11-23T09:01:00Z"
    ),
]


def check_model(frame: pl.DataFrame) -> None:
    assert dict(frame.schema) == EVENT_SCHEMA
    assert frame["arrival"].to_list() == sorted(frame["arrival"].to_list())


def test_jsonl_export_reads_every_envelope_in_file_order(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in ENVELOPES))
    frame = JsonlSource(path).load()
    check_model(frame)
    assert frame["event_id"].to_list() == ["e1", "e3", "e2", "i1"]
    failed = frame.row(1, named=True)
    assert failed["failure_code"] == "carrier_rejected" and failed["sequence"] == 3
    assert frame.row(3, named=True)["conversation_id"] == "c1"


def test_jsonl_bad_lines_are_named_never_silently_dropped(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps(ENVELOPES[0]),
        "{not json",
        json.dumps({"eventType": "x"}),
        json.dumps(ENVELOPES[2]),
    ]
    path.write_text("\n".join(lines) + "\n")
    source = JsonlSource(path)
    frame = source.load()
    assert frame["event_id"].to_list() == ["e1", "e2"]
    assert [n for n, _ in source.rejected] == [2, 3]


def test_parquet_export_of_envelopes_and_of_model_columns(tmp_path):
    nested = tmp_path / "envelopes.parquet"
    pl.DataFrame(ENVELOPES).write_parquet(nested)
    frame = ParquetSource(nested).load()
    check_model(frame)
    assert frame["sequence"].to_list() == [1, 3, 2, None]
    flat = tmp_path / "model.parquet"
    frame.write_parquet(flat)
    assert ParquetSource(flat).load().equals(frame)
    events = ParquetSource(nested).events_for(message_id="m1")
    assert [e.sequence for e in events] == [1, 3, 2]


def test_a_parquet_export_replaced_while_it_is_read_gives_one_consistent_version(tmp_path):
    """An exporter writes a new file and renames it over the old one; a scan planned on the old
    file's layout must never read the new file's bytes ("File out of specification")."""
    import os

    path = tmp_path / "events.parquet"
    pl.DataFrame(ENVELOPES[:1]).write_parquet(path)
    planned = ParquetSource(path).scan()  # layout read here
    newer = tmp_path / ".tmp-events.parquet"
    pl.DataFrame(ENVELOPES * 50).write_parquet(newer, row_group_size=7)
    os.replace(newer, path)
    assert planned.collect()["event_id"].to_list() == ["e1"]
    assert ParquetSource(path).load().height == len(ENVELOPES) * 50


def test_receiver_store_source_reads_what_the_receiver_stored(tmp_path):
    db = tmp_path / "store.sqlite"
    store = EventStore(db)
    for env in ENVELOPES + [ENVELOPES[0]]:  # the last one is a retried delivery
        store.record(json.dumps(env).encode(), env["eventId"])
    store.close()
    source = ReceiverStoreSource(db)
    frame = source.load()
    check_model(frame)
    assert frame.height == 4
    assert frame.filter(pl.col("event_id") == "e1")["delivery_count"].item() == 2
    assert frame.filter(pl.col("event_id") == "e3")["failure_code"].item() == "carrier_rejected"
    assert [e.event_id for e in source.events_for(external_reference="ref-m1")] == [
        "e1",
        "e3",
        "e2",
    ]
    later = source.load(since=datetime(2100, 1, 1, tzinfo=UTC))
    assert later.height == 0
    deliveries = source.deliveries()
    assert deliveries["outcome"].to_list().count("duplicate") == 1


def test_missing_sources_say_what_to_fix(tmp_path):
    with pytest.raises(EventSourceError, match="does not exist"):
        ReceiverStoreSource(tmp_path / "nope.sqlite").load()
    with pytest.raises(EventSourceError, match="event_source.path"):
        JsonlSource(tmp_path / "nope.jsonl")


def test_open_event_source_picks_the_kind(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(ENVELOPES[0]) + "\n")
    assert isinstance(
        open_event_source(EventSourceParameters(kind="jsonl", path=path)), JsonlSource
    )
    with pytest.raises(ValueError, match="columns.event_id"):
        EventSourceParameters(kind="sql", url="postgresql://u@h/db", table="t")


def test_receiver_store_source_counts_every_refusal_and_keeps_rehearsal_marked(tmp_path):
    """Refusals are counted, not stored one by one: the deliveries frame still has one row per
    refusal, and the probe's and drills' ones still match the audit's rehearsal pattern."""
    from runbook_lib.runbooks.audit import REHEARSAL_EVENT

    db = tmp_path / "store.sqlite"
    store = EventStore(db, rejection_samples=3)
    store.record(json.dumps(ENVELOPES[0]).encode(), ENVELOPES[0]["eventId"])
    for n in range(40):
        store.record_rejection("invalid_signature", webhook_id=f"evt_{n}_" + "x" * 5000)
    for prefix in ("evt_probe_", "evt_drill_"):
        store.record_rejection("invalid_signature", webhook_id=prefix + "abc")
    store.close()
    deliveries = ReceiverStoreSource(db).deliveries()
    rejected = deliveries.filter(pl.col("outcome") == "rejected")
    assert rejected.height == 42 and deliveries.height == 43
    rehearsal = rejected["webhook_id"].str.contains(REHEARSAL_EVENT).fill_null(False)
    assert int(rehearsal.sum()) == 2
    later = ReceiverStoreSource(db).deliveries(since=datetime(2100, 1, 1, tzinfo=UTC))
    assert later.height == 0
