"""The SendAPI v1 client: typed resources, API-key auth, paced requests, contract retries.

    client = SendApiClient(base_url="https://sendapi.co/v1",
                           api_key=secret_from_env("SENDAPI_API_KEY", purpose="SendAPI API key"))
    client.usage().channel("sms").share
    client.send_sms(to="+15005550101", message="hi", idempotency_key=str(uuid.uuid4()))

Rules, from the contract (§5–§7):

- every POST carries an ``Idempotency-Key``; the client refuses to send one without
  (:class:`~runbook_lib.errors.SendPolicyError`), and every retry reuses it;
- 429: wait ``Retry-After`` (else the body's ``retry_after``, else the window's reset), then retry;
- 5xx, timeouts, connection errors: back off 1 s, 2 s, 4 s … capped at 60 s, then retry;
- any other 4xx is never retried: it becomes an error with the request id and a fix;
- before each request the :class:`~.ratelimit.RateLimiter` paces from the last ``X-RateLimit-*``
  headers, so the client slows down *before* the limit (see :attr:`SendApiClient.rate_limit`).

Backoff has no jitter: one client runs one go-live, and a fixed sequence is what the report shows.
HTTPS only, except loopback hosts (the sandbox).
"""

from __future__ import annotations

import json as _json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ...core.errors import (
    ConfigurationError,
    ProviderError,
    ProviderUnavailableError,
    SendPolicyError,
)
from ...core.retry import parse_retry_after
from ...security.secrets import Secret, secret_from_env
from .errors import error_from_response, parse_error_body, redact
from .keys import ApiKeyAuth, key_prefix
from .ratelimit import RateLimiter, RateLimitState, SessionPacer
from .resources import (
    Acceptance,
    ContactCheck,
    EmailDomain,
    SenderId,
    Usage,
    Webhook,
    WhatsAppSession,
    unwrap_list,
)

__all__ = ["DEFAULT_BASE_URL", "Exchange", "RetrySettings", "SendApiClient", "client_from_env"]

