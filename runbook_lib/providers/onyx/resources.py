"""Typed Onyx resources, built from the wire JSON here and nowhere else.

Each is a frozen dataclass with ``to_dict()`` (camelCase, for the summary JSON) and carries the
``request_id`` of the answer it came from. States are kept verbatim: the runbook never invents or
renames a provider state. A field the contract requires but the answer lacks is a
:class:`~runbook_lib.core.errors.ProviderError` naming the field, never a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import ProviderError
from ...core.rendering import badge, kv_table, rows_table
from ...security.secrets import REGISTRY, Secret

__all__ = [
    "Acceptance",
    "Catalogue",
    "CataloguePackage",
    "Esim",
    "EventHistory",
    "EventRecord",
    "LaunchApproval",
    "Order",
    "PartnerIdentity",
    "PreSendOutcome",
    "Reachability",
    "Replay",
    "TestEvent",
    "Usage",
    "Webhook",
    "mask_reference",
]

AVAILABLE_PACKAGE_STATUSES = frozenset({"active", "limited"})
FAILING_DELIVERY_STATUSES = frozenset({"failed", "retrying"})


def mask_reference(value: str | None, *, keep_last: int = 4) -> str | None:
    """``8901260000000012345`` → ``•••••••••••••••2345``: enough to match, not to use."""
    if not value or len(value) <= keep_last:
        return value
    return "•" * (len(value) - keep_last) + value[-keep_last:]


class _Wire:
    """Typed reads of one JSON object; a missing or mistyped field names itself."""

    def __init__(self, data: Any, what: str, request_id: str | None) -> None:
        if not isinstance(data, Mapping):
            raise self._error(what, "is not a JSON object", request_id)
        self.data, self.what, self.request_id = data, what, request_id

    @staticmethod
    def _error(what: str, problem: str, request_id: str | None) -> ProviderError:
        return ProviderError(
            f"the Onyx answer's {what} {problem}.",
            request_id=request_id,
            remedy="the answer does not follow the onyx-v1 contract; quote the requestId to Onyx.",
        )

    def _get(self, name: str, types: type | tuple[type, ...], required: bool) -> Any:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self._error(self.what, f"has no {name}", self.request_id)
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise self._error(
                self.what, f"has {name} of type {type(value).__name__}", self.request_id
            )
        return value

    def text(self, name: str) -> str:
        return self._get(name, str, True)

    def opt_text(self, name: str) -> str | None:
        return self._get(name, str, False)

    def flag(self, name: str) -> bool:
        return self._get(name, bool, True)

    def opt_flag(self, name: str) -> bool | None:
        return self._get(name, bool, False)

    def opt_num(self, name: str) -> float | None:
        value = self._get(name, (int, float), False)
        return None if value is None else value

    def strs(self, name: str) -> tuple[str, ...]:
        values = self._get(name, list, False) or []
        if not all(isinstance(v, str) for v in values):
            raise self._error(self.what, f"has {name} with non-string items", self.request_id)
        return tuple(values)

    def objects(self, name: str) -> list[Any]:
        return list(self._get(name, list, False) or [])

    def obj(self, name: str) -> _Wire:
        return _Wire(self._get(name, Mapping, True), f"{self.what}.{name}", self.request_id)


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def envelope(body: Any, name: str, request_id: str | None) -> _Wire:
    """``{"data": {name: …}}`` → a reader of ``…`` (``name=""``: the ``data`` object itself)."""
    data = _Wire(body, "body", request_id).obj("data")
    return data if not name else data.obj(name)


# -- identity ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaunchApproval:
    """Onyx's launch approval for one market × capability × environment."""

    market: str
    capability: str
    environment: str
    status: str

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    def to_dict(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "capability": self.capability,
            "environment": self.environment,
            "status": self.status,
        }


