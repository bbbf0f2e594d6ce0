"""The leak guard: after every run, no secret value may be left in any artifact.

Every secret resolved at run time is registered (:data:`runbook_lib.secrets.REGISTRY`). The
notebook runs in a separate kernel process, so the kernel hands what it registers to the CLI
through a named pipe (:class:`SecretChannel`): values cross in memory, never through a file on
disk. After the run the CLI scans every artifact (executed notebook with papermill metadata, HTML,
summary and evidence JSON, logs) for each value and its common encodings — base64 (standard and
URL-safe, with or without padding), URL-encoded, HTML-escaped — and for the Basic-auth header form,
registered where it is built. Hits are redacted in place and fail the run with its own exit code.
Absolute local paths (project folder, virtualenv, home) are rewritten as well.
"""

from __future__ import annotations

import base64
import contextlib
import html
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from .secrets import CHANNEL_ENV, REGISTRY

__all__ = ["LeakHit", "LeakReport", "SecretChannel", "encodings", "scan_and_redact"]

REDACTED = "[REDACTED]"
ARTIFACT_SUFFIXES = (".ipynb", ".html", ".json", ".log", ".txt", ".yaml")
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words


def encodings(value: str) -> dict[str, str]:
    """The forms in which ``value`` could appear in an artifact."""
    raw = value.encode()
    forms = {
        "raw": value,
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode(),
        "url-encoded": quote(value, safe=""),
        "url-encoded+": quote_plus(value),
        "html-escaped": html.escape(value),
    }
    forms["base64 (unpadded)"] = forms["base64"].rstrip("=")
    forms["base64url (unpadded)"] = forms["base64url"].rstrip("=")
    return {name: form for name, form in forms.items() if len(form) >= MIN_SECRET_LENGTH}


@dataclass(frozen=True)
class LeakHit:
    artifact: str
    label: str
    encoding: str
    count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "artifact": self.artifact,
            "secret": self.label,
            "encoding": self.encoding,
            "count": self.count,
        }


@dataclass
class LeakReport:
    """What the scan found and rewrote."""

    scanned: list[str] = field(default_factory=list)
    hits: list[LeakHit] = field(default_factory=list)
    paths_rewritten: int = 0
    secrets_checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.hits

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "CLEAN" if self.clean else "LEAK",
            "secretsChecked": self.secrets_checked,
            "artifactsScanned": self.scanned,
            "hits": [h.to_dict() for h in self.hits],
            "localPathsRewritten": self.paths_rewritten,
        }


def _local_paths(project_root: Path) -> list[tuple[str, str]]:
    """Absolute paths to rewrite, longest first so nested ones win."""
    pairs = {
        str(Path(sys.prefix).resolve()): "<venv>",
        str(project_root.resolve()): "<project>",
        str(Path(tempfile.gettempdir()).resolve()): "<tmp>",
    }
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        pairs[home] = "~"
    return sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)


def scan_and_redact(
    folder: Path,
    *,
    secrets: Iterable[tuple[str, str]] | None = None,
    project_root: Path | None = None,
    extra_files: Iterable[Path] = (),
) -> LeakReport:
    """Scan every artifact in ``folder``; redact secret forms and absolute paths in place."""
    values = [
        (v, label)
        for v, label in (REGISTRY.items() if secrets is None else secrets)
        if len(v) >= MIN_SECRET_LENGTH
    ]
    forms = [
        (form, label, name) for value, label in values for name, form in encodings(value).items()
    ]
    forms.sort(key=lambda f: len(f[0]), reverse=True)  # longest first: a form inside another
    paths = _local_paths(project_root or Path.cwd())
    report = LeakReport(secrets_checked=len(values))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in ARTIFACT_SUFFIXES)
    for path in [*files, *extra_files]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        report.scanned.append(path.name)
        changed = text
        for form, label, name in forms:
            count = changed.count(form)
            if count:
                report.hits.append(LeakHit(path.name, label, name, count))
                changed = changed.replace(form, REDACTED)
        for absolute, placeholder in paths:
            count = changed.count(absolute)
            if count:
                report.paths_rewritten += count
                changed = changed.replace(absolute, placeholder)
        if changed != text:
            path.write_text(changed, encoding="utf-8")
    return report


class SecretChannel:
    """A named pipe the kernel writes registered secrets to, read by the CLI in a thread."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="runbook-secrets-"))
        os.chmod(self._dir, 0o700)
        self.path = self._dir / "channel"
        os.mkfifo(self.path, 0o600)
        self.received: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="secret-channel", daemon=True)

    def _read(self) -> None:
        while not self._stop.is_set():
            with open(self.path, "rb") as fifo:  # blocks until a writer opens
                for line in fifo:
                    if line.strip() == b"--end--":
                        return
                    with contextlib.suppress(ValueError, UnicodeDecodeError):
                        label, _, value = line.strip().partition(b" ")
                        self.received.append(
                            (base64.b64decode(value).decode(), base64.b64decode(label).decode())
                        )

    def __enter__(self) -> SecretChannel:
        self._thread.start()
        return self

    @property
    def env(self) -> dict[str, str]:
        """What the kernel needs in its environment to find the channel."""
        return {CHANNEL_ENV: str(self.path)}

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        _write_fifo(self.path, b"--end--\n")  # wakes the reader if it waits in open()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self.path.unlink()
            self._dir.rmdir()


def _write_fifo(path: Path, data: bytes, attempts: int = 200) -> bool:
    """Write to the pipe without ever blocking for long (no reader: give up after ~2 s)."""
    for _ in range(attempts):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: the reader is between two opens
            time.sleep(0.01)
            continue
        try:
            os.write(fd, data)
            return True
        finally:
            os.close(fd)
    return False
