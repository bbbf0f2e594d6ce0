"""Client-side rate limiting from SendAPI's ``X-RateLimit-*`` headers: slow down before the limit.

Every response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``
(unix seconds). The limiter records them as a :class:`RateLimitState` and, before each request:

- waits out a ``Retry-After`` the server gave (429);
- when nothing remains, waits until the window resets;
- when what remains is low (``remaining <= low_water * limit``), spreads the remaining requests
  evenly over the time left to the reset, instead of spending them and then meeting a 429.

Each request issued counts against the remembered ``remaining`` until the next response says
otherwise, so a burst between two responses is throttled too. The clock is injectable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["RateLimitState", "RateLimiter"]

# A reset below this is a delta in seconds, not a unix time (some servers send the delta).
_UNIX_TIME_FLOOR = 1_000_000_000


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


@dataclass(frozen=True)
class RateLimitState:
    """The last rate-limit headers seen, and when they were seen (unix seconds)."""

    limit: int | None
    remaining: int | None
    reset_at: float | None
    observed_at: float

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, now: float) -> RateLimitState | None:
        """None when the response carries no rate-limit header at all."""
        limit = _header_int(headers, "x-ratelimit-limit")
        remaining = _header_int(headers, "x-ratelimit-remaining")
        reset = _header_int(headers, "x-ratelimit-reset")
        if limit is None and remaining is None and reset is None:
            return None
        reset_at = (
            None if reset is None else float(reset if reset >= _UNIX_TIME_FLOOR else now + reset)
        )
        return cls(limit=limit, remaining=remaining, reset_at=reset_at, observed_at=now)

    @property
    def headroom(self) -> float | None:
        """Share of the window's requests still available (0..1), when the limit is known."""
        if self.limit is None or self.remaining is None or self.limit <= 0:
            return None
        return max(0.0, min(1.0, self.remaining / self.limit))

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "remaining": self.remaining, "resetAt": self.reset_at,
                "observedAt": self.observed_at, "headroom": self.headroom}  # fmt: skip


class RateLimiter:
    """Paces requests from the headers of the previous responses.

    Args:
        low_water: the share of the limit below which requests are spread to the reset.
        clock: unix seconds (the reset header is unix time).
    """

    def __init__(self, *, low_water: float = 0.2, clock: Callable[[], float] = time.time) -> None:
        if not 0 <= low_water <= 1:
            raise ValueError(f"low_water must be from 0 to 1, got {low_water!r}")
        self.low_water = low_water
        self._clock = clock
        self._lock = threading.Lock()
        self._state: RateLimitState | None = None
        self._blocked_until = 0.0
        self._last_request_at: float | None = None

    @property
    def state(self) -> RateLimitState | None:
        """The last headers seen, with ``remaining`` lowered by the requests issued since."""
        with self._lock:
            return self._state

    def observe(self, headers: Mapping[str, str]) -> RateLimitState | None:
        """Record a response's rate-limit headers (every response, errors included)."""
        seen = RateLimitState.from_headers(headers, now=self._clock())
        if seen is not None:
            with self._lock:
                self._state = seen
        return seen

    def block_for(self, seconds: float) -> None:
        """Honour a ``Retry-After``: no request before ``seconds`` from now."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    def delay(self) -> float:
        """Seconds to wait before the next request may go."""
        with self._lock:
            return self._delay(self._clock())

    def _delay(self, now: float) -> float:
        wait = max(0.0, self._blocked_until - now)
        state = self._state
        if state is None or state.remaining is None or state.reset_at is None:
            return wait
        window = state.reset_at - now
        if window <= 0:
            return wait  # the window has reset: full allowance again
        if state.remaining <= 0:
            return max(wait, window)
        if state.limit and state.remaining <= self.low_water * state.limit:
            spacing = window / state.remaining
            since = now - (
                self._last_request_at if self._last_request_at is not None else now - spacing
            )
            return max(wait, spacing - since)
        return wait

    def acquire(self, sleep: Callable[[float], None]) -> float:
        """Wait as :meth:`delay` says, then count one request against the window; return the wait."""
        waited = 0.0
        for rounds in range(8):  # bounded: a clock that does not move cannot hang the client
            with self._lock:
                now = self._clock()
                pause = self._delay(now)
                if pause <= 0 or rounds == 7:
                    self._last_request_at = now
                    state = self._state
                    if state is not None and state.remaining is not None and state.remaining > 0:
                        self._state = replace(state, remaining=state.remaining - 1)
                    return waited
            sleep(pause)
            waited += pause
        return waited  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class SessionCaps:
    """The contract's per-WhatsApp-session caps: 30 messages a minute, 1,000 a day, 1–3 s apart
    (random spacing, as a person would type)."""

    per_minute: int = 30
    per_day: int = 1000
    min_spacing: float = 1.0
    max_spacing: float = 3.0

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.per_day < 1 or not 0 <= self.min_spacing <= self.max_spacing:
            raise ValueError(
                "session caps need per_minute ≥ 1, per_day ≥ 1 and 0 ≤ min_spacing ≤ max_spacing"
            )


class SessionPacer:
    """Keeps each WhatsApp session inside :class:`SessionCaps` *before* the server's 429
    ``sending_limited``: waits out the spacing and the minute's cap; refuses past the day's cap
    (``SendPolicyError``: waiting a day is not a send policy)."""

    def __init__(
        self,
        caps: SessionCaps | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] | None = None,
    ) -> None:
        import random

        self.caps = caps or SessionCaps()
        self._clock, self._sleep = clock, sleep
        self._jitter = jitter or random.uniform
        self._sent: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self.waited: list[float] = []  # each wait, in seconds (the report can show the pacing)

    def before_send(self, session_id: str) -> float:
        """Wait until ``session_id`` may send, record the send; returns the seconds waited.

        Raises:
            SendPolicyError: the session sent ``per_day`` messages in the last 24 hours.
        """
        from ...core.errors import SendPolicyError

        caps = self.caps
        with self._lock:
            now = self._clock()
            sent = [t for t in self._sent.get(session_id, []) if now - t < 86_400]
            if len(sent) >= caps.per_day:
                raise SendPolicyError(
                    f"WhatsApp session {session_id} sent {len(sent)} messages in 24 h: the "
                    f"per-session cap is {caps.per_day} a day.",
                    remedy="spread the traffic over more sessions or wait; SendAPI answers 429 "
                    "sending_limited past the cap.",
                )
            wait = 0.0
            if sent:
                wait = max(0.0, sent[-1] + self._jitter(caps.min_spacing, caps.max_spacing) - now)
            minute = [t for t in sent if now - t < 60]
            if len(minute) >= caps.per_minute:
                wait = max(wait, minute[-caps.per_minute] + 60 - now)
            if wait > 0:
                self._sleep(wait)
                self.waited.append(wait)
            sent.append(self._clock())
            self._sent[session_id] = sent
            return wait
