"""Onyx's webhook envelopes in exports (JSONL lines, Parquet rows) → the event model's columns.

The file sources (:mod:`runbook_lib.sources.files`) ask the provider for these. The expressions
are built from the same tables :func:`.contract.event_from_envelope` reads one envelope with
(:data:`.events.RESOURCE_FIELDS`, :data:`.events.STATE_FROM_TYPE`, the delivery type's status
suffix), so an export and the receiver store give the same rows; ``tests/sources`` holds them
to that.

An integration's own table (the SQL source) or a Parquet file of model columns may hold Onyx's
wire types as they came (``message.delivery_updated`` with the status in its own column) and a
bare resource id (an order id, not ``order:…``): :func:`model_columns` brings those to the model.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ...core.errors import EventSourceError
from .contract import DELIVERY_UPDATED
from .events import EVENT_TYPES, RESOURCE_FIELDS, STATE_FROM_TYPE

__all__ = ["ENVELOPE_SCHEMA", "envelope_columns", "model_columns"]

_ID_FIELDS = sorted({id_field for _, id_field in RESOURCE_FIELDS.values()} | {"id"})
_DATA = pl.Struct({name: pl.Utf8 for name in (*_ID_FIELDS, "status", "reasonCode")})
ENVELOPE_SCHEMA: dict[str, Any] = {
    "id": pl.Utf8,
    "type": pl.Utf8,
    "createdAt": pl.Utf8,
    "environment": pl.Utf8,
    "partnerId": pl.Utf8,
    "sequence": pl.Int64,
    "receivedAt": pl.Utf8,
    "deliveryCount": pl.Int32,
    "data": _DATA,
}
REQUIRED = ("id", "type")


def _prefix(type_column: pl.Expr) -> pl.Expr:
    return type_column.str.split_exact(".", 1).struct.field("field_0")


def _resource_kind(type_column: pl.Expr) -> pl.Expr:
    """The resource kind of an event type (``order.status_changed`` → ``order``)."""
    prefix = _prefix(type_column)
    kinds = {prefix_: kind for prefix_, (kind, _) in RESOURCE_FIELDS.items()}
    return prefix.replace_strict(kinds, default=prefix, return_dtype=pl.Utf8)


def _model_type(type_column: pl.Expr, status: pl.Expr) -> pl.Expr:
    """``message.delivery_updated`` + its status → ``message.delivery_updated.<status>``."""
    return (
        pl.when((type_column == DELIVERY_UPDATED) & status.is_not_null())
        .then(pl.concat_str(type_column, pl.lit("."), status))
        .otherwise(type_column)
    )


def envelope_columns(names: pl.Schema) -> dict[str, pl.Expr]:
    """The model's columns as expressions over Onyx envelope columns (``id``, ``type``, ``data``).

    Raises:
        EventSourceError: the export has no Onyx envelope columns.
    """
    if "id" not in names or "type" not in names:
        raise EventSourceError(
            "the export has neither Onyx envelope columns (id, type, data) nor model columns "
            "(event_id, event_type)",
            remedy="export Onyx webhook envelopes as received, one per line or row.",
        )
    data = names.get("data")
    fields = {f.name for f in data.fields} if isinstance(data, pl.Struct) else set()

    def field(name: str) -> pl.Expr:
        if name not in fields:
            return pl.lit(None, dtype=pl.Utf8)
        return pl.col("data").struct.field(name).cast(pl.Utf8)

    type_ = pl.col("type")
    known = type_.is_in(list(EVENT_TYPES))
    prefix = _prefix(type_)
    resource_id = pl.lit(None, dtype=pl.Utf8)
    for prefix_, (_, id_field) in RESOURCE_FIELDS.items():
        resource_id = pl.when(prefix == prefix_).then(field(id_field)).otherwise(resource_id)
    from_type = type_.replace_strict(STATE_FROM_TYPE, default=None, return_dtype=pl.Utf8)
    status = pl.when(known).then(pl.coalesce(from_type, field("status")))
    created = pl.col("createdAt") if "createdAt" in names else pl.lit(None, dtype=pl.Utf8)
    received = pl.col("receivedAt") if "receivedAt" in names else created
    columns = {
        "event_id": pl.col("id"),
        "event_type": _model_type(type_, status),
        "message_id": pl.when(known & (prefix == "message")).then(field("messageId")),
        "conversation_id": pl.when(known).then(
            pl.concat_str(_resource_kind(type_), pl.lit(":"), resource_id)
        ),
        "sequence": pl.col("sequence") if "sequence" in names else pl.lit(None, dtype=pl.Int64),
        "status": status,
        "occurred_at": created,
        "received_at": pl.coalesce(received, created),
        "failure_code": pl.when(known).then(field("reasonCode")),
    }
    if "deliveryCount" in names:
        columns["delivery_count"] = pl.col("deliveryCount")
    return columns


def model_columns(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Model columns that may hold Onyx's wire names → the model's (idempotent).

    ``message.delivery_updated`` with a ``status`` becomes ``message.delivery_updated.<status>``
    (the lifecycle keys delivery states by type); a ``conversation_id`` without a kind
    (``pp_order_1``) becomes ``<kind>:<id>`` (``order:pp_order_1``) for the types Onyx defines.
    """
    type_ = pl.col("event_type")
    known = type_.is_in(list(EVENT_TYPES))
    bare = pl.col("conversation_id").is_not_null() & ~pl.col("conversation_id").str.contains(":")
    return frame.with_columns(
        _model_type(type_, pl.col("status")).alias("event_type"),
        pl.when(known & bare)
        .then(pl.concat_str(_resource_kind(type_), pl.lit(":"), pl.col("conversation_id")))
        .otherwise(pl.col("conversation_id"))
        .alias("conversation_id"),
    )
