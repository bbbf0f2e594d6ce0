"""The receiver's durable event store (SQLite, WAL, synchronous=FULL) with group commit.

``events`` holds one row per webhook-id with the exact raw body received; ``deliveries`` holds one
row per verified HTTP arrival — accepted or duplicate — in arrival order. Refused arrivals come from
anyone on the internet, so they cannot each cost a row: ``rejection_counts`` counts them exactly,
per minute, reason and rehearsal marker (a fixed vocabulary, so it grows with time, never with
traffic), and ``rejection_samples`` keeps the details (truncated) of only the newest
``rejection_samples`` of them, older ones overwritten in a ring.

Writes go through one writer thread that owns the write connection: :meth:`EventStore.submit`
queues a delivery and returns a :class:`concurrent.futures.Future`; the writer takes everything
queued (up to :data:`MAX_BATCH`) and writes it with **one** ``INSERT`` into a view whose trigger
records each delivery, stores or counts its event, and notes duplicates. One statement is one
transaction, committed — fsynced, as ``synchronous=FULL`` — before the futures are resolved; and
it is one hand-off of the GIL between the writer and the event loop per batch instead of several
per delivery, which is what bounds the receiver on a small machine. Should the statement fail,
the writer writes the batch again one delivery per statement, so one bad delivery fails only its
own future; when the database itself failed (locked, full, I/O) the batch fails once instead.
A resolved future therefore means the delivery is on disk, and the receiver answers 2xx only for
stored events. :meth:`EventStore.record` is the blocking form.
"""

from __future__ import annotations

import functools
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from ..core.events import WebhookEvent
from ..providers.base import get_provider

__all__ = ["DEFAULT_REJECTION_SAMPLES", "MAX_BATCH", "REHEARSAL_PREFIXES", "EventStore"]

