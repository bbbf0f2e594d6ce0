"""One sending run per environment at a time: an exclusive lock file next to the send ledger.

``state/<environment>.golive.lock`` is held with ``flock`` for the whole of a go-live or drills
run, so two runs of one environment started a second apart cannot both send. The file holds who
holds it (pid, run id, start time, host) for the refusal message. The kernel drops a ``flock``
when its process dies, so a lock left by a killed run is free: the next run takes it over and
says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .errors import ConfigurationError

__all__ = ["LOCK_NOTE_ENV", "EnvironmentLock", "environment_lock", "lock_path_for"]

# The CLI holds the lock; the notebook kernel learns of a takeover through this variable.
LOCK_NOTE_ENV = "RUNBOOK_LOCK_NOTE"


def lock_path_for(ledger_path: Path, environment: str) -> Path:
    """Where the lock of ``environment`` lives: beside its ledger, in ``state/``."""
    return ledger_path.parent / f"{environment}.golive.lock"


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _describe(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid', '?')}, run {holder.get('runId') or '?'}, "
        f"started {holder.get('startedAt', '?')} on {holder.get('host', '?')}"
    )


@dataclass
class EnvironmentLock:
    """A held lock: what it records, and the note if it was taken over from a dead run.

    ``taken_over`` is the run it was taken from (``pid``, ``runId``, ``startedAt``, ``host``,
    ``kind``), for the summary's ``lockTakenOver``; None when the lock was free.
    """

    path: Path
    holder: dict[str, Any]
    takeover_note: str | None
    _file: IO[str]
    taken_over: dict[str, Any] | None = None

    def record_run_id(self, run_id: str) -> None:
        """Name the run holding the lock once its id is chosen (resumed or new)."""
        self.holder["runId"] = run_id
        self._write()

    def _write(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(self.holder))
        self._file.flush()
        os.fsync(self._file.fileno())

    def release(self) -> None:
        """Clear the holder and drop the lock (a cleared file means a clean release)."""
        if self._file.closed:
            return
        with contextlib.suppress(OSError):
            self._file.seek(0)
            self._file.truncate()
            self._file.flush()
        self._file.close()  # closing the descriptor drops the flock

    @classmethod
    def acquire(
        cls, path: Path, *, environment: str, run_id: str, kind: str = "go-live"
    ) -> EnvironmentLock:
        """Take the lock of one environment, or refuse naming its holder.

        Raises:
            ConfigurationError: another run of this environment holds the lock (exit 3), or the
                lock file cannot be created.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"the {environment} run lock {path} cannot be created ({exc.strerror}).",
                code="lock_unavailable",
                remedy="make the ledger's folder writable (ledger_path in the parameter file).",
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(handle)
            handle.close()
            raise ConfigurationError(
                f"another {holder.get('kind', 'go-live')} of environment {environment} is running "
                f"({_describe(holder)}); this one was not started and sent nothing.",
                code="environment_locked",
                remedy=f"wait for that run to finish, or stop pid {holder.get('pid', '?')} if it "
                f"is stuck; runs of one environment take turns (lock: {path}).",
            ) from None
        previous = _read(handle)
        note, taken_over = None, None
        if previous:
            keep = ("pid", "runId", "startedAt", "host", "kind")
            taken_over = {key: previous.get(key) for key in keep}
            state = "no longer running" if not _pid_alive(previous.get("pid")) else "not holding it"
            note = (
                f"Took over the {environment} run lock left by {_describe(previous)}: that "
                f"process is {state}, so its run ended without releasing the lock."
            )
        holder = {
            "pid": os.getpid(),
            "runId": run_id,
            "kind": kind,
            "environment": environment,
            "startedAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "host": socket.gethostname(),
        }
        lock = cls(path, holder, note, handle, taken_over=taken_over)
        lock._write()
        return lock


def _read(handle: IO[str]) -> dict[str, Any]:
    try:
        handle.seek(0)
        data = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def environment_lock(
    path: Path, *, environment: str, run_id: str, kind: str = "go-live"
) -> Iterator[EnvironmentLock]:
    """Hold the environment's lock for the block; released on the way out, also on error."""
    lock = EnvironmentLock.acquire(path, environment=environment, run_id=run_id, kind=kind)
    try:
        yield lock
    finally:
        lock.release()
