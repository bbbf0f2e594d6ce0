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

from dataclasses import asdict, dataclass, field
from typing import Any

from ....core.sandbox_kit import Faults, RouteFaults, WebhookFaults
from ....core.sandbox_kit import only_keys as _only

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
class SendApiFaultProfile:
    """Every fault at once; the empty profile is a well-behaved SendAPI."""

    api: dict[str, RouteFaults] = field(default_factory=dict)
    webhooks: WebhookFaults = WebhookFaults()
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SendApiFaultProfile:
        """Validate a profile; raises ``ValueError`` naming the bad key and what is allowed."""
        data = data or {}
        if not isinstance(data, dict):
            raise ValueError("a fault profile is a mapping with api, webhooks and seed")
        _only(data, {"api", "webhooks", "seed"}, "fault profile")
        api = {}
        for route, faults in (data.get("api") or {}).items():
            if route not in ROUTES:
                raise ValueError(f"api.{route}: unknown route; use one of {', '.join(ROUTES)}")
            api[route] = RouteFaults.from_dict(faults or {}, f"api.{route}")
        return cls(
            api=api,
            webhooks=WebhookFaults.from_dict(data.get("webhooks") or {}),
            seed=int(data.get("seed", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        hooks = asdict(self.webhooks)
        hooks["outages"] = [{"start": s, "seconds": n} for s, n in self.webhooks.outages]
        return {
            "api": {k: asdict(v) for k, v in self.api.items()},
            "webhooks": hooks,
            "seed": self.seed,
        }


def new_faults() -> Faults:
    """The seeded dice, starting from the well-behaved profile."""
    return Faults(SendApiFaultProfile())
