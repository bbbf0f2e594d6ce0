"""The Onyx sandbox's world and rules: credentials, launch, consent and threads, orders.

Pure state, no HTTP. Touched from the server's event loop and from test threads, so every
access holds one lock (never across an await); events go out through the
:class:`~.outbox.Outbox`, which shares that lock. Every id is random per process, never derived
from the seed: a receiver that keeps its dedupe store across sandbox restarts must never see an
old event id again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ....core.sandbox_kit import Faults, body_hash, iso
from .config import (
    ALL_SCOPES,
    LIMITED_CREDENTIAL,
    LIMITED_SCOPES,
    REVOKED_CREDENTIAL,
    OnyxSandboxConfig,
    Package,
)
from .outbox import Outbox, StoredEvent
from .rules import Refusal, RefusalError, new_id

__all__ = ["Credential", "OnyxSandboxState"]

CONSENT_EVENTS = {
    "granted": "consent.granted",
    "revoked": "consent.revoked",
    "expired": "consent.expired",
}


@dataclass
class Credential:
    value: str
    credential_id: str
    state: str
    scopes: tuple[str, ...]


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
            REVOKED_CREDENTIAL: Credential(
                REVOKED_CREDENTIAL, "cred_sbx_revoked", "revoked", ALL_SCOPES
            ),
            LIMITED_CREDENTIAL: Credential(
                LIMITED_CREDENTIAL, "cred_sbx_limited", "active", LIMITED_SCOPES
            ),
        }
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
        self.outbox = Outbox(c, clock=self.clock, lock=self.lock, faults=self.faults)
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
            if cred is None:
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
            launch = [
                {"market": m, "capability": cap, "environment": env, "status": status}
                for (m, cap, env), status in self.launch.items()
            ]
            return {
                "partnerId": self.config.partner_id,
                "environment": self.config.environment,
                "credential": {
                    "id": cred.credential_id,
                    "state": cred.state,
                    "scopes": list(cred.scopes),
                },
                "launch": launch,
            }

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
                    raise RefusalError(
                        Refusal(
                            409,
                            "idempotency_conflict",
                            "This idempotency-key was used with a different body.",
                        )
                    )
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
        return {
            "reachable": reason is None,
            "consentState": consent,
            "threadState": thread,
            "availableActions": ["pre-send", "send"] if reason is None else [],
            "reasonCode": reason,
        }

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
                self.outbox.emit(
                    "message.blocked",
                    ("message", message_id),
                    {"messageId": message_id, "appId": app_id, "reasonCode": reason},
                )
                if reason == "FEATURE_GATED":
                    raise RefusalError(
                        Refusal(
                            403,
                            "feature_gated",
                            "Messaging is not approved for this market.",
                            reason,
                        )
                    )
                raise RefusalError(
                    Refusal(
                        422,
                        "send_blocked",
                        f"The send was blocked ({reason}); nothing was sent.",
                        reason,
                    )
                )
            self.outbox.emit(
                "message.allowed",
                ("message", message_id),
                {
                    "messageId": message_id,
                    "appId": app_id,
                    "threadId": thread_id,
                    "intent": body["intent"],
                },
            )
            self.pending_updates.append((self.clock() + self.config.delivery_seconds, message_id))
            return 202, {
                "data": {
                    "message": {"messageId": message_id, "outcome": "allowed", "status": "accepted"}
                }
            }

    # -- catalogue and orders -----------------------------------------------------------------
    def package_wire(self, p: Package) -> dict[str, Any]:
        return {
            "packageId": p.package_id,
            "productFamily": "esim",
            "coverageName": p.region,
            "coverageType": "country",
            "displayName": p.display_name,
            "iso2": p.iso2,
            "region": p.region,
            "type": "sim",
            "validityDays": p.validity_days,
            "dataMb": p.data_mb,
            "allowanceGb": round(p.data_mb / 1024, 2),
            "dataLabel": f"{p.data_mb // 1024} GB",
            "sms": False,
            "voice": False,
            "msrpPriceUsd": round(p.net_price_usd * 2, 2),
            "onyxPartnerNetPriceUsd": p.net_price_usd,
            "minimumSellingPriceUsd": round(p.net_price_usd * 1.2, 2),
            "suggestedRetailPriceUsd": round(p.net_price_usd * 1.8, 2),
            "status": p.status,
            "policyNotes": p.policy_notes,
            "catalogueVersion": self.catalogue_version,
        }

    def create_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        package = self.packages.get(body["packageId"])
        if package is None or package.status not in ("active", "limited"):
            why = "is not in the catalogue" if package is None else f"is {package.status}"
            raise RefusalError(
                Refusal(422, "unknown_package", f"Package {body['packageId']} {why}.")
            )
        if not self.approved(package.iso2, "connectivity"):
            raise RefusalError(
                Refusal(
                    403,
                    "feature_gated",
                    f"Connectivity in {package.iso2} is not approved for {self.config.environment}.",
                    "FEATURE_GATED",
                )
            )
        now = self.clock()
        order = {
            "orderId": new_id("pp_order"),
            "partnerOrderId": body["partnerOrderId"],
            "customerReference": body.get("customerReference"),
            "packageId": package.package_id,
            "catalogueVersion": self.catalogue_version,
            "status": "created",
            "currency": "USD",
            "onyxPartnerNetPriceUsd": package.net_price_usd,
            "createdAt": iso(now),
            "updatedAt": iso(now),
        }
        self.orders[order["orderId"]] = _Order(
            order, list(package.walk), now + self.config.order_step_seconds
        )
        self._order_event(order, None)
        return 201, {"data": {"order": dict(order)}}

    def _order_event(self, order: dict[str, Any], previous: str | None) -> None:
        self.outbox.emit(
            "order.status_changed",
            ("order", order["orderId"]),
            {
                "orderId": order["orderId"],
                "partnerOrderId": order["partnerOrderId"],
                "packageId": order["packageId"],
                "previousStatus": previous,
                "status": order["status"],
            },
        )

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
                self.outbox.emit(
                    "message.delivery_updated",
                    ("message", message_id),
                    {"messageId": message_id, "status": "delivered", "deliveredAt": iso(now)},
                )
                changed = True
        return changed

    def _provision(self, order: dict[str, Any], now: float) -> None:
        iccid = "8901" + "".join(str(secrets.randbelow(10)) for _ in range(15))
        package = self.packages[order["packageId"]]
        self.esims[iccid] = {
            "orderId": order["orderId"],
            "partnerOrderId": order["partnerOrderId"],
            "customerReference": order.get("customerReference"),
            "iccid": iccid,
            "packageId": package.package_id,
            "status": "ready",
            "installPayloadAvailable": True,
            "usage": {
                "iccid": iccid,
                "packageId": package.package_id,
                "dataMbTotal": package.data_mb,
                "dataMbUsed": 0,
                "dataMbRemaining": package.data_mb,
                "usagePercent": 0,
                "status": "not_started",
                "observedAt": iso(now),
            },
        }
        self.outbox.emit(
            "esim.status_changed",
            ("esim", iccid),
            {
                "iccid": iccid,
                "orderId": order["orderId"],
                "previousStatus": None,
                "status": "ready",
            },
        )

    # -- control plane ------------------------------------------------------------------------
    def set_consent(self, subject: str, consent: str) -> StoredEvent | None:
        with self.lock:
            if subject not in self.subjects:
                raise RefusalError(Refusal(404, "not_found", f"No sandbox subject {subject}."))
            self.consent[subject] = consent
            if consent in CONSENT_EVENTS:
                return self.outbox.emit(
                    CONSENT_EVENTS[consent],
                    ("consent", subject),
                    {"subject": subject, "status": consent},
                )
            return None

    def set_thread(self, thread_id: str, thread_state: str) -> StoredEvent:
        with self.lock:
            if thread_id not in self.threads:
                raise RefusalError(Refusal(404, "not_found", f"No sandbox thread {thread_id}."))
            previous, self.threads[thread_id] = self.threads[thread_id], thread_state
            return self.outbox.emit(
                "thread.state_changed",
                ("thread", thread_id),
                {"threadId": thread_id, "previousStatus": previous, "status": thread_state},
            )

    def revoke_credential(self, credential_id: str | None = None) -> str:
        with self.lock:
            cred = next(
                (
                    c
                    for c in self.credentials.values()
                    if c.credential_id == (credential_id or self.config.credential_id)
                ),
                None,
            )
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
