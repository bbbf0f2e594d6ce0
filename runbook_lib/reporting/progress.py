"""Live progress: what a run is doing, shown while it does it, in Lab and in the console.

In a notebook (Lab) a progress line is printed into the cell's output. Under the ``runbook`` CLI
the notebook runs in a kernel whose output is only read back at the end, so the kernel also writes
each line to a named pipe the CLI reads while the run goes on (:class:`ProgressChannel`), and the
CLI prints it at once: with colour on a terminal, plain line by line for cron logs. The pipe
carries text for people only; it passes the same console redaction as everything the CLI prints.

While a run waits (webhooks, an outage drill, a probe burst) a :class:`Waiting` sends *live* lines
(marked with :data:`LIVE`): the state reached so far and the time left. On a terminal the console
rewrites one line in place; in cron logs and in Lab's cell output such a line is a heartbeat,
printed at most every :data:`HEARTBEAT_SECONDS`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..security.secret_channel import write_fifo

__all__ = [
    "HEARTBEAT_SECONDS",
    "LIVE",
    "LIVE_SECONDS",
    "PROGRESS_ENV",
    "ConsolePrinter",
    "ProgressChannel",
    "Throttle",
    "Waiting",
    "report_progress",
]

PROGRESS_ENV = "RUNBOOK_PROGRESS_CHANNEL"
_END = "\x04--end-of-progress--"
LIVE = "\x05"  # a line that starts with it is a live line: the next one supersedes it
HEARTBEAT_SECONDS = 5.0  # a live line in a log or a cell: at most this often
LIVE_SECONDS = 1.0  # a live line to the console: at most this often


class Throttle:
    """True at the first call, then again once ``every`` seconds have passed since the last True."""

    def __init__(self, every: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self._clock, self._last = every, clock, None

    def ready(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.every:
            return False
        self._last = now
        return True


class Waiting:
    """A wait's live line: ``waiting for <what>: <reached so far>; <n> s left``.

    Call :meth:`update` on every poll; ``say`` (``report_progress`` by default) receives a live
    line at most every second, whatever the poll interval.
    """

    def __init__(
        self,
        what: str,
        timeout: float,
        *,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self._say, self._clock = what, say or report_progress, clock
        self._deadline = clock() + timeout
        self._throttle = Throttle(LIVE_SECONDS, clock=clock)

    def line(self, reached: str) -> str:
        left = max(0.0, self._deadline - self._clock())
        return f"  waiting for {self.what}: {reached or 'nothing yet'}; {left:.0f} s left"

    def update(self, reached: str) -> None:
        if self._throttle.ready():
            self._say(LIVE + self.line(reached))


_CELL_HEARTBEAT = Throttle(HEARTBEAT_SECONDS)


def report_progress(line: str, *, in_cell: bool = True) -> None:
    """Show ``line`` now: in the cell's output (unless ``in_cell`` is false: the cell shows its
    result anyway), and in the console of a CLI run. A live line reaches the cell as a heartbeat."""
    live = line.startswith(LIVE)
    if in_cell and (not live or _CELL_HEARTBEAT.ready()):
        print(line.removeprefix(LIVE), flush=True, file=sys.stdout)
    channel = os.environ.get(PROGRESS_ENV)
    if channel:  # a few tries only: progress must never hold a run up
        write_fifo(Path(channel), (line.replace("\n", " ") + "\n").encode(), attempts=5)


_COLOURS = {"PASS": "\x1b[32m", "FAIL": "\x1b[31m", "BLOCKED": "\x1b[35m", "WARN": "\x1b[33m",
            "SKIP": "\x1b[90m"}  # fmt: skip


class ConsolePrinter:
    """Prints progress lines, each with the time since the run started.

    On a terminal the status words are coloured and a live line is rewritten in place; elsewhere
    (cron, CI logs) lines stay plain, one a line, and a live line is a heartbeat at most every
    :data:`HEARTBEAT_SECONDS`.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        colour: bool | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream or sys.stdout
        isatty = getattr(self._stream, "isatty", lambda: False)
        self._tty = isatty() if tty is None else tty
        self._colour = self._tty and not os.environ.get("NO_COLOR") if colour is None else colour
        self._clock = clock
        self._started = clock()
        self._heartbeat = Throttle(HEARTBEAT_SECONDS, clock=clock)
        self._live_shown = False  # a live line is on the terminal, without its newline

    def __call__(self, line: str) -> None:
        live = line.startswith(LIVE)
        text = line.removeprefix(LIVE)
        if self._colour:
            for word, code in _COLOURS.items():
                text = text.replace(f" {word} ", f" {code}{word}\x1b[0m ")
        stamped = f"[{self._clock() - self._started:5.1f}s] {text}"
        if self._tty:
            clear = "\r\x1b[K" if self._live_shown else ""
            self._stream.write(f"{clear}{stamped}" + ("" if live else "\n"))
            self._live_shown = live
        elif not live or self._heartbeat.ready():
            self._stream.write(stamped + "\n")
        self._stream.flush()


class ProgressChannel:
    """The CLI end: a private named pipe, read in a thread that hands each line to ``show``."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="runbook-progress-"))
        os.chmod(self._dir, 0o700)
        self.path = self._dir / "progress"
        os.mkfifo(self.path, 0o600)
        self._show = show
        self._thread = threading.Thread(target=self._read, name="progress", daemon=True)

    @property
    def env(self) -> dict[str, str]:
        """What the kernel needs in its environment to find the channel."""
        return {PROGRESS_ENV: str(self.path)}

    def _read(self) -> None:
        # Read-write: the pipe always has a writer, so no EOF between the kernel's writes.
        with open(os.open(self.path, os.O_RDWR), "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line == _END:
                    return
                with contextlib.suppress(Exception):  # a broken console never breaks the run
                    self._show(line)

    def __enter__(self) -> ProgressChannel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        write_fifo(self.path, (_END + "\n").encode())
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self.path.unlink()
            self._dir.rmdir()
