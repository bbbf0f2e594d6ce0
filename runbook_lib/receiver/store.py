"""The receiver's durable event store (SQLite, WAL, synchronous=FULL).

``events`` holds one row per webhook-id with the exact raw body received; ``deliveries`` holds one
row per HTTP arrival — accepted, duplicate or rejected — in arrival order. A write is committed to
disk before :meth:`EventStore.record` returns, so the receiver answers 2xx only for stored events.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..events import WebhookEvent, event_from_envelope

__all__ = ["EventStore"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    message_id TEXT,
    external_reference TEXT,
    conversation_id TEXT,
    sequence INTEGER,
    status TEXT,
    number_id TEXT,
    occurred_at TEXT,
    created_at TEXT,
    first_received_at TEXT NOT NULL,
    last_received_at TEXT NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 1,
    first_arrival INTEGER NOT NULL,
    raw_body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_message ON events(message_id);
CREATE INDEX IF NOT EXISTS events_reference ON events(external_reference);
CREATE INDEX IF NOT EXISTS events_conversation ON events(conversation_id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT,
    received_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    event_type TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries(webhook_id);
"""

_EVENT_COLUMNS = "raw_body, first_received_at, delivery_count, first_arrival"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventStore:
    """Thread-safe access to one receiver database; many processes may read it at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------------------------
    def record(self, body: bytes, webhook_id: str, received_at: str | None = None) -> str:
        """Store one verified delivery durably; ``'accepted'`` the first time, else ``'duplicate'``.

        Raises:
            ValueError: the body is not an envelope (the caller rejects it with a 4xx).
        """
        text = body.decode("utf-8")
        event = event_from_envelope(text)
        at = received_at or _now()
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO deliveries(webhook_id, received_at, outcome, event_type) "
                "VALUES (?, ?, 'accepted', ?)",
                (webhook_id, at, event.event_type),
            )
            arrival = cur.lastrowid
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO events(event_id, event_type, message_id, external_reference, "
                "conversation_id, sequence, status, number_id, occurred_at, created_at, "
                "first_received_at, last_received_at, first_arrival, raw_body) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    webhook_id,
                    event.event_type,
                    event.message_id,
                    event.external_reference,
                    event.conversation_id,
                    event.sequence,
                    event.status,
                    event.number_id,
                    event.occurred_at,
                    event.created_at,
                    at,
                    at,
                    arrival,
                    text,
                ),
            ).rowcount
            if inserted:
                return "accepted"
            self._db.execute(
                "UPDATE events SET delivery_count = delivery_count + 1, last_received_at=? "
                "WHERE event_id=?",
                (at, webhook_id),
            )
            self._db.execute("UPDATE deliveries SET outcome='duplicate' WHERE id=?", (arrival,))
            return "duplicate"

    def record_rejection(
        self, reason: str, *, webhook_id: str | None = None, event_type: str | None = None
    ) -> None:
        """Remember a refused delivery (signature, timestamp, malformed body) for audits."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO deliveries(webhook_id, received_at, outcome, reason, event_type) "
                "VALUES (?, ?, 'rejected', ?, ?)",
                (webhook_id, _now(), reason, event_type),
            )

    # -- reads --------------------------------------------------------------------------------
    def _select(self, where: str = "", args: tuple[Any, ...] = ()) -> list[WebhookEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY first_arrival", args
            ).fetchall()
        return [
            event_from_envelope(raw, received_at=at, delivery_count=count, arrival=arrival)
            for raw, at, count, arrival in rows
        ]

    def events(self) -> list[WebhookEvent]:
        return self._select()

    def events_for_message(self, message_id: str) -> list[WebhookEvent]:
        return self._select("WHERE message_id = ?", (message_id,))

    def events_for_external_reference(self, reference: str) -> list[WebhookEvent]:
        return self._select("WHERE external_reference = ?", (reference,))

    def events_for_conversation(self, conversation_id: str) -> list[WebhookEvent]:
        return self._select("WHERE conversation_id = ?", (conversation_id,))

    def deliveries(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        """Every HTTP arrival in order (accepted, duplicate, rejected)."""
        sql = "SELECT id, webhook_id, received_at, outcome, reason, event_type FROM deliveries"
        args: tuple[Any, ...] = ()
        if webhook_id is not None:
            sql += " WHERE webhook_id = ?"
            args = (webhook_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        keys = ("arrival", "webhookId", "receivedAt", "outcome", "reason", "eventType")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def counts(self) -> dict[str, Any]:
        with self._lock:
            events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            by_outcome = dict(
                self._db.execute(
                    "SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome"
                ).fetchall()
            )
            reasons = dict(
                self._db.execute(
                    "SELECT reason, COUNT(*) FROM deliveries WHERE outcome='rejected' GROUP BY reason"
                ).fetchall()
            )
        return {
            "events": events,
            "deliveries": sum(by_outcome.values()),
            "duplicates": by_outcome.get("duplicate", 0),
            "rejections": reasons,
        }
