"""The Onyx sandbox's events and webhooks: sequence per resource, endpoints, deliveries,
history and replay.

Shares the state's lock (events are emitted while the state's rules hold it). Event ids are
random per process (:func:`~.rules.new_id`), never seeded.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ....core.sandbox_kit import Faults, iso
from ....core.signing import generate_webhook_secret
from ..events import EVENT_TYPES
from .config import OnyxSandboxConfig
from .rules import Refusal, RefusalError, new_id

__all__ = ["SUBSCRIBABLE", "Delivery", "Endpoint", "Outbox", "StoredEvent"]

SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != "webhook.test")


@dataclass
class Endpoint:
    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    created: float
    status: str = "active"

    def public(self, environment: str) -> dict[str, Any]:
        return {
            "webhookId": self.webhook_id,
            "url": self.url,
            "eventTypes": list(self.event_types),
            "environment": environment,
            "status": self.status,
            "createdAt": iso(self.created),
        }


@dataclass
class StoredEvent:
    event_id: str
    type: str
    created: float
    body: bytes
    target: str | None = None  # a test event goes to one webhook only


@dataclass
class Delivery:
    delivery_id: str
    event_id: str
    webhook_id: str
    due: float
    attempts: int = 0
    status: str = "pending"  # pending | retrying | delivered | failed
    last_attempt_at: float | None = None
    failure_reason: str | None = None
    replay: bool = False


class Outbox:
    """Every event emitted, every endpoint registered, every delivery attempt."""

    def __init__(
        self,
        config: OnyxSandboxConfig,
        *,
        clock: Callable[[], float],
        lock: threading.RLock,
        faults: Faults,
    ) -> None:
        self.config = config
        self.clock = clock
        self.lock = lock
        self.faults = faults
        self.webhooks: dict[str, Endpoint] = {}
        self.events: dict[str, StoredEvent] = {}
        self.deliveries: list[Delivery] = []
        self.attempts: list[dict[str, Any]] = []
        self.sequences: dict[tuple[str, str], int] = {}

    def emit(
        self,
        type_: str,
        resource: tuple[str, str],
        data: dict[str, Any],
        *,
        target: str | None = None,
    ) -> StoredEvent:
        """Record an event (next ``sequence`` of its resource) and schedule its deliveries."""
        with self.lock:
            now = self.clock()
            sequence = self.sequences.get(resource, 0) + 1
            self.sequences[resource] = sequence
            event_id = new_id("evt")
            envelope = {
                "id": event_id,
                "type": type_,
                "createdAt": iso(now),
                "environment": self.config.environment,
                "partnerId": self.config.partner_id,
                "sequence": sequence,
                "data": data,
            }
            event = StoredEvent(event_id, type_, now, json.dumps(envelope).encode(), target)
            self.events[event_id] = event
            for hook in self._subscribers(event):
                self._schedule(event, hook, now)
            return event

    def _subscribers(self, event: StoredEvent) -> list[Endpoint]:
        if event.target is not None:
            hook = self.webhooks.get(event.target)
            return [hook] if hook and hook.status == "active" else []
        return [
            h
            for h in self.webhooks.values()
            if h.status == "active" and event.type in h.event_types
        ]

    def _schedule(
        self, event: StoredEvent, hook: Endpoint, now: float, *, replay: bool = False
    ) -> Delivery:
        delay = self.faults.profile.webhooks.delay_seconds
        delivery = Delivery(
            new_id("dlv"), event.event_id, hook.webhook_id, now + delay, replay=replay
        )
        self.deliveries.append(delivery)
        return delivery

    def register_webhook(self, url: str, event_types: list[str]) -> Endpoint:
        with self.lock:
            hook = Endpoint(
                new_id("wh"),
                url,
                tuple(event_types),
                self.config.webhook_secret or generate_webhook_secret(),
                self.clock(),
            )
            self.webhooks[hook.webhook_id] = hook
            return hook

    def delete_webhook(self, webhook_id: str) -> bool:
        with self.lock:
            hook = self.webhooks.get(webhook_id)
            if hook is None or hook.status == "deleted":
                return False
            hook.status = "deleted"
            for d in self.deliveries:
                if d.webhook_id == webhook_id and d.status in ("pending", "retrying"):
                    d.status, d.failure_reason = "failed", "endpoint deleted"
            return True

    def history(
        self, event_type: str | None, since: str | None, cursor: str | None
    ) -> dict[str, Any]:
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise RefusalError(
                Refusal(400, "invalid_request", "cursor is not one this API issued.")
            ) from None
        with self.lock:
            events = [
                e
                for e in self.events.values()
                if (event_type is None or e.type == event_type)
                and (since is None or iso(e.created) >= since)
            ]
            size = self.config.events_page_size
            page = [self._record(e) for e in events[offset : offset + size]]
            more = offset + size < len(events)
        next_cursor = (
            base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
        )
        return {"events": page, "nextCursor": next_cursor}

    def _record(self, event: StoredEvent) -> dict[str, Any]:
        mine = [d for d in self.deliveries if d.event_id == event.event_id]
        statuses = {d.status for d in mine}
        status = next(
            (s for s in ("failed", "retrying", "pending", "delivered") if s in statuses),
            "not_subscribed",
        )
        last = max((d.last_attempt_at for d in mine if d.last_attempt_at), default=None)
        reasons = [d.failure_reason for d in mine if d.failure_reason and d.status != "delivered"]
        retry = {"retrying": "scheduled", "failed": "exhausted"}.get(status, "none")
        return {
            "eventId": event.event_id,
            "type": event.type,
            "createdAt": iso(event.created),
            "deliveryStatus": status,
            "attempts": sum(d.attempts for d in mine),
            "lastAttemptAt": iso(last) if last else None,
            "failureReason": reasons[-1] if reasons else None,
            "retryState": retry,
        }

    def replay(self, event_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            event = self.events.get(event_id)
            if event is None:
                raise RefusalError(Refusal(404, "event_not_found", f"No event {event_id}."))
            now = self.clock()
            hooks = [
                h
                for h in self.webhooks.values()
                if h.status == "active" and event.type in h.event_types
            ]
            if now - event.created > self.config.replay_window_seconds or not hooks:
                why = (
                    "older than the replay window"
                    if hooks
                    else "of a type no endpoint subscribes to"
                )
                raise RefusalError(
                    Refusal(409, "event_not_replayable", f"Event {event_id} is {why}.")
                )
            deliveries = [self._schedule(event, h, now, replay=True) for h in hooks]
            return 202, {
                "data": {"replay": {"eventId": event_id, "deliveryId": deliveries[0].delivery_id}}
            }

    def due_deliveries(self, now: float) -> list[tuple[Delivery, StoredEvent, Endpoint]]:
        with self.lock:
            due = [
                d for d in self.deliveries if d.status in ("pending", "retrying") and d.due <= now
            ]
            return [(d, self.events[d.event_id], self.webhooks[d.webhook_id]) for d in due]

    def record_attempt(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        with self.lock:
            now = self.clock()
            delivery.attempts += 1
            delivery.last_attempt_at = now
            ok = status is not None and 200 <= status < 300
            self.attempts.append(
                {
                    "deliveryId": delivery.delivery_id,
                    "eventId": delivery.event_id,
                    "webhookId": delivery.webhook_id,
                    "attempt": delivery.attempts,
                    "status": status,
                    "error": error,
                    "at": iso(now),
                    "replay": delivery.replay,
                }
            )
            if ok:
                delivery.status, delivery.failure_reason = "delivered", None
                return
            delivery.failure_reason = error or f"HTTP {status}"
            schedule = self.config.webhook_retry_schedule
            if delivery.attempts > len(schedule):
                delivery.status = "failed"
            else:
                delivery.status = "retrying"
                delivery.due = now + schedule[delivery.attempts - 1]