@dataclass(frozen=True)
class PartnerIdentity:
    """``GET /v1/partner/me``: who the credential is, what it may do, what is approved."""

    partner_id: str
    environment: str
    credential_id: str
    credential_state: str
    scopes: tuple[str, ...]
    launch: tuple[LaunchApproval, ...]
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> PartnerIdentity:
        data = envelope(body, "", request_id)
        cred = data.obj("credential")
        launch = []
        for item in data.objects("launch"):
            w = _Wire(item, "data.launch[]", request_id)
            launch.append(
                LaunchApproval(
                    w.text("market"), w.text("capability"), w.text("environment"), w.text("status")
                )
            )
        return cls(
            partner_id=data.text("partnerId"),
            environment=data.text("environment"),
            credential_id=cred.text("id"),
            credential_state=cred.text("state"),
            scopes=cred.strs("scopes"),
            launch=tuple(launch),
            request_id=request_id,
        )

    def approval(self, market: str, capability: str, environment: str) -> str:
        """The status for one market × capability × environment (``not_requested`` if absent)."""
        for item in self.launch:
            if (item.market, item.capability, item.environment) == (
                market,
                capability,
                environment,
            ):
                return item.status
        return "not_requested"

    def unapproved(self, declared: Iterable[tuple[str, str, str]]) -> list[LaunchApproval]:
        """Each declared (market, capability, environment) that is not ``approved``."""
        out = []
        for market, capability, environment in declared:
            status = self.approval(market, capability, environment)
            if status != "approved":
                out.append(LaunchApproval(market, capability, environment, status))
        return out

    def missing_scopes(self, needed: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(needed) - set(self.scopes)))

    def extra_scopes(self, needed: Iterable[str]) -> tuple[str, ...]:
        """Granted but not needed: a least-privilege finding."""
        return tuple(sorted(set(self.scopes) - set(needed)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "partnerId": self.partner_id,
            "environment": self.environment,
            "credential": {
                "id": self.credential_id,
                "state": self.credential_state,
                "scopes": list(self.scopes),
            },
            "launch": [a.to_dict() for a in self.launch],
            "requestId": self.request_id,
        }

    def _repr_html_(self) -> str:
        rows = [(a.market, a.capability, a.environment, a.status) for a in self.launch]
        return kv_table(
            {
                "partner": self.partner_id,
                "environment": self.environment,
                "credential": f"{self.credential_id} ({self.credential_state})",
                "scopes": " ".join(self.scopes),
            }
        ) + rows_table(["market", "capability", "environment", "status"], rows)


# -- messaging --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reachability:
    """``POST …/messaging/reachability``: can this subject be messaged at all, and why not."""

    reachable: bool
    consent_state: str | None
    thread_state: str | None
    available_actions: tuple[str, ...]
    reason_code: str | None
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> Reachability:
        data = envelope(body, "", request_id)
        return cls(
            reachable=data.flag("reachable"),
            consent_state=data.opt_text("consentState"),
            thread_state=data.opt_text("threadState"),
            available_actions=data.strs("availableActions"),
            reason_code=data.opt_text("reasonCode"),
            request_id=request_id,
        )

    @property
    def allows(self) -> bool:
        return self.reachable and not self.reason_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "consentState": self.consent_state,
            "threadState": self.thread_state,
            "availableActions": list(self.available_actions),
            "reasonCode": self.reason_code,
            "requestId": self.request_id,
        }


# Pre-send outcomes that name their reason even when the answer leaves reasonCode out.
_OUTCOME_REASON = {"consent_required": "NO_CONSENT", "trust_insufficient": "INSUFFICIENT_TRUST"}


@dataclass(frozen=True)
class PreSendOutcome:
    """``POST …/messaging/pre-send``: may this intent be sent now."""

    outcome: str
    reason_code: str | None
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> PreSendOutcome:
        data = envelope(body, "", request_id)
        outcome = data.text("outcome")
        reason = data.opt_text("reasonCode") or _OUTCOME_REASON.get(outcome)
        return cls(outcome=outcome, reason_code=reason, request_id=request_id)

    @property
    def allows(self) -> bool:
        return self.outcome == "allowed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasonCode": self.reason_code,
            "requestId": self.request_id,
        }


@dataclass(frozen=True)
class Acceptance:
    """``202`` from ``POST …/messaging/messages``: the message was accepted."""

    message_id: str
    outcome: str
    status: str
    request_id: str | None = None
    replayed: bool = False

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None, *, replayed: bool = False) -> Acceptance:
        m = envelope(body, "message", request_id)
        return cls(m.text("messageId"), m.text("outcome"), m.text("status"), request_id, replayed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "outcome": self.outcome,
            "status": self.status,
            "requestId": self.request_id,
            "replayed": self.replayed,
        }


# -- catalogue, orders, services ----------------------------------------------------------------
@dataclass(frozen=True)
class CataloguePackage:
    """One package as the catalogue shows it (status verbatim)."""

    package_id: str
    display_name: str | None
    product_family: str | None
    iso2: str | None
    region: str | None
    validity_days: float | None
    data_mb: float | None
    status: str
    policy_notes: str | None
    catalogue_version: str | None

    @classmethod
    def from_wire(cls, item: Any, request_id: str | None) -> CataloguePackage:
        w = _Wire(item, "package", request_id)
        return cls(
            package_id=w.text("packageId"),
            display_name=w.opt_text("displayName"),
            product_family=w.opt_text("productFamily"),
            iso2=w.opt_text("iso2"),
            region=w.opt_text("region"),
            validity_days=w.opt_num("validityDays"),
            data_mb=w.opt_num("dataMb"),
            status=w.text("status"),
            policy_notes=w.opt_text("policyNotes"),
            catalogue_version=w.opt_text("catalogueVersion"),
        )

    @property
    def available(self) -> bool:
        """Orderable (``active`` or ``limited``); anything else must be hidden from buyers."""
        return self.status in AVAILABLE_PACKAGE_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "packageId": self.package_id,
            "displayName": self.display_name,
            "productFamily": self.product_family,
            "iso2": self.iso2,
            "region": self.region,
            "validityDays": self.validity_days,
            "dataMb": self.data_mb,
            "status": self.status,
            "policyNotes": self.policy_notes,
            "catalogueVersion": self.catalogue_version,
        }


