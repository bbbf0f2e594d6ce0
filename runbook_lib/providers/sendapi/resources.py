"""Typed SendAPI resources, built from the wire JSON here and nowhere else.

The vendor's documentation disagrees with itself, so every builder tolerates what a server that
honours the contract may send: bare objects or ``{"data": …}`` envelopes, lists with or without
``meta``, ``message``/``content`` for a text, ``id``/``messageId`` for an id. Unknown fields are
ignored; a field of the wrong type is treated as absent rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...security.secrets import REGISTRY, Secret

__all__ = [
    "Acceptance",
    "ChannelUsage",
    "ContactCheck",
    "DnsRecord",
    "EmailDomain",
    "ListMeta",
    "SenderId",
    "Usage",
    "Webhook",
    "WhatsAppSession",
    "parse_time",
    "unwrap",
    "unwrap_list",
]


def unwrap(body: Any) -> Any:
    """The payload of a success body: ``body["data"]`` when the server wrapped it, else the body."""
    if (
        isinstance(body, Mapping)
        and isinstance(body.get("data"), (Mapping, list))
        and "id" not in body  # a bare resource may itself have a field called data
    ):
        return body["data"]
    return body


@dataclass(frozen=True)
class ListMeta:
    """Pagination of a list answer (absent when the server sends a bare list)."""

    total: int | None = None
    page: int | None = None
    per_page: int | None = None
    last_page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "page": self.page,
            "perPage": self.per_page,
            "lastPage": self.last_page,
        }


def unwrap_list(body: Any) -> tuple[list[Mapping[str, Any]], ListMeta]:
    """Items and meta of a list answer: ``[…]``, ``{"data": […]}`` or ``{"data": […], "meta": …}``."""
    meta_raw = body.get("meta") if isinstance(body, Mapping) else None
    items = unwrap(body)
    if isinstance(items, Mapping):  # some servers nest once more: {"data": {"data": […]}}
        items = items.get("data", items.get("items"))
    if not isinstance(items, list):
        items = []
    meta = ListMeta()
    if isinstance(meta_raw, Mapping):
        meta = ListMeta(
            total=_int(meta_raw.get("total")),
            page=_int(meta_raw.get("page")),
            per_page=_int(meta_raw.get("per_page", meta_raw.get("perPage"))),
            last_page=_int(meta_raw.get("last_page", meta_raw.get("lastPage"))),
        )
    return [i for i in items if isinstance(i, Mapping)], meta


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time (``Z`` or an offset) as an aware UTC datetime; None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _str(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, int)):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


# -- account ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelUsage:
    """Consumption of one quota (``sms``, ``whatsapp_messages``, ``emails``, ``whatsapp_sessions``)."""

    name: str
    used: int | None
    quota: int | None
    share: float | None  # 0..1 of the quota used; None when the quota is unknown or unlimited
    cost_usd: float | None = None

    @property
    def exhausted(self) -> bool:
        return self.quota is not None and self.used is not None and self.used >= self.quota

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "used": self.used, "quota": self.quota, "share": self.share,
                "costUsd": self.cost_usd, "exhausted": self.exhausted}  # fmt: skip


@dataclass(frozen=True)
class Usage:
    """``GET /account/usage``: the plan, the billing period and each quota's consumption."""

    plan: str | None
    period_start: datetime | None
    period_end: datetime | None
    channels: tuple[ChannelUsage, ...]

    def channel(self, name: str) -> ChannelUsage | None:
        return next((c for c in self.channels if c.name == name), None)

    @classmethod
    def from_wire(cls, body: Any) -> Usage:
        data = unwrap(body)
        data = data if isinstance(data, Mapping) else {}
        period = (
            data.get("billing_period") if isinstance(data.get("billing_period"), Mapping) else {}
        )
        usage = data.get("usage") if isinstance(data.get("usage"), Mapping) else {}
        channels = []
        for name, item in usage.items():
            if not isinstance(item, Mapping):
                continue
            used = _int(_first(item, "sent", "active", "used", "count"))
            quota = _int(_first(item, "quota", "limit"))
            percentage = _float(item.get("percentage"))
            if percentage is not None:
                share: float | None = percentage / 100
            elif used is not None and quota:
                share = used / quota
            else:
                share = None
            channels.append(
                ChannelUsage(str(name), used, quota, share, _float(item.get("cost_usd")))
            )
        plan = data.get("plan")
        if isinstance(plan, Mapping):  # some servers send {"plan": {"name": …}}
            plan = plan.get("name")
        return cls(
            plan=_str(plan),
            period_start=parse_time(_first(period, "starts_at", "start")),
            period_end=parse_time(_first(period, "ends_at", "end")),
            channels=tuple(channels),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "periodStart": _iso(self.period_start),
                "periodEnd": _iso(self.period_end),
                "channels": [c.to_dict() for c in self.channels]}  # fmt: skip


