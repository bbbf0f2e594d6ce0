"""Structured run logs: JSON lines with the run id, secrets masked before they are written.

``run.log`` sits beside the report. The level comes from the parameter file (``log_level``);
at DEBUG the HTTP stack (httpx, httpcore) logs too — the redacting filter and the leak guard make
sure no registered secret survives either way.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..security.leakguard import redactor_for

__all__ = ["RedactingFilter", "configure_run_logging"]

LOG_FILE = "run.log"


class RedactingFilter(logging.Filter):
    """Masks every registered secret (and its encodings) in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The leak guard's own matcher: what it would flag after the run is masked here first.
        record.msg, record.args = redactor_for().redact(record.getMessage())[0], None
        return True


class JsonLinesFormatter(logging.Formatter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "runId": self.run_id,
            "message": record.getMessage(),
        }
        for key in ("requestId", "messageId", "idempotencyKey", "status", "path"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return json.dumps(entry, ensure_ascii=False)


def configure_run_logging(report_dir: Path | None, *, run_id: str, level: str = "INFO") -> None:
    """Send the run's logs to ``report_dir/run.log`` (replacing an earlier run's handler)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_runbook", False):
            root.removeHandler(handler)
            handler.close()
    if report_dir is None:
        return
    report_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(report_dir / LOG_FILE, encoding="utf-8")
    handler._runbook = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonLinesFormatter(run_id))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
