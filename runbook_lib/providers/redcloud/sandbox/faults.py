"""Fault injection for the sandbox: API faults per route and webhook faults, seeded.

A profile is plain data (from YAML, JSON or Python). The same profile and seed give the same
sequence of faults, so a drill or a rehearsal can be repeated exactly.

    api:
      send:   {rate_429: 0.2, retry_after: 1, rate_5xx: 0.1, status_5xx: 503, latency_ms: 50, reset_rate: 0.05}
      token:  {rate_5xx: 1.0}
    webhooks: {drop_rate: 0.1, duplicate_rate: 0.2, reorder: true, delay_seconds: 2,
               bad_signature_rate: 0.1, stale_timestamp_rate: 0.1,
               outages: [{start: 0, seconds: 5}]}
    seed: 7
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ....core import sandbox_kit
from ....core.sandbox_kit import RouteFaults, WebhookFaults
from ....core.sandbox_kit import only_keys as _only

__all__ = ["ROUTES", "FaultProfile", "Faults", "RouteFaults", "WebhookFaults"]

ROUTES = ("token", "whoami", "numbers", "send")


@dataclass(frozen=True)
class FaultProfile:
    """Every fault at once; the empty profile is a well-behaved provider."""

    api: dict[str, RouteFaults] = field(default_factory=dict)
    webhooks: WebhookFaults = WebhookFaults()
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaultProfile:
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


class Faults(sandbox_kit.Faults):
    """The active profile, its seeded dice, and when it was applied; starts well-behaved."""

    def __init__(self) -> None:
        super().__init__(FaultProfile())
