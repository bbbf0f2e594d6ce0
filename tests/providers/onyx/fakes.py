"""A scripted Onyx for httpx.MockTransport: answers per (method, path), records every request."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from runbook_lib.core.retry import RetryPolicy
from runbook_lib.providers.onyx import OnyxClient
from runbook_lib.security.secrets import Secret

TEST_KEY = "onyx_sk_test_unit0123456789"
LIVE_KEY = "onyx_sk_live_unit0123456789"

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


def problem(
    status: int,
    code: str,
    *,
    reason: str | None = None,
    rid: str = "req_p",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "type": f"https://onyxmobile.net/problems/{code}",
        "title": code,
        "status": status,
        "detail": f"{code} detail",
        "code": code,
        "requestId": rid,
    }
    if reason:
        body["reasonCode"] = reason
    return httpx.Response(
        status,
        content=json.dumps(body),
        headers={
            "content-type": "application/problem+json",
            "x-request-id": rid,
            **(headers or {}),
        },
    )


def ok(
    data: dict[str, Any], status: int = 200, rid: str = "req_ok", **headers: str
) -> httpx.Response:
    return httpx.Response(status, json={"data": data}, headers={"x-request-id": rid, **headers})


class FakeOnyx:
    """Answers in order for each route (the last answer repeats); records every request."""

    def __init__(self, routes: dict[tuple[str, str], list[Answer]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        answers = self.routes.get(key)
        if not answers:
            return problem(404, "not_found")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]


def client_for(
    fake: FakeOnyx,
    *,
    key: str = TEST_KEY,
    environment: str = "sandbox",
    sleeps: list[float] | None = None,
    max_attempts: int = 4,
) -> OnyxClient:
    recorded = sleeps if sleeps is not None else []
    return OnyxClient(
        base_url="https://api-sandbox.onyx.test",
        credential=Secret(key, label="ONYX_CREDENTIAL"),
        environment=environment,
        transport=httpx.MockTransport(fake),
        retry=RetryPolicy(max_attempts=max_attempts, base_delay=0.5, max_delay=4.0),
        sleep=recorded.append,
        clock=lambda: 1_700_000_000.0,
    )
