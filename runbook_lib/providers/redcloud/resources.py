"""Red Cloud's resources as typed values, built from the wire JSON here and nowhere else.

Callers read attributes (``context.environment``, ``number.sms_enabled``) instead of parsing
dicts; a field the provider left out or sent with the wrong type reads as ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientContext", "Number", "NumberInventory", "WebhookStatus"]


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class WebhookStatus:
    """The account webhook as whoami reports it."""

    status: str | None
    url: str | None
    signing_secret_set: bool | None
    last_success_at: str | None
    last_failure_at: str | None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WebhookStatus:
        secret_set = data.get("signingSecretSet")
        return cls(
            status=_text(data, "status"),
            url=_text(data, "url"),
            signing_secret_set=secret_set if isinstance(secret_set, bool) else None,
            last_success_at=_text(data, "lastSuccessAt"),
            last_failure_at=_text(data, "lastFailureAt"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signingSecretSet": self.signing_secret_set,
            "lastSuccessAt": self.last_success_at,
            "lastFailureAt": self.last_failure_at,
        }


@dataclass(frozen=True)
class ClientContext:
    """``GET /api/core/whoami``: who the credentials are."""

    client_id: str | None
    api_client_id: str | None
    client_name: str | None
    account_id: str | None
    environment: str | None
    numbers_total: int | None
    numbers_active: int | None
    webhook: WebhookStatus
    request_id: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any], *, request_id: str | None = None) -> ClientContext:
        assigned = _dict(data, "assignedNumbers")
        return cls(
            client_id=_text(data, "clientId"),
            api_client_id=_text(data, "apiClientId") or _text(data, "clientId"),
            client_name=_text(data, "clientName"),
            account_id=_text(data, "accountId"),
            environment=_text(data, "environment"),
            numbers_total=_int(assigned, "total"),
            numbers_active=_int(assigned, "active"),
            webhook=WebhookStatus.from_wire(_dict(data, "webhook")),
            request_id=request_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "clientName": self.client_name,
            "accountId": self.account_id,
            "environment": self.environment,
        }


@dataclass(frozen=True)
class Number:
    """One number from ``GET /api/core/numbers``."""

    number_id: str | None
    phone_number: str | None
    status: str | None
    sms_enabled: bool
    mms_enabled: bool
    webhook_override: str | None  # the override URL when enabled, else None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Number:
        override = _dict(data, "webhookOverride")
        return cls(
            number_id=_text(data, "numberId"),
            phone_number=_text(data, "phoneNumber"),
            status=_text(data, "status"),
            sms_enabled=bool(data.get("smsEnabled")),
            mms_enabled=bool(data.get("mmsEnabled")),
            webhook_override=override.get("url") if override.get("enabled") else None,
            raw=data,
        )

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"

    def to_dict(self) -> dict[str, Any]:
        return {
            "numberId": self.number_id,
            "phoneNumber": self.phone_number,
            "status": self.status,
            "smsEnabled": self.raw.get("smsEnabled"),
            "mmsEnabled": self.raw.get("mmsEnabled"),
            "webhookOverride": self.webhook_override,
        }


@dataclass(frozen=True)
class NumberInventory:
    """Every number across all pages."""

    numbers: tuple[Number, ...]
    pages: int
    request_ids: tuple[str, ...] = ()

    def by_id(self) -> dict[str | None, Number]:
        return {n.number_id: n for n in self.numbers}

    @property
    def active_count(self) -> int:
        return sum(1 for n in self.numbers if n.active)
