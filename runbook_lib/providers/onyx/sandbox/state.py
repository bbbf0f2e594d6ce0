"""The Onyx sandbox's world and rules: credentials, consent, orders, events, deliveries.

Pure state, no HTTP. Touched from the server's event loop and from test threads, so every
access holds one lock (never across an await). Every id (events above all) is random per
process, never derived from the seed: a receiver that keeps its dedupe store across sandbox
restarts must never see an old event id again.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ....sandbox.faults import Faults
from ....sandbox.state import SandboxState, iso
from ....signing import generate_webhook_secret
from ..events import EVENT_TYPES
from .config import (
    ALL_SCOPES,
    LIMITED_CREDENTIAL,
    LIMITED_SCOPES,
    REVOKED_CREDENTIAL,
    OnyxSandboxConfig,
    Package,
)

__all__ = ["Delivery", "Endpoint", "OnyxSandboxState", "Refusal", "StoredEvent", "new_id"]

body_hash = SandboxState.body_hash  # the canonical JSON digest the Red Cloud sandbox uses
SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != "webhook.test")
CONSENT_EVENTS = {"granted": "consent.granted", "revoked": "consent.revoked", "expired": "consent.expired"}  # fmt: skip


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A random id: unique across processes and restarts, whatever the seed."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


@dataclass(frozen=True)
class Refusal:
    """A contract error the API layer turns into problem+json."""

    status: int
    code: str
    detail: str
    reason_code: str | None = None


@dataclass
class Credential:
    value: str
    credential_id: str
    state: str
    scopes: tuple[str, ...]


@dataclass
class Endpoint:
    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    created: float
    status: str = "active"

    def public(self, environment: str) -> dict[str, Any]:
        return {"webhookId": self.webhook_id, "url": self.url, "eventTypes": list(self.event_types),
                "environment": environment, "status": self.status, "createdAt": iso(self.created)}  # fmt: skip


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


@dataclass
class _Order:
    order: dict[str, Any]
    walk: list[str]
    due: float | None


@dataclass
class _Idem:
    body_hash: str
    created: float
    status: int
    response: dict[str, Any]


@dataclass
class OnyxSandboxState:
    """Everything the Onyx sandbox remembers."""

    config: OnyxSandboxConfig
    clock: Callable[[], float] = time.time
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        c = self.config
        self.started = self.clock()
        self.credentials = {
            c.credential: Credential(c.credential, c.credential_id, "active", tuple(c.scopes)),
            REVOKED_CREDENTIAL: Credential(REVOKED_CREDENTIAL, "cred_sbx_revoked", "revoked", ALL_SCOPES),
            LIMITED_CREDENTIAL: Credential(LIMITED_CREDENTIAL, "cred_sbx_limited", "active", LIMITED_SCOPES),
        }  # fmt: skip
        self.apps = {a.app_id: a for a in c.apps}
        self.subjects = {s.subject: s for s in c.subjects}
        self.consent = {s.subject: s.consent for s in c.subjects}
        self.threads = {s.thread_id: s.thread_state for s in c.subjects}
        self.launch = {(m, cap, env): status for m, cap, env, status in c.launch}
        self.catalogue_version = c.catalogue_version
        self.packages = {p.package_id: p for p in c.packages}
        self.orders: dict[str, _Order] = {}
        self.esims: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[tuple[str, str], _Idem] = {}
        self.webhooks: dict[str, Endpoint] = {}
        self.events: dict[str, StoredEvent] = {}
        self.deliveries: list[Delivery] = []
        self.attempts: list[dict[str, Any]] = []
        self.sequences: dict[tuple[str, str], int] = {}
        self.pending_updates: list[tuple[float, str]] = []  # (due, messageId)

    # -- auth ---------------------------------------------------------------------------------
    def authenticate(self, token: str | None, scope: str | None) -> Credential | Refusal:
        if not token:
            return Refusal(401, "unauthenticated", "Send the partner credential as a Bearer token.")
        if token.startswith("onyx_sk_live_"):
            return Refusal(
                401, "unauthenticated", "A live credential is not valid on the sandbox host."
            )
        with self.lock:
            cred = self.credentials.get(token)
            if cred is None or not secrets.compare_digest(cred.value, token):
                return Refusal(401, "unauthenticated", "The credential is not valid.")
            if cred.state != "active":
                return Refusal(401, "unauthenticated", f"The credential is {cred.state}.")
            if scope is not None and scope not in cred.scopes:
                return Refusal(
                    403, "insufficient_scope", f"The credential lacks the {scope} scope."
                )
            return cred

    def identity(self, cred: Credential) -> dict[str, Any]:
        with self.lock:
            launch = [{"market": m, "capability": cap, "environment": env, "status": status}
                      for (m, cap, env), status in self.launch.items()]  # fmt: skip
            return {"partnerId": self.config.partner_id, "environment": self.config.environment,
                    "credential": {"id": cred.credential_id, "state": cred.state,
                                   "scopes": list(cred.scopes)}, "launch": launch}  # fmt: skip

    def approved(self, market: str, capability: str) -> bool:
        with self.lock:
            return self.launch.get((market, capability, self.config.environment)) == "approved"

    # -- idempotency --------------------------------------------------------------------------
    def idempotent(
        self, route: str, key: str, body: Any, run: Callable[[], tuple[int, dict[str, Any]]]
    ) -> tuple[int, dict[str, Any], bool]:
        """``(status, body, replayed)``: ``run`` once per key; same body replays, other conflicts.

        ``run`` executes under the lock, so a concurrent retry waits instead of running twice.
        """
        digest = body_hash(body)
        with self.lock:
            now = self.clock()
            record = self.idempotency.get((route, key))
            if record is not None and now - record.created > self.config.idempotency_window_seconds:
                record = None
            if record is not None:
                if record.body_hash != digest:
                    raise RefusalError(Refusal(409, "idempotency_conflict",
                                               "This idempotency-key was used with a different body."))  # fmt: skip
                return (200 if record.status == 201 else record.status), record.response, True
            status, response = run()
            if status < 500:
                self.idempotency[(route, key)] = _Idem(digest, now, status, response)
            return status, response, False

    # -- messaging ----------------------------------------------------------------------------
    def _check(self, app_id: str, subject: str, intent: str | None) -> tuple[str, str | None]:
        """``(outcome, reasonCode)`` for a pre-send (or a send) of ``intent``."""
        app = self.apps.get(app_id)
        if app is None:
            raise RefusalError(
                Refusal(400, "invalid_request", f"appId {app_id} is not a sandbox app.")
            )
        if not app.verified:
            return "blocked", "APP_NOT_VERIFIED"
        if not self.approved(app.market, "messaging"):
            return "unsupported", "FEATURE_GATED"
        reach = self.reachability(app_id, subject)
        if reach["reasonCode"] in ("NO_CONSENT", "CONSENT_EXPIRED"):
            return "consent_required", reach["reasonCode"]
        if reach["reasonCode"]:
            return "blocked", reach["reasonCode"]
        subj = self.subjects[subject]
        if intent is not None and intent not in subj.trusted_intents:
            return "trust_insufficient", "INSUFFICIENT_TRUST"
        return "allowed", None

    def reachability(self, app_id: str, subject: str) -> dict[str, Any]:
        if app_id not in self.apps:
            raise RefusalError(
                Refusal(400, "invalid_request", f"appId {app_id} is not a sandbox app.")
            )
        with self.lock:
            subj = self.subjects.get(subject)
            consent = self.consent.get(subject)
            thread = self.threads.get(subj.thread_id) if subj else None
        reason = None
        if consent == "expired":
            reason = "CONSENT_EXPIRED"
        elif consent not in ("granted", "limited"):
            reason = "NO_CONSENT"
        elif thread == "blocked":
            reason = "THREAD_BLOCKED"
        elif thread == "closed":
            reason = "THREAD_CLOSED"
        return {"reachable": reason is None, "consentState": consent, "threadState": thread,
                "availableActions": ["pre-send", "send"] if reason is None else [],
                "reasonCode": reason}  # fmt: skip

    def pre_send(self, app_id: str, subject: str, intent: str) -> dict[str, Any]:
        with self.lock:
            outcome, reason = self._check(app_id, subject, intent)
        return {"outcome": outcome, "reasonCode": reason}

    def send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """202 and a message, or a Refusal (422 send_blocked / 403 feature_gated), nothing sent."""
        app_id, subject, thread_id = body["appId"], body["subject"], body["threadId"]
        with self.lock:
            outcome, reason = self._check(app_id, subject, body["intent"])
            subj = self.subjects.get(subject)
            if outcome == "allowed" and (subj is None or subj.thread_id != thread_id):
                raise RefusalError(
                    Refusal(400, "invalid_request", "threadId is not this subject's thread.")
                )
            message_id = new_id("msg")
            if outcome != "allowed":
                self.emit("message.blocked", ("message", message_id),
                          {"messageId": message_id, "appId": app_id, "reasonCode": reason})  # fmt: skip
                if reason == "FEATURE_GATED":
                    raise RefusalError(Refusal(403, "feature_gated", "Messaging is not approved for this market.", reason))  # fmt: skip
                raise RefusalError(Refusal(422, "send_blocked", f"The send was blocked ({reason}); nothing was sent.", reason))  # fmt: skip
            self.emit("message.allowed", ("message", message_id),
                      {"messageId": message_id, "appId": app_id, "threadId": thread_id,
                       "intent": body["intent"]})  # fmt: skip
            self.pending_updates.append((self.clock() + self.config.delivery_seconds, message_id))
            return 202, {"data": {"message": {"messageId": message_id, "outcome": "allowed", "status": "accepted"}}}  # fmt: skip

    # -- catalogue and orders -----------------------------------------------------------------
    def package_wire(self, p: Package) -> dict[str, Any]:
        return {"packageId": p.package_id, "productFamily": "esim", "coverageName": p.region,
                "coverageType": "country", "displayName": p.display_name, "iso2": p.iso2,
                "region": p.region, "type": "sim", "validityDays": p.validity_days,
                "dataMb": p.data_mb, "allowanceGb": round(p.data_mb / 1024, 2),
                "dataLabel": f"{p.data_mb // 1024} GB", "sms": False, "voice": False,
                "msrpPriceUsd": round(p.net_price_usd * 2, 2), "onyxPartnerNetPriceUsd": p.net_price_usd,
                "minimumSellingPriceUsd": round(p.net_price_usd * 1.2, 2),
                "suggestedRetailPriceUsd": round(p.net_price_usd * 1.8, 2), "status": p.status,
                "policyNotes": p.policy_notes, "catalogueVersion": self.catalogue_version}  # fmt: skip

    def create_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        package = self.packages.get(body["packageId"])
        if package is None or package.status not in ("active", "limited"):
            why = "is not in the catalogue" if package is None else f"is {package.status}"
            raise RefusalError(
                Refusal(422, "unknown_package", f"Package {body['packageId']} {why}.")
            )
        if not self.approved(package.iso2, "connectivity"):
            raise RefusalError(Refusal(403, "feature_gated",
                                       f"Connectivity in {package.iso2} is not approved for {self.config.environment}.",
                                       "FEATURE_GATED"))  # fmt: skip
        now = self.clock()
        order = {"orderId": new_id("pp_order"), "partnerOrderId": body["partnerOrderId"],
                 "customerReference": body.get("customerReference"), "packageId": package.package_id,
                 "catalogueVersion": self.catalogue_version, "status": "created", "currency": "USD",
                 "onyxPartnerNetPriceUsd": package.net_price_usd, "createdAt": iso(now),
                 "updatedAt": iso(now)}  # fmt: skip
        self.orders[order["orderId"]] = _Order(
            order, list(package.walk), now + self.config.order_step_seconds
        )
        self._order_event(order, None)
        return 201, {"data": {"order": dict(order)}}

    def _order_event(self, order: dict[str, Any], previous: str | None) -> None:
        self.emit("order.status_changed", ("order", order["orderId"]),
                  {"orderId": order["orderId"], "partnerOrderId": order["partnerOrderId"],
                   "packageId": order["packageId"], "previousStatus": previous, "status": order["status"]})  # fmt: skip

    def order(self, order_id: str) -> dict[str, Any] | None:
        with self.lock:
            record = self.orders.get(order_id)
            return dict(record.order) if record else None

    def advance(self, now: float | None = None) -> bool:
        """Move orders and messages whose time has come; True when something changed."""
        now = self.clock() if now is None else now
        changed = False
        with self.lock:
            for record in self.orders.values():
                while record.due is not None and record.due <= now and record.walk:
                    previous, record.order["status"] = record.order["status"], record.walk.pop(0)
                    record.order["updatedAt"] = iso(now)
                    record.due = (
                        record.due + self.config.order_step_seconds if record.walk else None
                    )
                    self._order_event(record.order, previous)
                    if record.order["status"] == "esim_ready":
                        self._provision(record.order, now)
                    changed = True
            due = [m for t, m in self.pending_updates if t <= now]
            self.pending_updates = [(t, m) for t, m in self.pending_updates if t > now]
            for message_id in due:
                self.emit("message.delivery_updated", ("message", message_id),
                          {"messageId": message_id, "status": "delivered", "deliveredAt": iso(now)})  # fmt: skip
                changed = True
        return changed

    def _provision(self, order: dict[str, Any], now: float) -> None:
        iccid = "8901" + "".join(str(secrets.randbelow(10)) for _ in range(15))
        package = self.packages[order["packageId"]]
        self.esims[iccid] = {
            "orderId": order["orderId"], "partnerOrderId": order["partnerOrderId"],
            "customerReference": order.get("customerReference"), "iccid": iccid,
            "packageId": package.package_id, "status": "ready", "installPayloadAvailable": True,
            "usage": {"iccid": iccid, "packageId": package.package_id, "dataMbTotal": package.data_mb,
                      "dataMbUsed": 0, "dataMbRemaining": package.data_mb, "usagePercent": 0,
                      "status": "not_started", "observedAt": iso(now)},
        }  # fmt: skip
        self.emit("esim.status_changed", ("esim", iccid),
                  {"iccid": iccid, "orderId": order["orderId"], "previousStatus": None, "status": "ready"})  # fmt: skip

    # -- events and webhooks ------------------------------------------------------------------
    def emit(self, type_: str, resource: tuple[str, str], data: dict[str, Any], *,
             target: str | None = None) -> StoredEvent:  # fmt: skip
        """Record an event (next ``sequence`` of its resource) and schedule its deliveries."""
        with self.lock:
            now = self.clock()
            sequence = self.sequences.get(resource, 0) + 1
            self.sequences[resource] = sequence
            event_id = new_id("evt")
            envelope = {"id": event_id, "type": type_, "createdAt": iso(now),
                        "environment": self.config.environment, "partnerId": self.config.partner_id,
                        "sequence": sequence, "data": data}  # fmt: skip
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
            hook = Endpoint(new_id("wh"), url, tuple(event_types),
                            self.config.webhook_secret or generate_webhook_secret(), self.clock())  # fmt: skip
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
            events = [e for e in self.events.values()
                      if (event_type is None or e.type == event_type) and (since is None or iso(e.created) >= since)]  # fmt: skip
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
        status = next((s for s in ("failed", "retrying", "pending", "delivered") if s in statuses),
                      "not_subscribed")  # fmt: skip
        last = max((d.last_attempt_at for d in mine if d.last_attempt_at), default=None)
        reasons = [d.failure_reason for d in mine if d.failure_reason and d.status != "delivered"]
        retry = {"retrying": "scheduled", "failed": "exhausted"}.get(status, "none")
        return {"eventId": event.event_id, "type": event.type, "createdAt": iso(event.created),
                "deliveryStatus": status, "attempts": sum(d.attempts for d in mine),
                "lastAttemptAt": iso(last) if last else None,
                "failureReason": reasons[-1] if reasons else None, "retryState": retry}  # fmt: skip

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
            self.attempts.append({"deliveryId": delivery.delivery_id, "eventId": delivery.event_id,
                                  "webhookId": delivery.webhook_id, "attempt": delivery.attempts,
                                  "status": status, "error": error, "at": iso(now),
                                  "replay": delivery.replay})  # fmt: skip
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

    def next_due(self) -> float | None:
        with self.lock:
            times = [d.due for d in self.deliveries if d.status in ("pending", "retrying")]
            times += [t for t, _ in self.pending_updates]
            times += [r.due for r in self.orders.values() if r.due is not None]
            return min(times, default=None)

    # -- control plane ------------------------------------------------------------------------
    def set_consent(self, subject: str, consent: str) -> StoredEvent | None:
        with self.lock:
            if subject not in self.subjects:
                raise RefusalError(Refusal(404, "not_found", f"No sandbox subject {subject}."))
            self.consent[subject] = consent
            if consent in CONSENT_EVENTS:
                return self.emit(CONSENT_EVENTS[consent], ("consent", subject), {"subject": subject, "status": consent})  # fmt: skip
            return None

    def set_thread(self, thread_id: str, thread_state: str) -> StoredEvent:
        with self.lock:
            if thread_id not in self.threads:
                raise RefusalError(Refusal(404, "not_found", f"No sandbox thread {thread_id}."))
            previous, self.threads[thread_id] = self.threads[thread_id], thread_state
            return self.emit("thread.state_changed", ("thread", thread_id),
                             {"threadId": thread_id, "previousStatus": previous, "status": thread_state})  # fmt: skip

    def revoke_credential(self, credential_id: str | None = None) -> str:
        with self.lock:
            cred = next((c for c in self.credentials.values()
                         if c.credential_id == (credential_id or self.config.credential_id)), None)  # fmt: skip
            if cred is None:
                raise RefusalError(Refusal(404, "not_found", f"No credential {credential_id}."))
            cred.state = "revoked"
            return cred.credential_id

    def set_launch(self, market: str, capability: str, environment: str, status: str) -> None:
        with self.lock:
            self.launch[(market, capability, environment)] = status

    def set_catalogue_version(self, version: str) -> None:
        with self.lock:
            self.catalogue_version = version


class RefusalError(Exception):
    """Raised inside the state's rules; the API layer answers it as problem+json."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal
