"""The send ledger: idempotency keys written down BEFORE the request goes out.

Each send step of a run gets a key derived from the environment, run id and step name. It is
committed to SQLite before the request, so a re-executed notebook, a crash and re-run, or a retry
after a timeout reuses the same key and the provider replays instead of sending twice. Once the
ledger holds a 202 and a messageId for a step, that acceptance is final: it is reported, never
POSTed again (the provider forgets keys after its idempotency window).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, SendPolicyError
from .invocation import new_run

__all__ = ["LedgerEntry", "SendLedger", "new_run_id", "parse_stamp"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS sends (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_json TEXT NOT NULL,
    reserved_at TEXT NOT NULL,
    status INTEGER,
    message_id TEXT,
    external_reference TEXT,
    request_id TEXT,
    responded_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step)
);
"""
# Columns added after the first release: (name, type), added to older ledgers on open.
_ADDED_COLUMNS = (("accepted_at", "TEXT"), ("provider_status", "TEXT"))
_ENTRY_COLUMNS = (
    "run_id, step, idempotency_key, request_json, reserved_at, status, message_id, "
    "external_reference, request_id, attempts, responded_at, accepted_at, provider_status"
)
_LEDGER_FIX = "point ledger_path at a writable SQLite file, e.g. ../state/send-ledger.sqlite"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_stamp(value: str | None) -> datetime | None:
    """A ledger or provider ISO-8601 timestamp as an aware UTC datetime (None if unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_run_id() -> str:
    """A short, sortable run id: ``YYYYMMDDTHHMMSSZ-xxxxxx``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class LedgerEntry:
    """One reserved send step and, once answered, what the provider said."""

    run_id: str
    step: str
    idempotency_key: str
    request: dict[str, Any]
    reserved_at: str
    status: int | None
    message_id: str | None
    external_reference: str | None
    request_id: str | None
    attempts: int
    responded_at: str | None = None
    accepted_at: str | None = None
    provider_status: str | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def accepted(self) -> bool:
        """The provider accepted this send (a 2xx with a messageId: Red Cloud's and Onyx's 202,
        SendAPI's 201): final, never sent again."""
        return self.status is not None and 200 <= self.status < 300 and bool(self.message_id)


