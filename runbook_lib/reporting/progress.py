"""Live progress: what a run is doing, shown while it does it, in Lab and in the console.

In a notebook (Lab) a progress line is printed into the cell's output. Under the ``runbook`` CLI
the notebook runs in a kernel whose output is only read back at the end, so the kernel also writes
each line to a named pipe the CLI reads while the run goes on (:class:`ProgressChannel`), and the
CLI prints it at once: with colour on a terminal, plain line by line for cron logs. The pipe
carries text for people only; it passes the same console redaction as everything the CLI prints.
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

__all__ = ["PROGRESS_ENV", "ConsolePrinter", "ProgressChannel", "report_progress"]

PROGRESS_ENV = "RUNBOOK_PROGRESS_CHANNEL"
_END = "\x04--end-of-progress--"


def report_progress(line: str, *, in_cell: bool = True) -> None:
    """Show ``line`` now: in the cell's output (unless ``in_cell`` is false: the cell shows its
    result anyway), and in the console of a CLI run."""
    if in_cell:
        print(line, flush=True, file=sys.stdout)
    channel = os.environ.get(PROGRESS_ENV)
    if channel:  # a few tries only: progress must never hold a run up
        write_fifo(Path(channel), (line.replace("\n", " ") + "\n").encode(), attempts=5)


_COLOURS = {"PASS": "\x1b[32m", "FAIL": "\x1b[31m", "BLOCKED": "\x1b[35m", "WARN": "\x1b[33m",
            "SKIP": "\x1b[90m"}  # fmt: skip


class ConsolePrinter:
    """Prints progress lines, each with the time since the run started.

    On a terminal the status words are coloured; elsewhere (cron, CI logs) lines stay plain.
    """

    def __init__(self, stream: TextIO | None = None, *, colour: bool | None = None) -> None:
        self._stream = stream or sys.stdout
        isatty = getattr(self._stream, "isatty", lambda: False)
        self._colour = isatty() and not os.environ.get("NO_COLOR") if colour is None else colour
        self._started = time.monotonic()

    def __call__(self, line: str) -> None:
        text = line
        if self._colour:
            for word, code in _COLOURS.items():
                text = text.replace(f" {word} ", f" {code}{word}\x1b[0m ")
        elapsed = time.monotonic() - self._started
        self._stream.write(f"[{elapsed:5.1f}s] {text}\n")
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
