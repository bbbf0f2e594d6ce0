"""The Red Cloud API client: whoami, numbers (all pages), send — with request ids and retries.

Every response's ``X-Request-Id`` is recorded in :attr:`RedCloudClient.request_log`, and every
error carries it first in its message. Only what the contract calls retryable is retried, with
the same ``Idempotency-Key``, honouring ``Retry-After``; see :mod:`runbook_lib.retry`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ...core.parameters import RunbookParameters

from ...core.errors import (
    AuthError,
    ProviderError,
    ProviderUnavailableError,
    TokenEndpointError,
)
from ...core.retry import RetryPolicy, is_retryable_response, parse_retry_after
from ...core.sends import Acceptance
from ...security.privacy import redact_excerpt
from ...security.secrets import Secret, secret_from_env
from .auth import ClientCredentialsAuth, TokenInfo
from .contract import API
from .resources import ClientContext, Number, NumberInventory

__all__ = ["ApiResult", "NumbersListing", "RedCloudClient", "RequestRecord", "build_client"]

log = logging.getLogger("runbook.client")

_REMEDIES = {
    "missing_idempotency_key": "every send needs an Idempotency-Key header (the runbook adds one).",
    "invalid_request": "the request body or query was rejected; see detail.",
    "invalid_send_from": "check numbers: the sendFrom numberId must be ACTIVE with SMS enabled.",
    "mms_not_enabled": "send media only from a number with mmsEnabled true.",
    "invalid_destination": "use an E.164 destination the provider accepts.",
    "idempotency_key_reused": "a key was reused with a different body: start a new run id.",
    "idempotency_request_in_progress": "the first request with this key is still running.",
    "rate_limited": "slow down; the client honours Retry-After.",
}


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP exchange, as evidence: never headers with credentials, never bodies."""

    method: str
    path: str
    status: int | None
    request_id: str | None
    attempt: int
    elapsed_ms: float
    idempotency_key: str | None = None
    replayed: bool = False
    error: str | None = None
    deliberate: bool = False  # a drill's deliberately malformed request (e.g. no key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "requestId": self.request_id,
            "attempt": self.attempt,
            "elapsedMs": round(self.elapsed_ms, 1),
            "idempotencyKey": self.idempotency_key,
            "replayed": self.replayed,
            "error": self.error,
        }