@dataclass(frozen=True)
class Catalogue:
    """``GET /v1/partner/catalog/packages``."""

    catalogue_version: str
    packages: tuple[CataloguePackage, ...]
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> Catalogue:
        data = envelope(body, "", request_id)
        packages = tuple(
            CataloguePackage.from_wire(p, request_id) for p in data.objects("packages")
        )
        return cls(data.text("catalogueVersion"), packages, request_id)

    def unavailable(self) -> tuple[CataloguePackage, ...]:
        return tuple(p for p in self.packages if not p.available)

    def package(self, package_id: str) -> CataloguePackage | None:
        return next((p for p in self.packages if p.package_id == package_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalogueVersion": self.catalogue_version,
            "packages": [p.to_dict() for p in self.packages],
            "unavailable": [p.package_id for p in self.unavailable()],
            "requestId": self.request_id,
        }

    def _repr_html_(self) -> str:
        rows = [
            (
                p.package_id,
                p.display_name,
                p.iso2,
                badge("PASS" if p.available else "WARN", p.status),
            )
            for p in self.packages
        ]
        return f"<p>catalogueVersion <code>{self.catalogue_version}</code></p>" + rows_table(
            ["package", "name", "market", "status"], rows, raw=(3,)
        )


@dataclass(frozen=True)
class Order:
    """An order, its state verbatim; ``created`` is False for a same-key replay (200)."""

    order_id: str
    partner_order_id: str | None
    customer_reference: str | None
    package_id: str
    catalogue_version: str | None
    status: str
    currency: str | None
    net_price_usd: float | None
    created_at: str | None
    updated_at: str | None
    request_id: str | None = None
    created: bool = False

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None, *, created: bool = False) -> Order:
        o = envelope(body, "order", request_id)
        return cls(
            order_id=o.text("orderId"),
            partner_order_id=o.opt_text("partnerOrderId"),
            customer_reference=o.opt_text("customerReference"),
            package_id=o.text("packageId"),
            catalogue_version=o.opt_text("catalogueVersion"),
            status=o.text("status"),
            currency=o.opt_text("currency"),
            net_price_usd=o.opt_num("onyxPartnerNetPriceUsd"),
            created_at=o.opt_text("createdAt"),
            updated_at=o.opt_text("updatedAt"),
            request_id=request_id,
            created=created,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "partnerOrderId": self.partner_order_id,
            "customerReference": mask_reference(self.customer_reference),
            "packageId": self.package_id,
            "catalogueVersion": self.catalogue_version,
            "status": self.status,
            "currency": self.currency,
            "onyxPartnerNetPriceUsd": self.net_price_usd,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "requestId": self.request_id,
            "created": self.created,
        }


