"""The SendAPI sandbox's state: keys' rate windows, idempotency, inventory, messages, webhooks.

Pure state and rules, no HTTP. Touched from the server's event loop and from test threads, so
every access holds one lock (never across an await).

Ids are ``<prefix>_<boot><counter>``: ``boot`` is drawn from the clock and the OS's randomness
when the state is made, so no id — ``evt_…`` above all, the receivers' dedupe key — ever repeats
across sandbox restarts, while the fault dice stay seeded.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import (
    EMAIL_DEFAULT,
    EMAIL_OUTCOMES,
    SEEDED_DOMAINS,
    SEEDED_SENDER_IDS,
    SEEDED_SESSIONS,
    SMS_DEFAULT,
    SMS_OUTCOMES,
    WHATSAPP_DEFAULT,
    WHATSAPP_OUTCOMES,
    SandboxConfig,
    Step,
    domain_records,
)
from .faults import Faults, new_faults

__all__ = ["Delivery", "IdempotencyRecord", "SandboxState", "iso"]


def iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class IdempotencyRecord:
    body_hash: str
    created: float
    in_progress: bool = True
    status: int = 0
    response: Any = None


@dataclass
class Delivery:
    """One event on its way to one endpoint, with its retry bookkeeping."""

    event_id: str
    event_type: str
    body: bytes
    url: str
    secret: str
    webhook_id: int | None
    due: float
    order: int
    attempts: int = 0
    acknowledged: bool = False
    abandoned: bool = False
    extra_copies: int = 0


@dataclass
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int


@dataclass
class SandboxState:
    """Everything the sandbox provider remembers."""

    config: SandboxConfig
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults = field(default_factory=new_faults)

    def __post_init__(self) -> None:
        self.boot = f"{int(time.time() * 1000) % 0xFFFFFFFFFF:010x}{secrets.token_hex(4)}"
        self._counter = 0
        self._order = 0
        self._seed_inventory()

    def _seed_inventory(self) -> None:
        now = time.time()
        self.rate_windows: dict[str, deque[float]] = {}
        self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.session_sends: dict[str, deque[float]] = {}
        self.outbox: list[Delivery] = []
        self.attempts: list[dict[str, Any]] = []
        self.sender_ids = [dict(s, created_at=iso(now)) for s in SEEDED_SENDER_IDS]
        self.sessions = {
            s["id"]: dict(
                s, last_seen_at=iso(now), message_count=0, created_at=iso(now), webhook_url=None
            )
            for s in SEEDED_SESSIONS
        }
        self.domains = {
            d["id"]: dict(d, records=domain_records(d["domain"]), verified_at=iso(now) if d["verified"] else None,
                          created_at=iso(now))
            for d in SEEDED_DOMAINS
        }  # fmt: skip
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._webhook_seq = 0
        if self.config.webhook_url:
            self.add_webhook(self.config.webhook_url, ["*"], secret=self.config.webhook_secret)

    # -- ids ------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._counter += 1
            return f"{prefix}_{self.boot}{self._counter:06x}"

    # -- rate limit (per key, sliding window) ---------------------------------------------
    def hit(self, key: str, now: float | None = None) -> RateDecision:
        """Count one request for ``key`` unless its window is full."""
        now = time.time() if now is None else now
        limit, window = self.config.rate_limit, self.config.rate_window
        with self.lock:
            times = self.rate_windows.setdefault(key, deque())
            while times and times[0] <= now - window:
                times.popleft()
            allowed = len(times) < limit
            if allowed:
                times.append(now)
            reset_at = (times[0] + window) if times else now + window
            return RateDecision(
                allowed=allowed,
                limit=limit,
                remaining=max(0, limit - len(times)),
                reset=math.ceil(reset_at),
                retry_after=0 if allowed else max(1, math.ceil(reset_at - now)),
            )

    # -- idempotency ----------------------------------------------------------------------
    @staticmethod
    def body_hash(body: Any) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def begin(self, api_key: str, key: str, body_hash: str) -> tuple[str, IdempotencyRecord]:
        """``new``, ``replay``, ``in_progress`` or ``mismatch`` for this key's use."""
        now = time.time()
        with self.lock:
            ident = (api_key, key)
            record = self.idempotency.get(ident)
            if record is not None and now - record.created > self.config.idempotency_window:
                record = None
            if record is None:
                record = IdempotencyRecord(body_hash=body_hash, created=now)
                self.idempotency[ident] = record
                return "new", record
            if record.body_hash != body_hash:
                return "mismatch", record
            if record.in_progress:
                return "in_progress", record
            return "replay", record

    def finish(self, api_key: str, key: str, status: int, response: Any) -> None:
        """Cache a 2xx answer for replay; forget anything else so a retry runs anew."""
        with self.lock:
            ident = (api_key, key)
            if not 200 <= status < 300:
                self.idempotency.pop(ident, None)
                return
            record = self.idempotency[ident]
            record.in_progress, record.status, record.response = False, status, response

    # -- WhatsApp sessions ----------------------------------------------------------------
    def session_cap(self, session_id: str, now: float | None = None) -> int:
        """0 when the session may send now, else seconds until it may (30/min, 1,000/day)."""
        now = time.time() if now is None else now
        with self.lock:
            sends = self.session_sends.setdefault(session_id, deque())
            while sends and sends[0] <= now - 86400:
                sends.popleft()
            last_minute = [t for t in sends if t > now - 60]
            if len(last_minute) >= self.config.session_per_minute:
                return max(1, math.ceil(last_minute[0] + 60 - now))
            if len(sends) >= self.config.session_per_day:
                return max(1, math.ceil(sends[0] + 86400 - now))
            return 0

    def set_session_status(
        self, session_id: str, status: str, reason: str | None
    ) -> dict[str, Any] | None:
        """Change a session's status and emit ``session.connected``/``session.disconnected``."""
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            session["status"] = status
            session["last_seen_at"] = iso()
            hook = session.get("webhook_url")
        data = {"session_id": session_id, "status": status, "reason": reason}
        event = "session.connected" if status == "connected" else "session.disconnected"
        return self.emit(event, data, extra_urls=[hook] if hook else [])

    # -- sends ----------------------------------------------------------------------------
    def record_message(self, channel: str, message: dict[str, Any], steps: tuple[Step, ...],
                       *, extra_urls: list[str] | None = None, data: dict[str, Any]) -> None:  # fmt: skip
        """Keep a message and schedule its lifecycle events, ``lifecycle_delay`` apart."""
        now = time.time()
        timeline = [(now + (i + 1) * self.config.lifecycle_delay, step.event.split(".", 1)[1])
                    for i, step in enumerate(steps)]  # fmt: skip
        with self.lock:
            self.messages[message["id"]] = {"channel": channel, **message, "_timeline": timeline}
            if channel == "whatsapp":
                self.session_sends.setdefault(message["session_id"], deque()).append(now)
                self.sessions[message["session_id"]]["message_count"] += 1
        for index, step in enumerate(steps):
            status = step.event.split(".", 1)[1]
            payload = {**data, "status": status, **dict(step.data)}
            self.emit(step.event, payload, at=timeline[index][0], extra_urls=extra_urls or [])

    def message_view(self, message_id: str, now: float | None = None) -> dict[str, Any] | None:
        """A message as the status endpoints show it: the latest status that has happened."""
        now = time.time() if now is None else now
        with self.lock:
            message = self.messages.get(message_id)
            if message is None:
                return None
            view = {k: v for k, v in message.items() if not k.startswith("_")}
            for at, status in message["_timeline"]:
                if at <= now:
                    view["status"] = status
            return view

    @staticmethod
    def outcome(channel: str, to: str) -> tuple[Step, ...]:
        if channel == "sms":
            return SMS_OUTCOMES.get(to, SMS_DEFAULT)
        if channel == "whatsapp":
            return WHATSAPP_OUTCOMES.get(to, WHATSAPP_DEFAULT)
        return EMAIL_OUTCOMES.get(to.split("@", 1)[0].lower(), EMAIL_DEFAULT)

    def count(self, channel: str) -> int:
        with self.lock:
            return sum(1 for m in self.messages.values() if m["channel"] == channel)

    # -- webhooks -------------------------------------------------------------------------
    def add_webhook(
        self, url: str, events: list[str], *, secret: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self._webhook_seq += 1
            hook = {"id": self._webhook_seq, "url": url, "events": list(events),
                    "secret": secret or "whsec_" + secrets.token_urlsafe(24), "is_active": True,
                    "failure_count": 0, "consecutive_failures": 0, "created_at": iso()}  # fmt: skip
            self.webhooks[hook["id"]] = hook
            return dict(hook)

    @staticmethod
    def subscribed(hook: dict[str, Any], event_type: str) -> bool:
        family = event_type.split(".", 1)[0]
        return any(e in ("*", event_type, f"{family}.*") for e in hook["events"])

    def emit(self, event_type: str, data: dict[str, Any], *, at: float | None = None,
             extra_urls: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
        """One event (one ``evt_`` id) for every subscribed endpoint and per-message/-session URL."""
        occurred = time.time() if at is None else at
        event_id = self.new_id("evt")
        envelope = {"id": event_id, "event": event_type, "timestamp": iso(occurred), "data": data}
        body = json.dumps(envelope, separators=(",", ":")).encode()
        hooks = self.faults.profile.webhooks
        with self.lock:
            targets = [(h["url"], h["secret"], h["id"]) for h in self.webhooks.values()
                       if h["is_active"] and self.subscribed(h, event_type)]  # fmt: skip
            targets += [(u, self.config.webhook_secret, None) for u in extra_urls or [] if u]
            for url, secret, webhook_id in targets:
                self._order += 1
                self.outbox.append(Delivery(
                    event_id=event_id, event_type=event_type, body=body, url=url, secret=secret,
                    webhook_id=webhook_id, due=occurred + hooks.delay_seconds, order=self._order,
                    extra_copies=1 if self.faults.roll(hooks.duplicate_rate) else 0,
                ))  # fmt: skip
        return envelope

    def deliverable(self, delivery: Delivery) -> bool:
        """False (and abandoned) once its endpoint was disabled or deleted."""
        with self.lock:
            if delivery.webhook_id is not None:
                hook = self.webhooks.get(delivery.webhook_id)
                if hook is None or not hook["is_active"]:
                    delivery.abandoned = True
            return not delivery.abandoned and not delivery.acknowledged

    def due(self, now: float) -> list[Delivery]:
        with self.lock:
            for d in self.outbox:
                self.deliverable(d)
            ready = [
                d for d in self.outbox if not d.acknowledged and not d.abandoned and d.due <= now
            ]
        ordered = sorted(ready, key=lambda d: (d.due, d.order))
        return ordered[::-1] if self.faults.profile.webhooks.reorder else ordered

    def next_due(self) -> float | None:
        with self.lock:
            pending = [d.due for d in self.outbox if not d.acknowledged and not d.abandoned]
        return min(pending) if pending else None

    def record_attempt(
        self, delivery: Delivery, delivery_id: str, status: int | None, error: str | None
    ) -> None:
        now = time.time()
        ok = status is not None and 200 <= status < 300
        with self.lock:
            delivery.attempts += 1
            self.attempts.append({"eventId": delivery.event_id, "event": delivery.event_type,
                                  "deliveryId": delivery_id, "url": delivery.url,
                                  "webhookId": delivery.webhook_id, "attempt": delivery.attempts,
                                  "status": status, "error": error, "at": iso(now)})  # fmt: skip
            hook = self.webhooks.get(delivery.webhook_id) if delivery.webhook_id else None
            if ok:
                if hook:
                    hook["consecutive_failures"] = 0
                if delivery.extra_copies > 0:
                    delivery.extra_copies -= 1  # the same event again: a duplicate delivery
                else:
                    delivery.acknowledged = True
                return
            if hook:
                hook["failure_count"] += 1
                hook["consecutive_failures"] += 1
                if hook["consecutive_failures"] >= self.config.disable_after_failures:
                    hook["is_active"] = False
            schedule = self.config.webhook_retry_schedule
            failures = sum(1 for a in self.attempts if a["eventId"] == delivery.event_id
                           and a["url"] == delivery.url and not (a["status"] and 200 <= a["status"] < 300))  # fmt: skip
            if failures > len(schedule) or (hook and not hook["is_active"]):
                delivery.abandoned = True
            else:
                delivery.due = now + schedule[failures - 1]

    def reset(self) -> None:
        """Forget messages, events, windows, keys' idempotency and faults; reseed the inventory."""
        with self.lock:
            self._seed_inventory()
        self.faults.apply(self.faults.profile.__class__())
