"""OAuth 2.0 client credentials as an ``httpx.Auth`` flow; nothing else knows tokens exist.

The token is cached and refetched ``refresh_margin`` seconds before ``expires_in`` runs out. A
token can stop working early (revocation, rotation): on ``401`` with ``invalid_token`` /
``token_expired`` the flow fetches a new token once and repeats the call once; a second 401 is a
hard failure (:class:`TokenRejectedError`). Token endpoint failures become
:class:`InvalidClientError` / :class:`TokenEndpointError` whose messages never hold the secret.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from ...core.errors import InvalidClientError, TokenEndpointError, TokenRejectedError
from ...security.secrets import REGISTRY, Secret

__all__ = ["ClientCredentialsAuth", "TokenInfo"]

_REJECTED_CODES = ("invalid_token", "token_expired")


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about the current token: never its value."""

    token_type: str
    expires_in: int
    scope: str | None
    fetched_at: float
    fetch_count: int
    request_id: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "tokenType": self.token_type,
            "expiresIn": self.expires_in,
            "scope": self.scope,
            "fetchCount": self.fetch_count,
            "requestId": self.request_id,
        }


def _request_id(response: httpx.Response) -> str | None:
    return response.headers.get("x-request-id")


def _is_token_rejection(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    if "invalid_token" in response.headers.get("www-authenticate", ""):
        return True
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") in _REJECTED_CODES


class ClientCredentialsAuth(httpx.Auth):
    """Bearer auth backed by the client credentials grant (RFC 6749 §4.4)."""

    requires_response_body = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: Secret,
        scope: str | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._info: TokenInfo | None = None
        self.fetch_count = 0

    # -- public, token-free views -------------------------------------------------------------
    @property
    def info(self) -> TokenInfo | None:
        return self._info

    def fetch_token(self, send: Callable[[httpx.Request], httpx.Response]) -> TokenInfo:
        """Fetch a token now through ``send`` (the caller's HTTP client) and cache it."""
        with self._lock:
            self._accept_token(send(self._token_request()))
            assert self._info is not None
            return self._info

    def replace_token(self, value: str) -> None:
        """Swap the cached token for ``value`` (a failure drill's stand-in for a revoked token)."""
        with self._lock:
            self._token = Secret(value, label="access token")
            self._expires_at = self._clock() + 3600

    def invalidate(self) -> None:
        """Forget the cached token so the next call fetches a new one."""
        with self._lock:
            self._token = None
            self._expires_at = 0.0

    # -- the flow -----------------------------------------------------------------------------
    def _needs_token(self) -> bool:
        return self._token is None or self._clock() >= self._expires_at - self.refresh_margin

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        basic = httpx.BasicAuth(self.client_id, self._client_secret.reveal())
        request = next(basic.auth_flow(httpx.Request("POST", self.token_url, data=form)))
        # The header's base64 form is a secret of its own for the leak guard.
        REGISTRY.register(
            request.headers["Authorization"].removeprefix("Basic "),
            "client credentials (Basic header)",
        )
        return request

    def _accept_token(self, response: httpx.Response) -> None:
        rid = _request_id(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 401 or (
            isinstance(body, dict) and body.get("error") == "invalid_client"
        ):
            raise InvalidClientError(
                f"the token endpoint refused client {self.client_id!r} (invalid_client).",
                status=response.status_code,
                code="invalid_client",
                request_id=rid,
            )
        if response.status_code != 200 or not isinstance(body, dict):
            code = body.get("error") if isinstance(body, dict) else None
            raise TokenEndpointError(
                f"the token endpoint answered {response.status_code} without a token"
                + (f" ({code})" if code else "")
                + ".",
                status=response.status_code,
                code=code if isinstance(code, str) else None,
                request_id=rid,
                remedy="check token_url; a 5xx here is the provider's auth service failing."
                if response.status_code >= 500
                else None,
            )
        token = body.get("access_token")
        token_type = str(body.get("token_type", ""))
        if not isinstance(token, str) or not token or token_type.lower() != "bearer":
            raise TokenEndpointError(
                "the token endpoint answered 200 without a Bearer access_token.",
                status=200,
                request_id=rid,
            )
        expires_in = body.get("expires_in")
        expires_in = int(expires_in) if isinstance(expires_in, (int, float)) else 3600
        REGISTRY.register(token, "access token")
        self.fetch_count += 1
        self._token = Secret(token, label="access token")
        self._expires_at = self._clock() + expires_in
        scope = body.get("scope")
        self._info = TokenInfo(
            token_type="Bearer",
            expires_in=expires_in,
            scope=scope if isinstance(scope, str) else None,
            fetched_at=time.time(),
            fetch_count=self.fetch_count,
            request_id=rid,
        )

    def _authorize(self, request: httpx.Request) -> None:
        assert self._token is not None
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            if self._needs_token():
                response = yield self._token_request()
                self._accept_token(response)
            self._authorize(request)
        response = yield request
        if not _is_token_rejection(response):
            return
        # The token stopped working before expires_in (revoked, rotated): refetch once, repeat once.
        with self._lock:
            self._token = None
            token_response = yield self._token_request()
            self._accept_token(token_response)
            self._authorize(request)
        response = yield request
        if _is_token_rejection(response):
            raise TokenRejectedError(
                "the API refused a freshly issued token (401 twice in a row).",
                status=401,
                code="invalid_token",
                request_id=_request_id(response),
            )
