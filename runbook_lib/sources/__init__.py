"""Event sources: wherever webhook events live, one normalized columnar model comes out.

    source                      reads
    ReceiverStoreSource         the reference receiver's SQLite store (the default)
    JsonlSource                 an export of raw webhook envelopes, one JSON object per line
    ParquetSource               an export of raw envelopes (nested ``data``) or of model columns
    SqlSource                   the integration's own database table, through a declared mapping

Every source returns a polars DataFrame with :data:`EVENT_SCHEMA` (one row per stored event;
retried deliveries of one event are one row with ``delivery_count``, or several rows with the
same ``event_id`` — the lifecycle engine handles both) and can list the events of one message,
reference or conversation as :class:`~runbook_lib.core.events.WebhookEvent` for a trace.

This package is the only way anything reads webhook events: the go-live's lifecycle wait, the
drills and the probe (through :class:`PollingSource`), the trace and the audit. The receiver's
``EventStore`` is its write side.
"""

from __future__ import annotations

from .files import JsonlSource, ParquetSource, envelope_frame
from .model import EVENT_SCHEMA, conform, events_from_frame, frame_from_events
from .open import EventSource, PollingSource, open_event_source
from .receiver_store import ReceiverStoreSource

__all__ = [
    "EVENT_SCHEMA",
    "EventSource",
    "JsonlSource",
    "ParquetSource",
    "PollingSource",
    "ReceiverStoreSource",
    "conform",
    "envelope_frame",
    "events_from_frame",
    "frame_from_events",
    "open_event_source",
]
