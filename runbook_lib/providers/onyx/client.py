"""The Onyx partner API client: typed resources, request ids, rate limits and safe retries.

Retries follow the contract: only 429, 5xx and timeouts / connection errors, with capped backoff
(``Retry-After`` wins) and the same ``idempotency-key`` on every attempt. An answer carrying a
policy ``reasonCode`` is never retried, whatever its status. Every exchange is recorded in
:attr:`OnyxClient.request_log` with its ``x-request-id`` and ``RateLimit-*`` headers; no header
holding the credential and no body is ever recorded or logged.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ...core.errors import ParameterError, ProviderError, ProviderUnavailableError
from ...core.retry import RetryPolicy, parse_retry_after
from ...core.sends import Acceptance as SendAcceptance
from ...security.secrets import Secret, secret_from_env
from .credentials import PartnerCredentialAuth, SecretComparison, check_credential_mode, shown
from .problems import POLICY_REASON_CODES, error_from_response, is_retryable_status, problem_of
from .resources import (
    Acceptance,
    Catalogue,
    CataloguePackage,
    Esim,
    EventHistory,
    EventRecord,
    Order,
    PartnerIdentity,
    PreSendOutcome,
    Reachability,
    Replay,
    TestEvent,
    Usage,
    Webhook,
    envelope,
    mask_reference,
)

__all__ = ["INTENTS", "Exchange", "OnyxClient", "RateLimit", "build_onyx_client", "shown_path"]

log = logging.getLogger("runbook.onyx.client")

INTENTS = ("informational", "transactional", "sensitive")
_PRINTABLE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_ICCID_IN_PATH = re.compile(r"(/esims/)([^/?]+)")


def shown_path(path: str) -> str:
    """The path as logs, evidence and errors show it: an ICCID in it is masked."""
    return _ICCID_IN_PATH.sub(lambda m: m.group(1) + (mask_reference(m.group(2)) or ""), path)


@dataclass(frozen=True)
class RateLimit:
    """The ``RateLimit-*`` headers of one answer (None where the header was absent)."""

    limit: int | None
    remaining: int | None
    reset_seconds: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        values = [_int(headers.get(f"ratelimit-{n}")) for n in ("limit", "remaining", "reset")]
        return None if all(v is None for v in values) else cls(*values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "resetSeconds": self.reset_seconds,
        }


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Exchange:
    """One HTTP attempt, as evidence: never the credential, never a body."""

    method: str
    path: str
    status: int | None
    request_id: str | None
    attempt: int
    elapsed_ms: float
    idempotency_key: str | None = None
    rate_limit: RateLimit | None = None
    retry_after: float | None = None
    code: str | None = None
    reason_code: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "requestId": self.request_id,
            "attempt": self.attempt,
            "elapsedMs": round(self.elapsed_ms, 1),
            "idempotencyKey": self.idempotency_key,
            "rateLimit": self.rate_limit.to_dict() if self.rate_limit else None,
            "retryAfter": self.retry_after,
            "code": self.code,
            "reasonCode": self.reason_code,
            "error": self.error,
        }


@dataclass(frozen=True)
class _Answer:
    body: Any
    status: int
    request_id: str | None
    replayed: bool


def _check_key(idempotency_key: str | None, what: str) -> str:
    if not idempotency_key or not _PRINTABLE_KEY.match(idempotency_key):
        raise ParameterError(
            f"{what} needs an idempotency-key of 1-255 printable ASCII characters without "
            f"spaces, got {idempotency_key!r}.",
            remedy="derive one key per logical action (e.g. runbook's idempotency_key_for) and "
            "reuse it on every retry of that action.",
        )
    return idempotency_key


def _require(value: Any, name: str, allowed: Sequence[str] | None = None) -> None:
    if not isinstance(value, str) or not value:
        raise ParameterError(f"{name} must be a non-empty string, got {value!r}.")
    if allowed is not None and value not in allowed:
        raise ParameterError(
            f"{name} must be one of {', '.join(allowed)}, got {value!r}.",
            remedy=f"use one of {', '.join(allowed)}.",
        )


@dataclass(frozen=True)
class CredentialInfo:
    """The partner credential as ``GET /v1/partner/me`` shows it (the runbook's token step)."""

    credential_id: str
    state: str
    scope: str
    shown: str
    request_id: str | None = None
    token_type: str = "Bearer (partner credential)"
    expires_in: str = "n/a"

    @property
    def summary(self) -> str:
        """The token step's line: a partner credential is its own Bearer, with no expiry."""
        return f"partner credential {self.shown} ({self.credential_id}) accepted: {self.state}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "credentialId": self.credential_id,
            "state": self.state,
            "scope": self.scope,
            "credential": self.shown,
            "requestId": self.request_id,
        }