DEFAULT_BASE_URL = "https://sendapi.co/v1"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
log = logging.getLogger("runbook.sendapi")


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """How hard to try: backoff ``base_delay`` doubling to ``max_delay``; longer Retry-After gives up."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"retry max_attempts must be at least 1, got {self.max_attempts}.",
                remedy="use 1 for no retries.",
            )

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based): 1, 2, 4 … capped."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


@dataclass(frozen=True)
class Exchange:
    """One HTTP attempt, as evidence: never credentials, never bodies."""

    method: str
    path: str
    status: int | None
    request_id: str | None
    attempt: int
    idempotency_key: str | None = None
    replayed: bool = False
    waited_s: float = 0.0  # the limiter's pause before this attempt
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "status": self.status,
                "requestId": self.request_id, "attempt": self.attempt,
                "idempotencyKey": self.idempotency_key, "replayed": self.replayed,
                "waitedS": round(self.waited_s, 3), "error": self.error}  # fmt: skip


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return base_url.rstrip("/")
    raise ConfigurationError(
        f"the SendAPI base_url {base_url!r} is not HTTPS.",
        code="insecure_base_url",
        remedy=f"use {DEFAULT_BASE_URL} (plain http is allowed only for a loopback sandbox).",
    )


class SendApiClient:
    """Synchronous client for the SendAPI v1 contract."""

    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retry: RetrySettings | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        session_pacer: SessionPacer | None = None,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        # the contract's per-session WhatsApp caps, kept here before the server's 429
        self.session_pacer = session_pacer or SessionPacer(clock=clock, sleep=sleep)
        self.auth = ApiKeyAuth(api_key)
        self.key_prefix = key_prefix(api_key)
        self.retry = retry or RetrySettings()
        self.limiter = limiter or RateLimiter(clock=clock)
        self._sleep = sleep
        self._clock = clock
        self.request_log: list[Exchange] = []
        self.last_date: str | None = None  # the last Date header (the runbook's clock check)
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            auth=self.auth,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "sendapi-runbook/0.1", "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"SendApiClient({self.base_url!r}, key={self.key_prefix}…)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SendApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rate_limit(self) -> RateLimitState | None:
        """The last ``X-RateLimit-*`` headers seen (``remaining`` lowered by requests since)."""
        return self.limiter.state

    # -- account and inventory -------------------------------------------------------------
    def usage(self, **params: str) -> Usage:
        """``GET /account/usage`` (also the key probe: 200 means the key is valid)."""
        return Usage.from_wire(self._json("GET", "account/usage", params=params or None)[0])

    def sender_ids(self) -> tuple[SenderId, ...]:
        items, _ = unwrap_list(self._json("GET", "sms/sender-ids")[0])
        return tuple(SenderId.from_wire(i) for i in items)

    def whatsapp_sessions(self) -> tuple[WhatsAppSession, ...]:
        items, _ = unwrap_list(self._json("GET", "whatsapp/sessions")[0])
        return tuple(WhatsAppSession.from_wire(i) for i in items)

    def whatsapp_session(self, session_id: str) -> WhatsAppSession:
        return WhatsAppSession.from_wire(
            self._json("GET", f"whatsapp/sessions/{_seg(session_id)}")[0]
        )

    def contact_check(self, phone: str, *, session_id: str | None = None) -> ContactCheck:
        params = {"session_id": session_id} if session_id else None
        body = self._json("GET", f"whatsapp/contacts/{_seg(phone)}/check", params=params)[0]
        return ContactCheck.from_wire(body, phone=phone)

    def email_domains(self) -> tuple[EmailDomain, ...]:
        items, _ = unwrap_list(self._json("GET", "email/domains")[0])
        return tuple(EmailDomain.from_wire(i) for i in items)

    def email_domain(self, domain_id: str) -> EmailDomain:
        return EmailDomain.from_wire(self._json("GET", f"email/domains/{_seg(domain_id)}")[0])

    def verify_email_domain(self, domain_id: str, *, idempotency_key: str) -> EmailDomain:
        body = self._json("POST", f"email/domains/{_seg(domain_id)}/verify", json={},
                          idempotency_key=idempotency_key)[0]  # fmt: skip
        return EmailDomain.from_wire(body)

    def webhooks(self) -> tuple[Webhook, ...]:
        items, _ = unwrap_list(self._json("GET", "webhooks")[0])
        return tuple(Webhook.from_wire(i) for i in items)

    def create_webhook(self, *, url: str, events: Sequence[str], idempotency_key: str) -> Webhook:
        """``POST /webhooks``; the answer holds the signing secret once (as a Secret)."""
        body = self._json("POST", "webhooks", json={"url": url, "events": list(events)},
                          idempotency_key=idempotency_key)[0]  # fmt: skip
        return Webhook.from_wire(body, created=True)

    # -- sends -----------------------------------------------------------------------------
    def send_sms(self, *, to: str, message: str, idempotency_key: str,
                 sender_id: str | None = None, callback_url: str | None = None) -> Acceptance:  # fmt: skip
        """``POST /sms/send`` with the documented ``message`` field."""
        payload: dict[str, Any] = {"to": to, "message": message}
        if sender_id:
            payload["sender_id"] = sender_id
        if callback_url:
            payload["callback_url"] = callback_url
        return self._send("sms", "sms/send", payload, idempotency_key)

    def send_whatsapp(
        self, *, session_id: str, to: str, text: str, idempotency_key: str
    ) -> Acceptance:
        """``POST /whatsapp/send``: a text message in the documented ``text.body`` shape."""
        payload = {"session_id": session_id, "to": to, "type": "text", "text": {"body": text}}
        return self._send("whatsapp", "whatsapp/send", payload, idempotency_key)

    def send_email(self, *, to: str | Sequence[str], from_address: str, subject: str,
                   idempotency_key: str, text: str | None = None, html: str | None = None,
                   reply_to: str | None = None) -> Acceptance:  # fmt: skip
        """``POST /email/send``; needs ``text`` or ``html``."""
        if not text and not html:
            raise ConfigurationError(
                "send_email needs text or html.", remedy="give the message a text or html body."
            )
        payload: dict[str, Any] = {"to": to if isinstance(to, str) else list(to),
                                   "from": from_address, "subject": subject}  # fmt: skip
        for name, value in (("text", text), ("html", html), ("reply_to", reply_to)):
            if value:
                payload[name] = value
        return self._send("email", "email/send", payload, idempotency_key)

    def _send(self, channel: str, path: str, payload: dict[str, Any], key: str) -> Acceptance:
        if channel == "whatsapp":  # every WhatsApp send, whichever caller built it
            self.session_pacer.before_send(str(payload.get("session_id") or ""))
        body, response, attempts = self._json("POST", path, json=payload, idempotency_key=key)
        return Acceptance.from_wire(
            body, channel=channel, request_id=response.headers.get("x-request-id"),
            replayed=response.headers.get("idempotent-replayed", "").lower() == "true",
            idempotency_key=key, http_status=response.status_code, attempts=attempts,
        )  # fmt: skip

    def request_raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated attempt, no retries, no error mapping (drills). Headers recorded."""
        response = self._http.request(method, path.lstrip("/"), **kwargs)
        self.limiter.observe(response.headers)
        key = (kwargs.get("headers") or {}).get("Idempotency-Key")
        self.request_log.append(
            Exchange(
                method, path, response.status_code, response.headers.get("x-request-id"), 1, key
            )
        )
        return response

    # -- machinery -------------------------------------------------------------------------
    def _json(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              json: Any = None, idempotency_key: str | None = None) -> tuple[Any, httpx.Response, int]:  # fmt: skip
        response, attempts = self._call(method, path, params=params, json=json,
                                        idempotency_key=idempotency_key)  # fmt: skip
        try:
            return _json.loads(response.content or b"null"), response, attempts
        except ValueError:
            raise ProviderError(
                f"{method} /{path} answered {response.status_code} with a body that is not JSON.",
                status=response.status_code, request_id=response.headers.get("x-request-id"),
                body_excerpt=redact(response.text),
                remedy="check base_url points at the SendAPI v1 API (it ends in /v1).",
            ) from None  # fmt: skip

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None,
              json: Any, idempotency_key: str | None) -> tuple[httpx.Response, int]:  # fmt: skip
        shown = "/" + path
        headers: dict[str, str] = {}
        if method == "POST":
            if not idempotency_key or not isinstance(idempotency_key, str):
                raise SendPolicyError(
                    f"POST {shown} refused: no Idempotency-Key.",
                    code="missing_idempotency_key",
                    remedy="every SendAPI POST needs an Idempotency-Key (a UUIDv4); pass idempotency_key=.",
                )
            headers["Idempotency-Key"] = idempotency_key
        attempt = 0
        while True:
            attempt += 1
            waited = self.limiter.acquire(self._sleep)
            try:
                response = self._http.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                kind = type(exc).__name__
                self.request_log.append(
                    Exchange(
                        method,
                        shown,
                        None,
                        None,
                        attempt,
                        idempotency_key,
                        waited_s=waited,
                        error=kind,
                    )
                )
                log.warning("%s %s failed: %s (attempt %d)", method, shown, kind, attempt)
                if attempt >= self.retry.max_attempts:
                    raise ProviderUnavailableError(
                        f"{method} {shown} failed {attempt} time(s): {kind}.", code="unreachable"
                    ) from None
                self._sleep(self.retry.backoff(attempt))
                continue
            self.limiter.observe(response.headers)
            self.last_date = response.headers.get("date") or self.last_date
            rid = response.headers.get("x-request-id")
            replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
            self.request_log.append(
                Exchange(
                    method,
                    shown,
                    response.status_code,
                    rid,
                    attempt,
                    idempotency_key,
                    replayed,
                    waited,
                )
            )
            log.info("%s %s -> %s (attempt %d, request id %s)", method, shown,
                     response.status_code, attempt, rid)  # fmt: skip
            if response.is_success:
                return response, attempt
            status = response.status_code
            if attempt < self.retry.max_attempts and (status == 429 or status >= 500):
                wait = self._retry_wait(response, attempt)
                if wait is not None:
                    if status == 429:
                        self.limiter.block_for(wait)  # the next acquire() waits it out
                    else:
                        self._sleep(wait)
                    continue
            raise error_from_response(method, shown, response, attempts=attempt)

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """How long before retrying a 429 or 5xx; None when the server asks for too long."""
        wait = parse_retry_after(response.headers.get("retry-after"), now=self._clock())
        if wait is None and response.status_code == 429:
            wait = parse_error_body(response.content).retry_after
            state = self.limiter.state
            if wait is None and state is not None and state.reset_at is not None:
                wait = max(0.0, state.reset_at - self._clock())
        if wait is None:
            return self.retry.backoff(attempt)
        return wait if wait <= self.retry.max_retry_after else None


def _seg(value: str) -> str:
    """One path segment, escaped (a phone number's ``+`` stays literal)."""
    return quote(value, safe="+")


def client_from_env(
    *,
    api_key_env: str = "SENDAPI_API_KEY",
    base_url: str = DEFAULT_BASE_URL,
    environ: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> SendApiClient:
    """A client whose key is read from ``api_key_env``.

    Raises:
        MissingSecretError: the variable is unset or empty (the library refuses to go keyless).
    """
    key = secret_from_env(
        api_key_env,
        purpose="SendAPI API key",
        environ=dict(environ) if environ is not None else None,
    )
    return SendApiClient(api_key=key, base_url=base_url, **kwargs)
