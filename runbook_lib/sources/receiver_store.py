"""The reference receiver's SQLite store as an event source (read-only; the receiver may be writing)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..core.errors import EventSourceError
from ..core.events import WebhookEvent
from .model import (
    EVENT_SCHEMA,
    TIMESTAMP,
    conform,
    correlation,
    events_from_frame,
    parse_timestamps,
)

__all__ = ["ReceiverStoreSource"]

# failure_code: a failure object's code (Red Cloud) or a policy reason code (Onyx); the store keeps
# the raw body only, so it is read from there (TODO: persist the parsed failure_code column).
_SELECT = """
SELECT event_id, event_type, message_id, external_reference, conversation_id, sequence, status,
       number_id, occurred_at, first_received_at AS received_at, delivery_count,
       first_arrival AS arrival,
       COALESCE(json_extract(raw_body, '$.data.failure.code'),
                json_extract(raw_body, '$.data.reasonCode')) AS failure_code,
       json_extract(raw_body, '$.data.failure.reason') AS failure_reason
FROM events
"""
_TEXT_SCHEMA = {k: (pl.Utf8 if v == TIMESTAMP else v) for k, v in EVENT_SCHEMA.items()}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _window(
    column: str, since: datetime | None, until: datetime | None
) -> tuple[str, tuple[str, ...]]:
    """`` WHERE column >= ? AND column < ?`` for the bounds given (ISO text compares in order)."""
    bounds = [(f"{column} >= ?", since), (f"{column} < ?", until)]
    given = [(clause, _iso(moment)) for clause, moment in bounds if moment is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(c for c, _ in given), tuple(v for _, v in given)


class ReceiverStoreSource:
    """Events and delivery attempts from ``runbook receiver``'s database."""

    name = "receiver_sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise EventSourceError(
                f"the receiver store {self.path.name} does not exist yet",
                code="source_missing",
                remedy="start `runbook receiver` (or point event_source.path at your receiver's "
                "database); it is created on the first webhook.",
            )
        try:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise EventSourceError(
                f"the receiver store {self.path.name} cannot be opened ({exc})",
                remedy="check the file's permissions and that it is a receiver database.",
            ) from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> pl.DataFrame:
        db = self._connect()
        try:
            cursor = db.execute(sql, args)
            chunks = []
            while rows := cursor.fetchmany(200_000):
                chunks.append(pl.DataFrame(rows, schema=_TEXT_SCHEMA, orient="row"))
        except sqlite3.Error as exc:
            raise EventSourceError(
                f"the receiver store {self.path.name} cannot be read ({exc})",
                remedy="is it a `runbook receiver` database? Point event_source at the right file.",
            ) from exc
        finally:
            db.close()
        frame = pl.concat(chunks) if chunks else pl.DataFrame(schema=_TEXT_SCHEMA)
        return conform(frame).collect()

    def load(self, *, since: datetime | None = None, until: datetime | None = None) -> pl.DataFrame:
        clause, args = _window("first_received_at", since, until)
        return self._query(_SELECT + clause, args)

    def events_for(
        self,
        *,
        message_id: str | None = None,
        external_reference: str | None = None,
        conversation_id: str | None = None,
    ) -> list[WebhookEvent]:
        clauses = [
            (f"{column} = ?", value)
            for column, value in correlation(
                message_id=message_id,
                external_reference=external_reference,
                conversation_id=conversation_id,
            )
        ]
        sql = _SELECT + " WHERE " + " OR ".join(c for c, _ in clauses)
        return events_from_frame(self._query(sql, tuple(v for _, v in clauses)))

    def envelopes(self) -> list[dict[str, Any]]:
        """Every stored event's envelope as received, plus ``receivedAt`` and ``deliveryCount``,
        in arrival order (what a JSONL export holds; see :mod:`runbook_lib.sources.export`)."""
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT raw_body, first_received_at, delivery_count FROM events "
                "ORDER BY first_arrival"
            ).fetchall()
        except sqlite3.Error as exc:
            raise EventSourceError(
                f"the receiver store {self.path.name} cannot be read ({exc})"
            ) from exc
        finally:
            db.close()
        out = []
        for raw, received_at, count in rows:
            envelope = json.loads(raw)
            envelope["receivedAt"], envelope["deliveryCount"] = received_at, count
            out.append(envelope)
        return out

    def deliveries(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> pl.DataFrame:
        """Every HTTP arrival (accepted, duplicate, rejected with its reason) in the window.

        The receiver counts refusals per minute instead of storing each one: they come back as
        one row per refusal, received at the start of its minute, with no ``arrival`` and with
        ``webhook_id`` only when it marked rehearsal traffic (``evt_probe_``, ``evt_drill_``).
        """
        sql = "SELECT id AS arrival, webhook_id, received_at, outcome, reason, event_type FROM deliveries"
        clause, args = _window("received_at", since, until)
        counted_clause, counted_args = _window("minute", since, until)
        counted_sql = (
            "SELECT minute, reason, NULLIF(rehearsal, ''), count FROM rejection_counts"
            + counted_clause
        )
        schema = {"arrival": pl.Int64, "webhook_id": pl.Utf8, "received_at": pl.Utf8,
                  "outcome": pl.Utf8, "reason": pl.Utf8, "event_type": pl.Utf8}  # fmt: skip
        db = self._connect()
        try:
            rows = db.execute(sql + clause + " ORDER BY id", args).fetchall()
            has_counts = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rejection_counts'"
            ).fetchone()
            counted = db.execute(counted_sql, counted_args).fetchall() if has_counts else []
        except sqlite3.Error as exc:
            raise EventSourceError(
                f"the receiver store's deliveries cannot be read ({exc})"
            ) from exc
        finally:
            db.close()
        frame = pl.DataFrame(rows, schema=schema, orient="row")
        if counted:
            refusals = (
                pl.DataFrame(
                    counted,
                    schema={
                        "received_at": pl.Utf8,
                        "reason": pl.Utf8,
                        "webhook_id": pl.Utf8,
                        "count": pl.Int64,
                    },  # fmt: skip
                    orient="row",
                )
                .with_columns(pl.int_ranges(0, "count").alias("count"))
                .explode("count")
                .select(
                    pl.lit(None, pl.Int64).alias("arrival"),
                    "webhook_id",
                    "received_at",
                    pl.lit("rejected").alias("outcome"),
                    "reason",
                    pl.lit(None, pl.Utf8).alias("event_type"),
                )
            )
            frame = pl.concat([frame, refusals])
        return frame.with_columns(parse_timestamps("received_at").alias("received_at"))
