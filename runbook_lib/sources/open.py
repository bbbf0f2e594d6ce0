"""What every event source offers, and the factory that opens the one a parameter file names."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import polars as pl

from ..core.events import WebhookEvent

if TYPE_CHECKING:
    from ..core.parameters import EventSourceParameters

__all__ = ["EventSource", "open_event_source"]


class EventSource(Protocol):
    """A place webhook events can be read from."""

    name: str

    def load(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> pl.DataFrame: ...

    def events_for(
        self,
        *,
        message_id: str | None = None,
        external_reference: str | None = None,
        conversation_id: str | None = None,
    ) -> list[WebhookEvent]: ...


def open_event_source(params: EventSourceParameters) -> EventSource:
    """The source ``params`` describes (nothing is read until ``load`` or ``events_for``)."""
    if params.kind == "receiver_sqlite":
        from .receiver_store import ReceiverStoreSource

        return ReceiverStoreSource(params.path)
    if params.kind == "jsonl":
        from .files import JsonlSource

        return JsonlSource(params.path)
    if params.kind == "parquet":
        from .files import ParquetSource

        return ParquetSource(params.path)
    from .sql import SqlSource

    return SqlSource.from_parameters(params)
