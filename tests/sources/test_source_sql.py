"""The SQL event source against a real PostgreSQL server on loopback (tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pytest

from runbook_lib.core.errors import EventSourceError, MissingSecretError, ParameterError
from runbook_lib.security.secrets import REGISTRY
from runbook_lib.sources import sql as sql_source
from runbook_lib.sources.sql import SQL_EVENT_SCHEMA, SqlMapping, read_sql_events
from tests.pg import PgServer, PostgresUnavailable, running_postgres

PASSWORD_ENV = "EVENTS_DB_PASSWORD"

# The integration's own shape: its names, ISO text for the provider's timestamp, a surrogate key.
TABLE_DDL = """
CREATE TABLE webhook_events (
    row_id        bigserial PRIMARY KEY,
    evt_uuid      text NOT NULL,
    kind          text NOT NULL,
    msg_ref       text,
    biz_ref       text,
    thread        text,
    seq           int,
    state         text,
    sender_number text,
    happened      text,
    received      timestamptz NOT NULL,
    retries       int,
    err_code      text,
    err_text      text
)
"""

T0 = datetime(2026, 11, 23, 7, 15, 0, tzinfo=UTC)

# Inserted in this (row) order. evt-a3 (delivery) is received before evt-a2 (sent): out of order;
# evt-a3 comes again (a duplicate delivery); evt-b1 and evt-in1 share a received time.
ROWS = [
    ("evt-a1", "message.queued", "msg-A", "order-1", None, 1, "QUEUED", "num-1",
     "2026-11-23T07:15:01.250Z", T0 + timedelta(seconds=2), None, None, None),
    ("evt-a2", "message.sent", "msg-A", "order-1", None, 2, "SENT", "num-1",
     "2026-11-23T08:15:02.5+01:00", T0 + timedelta(seconds=5), None, None, None),
    ("evt-a3", "message.delivery", "msg-A", "order-1", None, 3, "DELIVERED", "num-1",
     "2026-11-23T07:15:03Z", T0 + timedelta(seconds=4), 1, None, None),
    ("evt-b1", "message.queued", "msg-B", "order-2", None, 1, "QUEUED", "num-1",
     "2026-11-23T07:15:59Z", T0 + timedelta(seconds=60), None, None, None),
    ("evt-in1", "message.inbound", "msg-in-1", None, "conv-9", None, None, "num-1",
     "2026-11-23T07:15:58Z", T0 + timedelta(seconds=60), None, None, None),
    ("evt-a3", "message.delivery", "msg-A", "order-1", None, 3, "DELIVERED", "num-1",
     "2026-11-23T07:15:03Z", T0 + timedelta(seconds=9), 2, None, None),
    ("evt-b2", "message.failed", "msg-B", "order-2", None, 2, "FAILED", "num-1",
     "2026-11-23T07:16:29Z", T0 + timedelta(seconds=90), None, "CARRIER_REJECTED",
     "destination rejected by carrier"),
]  # fmt: skip

FULL = SqlMapping(
    table="webhook_events",
    columns={
        "event_id": "evt_uuid",
        "event_type": "kind",
        "message_id": "msg_ref",
        "external_reference": "biz_ref",
        "conversation_id": "thread",
        "sequence": "seq",
        "status": "state",
        "number_id": "sender_number",
        "occurred_at": "happened",
        "received_at": "received",
        "delivery_count": "retries",
        "failure_code": "err_code",
        "failure_reason": "err_text",
    },
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    try:
        with running_postgres(tmp_path_factory.mktemp("postgres")) as pg:
            with psycopg.connect(pg.url, password=pg.password, autocommit=True) as conn:
                conn.execute(TABLE_DDL)
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO webhook_events (evt_uuid, kind, msg_ref, biz_ref, thread, "
                        "seq, state, sender_number, happened, received, retries, err_code, "
                        "err_text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        ROWS,
                    )
            yield pg
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")


@pytest.fixture
def password_env(server: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, server.password)
    return PASSWORD_ENV


def test_reads_the_integrations_table_into_the_model_schema(server, password_env):
    frame = read_sql_events(server.url, password_env=password_env, mapping=FULL)
    assert frame.schema == pl.Schema(SQL_EVENT_SCHEMA)
    assert frame.height == len(ROWS)
    # Arrival is received order (a3 before a2), ties in row order (b1 before in1), the duplicate kept.
    assert frame["event_id"].to_list() == [
        "evt-a1", "evt-a3", "evt-a2", "evt-a3", "evt-b1", "evt-in1", "evt-b2",
    ]  # fmt: skip
    assert frame["arrival"].to_list() == list(range(len(ROWS)))
    assert frame["sequence"].to_list() == [1, 3, 2, 3, 1, None, 2]
    assert frame["delivery_count"].to_list() == [1, 1, 1, 2, 1, 1, 1]


def test_values_and_timestamps_are_normalized(server, password_env):
    frame = read_sql_events(server.url, password_env=password_env, mapping=FULL)
    failed = frame.row(by_predicate=pl.col("event_id") == "evt-b2", named=True)
    assert failed["status"] == "FAILED"
    assert failed["external_reference"] == "order-2"
    assert failed["failure_code"] == "CARRIER_REJECTED"
    assert failed["failure_reason"] == "destination rejected by carrier"
    assert failed["received_at"] == T0 + timedelta(seconds=90)
    sent = frame.row(by_predicate=pl.col("event_id") == "evt-a2", named=True)
    # ISO text with an offset is read as the same instant in UTC, to the microsecond.
    assert sent["occurred_at"] == datetime(2026, 11, 23, 7, 15, 2, 500_000, tzinfo=UTC)
    inbound = frame.row(by_predicate=pl.col("event_type") == "message.inbound", named=True)
    assert (inbound["conversation_id"], inbound["sequence"], inbound["status"]) == (
        "conv-9",
        None,
        None,
    )


def test_unmapped_columns_are_null_with_defaults(server, password_env):
    mapping = SqlMapping("webhook_events", {"event_id": "evt_uuid", "event_type": "kind"})
    frame = read_sql_events(server.url, password_env=password_env, mapping=mapping)
    assert frame.schema == pl.Schema(SQL_EVENT_SCHEMA)
    assert frame["message_id"].null_count() == len(ROWS)
    assert frame["received_at"].null_count() == len(ROWS)
    assert frame["delivery_count"].to_list() == [1] * len(ROWS)
    assert frame["arrival"].to_list() == list(range(len(ROWS)))


def test_mapped_arrival_column_orders_the_events(server, password_env):
    mapping = SqlMapping("public.webhook_events", {**FULL.columns, "arrival": "row_id"})
    frame = read_sql_events(server.url, password_env=password_env, mapping=mapping)
    assert frame["event_id"].to_list() == [row[0] for row in ROWS]
    assert frame["arrival"].to_list() == list(range(len(ROWS)))


def test_reads_in_chunks(server, password_env, monkeypatch):
    monkeypatch.setattr(sql_source, "_CHUNK_ROWS", 2)
    frame = read_sql_events(server.url, password_env=password_env, mapping=FULL)
    assert frame.equals(read_sql_events(server.url, password_env=password_env, mapping=FULL))
    assert frame.height == len(ROWS)


def test_time_window_on_received_at(server, password_env):
    frame = read_sql_events(
        server.url,
        password_env=password_env,
        mapping=FULL,
        since=T0 + timedelta(seconds=5),  # inclusive
        until=T0 + timedelta(seconds=90),  # exclusive
    )
    assert frame["event_id"].to_list() == ["evt-a2", "evt-a3", "evt-b1", "evt-in1"]
    assert frame["arrival"].to_list() == [0, 1, 2, 3]
    empty = read_sql_events(
        server.url, password_env=password_env, mapping=FULL, since=T0 + timedelta(days=1)
    )
    assert empty.height == 0
    assert empty.schema == pl.Schema(SQL_EVENT_SCHEMA)


def test_naive_or_unmapped_time_window_is_refused(server, password_env):
    with pytest.raises(ParameterError, match="no time zone"):
        read_sql_events(
            server.url, password_env=password_env, mapping=FULL, since=datetime(2026, 11, 23)
        )
    mapping = SqlMapping("webhook_events", {"event_id": "evt_uuid", "event_type": "kind"})
    with pytest.raises(ParameterError, match="map columns.received_at"):
        read_sql_events(server.url, password_env=password_env, mapping=mapping, until=T0)


def test_password_is_registered_for_the_leak_guard(server, password_env):
    read_sql_events(server.url, password_env=password_env, mapping=FULL)
    assert (server.password, f"database password ({PASSWORD_ENV})") in REGISTRY.items()


def test_wrong_password_names_the_fix_and_never_the_password(server, monkeypatch):
    wrong = "Wr0ng-but-Secret-Value"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    with pytest.raises(EventSourceError) as info:
        read_sql_events(server.url, password_env=PASSWORD_ENV, mapping=FULL)
    exc = info.value
    text = str(exc)
    assert exc.code == "db_auth_failed"
    assert f"'{server.dbname}' on {server.host}:{server.port}" in text
    assert "refused the password" in text
    assert "password_env" in text
    for shown in (text, repr(exc), repr(exc.to_dict())):
        assert wrong not in shown
        assert server.password not in shown
    # psycopg's exception (its connection repr shows the password) is not kept around.
    assert exc.__cause__ is None and exc.__context__ is None


def test_unknown_database_and_closed_port(server, password_env):
    other = server.url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(EventSourceError, match="no database 'no_such_db'") as info:
        read_sql_events(other, password_env=password_env, mapping=FULL)
    assert info.value.code == "db_not_found"
    closed = f"postgresql://{server.user}@127.0.0.1:1/{server.dbname}"
    with pytest.raises(EventSourceError, match="server is running") as info:
        read_sql_events(closed, password_env=password_env, mapping=FULL)
    assert info.value.code == "db_unreachable"


def test_missing_table_or_column_is_a_clear_error(server, password_env):
    bad_column = SqlMapping("webhook_events", {**FULL.columns, "status": "status_text"})
    with pytest.raises(EventSourceError, match="status_text") as info:
        read_sql_events(server.url, password_env=password_env, mapping=bad_column)
    assert info.value.code == "db_query_failed"
    assert "SqlMapping.columns" in str(info.value)
    bad_table = SqlMapping("events_log", FULL.columns)
    with pytest.raises(EventSourceError, match="SqlMapping.table"):
        read_sql_events(server.url, password_env=password_env, mapping=bad_table)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://runbook:hunter2-Secret@127.0.0.1:5432/events",
        "host=127.0.0.1 dbname=events user=runbook password=hunter2-Secret",
        "postgresql://runbook@127.0.0.1/events?password=hunter2-Secret",
    ],
)
def test_url_with_a_password_is_refused(url, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "unused")
    with pytest.raises(ParameterError) as info:
        read_sql_events(url, password_env=PASSWORD_ENV, mapping=FULL)
    text = str(info.value)
    assert "put the password in an environment variable and name it in password_env" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("webhook_events", {"event_id": "evt_uuid", "event_type": "kind; DROP TABLE x"}),
        ("webhook_events", {"event_id": 'evt_uuid"--', "event_type": "kind"}),
        ("webhook_events", {"event_id": "lower(evt_uuid)", "event_type": "kind"}),
        ("webhook_events; DROP TABLE webhook_events", {"event_id": "a", "event_type": "b"}),
        ("webhook_events", {"event_id": "evt_uuid", "event_type": "kind", "kind": "kind"}),
        ("webhook_events", {"event_id": "evt_uuid"}),
    ],
)
def test_mapping_accepts_only_identifiers_and_model_columns(table, columns):
    with pytest.raises(ParameterError):
        SqlMapping(table, columns)


def test_mapping_changed_after_construction_is_refused_before_connecting(server, password_env):
    mapping = SqlMapping("webhook_events", {"event_id": "evt_uuid", "event_type": "kind"})
    mapping.columns["event_type"] = "kind FROM webhook_events; DROP TABLE webhook_events; --"
    with pytest.raises(ParameterError, match="not a plain column name"):
        read_sql_events(server.url, password_env=password_env, mapping=mapping)
    # The table is still there.
    assert read_sql_events(server.url, password_env=password_env, mapping=FULL).height == len(ROWS)


def test_missing_password_variable_is_the_missing_secret_error(monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    url = "postgresql://runbook@127.0.0.1:1/events"
    with pytest.raises(MissingSecretError, match=PASSWORD_ENV):
        read_sql_events(url, password_env=PASSWORD_ENV, mapping=FULL)


def test_a_password_pasted_into_password_env_is_refused_without_echoing_it(monkeypatch):
    pasted = "hunter2 Pasted-Password"
    url = "postgresql://runbook@127.0.0.1:1/events"  # never reached: refused before connecting
    with pytest.raises(ParameterError) as info:
        read_sql_events(url, password_env=pasted, mapping=FULL)
    text = str(info.value)
    assert "is not an environment variable name" in text and "hunter2" not in text


def test_the_mapping_check_is_one_function_shared_with_parameter_files():
    assert sql_source.mapping_problems("webhook_events", dict(FULL.columns)) == []
    problems = sql_source.mapping_problems("ops.events; --", {"event_id": "a b"})
    assert any("not a plain table name" in p for p in problems)
    assert any("columns.event_id: 'a b' is not a plain column name" in p for p in problems)
    assert any("columns.event_type is required" in p for p in problems)


ONYX_DDL = """
CREATE TABLE IF NOT EXISTS onyx_events (
    id text NOT NULL, type text NOT NULL, resource text, seq int, status text,
    reason text, created text, received timestamptz NOT NULL
)
"""
# As an integration stores Onyx's webhooks: the wire type, the status beside it, the bare id.
ONYX_ROWS = [
    ("evt_1", "message.allowed", "msg_1", 1, "allowed", None, "2026-11-23T07:15:00Z", T0),
    ("evt_2", "message.delivery_updated", "msg_1", 2, "delivered", None, "2026-11-23T07:15:01Z",
     T0 + timedelta(seconds=1)),
    ("evt_3", "message.blocked", "msg_2", 1, "blocked", "NO_CONSENT", "2026-11-23T07:15:02Z",
     T0 + timedelta(seconds=2)),
    ("evt_4", "order.status_changed", "pp_order_1", 3, "provisioning", None,
     "2026-11-23T07:15:03Z", T0 + timedelta(seconds=3)),
]  # fmt: skip


def test_onyx_events_in_the_integrations_table_read_in_the_model(server, password_env):
    """The run's provider brings its wire names to the model: an Onyx delivery's type takes its
    status (the lifecycle keys states by it) and an order's bare id its kind."""
    from runbook_lib.providers.onyx.contract import LIFECYCLE
    from runbook_lib.sources.sql import SqlSource

    with psycopg.connect(server.url, password=server.password, autocommit=True) as conn:
        conn.execute(ONYX_DDL)
        conn.execute("TRUNCATE onyx_events")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO onyx_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                            ONYX_ROWS)  # fmt: skip
    mapping = SqlMapping(table="onyx_events", columns={
        "event_id": "id", "event_type": "type", "message_id": "resource", "sequence": "seq",
        "status": "status", "failure_code": "reason", "occurred_at": "created",
        "received_at": "received", "conversation_id": "resource"})  # fmt: skip
    source = SqlSource(server.url, password_env=password_env, mapping=mapping, provider="onyx")
    frame = source.load()
    assert frame.schema == pl.Schema(SQL_EVENT_SCHEMA)
    assert frame["event_type"].to_list() == [
        "message.allowed", "message.delivery_updated.delivered", "message.blocked",
        "order.status_changed",
    ]  # fmt: skip
    assert frame["conversation_id"].to_list() == [
        "message:msg_1", "message:msg_1", "message:msg_2", "order:pp_order_1"
    ]  # fmt: skip
    assert [LIFECYCLE.state_of(t) for t in frame["event_type"]][:2] == ["QUEUED", "DELIVERED"]
    assert frame.filter(pl.col("event_type") == "message.blocked")["failure_code"].item() == (
        "NO_CONSENT"
    )
    events = source.events_for(message_id="msg_1")
    assert [e.event_id for e in events] == ["evt_1", "evt_2"]