SCHEMA_VERSION = 2
MAX_BATCH = 512
DEFAULT_REJECTION_SAMPLES = 1000
DETAIL_CHARS = 128
"""A refused delivery's webhook-id and event type are stored cut to this many characters."""
REHEARSAL_PREFIXES = ("evt_probe_", "evt_drill_")
"""Webhook-ids of the probe's and the drills' deliberately bad deliveries: their counts keep the
prefix, so an audit can leave rehearsal traffic out (``audit.REHEARSAL_EVENT`` matches them)."""
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
CREATE TABLE IF NOT EXISTS rejection_counts (
    minute TEXT NOT NULL,
    reason TEXT NOT NULL,
    rehearsal TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (minute, reason, rehearsal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejection_samples (
    slot INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    webhook_id TEXT,
    event_type TEXT
);
"""

_EVENT_COLUMNS = "raw_body, first_received_at, delivery_count, first_arrival"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The writer connection's own (TEMP) objects: inserting rows into ``arrivals`` runs ``arrive``
# once per row, in order, inside the one statement (so inside one transaction).
_WRITER_SCHEMA = """
CREATE TEMP TABLE repeated (position INTEGER NOT NULL);
CREATE TEMP VIEW arrivals (position, webhook_id, received_at, outcome, reason, event_type,
    message_id, external_reference, conversation_id, sequence, status, number_id, occurred_at,
    created_at, raw_body)
    AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL WHERE 0;
CREATE TEMP TRIGGER arrive INSTEAD OF INSERT ON arrivals BEGIN
    INSERT INTO deliveries(webhook_id, received_at, outcome, reason, event_type)
    SELECT NEW.webhook_id, NEW.received_at, NEW.outcome, NULL, NEW.event_type
    WHERE NEW.outcome = 'accepted';
    -- The first arrival of an event stores it...
    INSERT OR IGNORE INTO events(event_id, event_type, message_id, external_reference,
        conversation_id, sequence, status, number_id, occurred_at, created_at,
        first_received_at, last_received_at, first_arrival, raw_body)
    SELECT NEW.webhook_id, NEW.event_type, NEW.message_id, NEW.external_reference,
        NEW.conversation_id, NEW.sequence, NEW.status, NEW.number_id, NEW.occurred_at,
        NEW.created_at, NEW.received_at, NEW.received_at, last_insert_rowid(), NEW.raw_body
    WHERE NEW.outcome = 'accepted';
    -- ...a later one (nothing inserted just now) counts as a duplicate delivery of it.
    UPDATE events SET delivery_count = delivery_count + 1, last_received_at = NEW.received_at
    WHERE changes() = 0 AND NEW.outcome = 'accepted' AND event_id = NEW.webhook_id;
    UPDATE deliveries SET outcome = 'duplicate'
    WHERE changes() = 1 AND id = (SELECT MAX(id) FROM deliveries);
    INSERT INTO repeated(position) SELECT NEW.position WHERE changes() = 1;
    -- A refusal is counted exactly, per minute, reason and rehearsal marker...
    INSERT INTO rejection_counts(minute, reason, rehearsal, count)
    SELECT substr(NEW.received_at, 1, 16) || ':00.000Z', NEW.reason, {rehearsal}, 1
    WHERE NEW.outcome = 'rejected'
    ON CONFLICT(minute, reason, rehearsal) DO UPDATE SET count = count + 1;
    -- ...and its details take the oldest of {samples} slots.
    INSERT OR REPLACE INTO rejection_samples(slot, seq, received_at, reason, webhook_id, event_type)
    SELECT next % {samples}, next, NEW.received_at, NEW.reason, NEW.webhook_id, NEW.event_type
    FROM (SELECT coalesce(MAX(seq), 0) + 1 AS next FROM rejection_samples)
    WHERE NEW.outcome = 'rejected' AND {samples} > 0;
END;
"""
# The rehearsal marker of a refused delivery: its webhook-id's prefix when it is one of ours.
_REHEARSAL_SQL = (
    "CASE "
    + " ".join(
        f"WHEN substr(NEW.webhook_id, 1, {len(p)}) = '{p}' THEN '{p}'" for p in REHEARSAL_PREFIXES
    )
    + " ELSE '' END"
)
_ARRIVAL_WIDTH = 15


def _open_writer(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous=FULL")
    return db


def _install_arrivals(db: sqlite3.Connection, samples: int) -> None:
    """The writer's ``arrivals`` view, keeping ``samples`` refusal details."""
    db.executescript(_WRITER_SCHEMA.format(rehearsal=_REHEARSAL_SQL, samples=int(samples)))


def _clip(value: str | None) -> str | None:
    """A value from an unauthenticated request, cut to :data:`DETAIL_CHARS` for the audit trail."""
    if value is None or len(value) <= DETAIL_CHARS:
        return value
    return value[: DETAIL_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Delivery:
    """One queued HTTP arrival: a verified event (``event`` and ``text``) or a refusal."""

    webhook_id: str | None
    received_at: str
    future: Future[Any]
    event: WebhookEvent | None = None
    text: str | None = None
    reason: str | None = None
    event_type: str | None = None

    def arrival_row(self, position: int) -> tuple[Any, ...]:
        """This delivery as a row of the writer's ``arrivals`` view."""
        event = self.event
        if event is None:
            return (position, self.webhook_id, self.received_at, "rejected", self.reason,
                    self.event_type) + (None,) * 9  # fmt: skip
        return (
            position,
            self.webhook_id,
            self.received_at,
            "accepted",
            None,
            event.event_type,
            event.message_id,
            event.external_reference,
            event.conversation_id,
            event.sequence,
            event.status,
            event.number_id,
            event.occurred_at,
            event.created_at,
            self.text,
        )


@functools.cache
def _insert_arrivals(count: int) -> str:
    row = "(" + ",".join("?" * _ARRIVAL_WIDTH) + ")"
    return f"INSERT INTO arrivals VALUES {','.join([row] * count)}"


def _write_batch(
    db: sqlite3.Connection, batch: list[_Delivery], samples: int = DEFAULT_REJECTION_SAMPLES
) -> list[str | None]:
    """Write and commit ``batch`` with one statement; the outcome of each delivery in it."""
    rows = [delivery.arrival_row(position) for position, delivery in enumerate(batch)]
    events = sum(delivery.event is not None for delivery in batch)
    before = db.total_changes
    db.execute(_insert_arrivals(len(rows)), list(chain.from_iterable(rows)))
    repeated: set[int] = set()
    # Two rows per event (delivery, event) and per refusal (count, sample), unless some delivery
    # repeated its event (two more).
    expected = 2 * events + (len(batch) - events) * (2 if samples > 0 else 1)
    if db.total_changes - before != expected:
        repeated = {position for (position,) in db.execute("SELECT position FROM repeated")}
        db.execute("DELETE FROM repeated")
    return [
        None if d.event is None else "duplicate" if n in repeated else "accepted"
        for n, d in enumerate(batch)
    ]


_STOP = object()


class EventStore:
    """Thread-safe access to one receiver database; many processes may read it at once.

    Reads use a connection of their own; writes go to a writer thread started on the first write
    (so a store opened only to read starts no thread). :meth:`close` flushes what is queued.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rejection_samples: int = DEFAULT_REJECTION_SAMPLES,
        parse: Callable[..., WebhookEvent] | None = None,
    ) -> None:
        if rejection_samples < 0:
            raise ValueError("rejection_samples must be 0 or more")
        self.path = Path(path)
        self.rejection_samples = rejection_samples
        """How many refused deliveries keep their details; every one is counted."""
        # the provider's envelope → event model (the default provider's when None)
        self._parse = parse or get_provider().event_from_envelope
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
    def submit(
        self,
        body: bytes,
        webhook_id: str,
        received_at: str | None = None,
        *,
        envelope: dict[str, Any] | None = None,
    ) -> Future[str]:
        """Queue one verified delivery; the future gives ``'accepted'`` or ``'duplicate'``.

        The future resolves only once the delivery is committed to disk. It fails with
        ``ValueError`` when the body is not an envelope (the caller rejects it with a 4xx), or
        with the ``sqlite3`` error when the batch could not be committed. ``envelope`` is the
        body already parsed by the caller (the receiver parses it to check it), to save a parse.
        """
        at = received_at or _now()
        try:
            text = body.decode("utf-8")
            event = self._parse(text if envelope is None else envelope)
        except Exception as exc:  # what the sender sent: the caller answers 4xx, never 5xx
            failed: Future[str] = Future()
            failed.set_exception(exc)
            return failed
        return self._enqueue(_Delivery(webhook_id, at, Future(), event=event, text=text))

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
        """Queue a refused delivery for the audit trail; resolves once committed.

        It is counted exactly; its details (``webhook_id`` and ``event_type`` cut to
        :data:`DETAIL_CHARS`) are kept among the newest :attr:`rejection_samples` only.
        """
        delivery = _Delivery(
            _clip(webhook_id), _now(), Future(), reason=reason, event_type=_clip(event_type)
        )
        return self._enqueue(delivery)

    def record_rejection(
        self, reason: str, *, webhook_id: str | None = None, event_type: str | None = None
    ) -> None:
        """Remember a refused delivery (signature, timestamp, malformed body) for audits."""
        self.submit_rejection(reason, webhook_id=webhook_id, event_type=event_type).result()

    def _enqueue(self, delivery: _Delivery) -> Future[Any]:
        with self._submit_lock:
            if self._closed:
                raise RuntimeError(f"the event store {self.path} is closed")
            if self._writer is None:
                # Opened here, so a bad path fails this call instead of a thread nobody watches.
                db = _open_writer(self.path)
                _install_arrivals(db, self.rejection_samples)
                self._writer = threading.Thread(
                    target=self._write_loop, args=(db,), name="event-store-writer", daemon=True
                )
                self._writer.start()
            self._queue.put(delivery)
        return delivery.future

    def _write_loop(self, db: sqlite3.Connection) -> None:
        # One statement carries a batch: as many deliveries as SQLite's parameter limit allows.
        limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _ARRIVAL_WIDTH
        most = max(1, min(MAX_BATCH, limit))
        try:
            stopping = False
            while not stopping:
                batch = [self._queue.get()]
                while len(batch) < most:
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

    def _commit(self, db: sqlite3.Connection, batch: list[_Delivery]) -> None:
        """Write and commit ``batch``, then resolve every future."""
        live = [d.future.set_running_or_notify_cancel() for d in batch]
        try:
            outcomes: list[tuple[bool, Any]] = [
                (True, o) for o in _write_batch(db, batch, self.rejection_samples)
            ]
            self.commits += 1
        except sqlite3.OperationalError as exc:  # the database (locked, full, I/O), not the data
            outcomes = [(False, exc)] * len(batch)
        except Exception:  # nothing of it was written: again one by one, to keep the good ones
            outcomes = [self._write_alone(db, delivery) for delivery in batch]
        for delivery, running, (ok, value) in zip(batch, live, outcomes, strict=True):
            if not running:  # cancelled before it was taken: nobody waits for it
                continue
            if ok:
                delivery.future.set_result(value)
            else:
                delivery.future.set_exception(value)

    def _write_alone(self, db: sqlite3.Connection, delivery: _Delivery) -> tuple[bool, Any]:
        """Write and commit one delivery; ``(False, error)`` when it cannot be stored."""
        try:
            (outcome,) = _write_batch(db, [delivery], self.rejection_samples)
        except Exception as exc:  # handed to the delivery's future
            return False, exc
        self.commits += 1
        return True, outcome

    # -- reads --------------------------------------------------------------------------------
    def _select(self, where: str = "", args: tuple[Any, ...] = ()) -> list[WebhookEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY first_arrival", args
            ).fetchall()
        return [
            self._parse(raw, received_at=at, delivery_count=count, arrival=arrival)
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
        """Every verified HTTP arrival in order (accepted, duplicate).

        Refusals are counted in :meth:`counts` and sampled in :meth:`rejections`; a database
        written before refusals were counted still lists its refusals here.
        """
        sql = "SELECT id, webhook_id, received_at, outcome, reason, event_type FROM deliveries"
        args: tuple[Any, ...] = ()
        if webhook_id is not None:
            sql += " WHERE webhook_id = ?"
            args = (webhook_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        keys = ("arrival", "webhookId", "receivedAt", "outcome", "reason", "eventType")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def rejections(self) -> list[dict[str, Any]]:
        """The newest refused deliveries kept (at most :attr:`rejection_samples`), oldest first."""
        sql = (
            "SELECT received_at, reason, webhook_id, event_type FROM rejection_samples ORDER BY seq"
        )
        with self._lock:
            rows = self._db.execute(sql).fetchall()
        keys = ("receivedAt", "reason", "webhookId", "eventType")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def counts(self) -> dict[str, Any]:
        """Events stored, deliveries (verified and refused), duplicates, refusals by reason."""
        with self._lock:
            events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            by_outcome = dict(
                self._db.execute(
                    "SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome"
                ).fetchall()
            )
            # Counted refusals, and those a database from before counting listed one by one.
            reasons = dict(
                self._db.execute(
                    "SELECT reason, SUM(n) FROM ("
                    " SELECT reason, count AS n FROM rejection_counts"
                    " UNION ALL SELECT reason, 1 FROM deliveries WHERE outcome = 'rejected'"
                    ") GROUP BY reason"
                ).fetchall()
            )
        by_outcome.pop("rejected", None)
        return {
            "events": events,
            "deliveries": sum(by_outcome.values()) + sum(reasons.values()),
            "duplicates": by_outcome.get("duplicate", 0),
            "rejections": reasons,
        }
