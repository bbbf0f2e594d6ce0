"""Fault profiles for the Onyx sandbox: the shared profile, with Onyx's routes.

The shape, validation, seeded dice and webhook faults are :mod:`runbook_lib.core.sandbox_kit`'s;
only the route names differ:

    api:
      messaging: {rate_429: 0.2, retry_after: 1, rate_5xx: 0.1, status_5xx: 503, latency_ms: 50}
      orders:    {rate_5xx: 1.0}
    webhooks: {drop_rate: 0.1, duplicate_rate: 0.2, outages: [{start: 0, seconds: 5}]}
    seed: 7
"""

from __future__ import annotations

from typing import Any

from ....core.sandbox_kit import FaultProfile

__all__ = ["ROUTES", "OnyxFaultProfile", "onyx_fault_profile"]

ROUTES = ("me", "catalogue", "orders", "esims", "messaging", "webhooks", "events")


class OnyxFaultProfile(FaultProfile):
    """A fault profile whose ``api`` keys are Onyx's routes."""

    ROUTES = ROUTES


def onyx_fault_profile(data: dict[str, Any] | FaultProfile | None) -> FaultProfile:
    """Validate a profile against Onyx's routes; raises ``ValueError`` naming the bad key."""
    if isinstance(data, FaultProfile):
        data = data.to_dict()
    return OnyxFaultProfile.from_dict(data)