# -- SMS --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SenderId:
    """One registered SMS sender id (``GET /sms/sender-ids``; shape decided, see the contract)."""

    id: str | None
    sender_id: str
    status: str | None
    created_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return (self.status or "").lower() in ("approved", "active", "verified", "registered")

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> SenderId:
        return cls(
            id=_str(item.get("id")),
            sender_id=_str(_first(item, "sender_id", "senderId", "name", "value")) or "",
            status=_str(item.get("status")),
            created_at=parse_time(item.get("created_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "senderId": self.sender_id, "status": self.status,
                "usable": self.usable, "createdAt": _iso(self.created_at)}  # fmt: skip


# -- WhatsApp ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WhatsAppSession:
    """A WhatsApp session (``pending|connected|disconnected|logged_out``)."""

    id: str
    name: str | None
    status: str
    phone_number: str | None
    last_seen_at: datetime | None
    message_count: int | None
    created_at: datetime | None = None

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @classmethod
    def from_wire(cls, body: Any) -> WhatsAppSession:
        item = unwrap(body)
        item = item if isinstance(item, Mapping) else {}
        return cls(
            id=_str(item.get("id")) or "",
            name=_str(item.get("name")),
            status=(_str(item.get("status")) or "unknown").lower(),
            phone_number=_str(_first(item, "phone_number", "phoneNumber", "phone")),
            last_seen_at=parse_time(_first(item, "last_seen_at", "lastSeenAt")),
            message_count=_int(_first(item, "message_count", "messageCount")),
            created_at=parse_time(item.get("created_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status,
                "phoneNumber": self.phone_number, "lastSeenAt": _iso(self.last_seen_at),
                "messageCount": self.message_count, "createdAt": _iso(self.created_at)}  # fmt: skip


@dataclass(frozen=True)
class ContactCheck:
    """``GET /whatsapp/contacts/{phone}/check``: whether the number can receive WhatsApp."""

    phone: str
    on_whatsapp: bool | None

    @classmethod
    def from_wire(cls, body: Any, *, phone: str) -> ContactCheck:
        item = unwrap(body)
        item = item if isinstance(item, Mapping) else {}
        value = _first(item, "exists", "on_whatsapp", "is_whatsapp", "registered", "valid")
        return cls(
            phone=_str(_first(item, "phone", "phone_number", "number")) or phone,
            on_whatsapp=value if isinstance(value, bool) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"phone": self.phone, "onWhatsApp": self.on_whatsapp}


# -- email ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DnsRecord:
    """A record the API says to publish for a sending domain."""

    purpose: str  # spf | dkim | dmarc
    type: str  # TXT | CNAME
    name: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "type": self.type, "name": self.name, "value": self.value}

    def __str__(self) -> str:
        return f'{self.type} {self.name} "{self.value}"'


@dataclass(frozen=True)
class EmailDomain:
    """A sending domain, its verification and the SPF/DKIM/DMARC records to publish."""

    id: str
    domain: str
    verified: bool
    verified_at: datetime | None
    records: tuple[DnsRecord, ...] = ()

    def record(self, purpose: str) -> DnsRecord | None:
        return next((r for r in self.records if r.purpose == purpose), None)

    @classmethod
    def from_wire(cls, body: Any) -> EmailDomain:
        item = unwrap(body)
        item = item if isinstance(item, Mapping) else {}
        raw = item.get("records")
        pairs: list[tuple[str, Any]] = []
        if isinstance(raw, Mapping):
            pairs = list(raw.items())
        elif isinstance(raw, list):  # [{purpose|kind, type, name, value}]
            pairs = [
                (str(_first(r, "purpose", "kind") or ""), r) for r in raw if isinstance(r, Mapping)
            ]
        records = []
        for purpose, rec in pairs:
            if isinstance(rec, Mapping) and _str(rec.get("name")) and _str(rec.get("value")):
                records.append(
                    DnsRecord(
                        purpose=purpose.lower(),
                        type=(_str(rec.get("type")) or "TXT").upper(),
                        name=str(rec["name"]),
                        value=str(rec["value"]),
                    )
                )
        verified = item.get("verified")
        if not isinstance(verified, bool):
            verified = (_str(item.get("status")) or "").lower() == "verified"
        return cls(
            id=_str(item.get("id")) or "",
            domain=(_str(item.get("domain")) or "").lower().rstrip("."),
            verified=verified,
            verified_at=parse_time(item.get("verified_at")),
            records=tuple(records),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "domain": self.domain, "verified": self.verified,
                "verifiedAt": _iso(self.verified_at),
                "records": [r.to_dict() for r in self.records]}  # fmt: skip


# -- webhooks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Webhook:
    """A webhook endpoint. ``secret`` is only set on the answer that created it (shown once)."""

    id: str
    url: str
    events: tuple[str, ...]
    is_active: bool
    failure_count: int | None
    created_at: datetime | None = None
    secret_prefix: str | None = None
    secret: Any = field(default=None, repr=False, compare=False)  # a Secret, when just created

    def subscribes(self, event_type: str) -> bool:
        """True when ``event_type`` is covered by ``*``, a ``family.*`` pattern or its name."""
        family = event_type.split(".", 1)[0]
        return any(e in ("*", event_type, f"{family}.*") for e in self.events)

    @classmethod
    def from_wire(cls, body: Any, *, created: bool = False) -> Webhook:
        """``created``: the answer to ``POST /webhooks``, the only one holding the whole secret."""
        item = unwrap(body)
        item = item if isinstance(item, Mapping) else {}
        events = item.get("events")
        secret_text = _str(item.get("secret")) or ""
        # Later answers show a prefix (masked however the server likes): never take it for a key.
        full = created and secret_text.startswith("whsec_")
        if full:
            REGISTRY.register(secret_text, f"SendAPI webhook {item.get('id')} secret")
        active = item.get("is_active", item.get("active"))
        return cls(
            id=_str(item.get("id")) or "",
            url=_str(item.get("url")) or "",
            events=tuple(str(e) for e in events) if isinstance(events, list) else (),
            is_active=active if isinstance(active, bool) else True,
            failure_count=_int(_first(item, "failure_count", "failureCount")),
            created_at=parse_time(item.get("created_at")),
            secret_prefix=secret_text[:10] if secret_text else None,
            secret=Secret(secret_text, label=f"webhook {item.get('id')} secret") if full else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": list(self.events),
                "isActive": self.is_active, "failureCount": self.failure_count,
                "createdAt": _iso(self.created_at), "secretPrefix": self.secret_prefix}  # fmt: skip


# -- sends ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Acceptance:
    """The answer to a send: fire-and-forget, so the outcome comes later by webhook."""

    channel: str  # sms | whatsapp | email
    message_id: str
    status: str
    request_id: str | None
    replayed: bool
    idempotency_key: str
    http_status: int
    attempts: int = 1
    to: Any = None

    @classmethod
    def from_wire(cls, body: Any, *, channel: str, request_id: str | None, replayed: bool,
                  idempotency_key: str, http_status: int, attempts: int = 1) -> Acceptance:  # fmt: skip
        item = unwrap(body)
        item = item if isinstance(item, Mapping) else {}
        return cls(
            channel=channel,
            message_id=_str(_first(item, "id", "messageId", "message_id")) or "",
            status=(_str(item.get("status")) or "").lower(),
            request_id=request_id or _str(_first(item, "request_id", "requestId")),
            replayed=replayed,
            idempotency_key=idempotency_key,
            http_status=http_status,
            attempts=attempts,
            to=item.get("to"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "messageId": self.message_id, "status": self.status,
                "requestId": self.request_id, "replayed": self.replayed,
                "idempotencyKey": self.idempotency_key, "httpStatus": self.http_status,
                "attempts": self.attempts, "to": self.to}  # fmt: skip
