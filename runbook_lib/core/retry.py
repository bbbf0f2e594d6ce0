"""Which failures are retried, and how long to wait: the contract's rules in one place.

A client retries only timeouts, connection errors, ``409 idempotency_request_in_progress``,
429, 500, 502, 503 and 504 — always with the same ``Idempotency-Key`` — and never 400/403/404/422.
``Retry-After`` is honoured; otherwise capped exponential backoff with jitter.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

import httpx

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "is_retryable_response", "parse_retry_after"]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IN_PROGRESS_CODE = "idempotency_request_in_progress"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def is_retryable_response(response: httpx.Response, problem_code: str | None) -> bool:
    """True for the statuses the contract says a client may retry with the same key."""
    if response.status_code in RETRYABLE_STATUSES:
        return True
    return response.status_code == 409 and problem_code == IN_PROGRESS_CODE


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; ``Retry-After`` wins when the server sends it."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): equal jitter under the cap."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return cap / 2 + self.rng.uniform(0, cap / 2)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self.backoff(attempt)
