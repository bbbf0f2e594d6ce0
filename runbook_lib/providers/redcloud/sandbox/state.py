"""The sandbox's provider state: tokens, numbers, messages, idempotency records, webhook outbox.

Pure state and rules, no HTTP. Touched from the server's event loop and from test threads, so
every access holds one lock (never across an await).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ....core.sandbox_kit import body_hash, iso
from ..contract import EVENT_STATES
from .config import DEFAULT_OUTCOME, DESTINATIONS, FAILURE, SEEDED_NUMBERS, SandboxConfig
from .faults import Faults

__all__ = ["IdempotencyRecord", "OutboundEvent", "SandboxState", "iso"]

_STATUS = EVENT_STATES  # the contract's event type → status, spelled once in contract.py


@dataclass
class IdempotencyRecord:
    body_hash: str
    created: float
    in_progress: bool = True
    status: int = 0
    response: dict[str, Any] | None = None


@dataclass
class OutboundEvent:
    """One webhook event waiting for (or done with) delivery."""

    event_id: str
    event_type: str
    message_id: str | None
    url: str | None
    body: bytes
    due: float
    order: int
    attempts: int = 0
    acknowledged: bool = False
    abandoned: bool = False
    extra_copies: int = 0


@dataclass
class SandboxState:
    """Everything the sandbox provider remembers."""

    config: SandboxConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    tokens: dict[str, tuple[str, float, bool]] = field(default_factory=dict)
    numbers: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    outbox: list[OutboundEvent] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    disabled_urls: set[str] = field(default_factory=set)
    webhook_url: str | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_attempt_failed: bool = False
    token_ttl: int = 0
    faults: Faults = field(default_factory=Faults)
    _order: int = 0

    def __post_init__(self) -> None:
        # Fault dice are seeded (Faults.rng), ids are not: a restarted sandbox that reissued the
        # previous session's messageId/eventId would have its new webhooks dropped as duplicates.
        self._id_session = secrets.token_hex(4)
        self._id_counter = 0
        self.webhook_url = self.config.webhook_url
        self.token_ttl = self.config.token_ttl
        override = self.config.webhook_override_url or self.config.webhook_url
        for seed in SEEDED_NUMBERS:
            number = {k: v for k, v in seed.items() if k != "override"}
            number["webhookOverride"] = (
                {"url": override, "enabled": True} if seed["override"] and override else None
            )
            self.numbers.append(number)

    # -- ids ----------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        """``<prefix>_<8 hex of this start><8 hex counter>``: never repeated across restarts."""
        with self.lock:
            self._id_counter += 1
            return f"{prefix}_{self._id_session}{self._id_counter:08x}"

    # -- tokens -------------------------------------------------------------------------------
    def issue_token(self) -> str:
        token = "sbxat_" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (
                self.config.client_id,
                time.monotonic() + self.config.token_ttl,
                False,
            )
        return token

    def token_problem(self, token: str | None) -> str | None:
        """None when ``token`` is usable, else ``invalid_token`` or ``token_expired``."""
        with self.lock:
            entry = self.tokens.get(token or "")
        if entry is None or entry[2]:
            return "invalid_token"
        if time.monotonic() >= entry[1]:
            return "token_expired"
        return None

    def revoke_all_tokens(self) -> int:
        with self.lock:
            for token, (client, expires, _) in list(self.tokens.items()):
                self.tokens[token] = (client, expires, True)
            return len(self.tokens)

    # -- idempotency --------------------------------------------------------------------------
    body_hash = staticmethod(body_hash)

    def begin(self, key: str, body_hash: str) -> tuple[str, IdempotencyRecord | None]:
        """``('new', rec)``, ``('replay', rec)``, ``('in_progress', rec)`` or ``('reused', rec)``."""
        now = time.monotonic()
        with self.lock:
            ident = (self.config.client_id, key)
            record = self.idempotency.get(ident)
            if record is not None and now - record.created > self.config.idempotency_window:
                record = None
            if record is None:
                record = IdempotencyRecord(body_hash=body_hash, created=now)
                self.idempotency[ident] = record
                return "new", record
            if record.in_progress:
                return "in_progress", record
            if record.body_hash != body_hash:
                return "reused", record
            return "replay", record

    def finish(self, key: str, status: int, response: dict[str, Any] | None) -> None:
        with self.lock:
            record = self.idempotency[(self.config.client_id, key)]
            if response is None:  # not a final answer: forget it so a retry runs anew
                del self.idempotency[(self.config.client_id, key)]
                return
            record.in_progress = False
            record.status = status
            record.response = response

    # -- numbers and messages -----------------------------------------------------------------
    def number(self, number_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((n for n in self.numbers if n["numberId"] == number_id), None)

    def create_message(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        now = time.time()
        message_id = self.new_id("msg")
        accepted = {
            "messageId": message_id,
            "status": "QUEUED",
            "externalReference": body.get("externalReference"),
            "sendFrom": body["sendFrom"],
            "to": body["to"],
            "acceptedAt": iso(now),
            "requestId": request_id,
        }
        with self.lock:
            self.messages[message_id] = {
                **accepted,
                "body": body.get("body"),
                "media": body.get("media"),
            }
        self._schedule_lifecycle(message_id, body, now)
        return accepted

    def target_url(self, number_id: str) -> str | None:
        number = self.number(number_id) or {}
        override = number.get("webhookOverride") or {}
        if override.get("enabled") and override.get("url"):
            return override["url"]
        return self.webhook_url

    def _schedule_lifecycle(self, message_id: str, body: dict[str, Any], accepted: float) -> None:
        outcome = DESTINATIONS.get(body["to"], DEFAULT_OUTCOME)
        delay = self.config.lifecycle_delay
        url = self.target_url(body["sendFrom"])
        events = []
        for index, event_type in enumerate(outcome.steps):
            occurred = accepted + index * delay
            data: dict[str, Any] = {
                "messageId": message_id,
                "externalReference": body.get("externalReference"),
                "sequence": index + 1,
                "status": _STATUS[event_type],
                "numberId": body["sendFrom"],
                "to": body["to"],
                "occurredAt": iso(occurred),
            }
            if event_type == "message.delivery":
                data["providerMessageRef"] = self.new_id("prv")
            if event_type == "message.failed":
                data["failure"] = dict(FAILURE)
            events.append((occurred, event_type, data))
        if outcome.reverse:
            # Same sequences and times, dispatched last-first once all have happened.
            last = events[-1][0]
            events = [(last, t, d) for _, t, d in reversed(events)]
        for due, event_type, data in events:
            self.enqueue(
                event_type,
                data,
                url=url,
                due=due,
                message_id=message_id,
                duplicate=outcome.duplicate,
            )

    def enqueue(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        url: str | None,
        due: float | None = None,
        message_id: str | None = None,
        duplicate: bool = False,
    ) -> OutboundEvent:
        event_id = self.new_id("evt")
        envelope = {"eventId": event_id, "eventType": event_type, "createdAt": iso(), "data": data}
        with self.lock:
            self._order += 1
            event = OutboundEvent(
                event_id=event_id,
                event_type=event_type,
                message_id=message_id,
                url=url,
                body=json.dumps(envelope, separators=(",", ":")).encode(),
                due=(time.time() if due is None else due)
                + self.faults.profile.webhooks.delay_seconds,
                order=self._order,
                extra_copies=1
                if duplicate or self.faults.roll(self.faults.profile.webhooks.duplicate_rate)
                else 0,
            )
            self.outbox.append(event)
        return event

    # -- webhook bookkeeping ------------------------------------------------------------------
    def due_events(self, now: float) -> list[OutboundEvent]:
        with self.lock:
            ready = [
                e for e in self.outbox
                if not e.acknowledged and not e.abandoned and e.url and e.url not in self.disabled_urls
                and e.due <= now
            ]  # fmt: skip
        ordered = sorted(ready, key=lambda e: (e.due, e.order))
        return ordered[::-1] if self.faults.profile.webhooks.reorder else ordered

    def next_due(self) -> float | None:
        with self.lock:
            pending = [
                e.due for e in self.outbox
                if not e.acknowledged and not e.abandoned and e.url and e.url not in self.disabled_urls
            ]  # fmt: skip
        return min(pending) if pending else None

    def record_attempt(self, event: OutboundEvent, status: int | None, error: str | None) -> None:
        now = time.time()
        ok = status is not None and 200 <= status < 300
        with self.lock:
            event.attempts += 1
            self.attempts.append(
                {
                    "eventId": event.event_id,
                    "eventType": event.event_type,
                    "messageId": event.message_id,
                    "url": event.url,
                    "attempt": event.attempts,
                    "status": status,
                    "error": error,
                    "at": iso(now),
                }
            )
            if event.url == self.webhook_url:
                self.last_attempt_failed = not ok
                if ok:
                    self.last_success_at = now
                else:
                    self.last_failure_at = now
            if status == 410 and event.url:
                self.disabled_urls.add(event.url)
            if ok:
                if event.extra_copies > 0:
                    event.extra_copies -= 1  # deliver the same event again (duplicate scenario)
                else:
                    event.acknowledged = True
                return
            schedule = self.config.webhook_retry_schedule
            failures = sum(1 for a in self.attempts if a["eventId"] == event.event_id
                           and not (a["status"] and 200 <= a["status"] < 300))  # fmt: skip
            if failures > len(schedule):
                event.abandoned = True
            else:
                event.due = now + schedule[failures - 1]

    def webhook_status(self) -> str:
        with self.lock:
            if not self.webhook_url:
                return "NOT_CONFIGURED"
            if self.webhook_url in self.disabled_urls or self.last_attempt_failed:
                return "FAILING"
            return "CONFIGURED"

    def resend(self, event_id: str) -> OutboundEvent | None:
        """Deliver an already delivered event again (same id), as a provider's replay tool does."""
        with self.lock:
            event = next((e for e in self.outbox if e.event_id == event_id), None)
            if event is None:
                return None
            event.acknowledged = False
            event.abandoned = False
            event.due = time.time()
            return event

    def reset(self) -> None:
        """Forget messages, events, tokens, keys and faults; keep the seeded numbers."""
        with self.lock:
            self.tokens.clear()
            self.messages.clear()
            self.idempotency.clear()
            self.outbox.clear()
            self.attempts.clear()
            self.disabled_urls.clear()
            self.webhook_url = self.config.webhook_url
            self.last_success_at = self.last_failure_at = None
            self.last_attempt_failed = False
            self.token_ttl = self.config.token_ttl
        self.faults.apply(self.faults.profile.__class__())

    def set_webhook_url(self, url: str | None) -> None:
        with self.lock:
            old = self.webhook_url
            self.webhook_url = url
            self.last_attempt_failed = False
            for event in self.outbox:
                if event.url in (None, old) and not event.acknowledged:
                    event.url = url
            if url:
                self.disabled_urls.discard(url)