@dataclass(frozen=True)
class ApiResult:
    """A successful API answer: its JSON, status, request id, and how it was obtained."""

    data: dict[str, Any]
    status: int
    request_id: str | None
    attempts: int
    replayed: bool = False
    server_date: float | None = None
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NumbersListing:
    """Every number across all pages of ``/api/core/numbers``."""

    numbers: list[dict[str, Any]]
    pages: int
    request_ids: tuple[str, ...] = field(default_factory=tuple)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class RedCloudClient:
    """Synchronous client for the Red Cloud v1 API."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: ClientCredentialsAuth,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.request_log: list[RequestRecord] = []
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "redcloud-runbook/0.1", "Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RedCloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- typed resources (what the runbooks use) ---------------------------------------------
    def context(self) -> ClientContext:
        """The identity step: whoami as a :class:`ClientContext`."""
        result = self.whoami()
        return ClientContext.from_wire(result.data, request_id=result.request_id)

    def inventory(self) -> NumberInventory:
        """The sender inventory: every number, every page, as :class:`Number` values."""
        listing = self.list_numbers()
        return NumberInventory(
            numbers=tuple(Number.from_wire(n) for n in listing.numbers),
            pages=listing.pages,
            request_ids=listing.request_ids,
        )

    def send(self, payload: dict[str, Any], *, idempotency_key: str) -> Acceptance:
        """The controlled send, answered as an :class:`~runbook_lib.core.sends.Acceptance`."""
        result = self.send_message(payload, idempotency_key=idempotency_key)
        data = result.data if isinstance(result.data, dict) else {}

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        return Acceptance(
            message_id=text("messageId"),
            external_reference=text("externalReference"),
            status=data.get("status"),
            accepted_at=data.get("acceptedAt"),
            http_status=result.status,
            request_id=result.request_id,
            request_ids=tuple(result.request_ids),
            attempts=result.attempts,
            replayed=result.replayed,
            expected_http_status=202,
            expected_status="QUEUED",
        )

    def with_credential(self, secret: Secret) -> RedCloudClient:
        """A client like this one with another client secret (the invalid-credentials drill)."""
        auth = ClientCredentialsAuth(
            token_url=self.auth.token_url, client_id=self.auth.client_id, client_secret=secret
        )
        return RedCloudClient(base_url=self.base_url, auth=auth, retry=self.retry)

    # -- the wire API ---------------------------------------------------------------------------
    def whoami(self) -> ApiResult:
        """``GET /api/core/whoami``: the active API client context."""
        return self._call("GET", API["whoami"])

    def list_numbers(self, *, limit: int | None = None, max_pages: int = 1000) -> NumbersListing:
        """All numbers, following ``nextCursor`` until it is null."""
        numbers: list[dict[str, Any]] = []
        request_ids: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {}
            if limit is not None:
                params["limit"] = limit
            if cursor:
                params["cursor"] = cursor
            result = self._call("GET", API["numbers"], params=params)
            pages += 1
            if result.request_id:
                request_ids.append(result.request_id)
            page = result.data.get("data")
            if not isinstance(page, list):
                raise ProviderError(
                    "numbers response has no 'data' list.",
                    status=result.status,
                    request_id=result.request_id,
                )
            numbers.extend(n for n in page if isinstance(n, dict))
            cursor = result.data.get("nextCursor")
            if not cursor:
                return NumbersListing(numbers=numbers, pages=pages, request_ids=tuple(request_ids))
            if pages >= max_pages:
                raise ProviderError(
                    f"numbers pagination did not end after {max_pages} pages.",
                    request_id=result.request_id,
                    remedy="the provider keeps returning nextCursor; report it with the requestId.",
                )

    def send_message(self, payload: dict[str, Any], *, idempotency_key: str) -> ApiResult:
        """``POST /api/core/messages/send``; every retry reuses ``idempotency_key``."""
        if not idempotency_key:
            raise ValueError("send_message needs an idempotency key")
        return self._call(
            "POST",
            API["send"],
            json=payload,
            headers={"Idempotency-Key": idempotency_key},
        )

    def acquire_token(self) -> TokenInfo:
        """Fetch an access token now (the go-live's explicit token step)."""
        try:
            return self.auth.fetch_token(lambda request: self._http.send(request, auth=None))
        except httpx.TransportError as exc:
            raise TokenEndpointError(
                f"the token endpoint {self.auth.token_url} is unreachable ({type(exc).__name__}).",
                code="token_endpoint_unreachable",
            ) from None

    def request_raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request with no retries and no error mapping (drills, probes)."""
        response = self._http.request(method, path, **kwargs)
        key = (kwargs.get("headers") or {}).get("Idempotency-Key")
        self.request_log.append(
            RequestRecord(
                method, path, response.status_code, response.headers.get("x-request-id"), 1, 0.0,
                idempotency_key=key, deliberate=True,
            )
        )  # fmt: skip
        return response

    def server_clock(self) -> float | None:
        """The provider's clock (``Date`` header of an unauthenticated request), if it sends one."""
        try:
            response = httpx.get(self.base_url + "/", timeout=self._http.timeout, headers={})
        except httpx.HTTPError:
            return None
        return _date_header(response)

    # -- machinery ----------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResult:
        key = (headers or {}).get("Idempotency-Key")
        request_ids: list[str] = []
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self._http.request(
                    method, path, params=params, json=json, headers=headers
                )
            except AuthError:
                raise
            except httpx.TransportError as exc:
                elapsed = (time.monotonic() - started) * 1000
                kind = type(exc).__name__
                log.warning(
                    "%s %s failed: %s (attempt %d)",
                    method,
                    path,
                    kind,
                    attempt,
                    extra={"path": path},
                )
                self.request_log.append(
                    RequestRecord(method, path, None, None, attempt, elapsed, key, error=kind)
                )
                failed_url = str(exc.request.url) if exc.request is not None else ""
                if failed_url.startswith(self.auth.token_url):
                    raise TokenEndpointError(
                        f"the token endpoint {self.auth.token_url} is unreachable ({kind}).",
                        code="token_endpoint_unreachable",
                    ) from None
                if attempt >= self.retry.max_attempts:
                    raise ProviderUnavailableError(
                        f"{method} {path} failed {attempt} time(s): {kind}.",
                        code="unreachable",
                    ) from None
                self._sleep(self.retry.delay(attempt, None))
                continue
            elapsed = (time.monotonic() - started) * 1000
            rid = response.headers.get("x-request-id")
            if rid:
                request_ids.append(rid)
            replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
            log.info(
                "%s %s -> %s (attempt %d, requestId %s)",
                method,
                path,
                response.status_code,
                attempt,
                rid,
                extra={
                    "requestId": rid,
                    "status": response.status_code,
                    "path": path,
                    "idempotencyKey": key,
                },
            )
            self.request_log.append(
                RequestRecord(
                    method, path, response.status_code, rid, attempt, elapsed, key, replayed
                )
            )
            if response.is_success:
                try:
                    data = response.json()
                except ValueError:
                    raise ProviderError(
                        f"{method} {path} answered {response.status_code} with a body that is "
                        "not JSON.",
                        status=response.status_code,
                        request_id=rid,
                        body_excerpt=redact_excerpt(response.text),
                    ) from None
                return ApiResult(
                    data=data if isinstance(data, dict) else {"data": data},
                    status=response.status_code,
                    request_id=rid,
                    attempts=attempt,
                    replayed=replayed,
                    server_date=_date_header(response),
                    request_ids=tuple(request_ids),
                )
            problem = _problem(response)
            code = problem.get("code") if isinstance(problem.get("code"), str) else None
            retryable = is_retryable_response(response, code)
            if retryable and attempt < self.retry.max_attempts:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is None or retry_after <= self.retry.max_retry_after:
                    self._sleep(self.retry.delay(attempt, retry_after))
                    continue
            raise self._error(method, path, response, problem, code, retryable, attempt)

    def _error(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        problem: dict[str, Any],
        code: str | None,
        retryable: bool,
        attempts: int,
    ) -> ProviderError:
        rid = problem.get("requestId") or response.headers.get("x-request-id")
        detail = problem.get("detail") or problem.get("title") or response.reason_phrase
        message = f"{method} {path} failed: {detail}"
        if retryable:
            message += f" (gave up after {attempts} attempt(s))"
        return ProviderError(
            message,
            status=response.status_code,
            code=code,
            request_id=rid if isinstance(rid, str) else None,
            retryable=retryable,
            remedy=_REMEDIES.get(
                code or "", "see the provider's status page; quote the requestId."
            ),
            body_excerpt=redact_excerpt(response.text),
        )


def _date_header(response: httpx.Response) -> float | None:
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def build_client(
    params: RunbookParameters,
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RedCloudClient:
    """A client for the parameter file's provider, with its secret from the environment.

    Raises:
        MissingSecretError: the client secret's environment variable is unset.
    """
    p = params.provider
    secret = secret_from_env(p.client_secret_env, purpose="client secret", environ=environ)
    auth = ClientCredentialsAuth(
        token_url=p.resolved_token_url, client_id=p.client_id, client_secret=secret, scope=p.scope
    )
    r = params.retry
    retry = RetryPolicy(
        max_attempts=r.max_attempts,
        base_delay=r.base_delay_seconds,
        max_delay=r.max_delay_seconds,
        max_retry_after=r.max_retry_after_seconds,
    )
    return RedCloudClient(
        base_url=p.base_url, auth=auth, timeout=p.timeout_seconds, retry=retry, sleep=sleep
    )
