"""Red Cloud's webhook envelopes in exports (JSONL lines, Parquet rows) → the event model's columns.

The file sources (:mod:`runbook_lib.sources.files`) ask the provider for these: the envelope's
schema, to read JSONL fast, and the expressions that turn envelope columns into model columns.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ...core.errors import EventSourceError

__all__ = ["ENVELOPE_SCHEMA", "envelope_columns"]

_FAILURE = pl.Struct({"code": pl.Utf8, "reason": pl.Utf8})
_DATA = pl.Struct(
    {
        "messageId": pl.Utf8,
        "externalReference": pl.Utf8,
        "conversationId": pl.Utf8,
        "sequence": pl.Int64,
        "status": pl.Utf8,
        "numberId": pl.Utf8,
        "occurredAt": pl.Utf8,
        "receivedAt": pl.Utf8,
        "failure": _FAILURE,
    }
)
ENVELOPE_SCHEMA: dict[str, Any] = {
    "eventId": pl.Utf8,
    "eventType": pl.Utf8,
    "createdAt": pl.Utf8,
    "receivedAt": pl.Utf8,
    "deliveryCount": pl.Int32,
    "data": _DATA,
}


def envelope_columns(names: pl.Schema) -> dict[str, pl.Expr]:
    """The model's columns as expressions over envelope columns (``eventId``, ``data`` struct...).

    Raises:
        EventSourceError: the export has no envelope columns.
    """
    if "eventId" not in names or "eventType" not in names:
        raise EventSourceError(
            "the export has neither envelope columns (eventId, eventType, data) nor model columns "
            "(event_id, event_type)",
            remedy="export raw webhook envelopes, one per line or row.",
        )
    data_fields = (
        {f.name for f in names["data"].fields}  # type: ignore[attr-defined]
        if "data" in names and isinstance(names["data"], pl.Struct)
        else set()
    )

    def field(name: str) -> pl.Expr:
        return pl.col("data").struct.field(name) if name in data_fields else pl.lit(None)

    failure_fields = (
        {f.name for f in names["data"].fields if f.name == "failure"}  # type: ignore[attr-defined]
        if data_fields
        else set()
    )

    def failure(name: str) -> pl.Expr:
        if not failure_fields:
            return pl.lit(None, dtype=pl.Utf8)
        return pl.col("data").struct.field("failure").struct.field(name)

    received = pl.col("receivedAt") if "receivedAt" in names else pl.col("createdAt")
    columns = {
        "event_id": pl.col("eventId"),
        "event_type": pl.col("eventType"),
        "message_id": field("messageId"),
        "external_reference": field("externalReference"),
        "conversation_id": field("conversationId"),
        "sequence": field("sequence"),
        "status": field("status"),
        "number_id": field("numberId"),
        "occurred_at": pl.coalesce(field("occurredAt"), field("receivedAt")),
        "received_at": received,
        "failure_code": failure("code"),
        "failure_reason": failure("reason"),
    }
    if "deliveryCount" in names:
        columns["delivery_count"] = pl.col("deliveryCount")
    return columns
