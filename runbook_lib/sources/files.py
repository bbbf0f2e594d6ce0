"""Exports of raw webhook envelopes: JSON lines and Parquet.

A line (or row) is one envelope as the provider sent it (Red Cloud: ``eventId``, ``eventType``,
``createdAt``, ``data``; Onyx: ``id``, ``type``, ``sequence``, ``data``; each provider's
``export_format``), optionally with the exporter's ``receivedAt`` and ``deliveryCount``. A source
reads the envelopes of the provider it is given (the run's ``provider.kind``; Red Cloud when none).
Parquet exports may instead carry the model's own columns (``event_id``, ``message_id``, ...).
Arrival order is the file's order. A JSONL line that is not an envelope is never dropped
silently: it is counted and named (line number and problem) in :attr:`JsonlSource.rejected`.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..core.errors import EventSourceError
from ..core.events import WebhookEvent
from ..providers.base import as_provider
from .model import EVENT_SCHEMA, conform, correlation, events_from_frame

__all__ = ["JsonlSource", "ParquetSource", "envelope_frame"]


def envelope_frame(frame: pl.DataFrame | pl.LazyFrame, provider: Any = None) -> pl.LazyFrame:
    """Envelope columns → the model (the provider's envelope format); model columns are conformed
    and their wire names brought to the model's (``ExportFormat.model``)."""
    lf = frame.lazy()
    names = lf.collect_schema()
    fmt = as_provider(provider).export_format()
    if "event_id" in names:
        return fmt.model(conform(lf))
    columns = fmt.columns(names)
    return conform(lf.select([expr.alias(name) for name, expr in columns.items()]))


def _window(frame: pl.LazyFrame, since: datetime | None, until: datetime | None) -> pl.LazyFrame:
    if since is not None:
        frame = frame.filter(pl.col("received_at") >= since)
    if until is not None:
        frame = frame.filter(pl.col("received_at") < until)
    return frame


def _match(**ids: str | None) -> pl.Expr:
    return pl.any_horizontal([pl.col(column) == value for column, value in correlation(**ids)])


class _FrameSource:
    """Shared by the file sources: load the window, or the events of one correlation id."""

    name = "export"

    def scan(self) -> pl.LazyFrame:
        raise NotImplementedError

    def load(self, *, since: datetime | None = None, until: datetime | None = None) -> pl.DataFrame:
        return _window(self.scan(), since, until).collect()

    def events_for(
        self,
        *,
        message_id: str | None = None,
        external_reference: str | None = None,
        conversation_id: str | None = None,
    ) -> list[WebhookEvent]:
        expr = _match(
            message_id=message_id,
            external_reference=external_reference,
            conversation_id=conversation_id,
        )
        frame = self.scan().filter(expr).collect()
        if message_id and not external_reference and frame.height:
            # a send's events, plus any event that carries only its business reference
            refs = frame["external_reference"].drop_nulls().unique().to_list()
            if refs:
                frame = (
                    self.scan()
                    .filter(
                        (pl.col("message_id") == message_id)
                        | pl.col("external_reference").is_in(refs)
                    )
                    .collect()
                )
        return events_from_frame(frame)


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise EventSourceError(
            f"the {what} export {path} does not exist",
            code="source_missing",
            remedy="check event_source.path in the parameter file (relative to the file's folder).",
        )
    return path


class ParquetSource(_FrameSource):
    """A Parquet file (or a glob of files) of envelopes or model columns."""

    name = "parquet"

    def __init__(self, path: str | Path, *, provider: Any = None) -> None:
        self.path = Path(path)
        self.provider = as_provider(provider)
        if "*" not in str(self.path):
            _require(self.path, "Parquet")

    def scan(self) -> pl.LazyFrame:
        try:
            return envelope_frame(pl.scan_parquet(self._snapshot()), self.provider)
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise EventSourceError(
                f"the Parquet export {self.path.name} cannot be read ({type(exc).__name__})",
                remedy="check that the file is a complete Parquet file of webhook envelopes.",
            ) from exc


    def _snapshot(self) -> Path | io.BytesIO:
        """One file is read once, so its layout and its data come from the same version: an
        exporter that swaps in a new file (write + rename) between the two would otherwise make
        polars read the new data with the old footer ("File out of specification")."""
        if "*" in str(self.path):
            return self.path
        return io.BytesIO(_require(self.path, "Parquet").read_bytes())


class JsonlSource(_FrameSource):
    """One raw envelope per line. Lines that are not envelopes are counted, never dropped silently."""

    name = "jsonl"

    def __init__(self, path: str | Path, *, provider: Any = None) -> None:
        self.path = _require(Path(path), "JSONL")
        self.provider = as_provider(provider)
        self.rejected: list[tuple[int, str]] = []
        self._frame: pl.LazyFrame | None = None

    def scan(self) -> pl.LazyFrame:
        if self._frame is None:
            self._frame = self._read()
        return self._frame

    def _read(self) -> pl.LazyFrame:
        try:
            fmt = self.provider.export_format()
            raw = pl.read_ndjson(self.path, schema=dict(fmt.schema), ignore_errors=False)
            bad = raw.filter(pl.any_horizontal(pl.col(c).is_null() for c in fmt.required))
            if bad.height == 0:
                return envelope_frame(raw, self.provider).collect().lazy()
        except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, ValueError):
            pass
        return self._read_line_by_line()

    def _read_line_by_line(self) -> pl.LazyFrame:
        """The careful path: every line parsed on its own, each bad one recorded with its reason."""
        rows: list[dict[str, Any]] = []
        self.rejected = []
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    envelope = json.loads(line)
                    event = self.provider.event_from_envelope(
                        envelope,
                        received_at=envelope.get("receivedAt") or envelope.get("createdAt"),
                        delivery_count=int(envelope.get("deliveryCount") or 1),
                        arrival=len(rows),
                    )
                except (ValueError, TypeError, AttributeError) as exc:
                    self.rejected.append((number, str(exc)[:120]))
                    continue
                rows.append(
                    {
                        "event_id": event.event_id,
                        "event_type": event.event_type,
                        "message_id": event.message_id,
                        "external_reference": event.external_reference,
                        "conversation_id": event.conversation_id,
                        "sequence": event.sequence,
                        "status": event.status,
                        "number_id": event.number_id,
                        "occurred_at": event.occurred_at,
                        "received_at": event.received_at,
                        "delivery_count": event.delivery_count,
                        "arrival": event.arrival,
                        "failure_code": event.failure_code,
                        "failure_reason": event.failure_reason,
                    }
                )
        text_schema = {
            k: (pl.Utf8 if v == EVENT_SCHEMA["received_at"] else v) for k, v in EVENT_SCHEMA.items()
        }
        return conform(pl.DataFrame(rows, schema=text_schema)).collect().lazy()
