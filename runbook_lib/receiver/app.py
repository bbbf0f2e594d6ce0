"""The reference webhook receiver: verify the raw body, store durably, then answer 2xx.

Status per outcome: stored or duplicate → 200; unknown event type → 200 (stored, ignored by
consumers); missing/malformed headers, a ``webhook-*`` header longer than :data:`HEADER_LIMITS`,
bad or stale timestamps, a malformed signature header, a signed body that does not parse as UTF-8
JSON with ``eventId``/``eventType`` (whatever the reason: too deep, a number too long...), or an
``eventId`` that differs from ``webhook-id`` → 400; a signature that does not match → 401; a body
over ``max_body_bytes`` (declared or streamed) → 413, read no further; a body that stalls past
``body_timeout`` → 408; a POST to another provider's path (``/webhooks/<kind>``) → 404 naming
the path this receiver serves. Never 5xx for anything a sender did: a 5xx makes the provider retry
forever. The one 5xx left is a database that cannot commit: the event is not stored, so the
provider should retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..core.errors import ConfigurationError, WebhookVerificationError
from ..core.serving import BackgroundServer
from ..core.signing import STANDARD_WEBHOOKS, TIMESTAMP_TOLERANCE_SECONDS
from ..providers.base import (
    DEFAULT_PROVIDER,
    Provider,
    SignatureScheme,
    get_provider,
    provider_names,
)
from ..security.secrets import secret_from_env
from .store import DEFAULT_REJECTION_SAMPLES, EventStore

__all__ = [
    "ReceiverConfig",
    "build_receiver",
    "check_signing_secrets",
    "create_receiver_app",
    "run_receiver",
    "webhook_path",
]

log = logging.getLogger("runbook.receiver")
T = TypeVar("T")


def webhook_path(kind: str | None = None) -> str:
    """Where the receiver takes a provider's webhooks: ``/webhooks/<kind>`` (the default
    provider's, ``/webhooks/redcloud``, when None)."""
    return f"/webhooks/{kind or DEFAULT_PROVIDER}"


WEBHOOK_PATH = webhook_path()  # Red Cloud's, the default provider's
MAX_BODY_BYTES = 1024 * 1024
BODY_TIMEOUT_SECONDS = 10.0
HEADER_LIMITS = STANDARD_WEBHOOKS.header_limits
"""The longest value accepted per header: ids are short, and a rotation list holds a few
``v1,<44 characters>`` signatures."""


def check_signing_secrets(
    secrets: Sequence[str], *, source: str, scheme: SignatureScheme = STANDARD_WEBHOOKS
) -> list[str]:
    """The signing secrets, each checked to be in the scheme's format (Standard Webhooks:
    ``whsec_`` + base64 of a non-empty key).

    ``source`` names where they came from (an environment variable) for the message, which
    never shows a value.

    Raises:
        ConfigurationError: no secret, or one that is not a ``whsec_`` secret.
    """
    keys = [key for secret in secrets for key in secret.split()]
    remedy = (
        f"set {source} to the signing secret exactly as the Red Cloud console shows it "
        "(whsec_ followed by base64); during a rotation, the old and the new separated by a space."
    )
    if not keys:
        raise ConfigurationError(f"the webhook signing secret in {source} is blank.", remedy=remedy)
    for position, key in enumerate(keys, start=1):
        which = f"element {position} of {len(keys)}" if len(keys) > 1 else "it"
        if not scheme.valid_secret(key):
            raise ConfigurationError(
                f"the webhook signing secret in {source} is not valid: {which} is not whsec_ "
                "followed by base64 (value not shown).",
                remedy=remedy,
            )
    return keys


def _reject(status: int, reason: str) -> JSONResponse:
    # After a body refused unread (too large, stalled), the connection is closed, not drained.
    close = {"connection": "close"} if status in (408, 413) else None
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status, headers=close)


