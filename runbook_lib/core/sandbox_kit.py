"""What every provider's contract sandbox shares: seeded fault kinds and an injected connection reset.

A provider's sandbox names its own routes and builds its own profile type (``api``: route →
:class:`RouteFaults`, ``webhooks``: :class:`WebhookFaults`, ``seed``); the fault kinds, their
validation, the seeded dice (:class:`Faults`) and :class:`ConnectionReset` are the same for all.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = [
    "ConnectionReset",
    "Faults",
    "InjectedConnectionReset",
    "RouteFaults",
    "WebhookFaults",
    "only_keys",
]


def _rate(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _nonneg(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def only_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


@dataclass(frozen=True)
class RouteFaults:
    """Faults for one API route (the route names are the provider sandbox's)."""

    rate_429: float = 0.0
    retry_after: int = 1
    rate_5xx: float = 0.0
    status_5xx: int = 503
    latency_ms: float = 0.0
    reset_rate: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> RouteFaults:
        only_keys(data, set(cls.__dataclass_fields__), where)
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
        only_keys(data, set(cls.__dataclass_fields__), "webhooks")
        outages = []
        for i, window in enumerate(data.get("outages") or []):
            if not isinstance(window, dict):
                raise ValueError(f"webhooks.outages[{i}] must be {{start, seconds}}")
            only_keys(window, {"start", "seconds"}, f"webhooks.outages[{i}]")
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


class Faults:
    """The active profile, its seeded dice, and when it was applied (for outage windows)."""

    def __init__(self, profile: Any) -> None:
        self._lock = threading.Lock()
        self.apply(profile)

    def apply(self, profile: Any) -> None:
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


class InjectedConnectionReset(Exception):
    """Raised after the response has started, so the server drops the connection mid-answer."""


class _HideInjectedResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedConnectionReset)


logging.getLogger("uvicorn.error").addFilter(_HideInjectedResets())


class ConnectionReset(Response):
    """A response that starts, then breaks the connection: the client sees a transport error."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        raise InjectedConnectionReset("connection reset (injected)")
