"""The receiver's durable event store (SQLite, WAL, synchronous=FULL) with group commit.

``events`` holds one row per webhook-id with the exact raw body received; ``deliveries`` holds one
row per HTTP arrival — accepted, duplicate or rejected — in arrival order.

Writes go through one writer thread that owns the write connection: :meth:`EventStore.submit`
queues a delivery and returns a :class:`concurrent.futures.Future`; the writer takes everything
queued (up to :data:`MAX_BATCH`), writes it in one transaction (a savepoint per delivery, so one bad
delivery fails only its own future), commits — fsynced, as ``synchronous=FULL`` — and only then
resolves the futures. A resolved future therefore means the delivery is on disk, and the receiver
answers 2xx only for stored events. :meth:`EventStore.record` is the blocking form.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..events import WebhookEvent, event_from_envelope

__all__ = ["MAX_BATCH", "EventStore"]

SCHEMA_VERSION = 1
MAX_BATCH = 512
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


def _write_event(
    db: sqlite3.Connection, event: WebhookEvent, text: str, webhook_id: str, at: str
) -> str:
    cur = db.execute(
        "INSERT INTO deliveries(webhook_id, received_at, outcome, event_type) "
        "VALUES (?, ?, 'accepted', ?)",
        (webhook_id, at, event.event_type),
    )
    arrival = cur.lastrowid
    inserted = db.execute(
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
    db.execute(
        "UPDATE events SET delivery_count = delivery_count + 1, last_received_at=? "
        "WHERE event_id=?",
        (at, webhook_id),
    )
    db.execute("UPDATE deliveries SET outcome='duplicate' WHERE id=?", (arrival,))
    return "duplicate"


def _write_rejection(
    db: sqlite3.Connection, reason: str, webhook_id: str | None, event_type: str | None, at: str
) -> None:
    db.execute(
        "INSERT INTO deliveries(webhook_id, received_at, outcome, reason, event_type) "
        "VALUES (?, ?, 'rejected', ?, ?)",
        (webhook_id, at, reason, event_type),
    )


@dataclass(frozen=True, slots=True)
class _Write:
    """One queued write: ``apply(db)`` runs inside the batch transaction on the writer thread."""

    apply: Callable[[sqlite3.Connection], Any]
    future: Future[Any]


_STOP = object()


class EventStore:
    """Thread-safe access to one receiver database; many processes may read it at once.

    Reads use a connection of their own; writes go to a writer thread started on the first write
    (so a store opened only to read starts no thread). :meth:`close` flushes what is queued.
    """

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
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._closed = False
        self.commits = 0
        """Transactions committed by the writer (each holds one or more deliveries)."""

    def close(self) -> None:
        """Write and commit everything queued, stop the writer, close the connections."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            writer = self._writer
            if writer is not None:
                self._queue.put(_STOP)
        if writer is not None:
            writer.join()
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------------------------
    def submit(self, body: bytes, webhook_id: str, received_at: str | None = None) -> Future[str]:
        """Queue one verified delivery; the future gives ``'accepted'`` or ``'duplicate'``.

        The future resolves only once the delivery is committed to disk. It fails with
        ``ValueError`` when the body is not an envelope (the caller rejects it with a 4xx), or
        with the ``sqlite3`` error when the batch could not be committed.
        """
        at = received_at or _now()
        try:
            text = body.decode("utf-8")
            event = event_from_envelope(text)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            failed: Future[str] = Future()
            failed.set_exception(exc)
            return failed
        return self._enqueue(lambda db: _write_event(db, event, text, webhook_id, at))

    def record(self, body: bytes, webhook_id: str, received_at: str | None = None) -> str:
        """Store one verified delivery durably; ``'accepted'`` the first time, else ``'duplicate'``.

        Blocks until the delivery is committed (see :meth:`submit`).

        Raises:
            ValueError: the body is not an envelope (the caller rejects it with a 4xx).
        """
        return self.submit(body, webhook_id, received_at).result()

    def submit_rejection(
        self, reason: str, *, webhook_id: str | None = None, event_type: str | None = None
    ) -> Future[None]:
        """Queue a refused delivery for the audit trail; resolves once committed."""
        at = _now()
        return self._enqueue(lambda db: _write_rejection(db, reason, webhook_id, event_type, at))

    def record_rejection(
        self, reason: str, *, webhook_id: str | None = None, event_type: str | None = None
    ) -> None:
        """Remember a refused delivery (signature, timestamp, malformed body) for audits."""
        self.submit_rejection(reason, webhook_id=webhook_id, event_type=event_type).result()

    def _enqueue(self, apply: Callable[[sqlite3.Connection], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._submit_lock:
            if self._closed:
                raise RuntimeError(f"the event store {self.path} is closed")
            if self._writer is None:
                # Opened here, so a bad path fails this call instead of a thread nobody watches.
                db = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA synchronous=FULL")
                self._writer = threading.Thread(
                    target=self._write_loop, args=(db,), name="event-store-writer", daemon=True
                )
                self._writer.start()
            self._queue.put(_Write(apply, future))
        return future

    def _write_loop(self, db: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                batch = [self._queue.get()]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if batch[-1] is _STOP:  # nothing is queued after the stop marker
                    batch.pop()
                    stopping = True
                if batch:
                    self._commit(db, batch)
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, batch: list[_Write]) -> None:
        """Write ``batch`` in one transaction, commit, then resolve every future."""
        live = [w.future.set_running_or_notify_cancel() for w in batch]
        outcomes: list[tuple[bool, Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for write in batch:
                db.execute("SAVEPOINT delivery")
                try:
                    outcomes.append((True, write.apply(db)))
                except Exception as exc:  # this delivery only; the rest of the batch goes on
                    db.execute("ROLLBACK TO delivery")
                    outcomes.append((False, exc))
                db.execute("RELEASE delivery")
            db.execute("COMMIT")
            self.commits += 1
        except Exception as exc:  # the batch is not on disk: fail every delivery in it
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            outcomes = [(False, exc)] * len(batch)
        for write, running, (ok, value) in zip(batch, live, outcomes, strict=True):
            if not running:  # cancelled before it was taken: nobody waits for it
                continue
            if ok:
                write.future.set_result(value)
            else:
                write.future.set_exception(value)

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
