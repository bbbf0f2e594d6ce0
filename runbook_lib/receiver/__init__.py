"""The reference webhook receiver and its durable event store."""

from __future__ import annotations

from .app import (
    ReceiverConfig,
    RunningReceiver,
    build_receiver,
    create_receiver_app,
    run_receiver,
    webhook_path,
)
from .store import EventStore

__all__ = [
    "EventStore",
    "ReceiverConfig",
    "RunningReceiver",
    "build_receiver",
    "create_receiver_app",
    "run_receiver",
    "webhook_path",
]
