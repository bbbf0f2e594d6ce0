"""Fault injection for the SendAPI sandbox: the shared per-route and webhook faults.

The fault *kinds* (429/5xx/latency/reset per route; drop, duplicate, reorder, delay, bad
signature, stale timestamp and outage windows for webhooks) and their seeded dice are
``core.sandbox_kit``'s, shared with every provider's sandbox; only the route names differ:

    api:
      sms_send: {rate_429: 0.2, retry_after: 1, rate_5xx: 0.1, status_5xx: 503, latency_ms: 50}
    webhooks: {drop_rate: 0.1, duplicate_rate: 0.2, reorder: true, outages: [{start: 0, seconds: 5}]}
    seed: 7
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ....core.sandbox_kit import FaultProfile, Faults, RouteFaults, WebhookFaults

__all__ = [
    "Faults",
    "ROUTES",
    "RouteFaults",
    "SendApiFaultProfile",
    "WebhookFaults",
    "new_faults",
]

ROUTES = (
    "usage", "sender_ids", "sms_send", "sessions", "contacts", "whatsapp_send", "domains",
    "email_send", "webhooks", "status",
)  # fmt: skip


@dataclass(frozen=True)
class SendApiFaultProfile(FaultProfile):
    """Every fault at once; the empty profile is a well-behaved SendAPI (shape and validation are
    the kit's; only the route names are SendAPI's)."""

    ROUTES: ClassVar[tuple[str, ...]] = ROUTES


def new_faults() -> Faults:
    """The seeded dice, starting from the well-behaved profile."""
    return Faults(SendApiFaultProfile())
