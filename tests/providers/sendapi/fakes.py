"""Test helpers: a fake clock whose sleep advances it, and a mock SendAPI over httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from runbook_lib.providers.sendapi.client import RetrySettings, SendApiClient
from runbook_lib.security.secrets import Secret

TEST_KEY = "sk_test_unit_0123456789abcdef"
LIVE_KEY = "sk_live_unit_0123456789abcdef"
START = 1_900_000_000.0


class FakeTime:
    """``clock()`` and ``sleep()`` for the client: sleeping moves the clock, nothing waits."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def reply(
    status: int = 200, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


def error_body(
    status_type: str,
    code: Any,
    message: str = "no",
    request_id: str | None = "req_body1",
    **extra: Any,
) -> dict[str, Any]:
    """The contract's superset error envelope."""
    error = {
        "type": status_type,
        "code": code,
        "message": message,
        "param": None,
        "request_id": request_id,
        **extra,
    }
    return {"success": False, "error": error}


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    time_: FakeTime | None = None,
    key: str = TEST_KEY,
    max_attempts: int = 5,
    **kwargs: Any,
) -> tuple[SendApiClient, FakeTime]:
    fake = time_ or FakeTime()
    client = SendApiClient(
        api_key=Secret(key, label="SENDAPI_API_KEY"),
        base_url="https://sendapi.test/v1",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        retry=RetrySettings(max_attempts=max_attempts),
        **kwargs,
    )
    return client, fake