class OnyxClient:
    """Synchronous client for the Onyx partner API v1.

    Args:
        base_url: the API host (``https://api-sandbox.onyxmobile.net`` or a local sandbox).
        credential: the partner credential; its mode must match ``environment``.
        environment: ``production`` needs an ``onyx_sk_live_`` key, anything else a test key.
        sleep, clock: injectable for tests (backoff waits; elapsed times and HTTP-date
            ``Retry-After``).

    Raises:
        ParameterError: the credential is not an Onyx key or is for the other environment.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credential: Secret,
        environment: str,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mode = check_credential_mode(credential, environment)
        self._options = {"retry": retry, "timeout": timeout, "transport": transport,
                         "sleep": sleep, "clock": clock}  # fmt: skip
        self.credential_shown = shown(credential)
        self.environment = environment
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.request_log: list[Exchange] = []
        # preview vs production as keyed digests (set by the provider from the run's environment)
        self.credential_separation: SecretComparison | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=PartnerCredentialAuth(credential),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "onyx-runbook/0.1", "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"OnyxClient({self.base_url!r}, {self.credential_shown}, {self.environment!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OnyxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity -------------------------------------------------------------------------------
    def me(self) -> PartnerIdentity:
        """``GET /v1/partner/me``: partner, credential state and scopes, launch approvals."""
        a = self._call("GET", "/v1/partner/me")
        return PartnerIdentity.from_wire(a.body, a.request_id)

    # -- messaging ------------------------------------------------------------------------------
    def reachability(self, *, app_id: str, subject: str) -> Reachability:
        _require(app_id, "app_id")
        _require(subject, "subject")
        a = self._call(
            "POST", "/v1/partner/messaging/reachability", json={"appId": app_id, "subject": subject}
        )
        return Reachability.from_wire(a.body, a.request_id)

    def pre_send(
        self, *, app_id: str, subject: str, intent: str, thread_id: str | None = None
    ) -> PreSendOutcome:
        _require(app_id, "app_id")
        _require(subject, "subject")
        _require(intent, "intent", INTENTS)
        body: dict[str, Any] = {"appId": app_id, "subject": subject, "intent": intent}
        if thread_id:
            body["threadId"] = thread_id
        a = self._call("POST", "/v1/partner/messaging/pre-send", json=body)
        return PreSendOutcome.from_wire(a.body, a.request_id)

    def send_message(
        self,
        *,
        app_id: str,
        subject: str,
        thread_id: str,
        intent: str,
        body: str,
        idempotency_key: str,
    ) -> Acceptance:
        """``POST …/messaging/messages`` (202). A blocked send raises BlockedByPolicyError.

        Prefer :func:`~runbook_lib.providers.onyx.messaging.checked_send`, which runs the
        reachability and pre-send checks Onyx requires first.
        """
        for value, name in ((app_id, "app_id"), (subject, "subject"), (thread_id, "thread_id")):
            _require(value, name)
        _require(intent, "intent", INTENTS)
        key = _check_key(idempotency_key, "send_message")
        payload = {
            "appId": app_id,
            "subject": subject,
            "threadId": thread_id,
            "intent": intent,
            "body": body,
        }
        a = self._call("POST", "/v1/partner/messaging/messages", json=payload, key=key)
        return Acceptance.from_wire(a.body, a.request_id, replayed=a.replayed)

    # -- catalogue, orders, services --------------------------------------------------------------
    def catalogue(self) -> Catalogue:
        a = self._call("GET", "/v1/partner/catalog/packages")
        return Catalogue.from_wire(a.body, a.request_id)

    def package(self, package_id: str) -> CataloguePackage:
        """One package, re-read before checkout as Onyx asks."""
        _require(package_id, "package_id")
        a = self._call("GET", f"/v1/partner/catalog/packages/{package_id}")
        return CataloguePackage.from_wire(
            envelope(a.body, "package", a.request_id).data, a.request_id
        )

    def create_order(
        self,
        *,
        package_id: str,
        partner_order_id: str,
        idempotency_key: str,
        customer_reference: str | None = None,
    ) -> Order:
        """``POST /v1/partner/orders``: 201 a new order, 200 the same order for a replay.

        Raises:
            ParameterError: no usable ``idempotency_key`` (refused before any request).
            ProviderError: ``idempotency_conflict`` when the key was used with another body.
        """
        key = _check_key(idempotency_key, "create_order")
        _require(package_id, "package_id")
        _require(partner_order_id, "partner_order_id")
        payload: dict[str, Any] = {"packageId": package_id, "partnerOrderId": partner_order_id}
        if customer_reference is not None:
            payload["customerReference"] = customer_reference
        a = self._call("POST", "/v1/partner/orders", json=payload, key=key)
        return Order.from_wire(a.body, a.request_id, created=a.status == 201)

    def order(self, order_id: str) -> Order:
        _require(order_id, "order_id")
        a = self._call("GET", f"/v1/partner/orders/{order_id}")
        return Order.from_wire(a.body, a.request_id)

    def esims(self) -> tuple[Esim, ...]:
        a = self._call("GET", "/v1/partner/esims")
        data = envelope(a.body, "", a.request_id)
        return tuple(Esim.from_wire(e, a.request_id) for e in data.objects("esims"))

    def esim(self, iccid: str) -> Esim:
        _require(iccid, "iccid")
        a = self._call("GET", f"/v1/partner/esims/{iccid}")
        return Esim.from_wire(envelope(a.body, "esim", a.request_id).data, a.request_id)

    def usage(self, iccid: str) -> Usage:
        _require(iccid, "iccid")
        a = self._call("GET", f"/v1/partner/esims/{iccid}/usage")
        return Usage.from_wire(a.body, a.request_id)

    # -- webhooks and events ----------------------------------------------------------------------
    def create_webhook(
        self, *, url: str, event_types: Sequence[str], idempotency_key: str | None = None
    ) -> Webhook:
        """Register an endpoint; the returned ``secret`` (a Secret) is shown by Onyx only once."""
        _require(url, "url")
        if not event_types or not all(isinstance(t, str) and t for t in event_types):
            raise ParameterError("event_types must be a non-empty list of event type names.")
        key = _check_key(idempotency_key, "create_webhook") if idempotency_key else None
        a = self._call(
            "POST",
            "/v1/partner/webhooks",
            json={"url": url, "eventTypes": list(event_types)},
            key=key,
        )
        return Webhook.from_wire(envelope(a.body, "webhook", a.request_id).data, a.request_id)

    def webhooks(self) -> tuple[Webhook, ...]:
        a = self._call("GET", "/v1/partner/webhooks")
        data = envelope(a.body, "", a.request_id)
        return tuple(Webhook.from_wire(w, a.request_id) for w in data.objects("webhooks"))

    def delete_webhook(self, webhook_id: str) -> None:
        _require(webhook_id, "webhook_id")
        self._call("DELETE", f"/v1/partner/webhooks/{webhook_id}")

    def test_webhook(self, webhook_id: str) -> TestEvent:
        """Ask Onyx to deliver a signed test event to this endpoint."""
        _require(webhook_id, "webhook_id")
        a = self._call("POST", f"/v1/partner/webhooks/{webhook_id}/test")
        return TestEvent.from_wire(a.body, a.request_id)

    def events(
        self, *, event_type: str | None = None, since: str | None = None, max_pages: int = 100
    ) -> EventHistory:
        """The event history with delivery states, every page (``nextCursor`` until null)."""
        records: list[EventRecord] = []
        request_ids: list[str] = []
        cursor: str | None = None
        for page in range(1, max_pages + 1):
            params = {
                k: v for k, v in (("type", event_type), ("since", since), ("cursor", cursor)) if v
            }
            a = self._call("GET", "/v1/partner/events", params=params)
            if a.request_id:
                request_ids.append(a.request_id)
            data = envelope(a.body, "", a.request_id)
            records.extend(EventRecord.from_wire(e, a.request_id) for e in data.objects("events"))
            cursor = data.opt_text("nextCursor")
            if not cursor:
                return EventHistory(tuple(records), page, tuple(request_ids))
        raise ProviderError(
            f"the event history did not end after {max_pages} pages.",
            request_id=request_ids[-1] if request_ids else None,
            remedy="narrow the query with since= or type=; report the requestId if it persists.",
        )

    def replay(self, event_id: str, *, idempotency_key: str) -> Replay:
        """Redeliver an eligible past event (same ``webhook-id``); 409 when not eligible."""
        _require(event_id, "event_id")
        key = _check_key(idempotency_key, "replay")
        a = self._call("POST", f"/v1/partner/events/{event_id}/replay", key=key)
        return Replay.from_wire(a.body, a.request_id)

    # -- what every provider's client offers the runbooks -------------------------------------
    def acquire_token(self) -> CredentialInfo:
        """A partner credential needs no token: ``GET /v1/partner/me`` proves it is accepted.

        Raises:
            AuthError: the credential is revoked, unknown or for the other environment.
        """
        me = self.me()
        return CredentialInfo(
            credential_id=me.credential_id,
            state=me.credential_state,
            scope=" ".join(me.scopes),
            shown=self.credential_shown,
            request_id=me.request_id,
        )

    def server_clock(self) -> float | None:
        """The provider's clock from the ``Date`` header of ``GET /v1/partner/me`` (None without)."""
        try:
            response = self.request_raw("GET", "/v1/partner/me")
        except httpx.HTTPError:
            return None
        stamp = response.headers.get("date")
        try:
            return email.utils.parsedate_to_datetime(stamp).timestamp() if stamp else None
        except (TypeError, ValueError):
            return None

    def with_credential(self, secret: Secret) -> OnyxClient:
        """The same client with another credential (drills: revoked, wrong-environment, limited).

        Raises:
            ParameterError: ``secret`` is not an Onyx key of this environment (refused first).
        """
        return OnyxClient(base_url=self.base_url, credential=secret, environment=self.environment,
                          **self._options)  # fmt: skip

    def send(self, payload: Mapping[str, Any], *, idempotency_key: str) -> SendAcceptance:
        """The controlled send of :mod:`runbook_lib.core.sends` (``POST …/messaging/messages``).

        ``payload`` is :meth:`OnyxProvider.send_payload`'s; it does not run the reachability and
        pre-send checks (:func:`~.messaging.checked_send` does, before calling it).
        """
        accepted = self.send_message(
            app_id=payload["appId"],
            subject=payload["subject"],
            thread_id=payload["threadId"],
            intent=payload["intent"],
            body=payload["body"],
            idempotency_key=idempotency_key,
        )
        return SendAcceptance(
            message_id=accepted.message_id,
            external_reference=None,
            status=accepted.status,
            accepted_at=None,
            http_status=200 if accepted.replayed else 202,
            request_id=accepted.request_id,
            request_ids=(accepted.request_id,) if accepted.request_id else (),
            replayed=accepted.replayed,
            expected_http_status=202,
            expected_status="accepted",
        )

    # -- drills ---------------------------------------------------------------------------------
    def request_raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request: no retries, no error mapping (drills send bad requests)."""
        started = self._clock()
        response = self._http.request(method, path, **kwargs)
        self._record(method, shown_path(path), response, 1, started, None)
        return response

    # -- machinery --------------------------------------------------------------------------------
    def _record(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        attempt: int,
        started: float,
        key: str | None,
    ) -> Exchange:
        problem = problem_of(response) if not response.is_success else {}
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._clock())
        exchange = Exchange(
            method=method,
            path=path,
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
            attempt=attempt,
            elapsed_ms=(self._clock() - started) * 1000,
            idempotency_key=key,
            rate_limit=RateLimit.from_headers(response.headers),
            retry_after=retry_after,
            code=problem.get("code") if isinstance(problem.get("code"), str) else None,
            reason_code=problem.get("reasonCode")
            if isinstance(problem.get("reasonCode"), str)
            else None,
        )
        self.request_log.append(exchange)
        log.info(
            "%s %s -> %s (attempt %d, requestId %s)",
            method,
            path,
            response.status_code,
            attempt,
            exchange.request_id,
            extra={"requestId": exchange.request_id, "status": response.status_code, "path": path},
        )
        return exchange

    def _call(
        self,
        method: str,
        target: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        key: str | None = None,
    ) -> _Answer:
        headers = {"idempotency-key": key} if key else None
        path = shown_path(target)
        attempt = 0
        while True:
            attempt += 1
            started = self._clock()
            try:
                response = self._http.request(
                    method, target, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                kind = type(exc).__name__
                self.request_log.append(
                    Exchange(
                        method,
                        path,
                        None,
                        None,
                        attempt,
                        (self._clock() - started) * 1000,
                        key,
                        error=kind,
                    )
                )
                log.warning("%s %s failed: %s (attempt %d)", method, path, kind, attempt)
                if attempt >= self.retry.max_attempts:
                    raise ProviderUnavailableError(
                        f"{method} {path} failed {attempt} time(s): {kind}.", code="unreachable"
                    ) from None
                self._sleep(self.retry.delay(attempt, None))
                continue
            exchange = self._record(method, path, response, attempt, started, key)
            if response.is_success:
                try:
                    body = response.json() if response.content else {}
                except ValueError:
                    raise ProviderError(
                        f"{method} {path} answered {response.status_code} with a body that is "
                        "not JSON.",
                        status=response.status_code,
                        request_id=exchange.request_id,
                    ) from None
                replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
                return _Answer(body, response.status_code, exchange.request_id, replayed)
            # a policy outcome stays a policy outcome until a person acts: never retried
            retryable = (
                is_retryable_status(response.status_code)
                and exchange.reason_code not in POLICY_REASON_CODES
            )
            if retryable and attempt < self.retry.max_attempts:
                wait = exchange.retry_after
                if wait is None or wait <= self.retry.max_retry_after:
                    self._sleep(self.retry.delay(attempt, wait))
                    continue
            raise error_from_response(method, path, response, attempts=attempt)


def build_onyx_client(
    *,
    base_url: str,
    credential_env: str,
    environment: str,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> OnyxClient:
    """A client whose credential comes from the environment variable ``credential_env``.

    Raises:
        MissingSecretError: the variable is unset.
        ParameterError: the credential's mode does not match ``environment``.
    """
    credential = secret_from_env(
        credential_env,
        purpose="Onyx partner credential",
        environ=dict(environ) if environ is not None else None,
    )
    return OnyxClient(base_url=base_url, credential=credential, environment=environment, **options)
