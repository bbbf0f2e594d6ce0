"""Every event source reads Onyx's events as the receiver store does (the run's provider says how
its envelopes look); the SQL source is in test_source_sql.py."""

from __future__ import annotations

import json

import polars as pl
import pytest

from runbook_lib.core.parameters import EventSourceParameters, load_parameters
from runbook_lib.sources import (
    EVENT_SCHEMA,
    JsonlSource,
    ParquetSource,
    ReceiverStoreSource,
    open_event_source,
)
from runbook_lib.sources.export import export_events
from tests.providers.onyx.incident import incident_stack, make_incident

COMPARED = [c for c in EVENT_SCHEMA if c != "arrival"]


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    """The store of an Onyx incident, its JSONL export and a Parquet file of its envelopes."""
    folder = tmp_path_factory.mktemp("onyx-sources")
    with incident_stack(folder) as stack:
        found = make_incident(stack, load_parameters(stack.params()))
    store = ReceiverStoreSource(stack.receiver.store_path)
    jsonl = folder / "events.jsonl"
    export_events(stack.receiver.store_path, jsonl)
    nested = folder / "envelopes.parquet"
    pl.DataFrame(store.envelopes()).write_parquet(nested)
    return found, store, jsonl, nested


def _rows(frame: pl.DataFrame) -> list[dict]:
    return frame.select(COMPARED).sort("event_id").to_dicts()


def test_jsonl_export_of_onyx_events_reads_as_the_store(incident):
    found, store, jsonl, _ = incident
    source = JsonlSource(jsonl, provider="onyx")
    frame = source.load()
    assert dict(frame.schema) == EVENT_SCHEMA and source.rejected == []
    assert _rows(frame) == _rows(store.load())
    by_type = {r["event_type"]: r for r in frame.to_dicts()}
    assert by_type["message.blocked"]["failure_code"] == "THREAD_BLOCKED"
    assert by_type["message.delivery_updated.delivered"]["message_id"] == found.delivered_message
    assert by_type["consent.revoked"]["conversation_id"] == "consent:sub_granted"
    assert f"order:{found.stuck_order}" in frame["conversation_id"].to_list()
    events = source.events_for(message_id=found.delivered_message)
    assert [e.event_type for e in events] == [
        "message.allowed",
        "message.delivery_updated.delivered",
    ]


def test_the_careful_jsonl_path_gives_the_same_rows_and_names_a_bad_line(incident, tmp_path):
    """One bad line sends the whole file through the provider's envelope parser, line by line:
    the expressions of the fast path and the parser agree on every other line."""
    _, store, jsonl, _ = incident
    lines = jsonl.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines, json.dumps({"type": "message.allowed"})]) + "\n")
    source = JsonlSource(broken, provider="onyx")
    frame = source.load()
    assert [n for n, _ in source.rejected] == [len(lines) + 1]
    assert _rows(frame) == _rows(store.load())


def test_parquet_of_onyx_envelopes_reads_as_the_store(incident):
    _, store, _, nested = incident
    assert _rows(ParquetSource(nested, provider="onyx").load()) == _rows(store.load())


def test_open_event_source_reads_with_the_provider_it_is_given(incident):
    _, store, jsonl, nested = incident
    for kind, path in (("jsonl", jsonl), ("parquet", nested)):
        params = EventSourceParameters(kind=kind, path=path)
        frame = open_event_source(params, provider="onyx").load()
        assert _rows(frame) == _rows(store.load()), kind


def test_model_columns_with_onyx_wire_names_are_brought_to_the_model(tmp_path):
    """A Parquet file of model columns written from the wire: the delivery type without its
    status, an order's bare id."""
    path = tmp_path / "model.parquet"
    pl.DataFrame({
        "event_id": ["e1", "e2", "e3"],
        "event_type": ["message.delivery_updated", "order.status_changed", "message.blocked"],
        "message_id": ["m1", None, "m2"],
        "conversation_id": ["message:m1", "pp_order_1", None],
        "status": ["delivered", "provisioning", "blocked"],
    }).write_parquet(path)  # fmt: skip
    frame = ParquetSource(path, provider="onyx").load()
    assert frame["event_type"].to_list() == [
        "message.delivery_updated.delivered", "order.status_changed", "message.blocked"
    ]  # fmt: skip
    assert frame["conversation_id"].to_list() == ["message:m1", "order:pp_order_1", None]
    again = tmp_path / "again.parquet"
    frame.write_parquet(again)
    assert ParquetSource(again, provider="onyx").load().equals(frame)  # idempotent