class _Refused(Exception):
    """A delivery the receiver answers with a 4xx."""

    def __init__(self, status: int, reason: str, event_type: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.event_type = status, reason, event_type


def _check(
    keys: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int,
    scheme: SignatureScheme = STANDARD_WEBHOOKS,
    parse: Callable[[dict[str, Any]], Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """Verify the signature on the raw body (the provider's scheme), then the envelope.

    ``parse`` is the provider's ``event_from_envelope`` (the default provider's when None): the
    envelope must be one of its events, whose id is the one the scheme verified.
    Returns the parsed envelope and the event id it is stored (and deduplicated) under.

    Raises:
        _Refused: the delivery is answered with this 4xx.
    """
    try:
        delivered = scheme.verify(keys, headers, body, tolerance=tolerance)
    except WebhookVerificationError as exc:
        reason = exc.code or "invalid_signature"
        raise _Refused(401 if reason == "invalid_signature" else 400, reason) from exc
    except Exception as exc:  # never a 5xx for what a sender did
        raise _Refused(400, "malformed_headers") from exc
    try:
        envelope = json.loads(body.decode("utf-8"))
        if not isinstance(envelope, dict):
            raise ValueError("not an object")
        event = (parse or get_provider().event_from_envelope)(envelope)
        event_id, event_type = event.event_id, event.event_type
    # Any failure to parse what was sent (RecursionError when nested too deep, too many digits,
    # not UTF-8) is the sender's: a 4xx, never a 5xx retried forever.
    except Exception as exc:
        raise _Refused(400, "malformed_json") from exc
    if event_id != delivered:
        raise _Refused(400, "event_id_mismatch", event_type)
    return envelope, delivered


def _check_headers(headers: Mapping[str, str], limits: Mapping[str, int] = HEADER_LIMITS) -> None:
    """Refuse ``webhook-*`` values too long to be real, before anything else is read.

    Raises:
        _Refused: 400 ``header_too_long``.
    """
    for name, limit in limits.items():
        value = headers.get(name)
        if value is not None and len(value) > limit:
            raise _Refused(400, "header_too_long")


async def _read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The body, read only while it stays within ``limit`` bytes and ``timeout`` seconds.

    ``Content-Length`` over the limit is refused before a byte is read; a chunked (or longer
    than declared) body is refused as soon as it passes the limit, and the rest is never read.

    Raises:
        _Refused: 413 ``body_too_large``, 408 ``body_timeout`` or 400 ``malformed_headers``.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Refused(400, "malformed_headers")
        if int(declared) > limit:
            raise _Refused(413, "body_too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(413, "body_too_large")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise _Refused(408, "body_timeout") from exc
    return b"".join(chunks)


class _Completions:
    """Awaitable views of the store's futures, with one event-loop wake-up per committed batch.

    ``asyncio.wrap_future`` wakes the loop once per future (a self-pipe write, a callback); the
    writer thread resolves a whole batch at once, so the first completion wakes the loop and the
    rest ride along. On two cores that is the difference between the loop and the writer trading
    the GIL once per batch or once per delivery.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Future[Any]]]]
        self._ready = {}

    def wait(self, future: Future[T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(lambda done: self._done(loop, waiter, done))
        return waiter

    def _done(
        self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Any], done: Future[Any]
    ) -> None:
        with self._lock:
            ready = self._ready.setdefault(loop, [])
            ready.append((waiter, done))
            first = len(ready) == 1
        if first:
            loop.call_soon_threadsafe(self._resolve, loop)

    def _resolve(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            ready = self._ready.pop(loop, [])
        for waiter, done in ready:
            if waiter.cancelled():  # the client went away; the delivery is stored all the same
                continue
            if (error := done.exception()) is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())


def create_receiver_app(
    *,
    secrets: Sequence[str] | str,
    store: EventStore,
    tolerance: int = TIMESTAMP_TOLERANCE_SECONDS,
    path: str | None = None,
    noop_path: str | None = None,
    provider: Provider | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
) -> Starlette:
    """A Starlette app that receives a provider's webhooks into ``store``.

    The provider (the default one when None) says how deliveries are signed (its
    :class:`~runbook_lib.providers.base.SignatureScheme`) and where they arrive: ``path``, by
    default :func:`webhook_path` of its kind; a POST to any other ``/webhooks/<name>`` is a 404
    naming that path (another provider's webhooks pointed at the wrong receiver). ``noop_path`` (off by default;
    benchmarks only) adds a route that verifies exactly like ``path`` and answers 200 without
    storing anything, so a benchmark can isolate the durable write.

    Raises:
        ConfigurationError: a secret is not in the scheme's format (see :func:`check_signing_secrets`).
    """
    provider = provider or get_provider()
    scheme, parse = provider.signature, provider.event_from_envelope
    path = path or webhook_path(provider.kind)
    keys = check_signing_secrets(
        [secrets] if isinstance(secrets, str) else list(secrets),
        source="the receiver's secrets",
        scheme=scheme,
    )
    stored = _Completions()

    async def verified(request: Request) -> tuple[bytes, dict[str, Any], str]:
        """The raw body, envelope and event id of a delivery that passes every check."""
        _check_headers(request.headers, scheme.header_limits)
        body = await _read_body(request, limit=max_body_bytes, timeout=body_timeout)
        return body, *_check(keys, request.headers, body, tolerance, scheme, parse)

    async def receive(request: Request) -> JSONResponse:
        webhook_id = request.headers.get(scheme.id_header)
        try:
            body, envelope, webhook_id = await verified(request)
        except ClientDisconnect:  # nobody is left to answer, and nothing was delivered
            return _reject(400, "client_disconnected")
        except _Refused as refused:
            await stored.wait(
                store.submit_rejection(
                    refused.reason, webhook_id=webhook_id, event_type=refused.event_type
                )
            )
            log.info("rejected webhook %s: %s", webhook_id, refused.reason)
            return _reject(refused.status, refused.reason)
        # stored under the id the scheme verified (Standard Webhooks: webhook-id, which _check
        # compared with the eventId; SendAPI: the envelope id, stable across retries)
        try:
            # The writer thread answers once the batch holding this delivery is committed.
            outcome = await stored.wait(store.submit(body, webhook_id, envelope=envelope))
        except sqlite3.OperationalError:
            raise  # the database failed, not the sender: 5xx, so the provider retries
        except Exception:  # the body cannot be stored as sent (a lone surrogate...): 4xx
            await stored.wait(store.submit_rejection("malformed_json", webhook_id=webhook_id))
            return _reject(400, "malformed_json")
        return JSONResponse({"status": outcome})

    async def noop(request: Request) -> JSONResponse:
        try:
            await verified(request)
        except ClientDisconnect:
            return _reject(400, "client_disconnected")
        except _Refused as refused:
            return _reject(refused.status, refused.reason)
        return JSONResponse({"status": "accepted"})

    async def elsewhere(request: Request) -> JSONResponse:
        wrong, name = request.url.path, request.path_params["name"]
        log.warning("refused a POST to %s: this receiver serves %s", wrong, path)
        other = name if name in provider_names() else "<kind>"
        detail = (
            f"this receiver takes {provider.title} webhooks at {path}, not {wrong}: point the "
            f"webhook at {path}, or run `runbook receiver --provider {other}` for {wrong}"
        )
        return JSONResponse(
            {"status": "rejected", "reason": "wrong_path", "path": path, "detail": detail},
            status_code=404,
        )

    async def healthz(request: Request) -> JSONResponse:
        counts = await run_in_threadpool(store.counts)
        return JSONResponse({"status": "ok", "events": counts["events"]})

    routes = [Route(path, receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    if noop_path is not None:
        routes.append(Route(noop_path, noop, methods=["POST"]))
    routes.append(Route("/webhooks/{name:path}", elsewhere, methods=["POST"]))  # after ``path``
    return Starlette(routes=routes)


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig:
    """How ``runbook receiver`` runs: where it listens, stores, finds its secret, what it bears.

    ``max_body_bytes`` and ``body_timeout`` bound what one request may cost; ``rejection_samples``
    is how many refused deliveries keep their (truncated) details — every one is counted.
    """

    host: str = "127.0.0.1"
    port: int = 8766
    db_path: Path = Path("state/receiver-events.sqlite")
    secret_env: str = "REDCLOUD_WEBHOOK_SECRET"
    provider: str | None = None  # a registered provider's name; the default provider when None
    path: str | None = (
        None  # where it takes the provider's webhooks; webhook_path(provider) if None
    )
    max_body_bytes: int = MAX_BODY_BYTES
    body_timeout: float = BODY_TIMEOUT_SECONDS
    rejection_samples: int = DEFAULT_REJECTION_SAMPLES

    def __post_init__(self) -> None:
        if self.path is None:
            object.__setattr__(self, "path", webhook_path(self.provider))
        if self.max_body_bytes < 1:
            raise ConfigurationError(
                f"max_body_bytes is {self.max_body_bytes}.",
                remedy="give a size of 1 or more bytes.",
            )
        if not self.body_timeout > 0:
            raise ConfigurationError(
                f"body_timeout is {self.body_timeout}.", remedy="give a number of seconds above 0."
            )
        if self.rejection_samples < 0:
            raise ConfigurationError(
                f"rejection_samples is {self.rejection_samples}.", remedy="give 0 or more."
            )


def build_receiver(config: ReceiverConfig, environ: Mapping[str, str] | None = None) -> Starlette:
    """The receiver app for ``config``; refuses to start without a valid signing secret.

    Raises:
        MissingSecretError: the environment variable ``config.secret_env`` is unset.
        ConfigurationError: its value is not ``whsec_`` secrets (the value is never shown).
    """
    env = dict(os.environ if environ is None else environ)
    secret = secret_from_env(config.secret_env, purpose="webhook signing secret", environ=env)
    # Several space-separated secrets: accept either while a rotation is under way.
    provider = get_provider(config.provider)
    keys = check_signing_secrets(
        [secret.reveal()], source=config.secret_env, scheme=provider.signature
    )
    return create_receiver_app(
        secrets=keys,
        store=EventStore(
            config.db_path,
            rejection_samples=config.rejection_samples,
            parse=provider.event_from_envelope,
        ),
        path=config.path,
        max_body_bytes=config.max_body_bytes,
        body_timeout=config.body_timeout,
        provider=provider,
    )


@dataclass
class RunningReceiver:
    """A receiver serving on a loopback port."""

    url: str
    webhook_url: str
    store: EventStore
    server: BackgroundServer


@contextlib.contextmanager
def run_receiver(
    *,
    db_path: str | Path,
    secrets: Sequence[str] | str,
    port: int = 0,
    path: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    rejection_samples: int = DEFAULT_REJECTION_SAMPLES,
    provider: Provider | None = None,
) -> Iterator[RunningReceiver]:
    """Serve a receiver on 127.0.0.1 (a free port by default) until the block ends.

    It takes the provider's webhooks at ``path`` (:func:`webhook_path` of its kind by default).
    """
    provider = provider or get_provider()
    path = path or webhook_path(provider.kind)
    store = EventStore(
        db_path, rejection_samples=rejection_samples, parse=provider.event_from_envelope
    )
    app = create_receiver_app(
        secrets=secrets,
        store=store,
        path=path,
        max_body_bytes=max_body_bytes,
        body_timeout=body_timeout,
        provider=provider,
    )
    server = BackgroundServer(app, port=port, name="receiver")
    server.start()
    try:
        yield RunningReceiver(server.url, server.url + path, store, server)
    finally:
        server.stop()
        store.close()
