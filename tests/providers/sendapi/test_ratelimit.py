"""RateLimiter: pacing from X-RateLimit-* headers before the limit, on a fake clock."""

from __future__ import annotations

import pytest

from runbook_lib.providers.sendapi.ratelimit import RateLimiter, RateLimitState

from .fakes import START, FakeTime


def test_low_remaining_spreads_requests_over_the_time_to_reset():
    fake = FakeTime()
    limiter = RateLimiter(low_water=0.5, clock=fake.clock)
    limiter.observe({"x-ratelimit-limit": "10", "x-ratelimit-remaining": "4",
                     "x-ratelimit-reset": str(int(fake.now) + 8)})  # fmt: skip
    waits = [limiter.acquire(fake.sleep) for _ in range(4)]
    # 4 left for 8 s: the first goes at once, the rest evenly spaced; all fit in the window.
    assert waits == pytest.approx([0, 8 / 3, 8 / 3, 8 / 3])
    assert fake.now - START == pytest.approx(8)


def test_a_reset_header_given_as_seconds_from_now_is_read_as_such():
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock)
    state = limiter.observe(
        {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}
    )
    assert state.reset_at == fake.now + 30
    assert limiter.acquire(fake.sleep) == pytest.approx(30)


def test_headroom_is_the_share_left():
    state = RateLimitState.from_headers(
        {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "15"}, now=START
    )
    assert state.headroom == 0.25 and state.reset_at is None
    assert RateLimitState.from_headers({}, now=START) is None


def test_retry_after_blocks_every_request_until_it_has_passed():
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock)
    limiter.block_for(5)
    assert limiter.acquire(fake.sleep) == pytest.approx(5) and limiter.delay() == 0
