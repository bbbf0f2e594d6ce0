"""The client credentials flow against httpx.MockTransport: cache, early refresh, one refetch."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from runbook_lib import (
    ClientCredentialsAuth,
    InvalidClientError,
    RedCloudClient,
    RetryPolicy,
    Secret,
    TokenEndpointError,
    TokenRejectedError,
)

SECRET = "canary-client-secret-3f9a"
TOKEN_URL = "https://api.test/oauth/token"


class FakeProvider:
    """A token endpoint and one API route whose behaviour the test steers."""

    def __init__(self, *, expires_in: int = 3600, reject_tokens: int = 0, token_status: int = 200):
        self.expires_in = expires_in
        self.reject_tokens = reject_tokens  # how many API calls answer 401 invalid_token
        self.token_status = token_status
        self.token_calls = 0
        self.api_calls = 0
        self.seen_auth: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_calls += 1
            basic = request.headers.get("authorization", "")
            creds = base64.b64decode(basic.removeprefix("Basic ")).decode()
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "server_error"})
            if creds != f"cli_test:{SECRET}":
                return httpx.Response(
                    401, json={"error": "invalid_client", "error_description": "bad"}
                )
            return httpx.Response(
                200,
                json={
                    "access_token": f"tok-{self.token_calls}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "scope": "messages:send numbers:read",
                },
                headers={"X-Request-Id": f"req_tok{self.token_calls}"},
            )
        self.api_calls += 1
        self.seen_auth.append(request.headers.get("authorization", ""))
        if self.reject_tokens > 0:
            self.reject_tokens -= 1
            return httpx.Response(
                401,
                json={
                    "code": "invalid_token",
                    "status": 401,
                    "requestId": f"req_401_{self.api_calls}",
                },
                headers={
                    "WWW-Authenticate": 'Bearer error="invalid_token"',
                    "X-Request-Id": f"req_401_{self.api_calls}",
                },
            )
        return httpx.Response(
            200, json={"clientId": "cli_x"}, headers={"X-Request-Id": f"req_ok{self.api_calls}"}
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(
    provider: FakeProvider, *, secret: str = SECRET, clock: Clock | None = None
) -> RedCloudClient:
    auth = ClientCredentialsAuth(
        token_url=TOKEN_URL,
        client_id="cli_test",
        client_secret=Secret(secret),
        clock=clock or Clock(),
    )
    return RedCloudClient(
        base_url="https://api.test",
        auth=auth,
        transport=httpx.MockTransport(provider),
        retry=RetryPolicy(max_attempts=3, base_delay=0),
        sleep=lambda s: None,
    )


def test_token_is_fetched_once_and_cached():
    provider = FakeProvider()
    client = make_client(provider)
    client.whoami()
    client.whoami()
    assert provider.token_calls == 1
    assert provider.seen_auth == ["Bearer tok-1", "Bearer tok-1"]


def test_token_refreshed_before_expiry():
    provider = FakeProvider(expires_in=300)
    clock = Clock()
    client = make_client(provider, clock=clock)
    client.whoami()
    clock.now += 300 - 59  # inside the 60 s refresh margin
    client.whoami()
    assert provider.token_calls == 2
    assert provider.seen_auth[-1] == "Bearer tok-2"


def test_revoked_token_refetched_once_and_call_repeated():
    provider = FakeProvider(reject_tokens=1)
    client = make_client(provider)
    result = client.whoami()
    assert result.status == 200
    assert provider.token_calls == 2
    assert provider.api_calls == 2
    assert provider.seen_auth == ["Bearer tok-1", "Bearer tok-2"]


def test_second_401_is_a_hard_failure_with_request_id():
    provider = FakeProvider(reject_tokens=5)
    client = make_client(provider)
    with pytest.raises(TokenRejectedError) as info:
        client.whoami()
    assert provider.token_calls == 2
    assert provider.api_calls == 2
    assert str(info.value).startswith("[req_401_2]")


def test_invalid_client_message_names_the_problem_without_the_secret():
    provider = FakeProvider()
    client = make_client(provider, secret="wrong-" + SECRET)
    with pytest.raises(InvalidClientError) as info:
        client.acquire_token()
    text = str(info.value) + repr(info.value) + json.dumps(info.value.to_dict())
    assert "invalid_client" in text
    assert "client_secret_env" in text  # the fix names where the secret comes from
    assert SECRET not in text


def test_unreachable_token_url_is_named():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    auth = ClientCredentialsAuth(
        token_url=TOKEN_URL, client_id="cli_test", client_secret=Secret(SECRET)
    )
    client = RedCloudClient(
        base_url="https://api.test", auth=auth, transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(TokenEndpointError) as info:
        client.whoami()
    assert "unreachable" in str(info.value) and TOKEN_URL in str(info.value)
    assert SECRET not in str(info.value)


def test_token_endpoint_5xx_is_reported_as_provider_auth_failure():
    client = make_client(FakeProvider(token_status=503))
    with pytest.raises(TokenEndpointError) as info:
        client.acquire_token()
    assert info.value.status == 503


def test_secret_repr_is_masked():
    secret = Secret(SECRET, label="X")
    assert SECRET not in repr(secret) and SECRET not in str(secret) and SECRET not in f"{secret}"
