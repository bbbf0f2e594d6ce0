"""The provider client's retry policy and error context, against httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest

from runbook_lib import ProviderError, ProviderUnavailableError, RetryPolicy
from runbook_lib.core.retry import parse_retry_after
from tests.providers.redcloud.test_auth import FakeProvider, make_client


class Scripted(FakeProvider):
    """Answers the send route from a script of (status, headers, body) tuples."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.keys: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if (
            request.url.path != "/api/core/messages/send"
            and request.url.path != "/api/core/numbers"
        ):
            return super().__call__(request)
        self.keys.append(request.headers.get("idempotency-key"))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers, body = item
        return httpx.Response(
            status, json=body, headers={"X-Request-Id": f"req_{len(self.keys)}", **headers}
        )


def problem(status: int, code: str, retryable: bool = False) -> dict:
    return {
        "type": "about:blank",
        "title": code,
        "status": status,
        "detail": f"{code} detail",
        "code": code,
        "requestId": f"req_body_{code}",
        "retryable": retryable,
    }


ACCEPTED = (202, {}, {"messageId": "msg_1", "status": "QUEUED", "externalReference": "r"})


def client_with(script, sleeps, **retry):
    provider = Scripted(script)
    client = make_client(provider)
    client.retry = RetryPolicy(**{"max_attempts": 4, "base_delay": 0.5, "max_delay": 4, **retry})
    client._sleep = sleeps.append
    return client, provider


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_with_the_same_key(status):
    sleeps: list[float] = []
    client, provider = client_with([(status, {}, problem(status, "x", True)), ACCEPTED], sleeps)
    result = client.send_message({"to": "+1"}, idempotency_key="key-1")
    assert result.data["messageId"] == "msg_1"
    assert provider.keys == ["key-1", "key-1"]
    assert result.attempts == 2


def test_409_in_progress_is_retried_but_other_409s_are_not():
    sleeps: list[float] = []
    client, provider = client_with(
        [(409, {}, problem(409, "idempotency_request_in_progress", True)), ACCEPTED], sleeps
    )
    assert client.send_message({}, idempotency_key="k").status == 202
    client, provider = client_with([(409, {}, problem(409, "conflict"))], sleeps)
    with pytest.raises(ProviderError):
        client.send_message({}, idempotency_key="k")
    assert len(provider.keys) == 1


@pytest.mark.parametrize(
    "status,code",
    [(400, "invalid_request"), (403, "forbidden"), (404, "not_found"), (422, "invalid_send_from")],
)
def test_final_errors_are_not_retried_and_carry_request_id_first(status, code):
    client, provider = client_with([(status, {}, problem(status, code))], [])
    with pytest.raises(ProviderError) as info:
        client.send_message({}, idempotency_key="k")
    assert len(provider.keys) == 1
    assert info.value.status == status and info.value.code == code
    assert str(info.value).startswith(f"[req_body_{code}] {status} {code}")


def test_retry_after_is_honoured():
    sleeps: list[float] = []
    client, _ = client_with(
        [(429, {"Retry-After": "7"}, problem(429, "rate_limited", True)), ACCEPTED], sleeps
    )
    client.send_message({}, idempotency_key="k")
    assert sleeps == [7.0]


def test_backoff_is_capped_exponential_with_jitter():
    policy = RetryPolicy(base_delay=1, max_delay=4)
    for attempt, cap in [(1, 1), (2, 2), (3, 4), (4, 4), (8, 4)]:
        for _ in range(50):
            assert cap / 2 <= policy.backoff(attempt) <= cap


def test_gives_up_after_max_attempts_and_says_so():
    sleeps: list[float] = []
    script = [(503, {}, problem(503, "unavailable", True))] * 3
    client, provider = client_with(script, sleeps, max_attempts=3)
    with pytest.raises(ProviderError) as info:
        client.send_message({}, idempotency_key="k")
    assert len(provider.keys) == 3 and len(sleeps) == 2
    assert "gave up after 3 attempt(s)" in str(info.value)


def test_connection_errors_are_retried_then_reported():
    req = httpx.Request("POST", "https://api.test/api/core/messages/send")
    script = [
        httpx.ConnectError("refused", request=req),
        httpx.ReadTimeout("slow", request=req),
        ACCEPTED,
    ]
    client, provider = client_with(script, [])
    assert client.send_message({}, idempotency_key="k").status == 202
    assert provider.keys == ["k", "k", "k"]
    client, _ = client_with([httpx.ConnectError("refused", request=req)] * 4, [])
    with pytest.raises(ProviderUnavailableError):
        client.send_message({}, idempotency_key="k")


def test_numbers_follow_next_cursor():
    pages = [
        (200, {}, {"data": [{"numberId": "a"}], "nextCursor": "c1", "extra": 1}),
        (200, {}, {"data": [{"numberId": "b"}], "nextCursor": "c2"}),
        (200, {}, {"data": [], "nextCursor": None}),
    ]
    client, _ = client_with(pages, [])
    listing = client.list_numbers()
    assert [n["numberId"] for n in listing.numbers] == ["a", "b"]
    assert listing.pages == 3 and listing.request_ids == ("req_1", "req_2", "req_3")


def test_every_response_request_id_is_logged():
    client, _ = client_with([(503, {}, problem(503, "x", True)), ACCEPTED], [])
    client.send_message({}, idempotency_key="k")
    sends = [r for r in client.request_log if r.path.endswith("/send")]
    assert [(r.status, r.request_id, r.attempt) for r in sends] == [
        (503, "req_1", 1),
        (202, "req_2", 2),
    ]


def test_parse_retry_after_accepts_seconds_and_dates():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
