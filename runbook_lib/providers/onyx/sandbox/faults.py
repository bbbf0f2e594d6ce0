"""Fault profiles for the Onyx sandbox: the Red Cloud sandbox's profile, with Onyx's routes.

The shape, validation, seeded dice and webhook faults are :mod:`runbook_lib.sandbox.faults`'
own; only the route names differ:

    api:
      messaging: {rate_429: 0.2, retry_after: 1, rate_5xx: 0.1, status_5xx: 503, latency_ms: 50}
      orders:    {rate_5xx: 1.0}
    webhooks: {drop_rate: 0.1, duplicate_rate: 0.2, outages: [{start: 0, seconds: 5}]}
    seed: 7
"""

from __future__ import annotations

from typing import Any

from ....sandbox.faults import FaultProfile, RouteFaults, WebhookFaults

__all__ = ["ROUTES", "onyx_fault_profile"]

ROUTES = ("me", "catalogue", "orders", "esims", "messaging", "webhooks", "events")


def onyx_fault_profile(data: dict[str, Any] | FaultProfile | None) -> FaultProfile:
    """Validate a profile against Onyx's routes; raises ``ValueError`` naming the bad key."""
    if isinstance(data, FaultProfile):
        data = data.to_dict()
    data = data or {}
    if not isinstance(data, dict):
        raise ValueError("a fault profile is a mapping with api, webhooks and seed")
    unknown = set(data) - {"api", "webhooks", "seed"}
    if unknown:
        raise ValueError(
            f"fault profile: unknown key(s) {', '.join(sorted(unknown))}; allowed: api, seed, webhooks"
        )
    api = {}
    for route, faults in (data.get("api") or {}).items():
        if route not in ROUTES:
            raise ValueError(f"api.{route}: unknown route; use one of {', '.join(ROUTES)}")
        api[route] = RouteFaults.from_dict(faults or {}, f"api.{route}")
    return FaultProfile(
        api=api,
        webhooks=WebhookFaults.from_dict(data.get("webhooks") or {}),
        seed=int(data.get("seed", 0)),
    )
