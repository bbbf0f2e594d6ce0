"""Exports of the receiver's store in the formats the file sources read (README, "Event sources").

``.jsonl``: one raw envelope per line as the provider sent it, plus ``receivedAt`` and
``deliveryCount``; ``.parquet``: the event model's columns. Written atomically (a reader never sees
half a file), so an export can be refreshed while a go-live polls it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .receiver_store import ReceiverStoreSource

__all__ = ["export_events"]


def export_events(store: str | Path, out: str | Path) -> int:
    """Write the receiver store at ``store`` to ``out`` (``.jsonl`` or ``.parquet``).

    Returns:
        The number of events written.

    Raises:
        ValueError: ``out`` has another suffix.
        EventSourceError: the store cannot be read.
    """
    source, out = ReceiverStoreSource(store), Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ValueError(f"export to .jsonl or .parquet, not {out.suffix or 'no suffix'!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=out.suffix)
    try:
        if out.suffix == ".jsonl":
            envelopes = source.envelopes()
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in envelopes)
            count = len(envelopes)
        else:
            os.close(fd)
            frame = source.load()
            frame.write_parquet(tmp)
            count = frame.height
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
