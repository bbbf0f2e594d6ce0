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

import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ROUTES", "FaultProfile", "Faults", "RouteFaults", "WebhookFaults"]

ROUTES = ("token", "whoami", "numbers", "send")


def _rate(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _nonneg(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


@dataclass(frozen=True)
class RouteFaults:
    """Faults for one API route (``token``, ``whoami``, ``numbers``, ``send``)."""

    rate_429: float = 0.0
    retry_after: int = 1
    rate_5xx: float = 0.0
    status_5xx: int = 503
    latency_ms: float = 0.0
    reset_rate: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> RouteFaults:
        _only(data, set(cls.__dataclass_fields__), where)
        status = int(data.get("status_5xx", 503))
        if status not in (500, 502, 503, 504):
            raise ValueError(f"{where}.status_5xx must be 500, 502, 503 or 504")
        return cls(
            rate_429=_rate(data.get("rate_429", 0.0), f"{where}.rate_429"),
            retry_after=int(_nonneg(data.get("retry_after", 1), f"{where}.retry_after")),
            rate_5xx=_rate(data.get("rate_5xx", 0.0), f"{where}.rate_5xx"),
            status_5xx=status,
            latency_ms=_nonneg(data.get("latency_ms", 0.0), f"{where}.latency_ms"),
            reset_rate=_rate(data.get("reset_rate", 0.0), f"{where}.reset_rate"),
        )


@dataclass(frozen=True)
class WebhookFaults:
    """Faults in webhook delivery."""

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder: bool = False
    delay_seconds: float = 0.0
    bad_signature_rate: float = 0.0
    stale_timestamp_rate: float = 0.0
    outages: tuple[tuple[float, float], ...] = ()  # (start offset s, length s) from apply time

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookFaults:
        _only(data, set(cls.__dataclass_fields__), "webhooks")
        outages = []
        for i, window in enumerate(data.get("outages") or []):
            if not isinstance(window, dict):
                raise ValueError(f"webhooks.outages[{i}] must be {{start, seconds}}")
            _only(window, {"start", "seconds"}, f"webhooks.outages[{i}]")
            outages.append(
                (
                    _nonneg(window.get("start", 0), f"webhooks.outages[{i}].start"),
                    _nonneg(window.get("seconds", 0), f"webhooks.outages[{i}].seconds"),
                )
            )
        return cls(
            drop_rate=_rate(data.get("drop_rate", 0.0), "webhooks.drop_rate"),
            duplicate_rate=_rate(data.get("duplicate_rate", 0.0), "webhooks.duplicate_rate"),
            reorder=bool(data.get("reorder", False)),
            delay_seconds=_nonneg(data.get("delay_seconds", 0.0), "webhooks.delay_seconds"),
            bad_signature_rate=_rate(
                data.get("bad_signature_rate", 0.0), "webhooks.bad_signature_rate"
            ),
            stale_timestamp_rate=_rate(
                data.get("stale_timestamp_rate", 0.0), "webhooks.stale_timestamp_rate"
            ),
            outages=tuple(outages),
        )


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


class Faults:
    """The active profile, its seeded dice, and when it was applied (for outage windows)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.apply(FaultProfile())

    def apply(self, profile: FaultProfile) -> None:
        with self._lock:
            self.profile = profile
            self.rng = random.Random(profile.seed)
            self.applied_at = time.time()

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self.rng.random() < rate

    def route(self, name: str) -> RouteFaults | None:
        return self.profile.api.get(name)

    def in_outage(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        elapsed = now - self.applied_at
        return any(
            start <= elapsed < start + length for start, length in self.profile.webhooks.outages
        )
