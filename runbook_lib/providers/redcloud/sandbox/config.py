"""Sandbox settings, seeded numbers, and the destinations that drive each lifecycle outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_WEBHOOK_SECRET",
    "DESTINATIONS",
    "INVALID_DESTINATION",
    "SEEDED_NUMBERS",
    "Outcome",
    "SandboxConfig",
]

# Rehearsal credentials, documented in the README: they protect nothing.
DEFAULT_CLIENT_SECRET = "sbx-secret-rehearsal"
DEFAULT_WEBHOOK_SECRET = "whsec_c2FuZGJveC1yZWhlYXJzYWwtc2lnbmluZy1rZXktMDE="

# The contract's retry schedule for unacknowledged webhooks.
CONTRACT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How one sandbox behaves. Frozen: build a new one to change it."""

    client_id: str = "sbx_client_rehearsal"
    client_secret: str = DEFAULT_CLIENT_SECRET
    client_name: str = "Acme Notifications (sandbox)"
    api_client_id: str = "cli_sbx_rehearsal"
    account_id: str = "acc_sbx_rehearsal"
    environment: str = "sandbox"
    webhook_url: str | None = None
    webhook_override_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    token_ttl: int = 3600
    lifecycle_delay: float = 1.0
    webhook_retry_schedule: tuple[float, ...] = CONTRACT_RETRY_SCHEDULE
    webhook_timeout: float = 10.0
    send_processing_delay: float = 0.0
    numbers_page_size: int = 2
    idempotency_window: float = 24 * 3600.0
    seed: int = 0


@dataclass(frozen=True)
class Outcome:
    """What happens to a message sent to one destination."""

    description: str
    steps: tuple[str, ...]
    duplicate: bool = False
    reverse: bool = False


_DELIVERED = ("message.queued", "message.sent", "message.delivery")

DESTINATIONS: dict[str, Outcome] = {
    "+15005550001": Outcome("delivered: queued → sent → delivery", _DELIVERED),
    "+15005550002": Outcome(
        "failed with a reason: queued → sent → failed (carrier_rejected)",
        ("message.queued", "message.sent", "message.failed"),
    ),
    "+15005550003": Outcome("stuck in queued: only message.queued", ("message.queued",)),
    "+15005550004": Outcome(
        "sent, never delivered: queued → sent", ("message.queued", "message.sent")
    ),
    "+15005550005": Outcome(
        "duplicate webhooks: delivered path, every event delivered twice",
        _DELIVERED,
        duplicate=True,
    ),
    "+15005550006": Outcome(
        "out of order: delivered path, dispatched delivery, sent, queued", _DELIVERED, reverse=True
    ),
}
DEFAULT_OUTCOME = DESTINATIONS["+15005550001"]
INVALID_DESTINATION = "+15005550000"
FAILURE = {"code": "carrier_rejected", "reason": "Destination carrier rejected the message"}

SEEDED_NUMBERS: tuple[dict[str, Any], ...] = (
    {"numberId": "num_sbx_primary", "phoneNumber": "+12025550101", "status": "ACTIVE",
     "smsEnabled": True, "mmsEnabled": True, "override": False},
    {"numberId": "num_sbx_sms_only", "phoneNumber": "+12025550102", "status": "ACTIVE",
     "smsEnabled": True, "mmsEnabled": False, "override": False},
    {"numberId": "num_sbx_suspended", "phoneNumber": "+12025550103", "status": "SUSPENDED",
     "smsEnabled": True, "mmsEnabled": False, "override": False},
    {"numberId": "num_sbx_override", "phoneNumber": "+12025550104", "status": "ACTIVE",
     "smsEnabled": True, "mmsEnabled": False, "override": True},
)  # fmt: skip
