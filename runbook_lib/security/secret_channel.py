"""The wire of the secret channel: a named pipe from the notebook kernel to the CLI.

The kernel registers secrets in its own process; the CLI's leak guard must know them too. The CLI
creates a named pipe and names it in :data:`CHANNEL_ENV`; the kernel writes one line per value.
Values cross in memory, never through a file on disk. Both ends import this module (and nothing
else of each other): :mod:`runbook_lib.secrets` writes, :mod:`runbook_lib.leakguard` reads.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

__all__ = ["CHANNEL_ENV", "END_OF_CHANNEL", "decode_line", "encode_line", "send", "write_fifo"]

# Set by the CLI for the notebook kernel: the path of the named pipe.
CHANNEL_ENV = "RUNBOOK_SECRET_CHANNEL"
END_OF_CHANNEL = b"--end--\n"


def encode_line(value: str, label: str) -> bytes:
    """One registered value on the wire (base64, so a value can hold any character)."""
    return base64.b64encode(label.encode()) + b" " + base64.b64encode(value.encode()) + b"\n"


def decode_line(line: bytes) -> tuple[str, str]:
    """``(value, label)`` of a line written by :func:`encode_line`.

    Raises:
        ValueError: not such a line.
    """
    label, _, value = line.strip().partition(b" ")
    return base64.b64decode(value, validate=True).decode(), base64.b64decode(
        label, validate=True
    ).decode()


def send(value: str, label: str) -> bool:
    """Hand ``value`` to the CLI if this process runs under one (a kernel); else do nothing."""
    channel = os.environ.get(CHANNEL_ENV)
    if not channel:
        return False
    return write_fifo(Path(channel), encode_line(value, label))


def write_fifo(path: Path, data: bytes, attempts: int = 200) -> bool:
    """Write to the pipe without ever blocking for long (no reader: give up after ~2 s).

    A line is shorter than PIPE_BUF, so each write is atomic; a full pipe (EAGAIN) or a reader
    that is not there yet (ENXIO) or has just gone (EPIPE) is waited out and tried again.
    """
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader has the pipe open yet
            time.sleep(0.01)
            continue
        try:
            os.write(fd, data)
            return True
        except OSError:  # EAGAIN (pipe full) or EPIPE (reader gone): try again shortly
            time.sleep(0.01)
        finally:
            os.close(fd)
    return False
