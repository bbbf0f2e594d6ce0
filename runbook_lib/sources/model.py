"""The normalized event model as columns, and conversions to and from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from ..core.events import WebhookEvent

__all__ = [
    "EVENT_SCHEMA",
    "TIMESTAMP",
    "conform",
    "correlation",
    "events_from_frame",
    "frame_from_events",
    "parse_timestamps",
]

TIMESTAMP = pl.Datetime("us", "UTC")

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.Utf8(),
    "event_type": pl.Utf8(),
    "message_id": pl.Utf8(),
    "external_reference": pl.Utf8(),
    "conversation_id": pl.Utf8(),
    "sequence": pl.Int64(),
    "status": pl.Utf8(),
    "number_id": pl.Utf8(),
    "occurred_at": TIMESTAMP,
    "received_at": TIMESTAMP,
    "delivery_count": pl.Int32(),
    "arrival": pl.Int64(),
    "failure_code": pl.Utf8(),
    "failure_reason": pl.Utf8(),
}


def parse_timestamps(column: str) -> pl.Expr:
    """ISO-8601 text (``Z`` or an offset) or a datetime column, as UTC microseconds."""
    col = pl.col(column)
    return col.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)


def conform(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Bring ``frame`` to :data:`EVENT_SCHEMA`: missing columns null, types cast, defaults filled.

    ``arrival`` defaults to row order; ``delivery_count`` to 1. Text timestamps are parsed.
    """
    lf = frame.lazy()
    names = lf.collect_schema()
    exprs = []
    for name, dtype in EVENT_SCHEMA.items():
        if name not in names:
            if name == "arrival":
                exprs.append(pl.int_range(pl.len(), dtype=pl.Int64).alias(name))
            elif name == "delivery_count":
                exprs.append(pl.lit(1, dtype=pl.Int32).alias(name))
            else:
                exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif dtype == TIMESTAMP and names[name] == pl.Utf8:
            exprs.append(parse_timestamps(name).alias(name))
        elif dtype == TIMESTAMP and isinstance(names[name], pl.Datetime):
            exprs.append(
                pl.col(name).dt.replace_time_zone("UTC")
                if names[name].time_zone is None  # type: ignore[attr-defined]
                else pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            )
        elif name == "delivery_count":
            exprs.append(pl.col(name).cast(pl.Int32, strict=False).fill_null(1))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False))
    return lf.select(exprs)


def correlation(
    *, message_id: str | None, external_reference: str | None, conversation_id: str | None
) -> list[tuple[str, str]]:
    """The (model column, value) pairs a trace looks events up by; at least one is needed."""
    pairs = [
        (column, value)
        for column, value in (
            ("message_id", message_id),
            ("external_reference", external_reference),
            ("conversation_id", conversation_id),
        )
        if value
    ]
    if not pairs:
        raise ValueError("give a message id, an external reference or a conversation id")
    return pairs


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def events_from_frame(frame: pl.DataFrame) -> list[WebhookEvent]:
    """Rows as :class:`WebhookEvent` (for traces of a few messages, not for bulk audits)."""
    return [
        WebhookEvent(
            event_id=row["event_id"],
            event_type=row["event_type"],
            message_id=row["message_id"],
            external_reference=row["external_reference"],
            conversation_id=row["conversation_id"],
            sequence=row["sequence"],
            status=row["status"],
            number_id=row["number_id"],
            occurred_at=_iso(row["occurred_at"]),
            received_at=_iso(row["received_at"]),
            delivery_count=row["delivery_count"] or 1,
            failure_code=row["failure_code"],
            failure_reason=row["failure_reason"],
            arrival=row["arrival"],
        )
        for row in frame.sort("arrival").iter_rows(named=True)
    ]


def frame_from_events(events: list[WebhookEvent]) -> pl.DataFrame:
    """:class:`WebhookEvent` records as the columnar model (``arrival`` as given)."""
    text = {k: (pl.Utf8 if v == TIMESTAMP else v) for k, v in EVENT_SCHEMA.items()}
    rows = [
        {
            "event_id": e.event_id, "event_type": e.event_type, "message_id": e.message_id,
            "external_reference": e.external_reference, "conversation_id": e.conversation_id,
            "sequence": e.sequence, "status": e.status, "number_id": e.number_id,
            "occurred_at": e.occurred_at, "received_at": e.received_at,
            "delivery_count": e.delivery_count, "arrival": e.arrival,
            "failure_code": e.failure_code, "failure_reason": e.failure_reason,
        }
        for e in events
    ]  # fmt: skip
    return conform(pl.DataFrame(rows, schema=text)).collect()
