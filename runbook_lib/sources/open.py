"""What every event source offers, and the factory that opens the one a parameter file names."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from ..core.errors import EventSourceError
from ..core.events import WebhookEvent

if TYPE_CHECKING:
    from ..core.parameters import EventSourceParameters

__all__ = ["SOURCE_MISSING", "EventSource", "PollingSource", "open_event_source"]

SOURCE_MISSING = "source_missing"  # EventSourceError.code: the store or export is not there (yet)


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


def open_event_source(params: EventSourceParameters, *, provider: Any = None) -> EventSource:
    """The source ``params`` describes (nothing is read until ``load`` or ``events_for``).

    ``provider`` (a provider or its registry name; the default provider when None) says how the
    envelopes in an export, and the wire names in an integration's table, look: runbooks pass
    their run's provider. The receiver store holds events parsed by the receiver's provider.
    """
    if params.kind == "receiver_sqlite":
        from .receiver_store import ReceiverStoreSource

        return ReceiverStoreSource(params.path)
    if params.kind == "jsonl":
        from .files import JsonlSource

        return JsonlSource(params.path, provider=provider)
    if params.kind == "parquet":
        from .files import ParquetSource

        return ParquetSource(params.path, provider=provider)
    from .sql import SqlSource

    return SqlSource.from_parameters(params, provider=provider)


class PollingSource:
    """The source ``params`` describes, opened anew for every read.

    For the runbooks that wait for events while they arrive (go-live, drills, the probe): an
    export written while the run polls is read again each time, and a store that does not exist
    yet (the receiver creates it on the first webhook) holds no events instead of failing.
    """

    def __init__(self, params: EventSourceParameters, *, provider: Any = None) -> None:
        self.params = params
        self.provider = provider
        self.name = params.kind

    def load(self, *, since: datetime | None = None, until: datetime | None = None) -> pl.DataFrame:
        return open_event_source(self.params, provider=self.provider).load(since=since, until=until)

    def events_for(
        self,
        *,
        message_id: str | None = None,
        external_reference: str | None = None,
        conversation_id: str | None = None,
    ) -> list[WebhookEvent]:
        try:
            source = open_event_source(self.params, provider=self.provider)
            return source.events_for(
                message_id=message_id,
                external_reference=external_reference,
                conversation_id=conversation_id,
            )
        except EventSourceError as exc:
            if exc.code == SOURCE_MISSING:
                return []
            raise