@dataclass(frozen=True)
class Esim:
    """One service (eSIM); ``to_dict`` masks the ICCID, activation material is never read."""

    order_id: str | None
    iccid: str
    package_id: str | None
    status: str
    install_payload_available: bool | None

    @classmethod
    def from_wire(cls, item: Any, request_id: str | None) -> Esim:
        w = _Wire(item, "esim", request_id)
        return cls(
            w.opt_text("orderId"),
            w.text("iccid"),
            w.opt_text("packageId"),
            w.text("status"),
            w.opt_flag("installPayloadAvailable"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "iccid": mask_reference(self.iccid),
            "packageId": self.package_id,
            "status": self.status,
            "installPayloadAvailable": self.install_payload_available,
        }


@dataclass(frozen=True)
class Usage:
    """``GET …/esims/{iccid}/usage``; usage lags, so ``observed_at`` always travels with it."""

    iccid: str
    package_id: str | None
    data_mb_total: float | None
    data_mb_used: float | None
    data_mb_remaining: float | None
    usage_percent: float | None
    status: str
    observed_at: str
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> Usage:
        u = envelope(body, "usage", request_id)
        return cls(
            iccid=u.text("iccid"),
            package_id=u.opt_text("packageId"),
            data_mb_total=u.opt_num("dataMbTotal"),
            data_mb_used=u.opt_num("dataMbUsed"),
            data_mb_remaining=u.opt_num("dataMbRemaining"),
            usage_percent=u.opt_num("usagePercent"),
            status=u.text("status"),
            observed_at=u.text("observedAt"),
            request_id=request_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "iccid": mask_reference(self.iccid),
            "packageId": self.package_id,
            "dataMbTotal": self.data_mb_total,
            "dataMbUsed": self.data_mb_used,
            "dataMbRemaining": self.data_mb_remaining,
            "usagePercent": self.usage_percent,
            "status": self.status,
            "observedAt": self.observed_at,
            "requestId": self.request_id,
        }


# -- webhooks and events ----------------------------------------------------------------------
@dataclass(frozen=True)
class Webhook:
    """A webhook endpoint; ``secret`` is present once (on creation), as a :class:`Secret`."""

    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    environment: str | None
    status: str
    created_at: str | None
    secret: Secret | None = field(default=None, repr=False)
    request_id: str | None = None

    @classmethod
    def from_wire(cls, item: Any, request_id: str | None) -> Webhook:
        w = _Wire(item, "webhook", request_id)
        raw_secret = w.opt_text("secret")
        secret = None
        if raw_secret:
            REGISTRY.register(raw_secret, "Onyx webhook signing secret")
            secret = Secret(raw_secret, label=f"webhook secret of {w.text('webhookId')}")
        return cls(
            webhook_id=w.text("webhookId"),
            url=w.text("url"),
            event_types=w.strs("eventTypes"),
            environment=w.opt_text("environment"),
            status=w.text("status"),
            created_at=w.opt_text("createdAt"),
            secret=secret,
            request_id=request_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "webhookId": self.webhook_id,
            "url": self.url,
            "eventTypes": list(self.event_types),
            "environment": self.environment,
            "status": self.status,
            "createdAt": self.created_at,
            "secretIssued": self.secret is not None,
            "requestId": self.request_id,
        }


@dataclass(frozen=True)
class EventRecord:
    """One entry of the event history, with its delivery state as Onyx reports it."""

    event_id: str
    type: str
    created_at: str | None
    delivery_status: str
    attempts: int
    last_attempt_at: str | None
    failure_reason: str | None
    retry_state: str | None

    @classmethod
    def from_wire(cls, item: Any, request_id: str | None) -> EventRecord:
        w = _Wire(item, "event", request_id)
        attempts = w.opt_num("attempts")
        return cls(
            event_id=w.text("eventId"),
            type=w.text("type"),
            created_at=w.opt_text("createdAt"),
            delivery_status=w.text("deliveryStatus"),
            attempts=int(attempts or 0),
            last_attempt_at=w.opt_text("lastAttemptAt"),
            failure_reason=w.opt_text("failureReason"),
            retry_state=w.opt_text("retryState"),
        )

    @property
    def failing(self) -> bool:
        return self.delivery_status in FAILING_DELIVERY_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "type": self.type,
            "createdAt": self.created_at,
            "deliveryStatus": self.delivery_status,
            "attempts": self.attempts,
            "lastAttemptAt": self.last_attempt_at,
            "failureReason": self.failure_reason,
            "retryState": self.retry_state,
        }


@dataclass(frozen=True)
class EventHistory:
    """Every page of ``GET /v1/partner/events``."""

    events: tuple[EventRecord, ...]
    pages: int
    request_ids: tuple[str, ...] = ()

    def failing(self) -> tuple[EventRecord, ...]:
        return tuple(e for e in self.events if e.failing)

    def find(self, event_id: str) -> EventRecord | None:
        return next((e for e in self.events if e.event_id == event_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [e.to_dict() for e in self.events],
            "failing": [e.event_id for e in self.failing()],
            "pages": self.pages,
            "requestIds": list(self.request_ids),
        }


@dataclass(frozen=True)
class Replay:
    """``202`` from ``POST /v1/partner/events/{eventId}/replay``."""

    event_id: str
    delivery_id: str
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> Replay:
        r = envelope(body, "replay", request_id)
        return cls(r.text("eventId"), r.text("deliveryId"), request_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "deliveryId": self.delivery_id,
            "requestId": self.request_id,
        }


@dataclass(frozen=True)
class TestEvent:
    """``202`` from ``POST /v1/partner/webhooks/{webhookId}/test``: the event to look for."""

    event_id: str
    type: str
    webhook_id: str
    request_id: str | None = None

    @classmethod
    def from_wire(cls, body: Any, request_id: str | None) -> TestEvent:
        e = envelope(body, "event", request_id)
        return cls(e.text("eventId"), e.text("type"), e.text("webhookId"), request_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "type": self.type,
            "webhookId": self.webhook_id,
            "requestId": self.request_id,
        }