class SendLedger:
    """SQLite-backed ledger of runs and their send steps.

    Raises:
        ConfigurationError: ``path`` cannot be a ledger (a folder, a folder that cannot be
            created, not writable, or a file that is not SQLite); the message names which.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = _open_ledger(self.path)

    def close(self) -> None:
        self._db.close()

    def now(self) -> datetime:
        """The ledger's clock (UTC): what its timestamps and ages are measured with."""
        return self._clock()

    def _now(self) -> str:
        return _stamp(self._clock())

    def age_seconds(self, stamp: str | None) -> float | None:
        """Seconds from a ledger timestamp to now; None when the timestamp is unreadable."""
        moment = parse_stamp(stamp)
        return None if moment is None else (self._clock() - moment).total_seconds()

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, environment: str, kind: str, run_id: str | None = None) -> str:
        """Register a run (idempotent for an existing id) and return its id."""
        run_id = run_id or new_run_id()
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO runs(run_id, environment, kind, started_at) VALUES (?,?,?,?)",
                (run_id, environment, kind, self._now()),
            )
        return run_id

    def run_started_at(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT started_at FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def finish_run(self, run_id: str, outcome: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE runs SET finished_at=?, outcome=? WHERE run_id=?",
                (self._now(), outcome, run_id),
            )

    def unfinished_run(self, environment: str, kind: str) -> str | None:
        """The newest run of this environment and kind that never reached its verdict."""
        row = self._db.execute(
            "SELECT run_id FROM runs WHERE environment=? AND kind=? AND finished_at IS NULL "
            "ORDER BY started_at DESC LIMIT 1",
            (environment, kind),
        ).fetchone()
        return row[0] if row else None

    # -- sends --------------------------------------------------------------------------------
    def reserve(self, run_id: str, step: str, key: str, request: dict[str, Any]) -> LedgerEntry:
        """Write the key for ``run_id``/``step`` before sending; return the (possibly old) entry.

        Raises:
            SendPolicyError: the step was reserved earlier with a different request body; sending
                it with the same key would be refused by the provider, with a new key it would
                send twice.
        """
        body = _canonical(request)
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO sends(run_id, step, idempotency_key, request_json, "
                "reserved_at) VALUES (?,?,?,?,?)",
                (run_id, step, key, body, self._now()),
            )
        entry = self.entry(run_id, step)
        assert entry is not None
        if _canonical(entry.request) != body:
            raise SendPolicyError(
                f"send step {step!r} of run {run_id} was reserved with a different message.",
                code="ledger_body_changed",
                remedy=f"parameters changed since that run: {new_run()} instead of re-running "
                "this one.",
            )
        return entry

    def record_attempt(self, run_id: str, step: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE sends SET attempts = attempts + 1 WHERE run_id=? AND step=?", (run_id, step)
            )

    def record_response(
        self,
        run_id: str,
        step: str,
        *,
        status: int,
        message_id: str | None,
        external_reference: str | None,
        request_id: str | None,
        accepted_at: str | None = None,
        provider_status: str | None = None,
    ) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE sends SET status=?, message_id=COALESCE(?, message_id), "
                "external_reference=COALESCE(?, external_reference), request_id=?, responded_at=?, "
                "accepted_at=COALESCE(?, accepted_at), provider_status=? "
                "WHERE run_id=? AND step=?",
                (status, message_id, external_reference, request_id, self._now(), accepted_at,
                 provider_status, run_id, step),
            )  # fmt: skip

    def entry(self, run_id: str, step: str) -> LedgerEntry | None:
        row = self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM sends WHERE run_id=? AND step=?", (run_id, step)
        ).fetchone()
        if row is None:
            return None
        return LedgerEntry(
            run_id=row[0],
            step=row[1],
            idempotency_key=row[2],
            request=json.loads(row[3]),
            reserved_at=row[4],
            status=row[5],
            message_id=row[6],
            external_reference=row[7],
            request_id=row[8],
            attempts=row[9],
            responded_at=row[10],
            accepted_at=row[11],
            provider_status=row[12],
        )

    def find_send(
        self, *, message_id: str | None = None, external_reference: str | None = None
    ) -> LedgerEntry | None:
        """The runbook's own send with this messageId or externalReference (newest first)."""
        row = self._db.execute(
            "SELECT run_id, step FROM sends WHERE (message_id = ? AND ? IS NOT NULL) "
            "OR (external_reference = ? AND ? IS NOT NULL) ORDER BY reserved_at DESC LIMIT 1",
            (message_id, message_id, external_reference, external_reference),
        ).fetchone()
        return self.entry(row[0], row[1]) if row else None

    def sends_in_run(self, run_id: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM sends WHERE run_id=?", (run_id,)).fetchone()[
            0
        ]


def _open_ledger(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the ledger at ``path``; bad paths become one clear error."""

    def refuse(problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"ledger_path {path} {problem}.", code="bad_ledger_path", remedy=_LEDGER_FIX + "."
        )

    if path.is_dir():
        raise refuse("is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refuse(
            f"cannot be created: its folder {path.parent} cannot be made ({exc.strerror})"
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.R_OK | os.W_OK)
    ):
        raise refuse("is not writable by this user")
    db = None
    try:
        db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(sends)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                db.execute(f"ALTER TABLE sends ADD COLUMN {name} {kind}")
        db.commit()
    except sqlite3.DatabaseError as exc:
        if db is not None:
            db.close()
        reason = (
            "is not an SQLite database"
            if "not a database" in str(exc)
            else f"cannot be opened ({exc})"
        )
        raise refuse(reason) from None
    return db
