"""Fault injection for the sandbox: API faults per route and webhook faults, seeded.

The machinery is :mod:`runbook_lib.core.sandbox_kit`'s; Red Cloud names its routes here.

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

from ....core import sandbox_kit
from ....core.sandbox_kit import Faults, RouteFaults, WebhookFaults

__all__ = ["ROUTES", "FaultProfile", "Faults", "RouteFaults", "WebhookFaults"]

ROUTES = ("token", "whoami", "numbers", "send")


class FaultProfile(sandbox_kit.FaultProfile):
    """Every fault at once; the empty profile is a well-behaved provider."""

    ROUTES = ROUTES
