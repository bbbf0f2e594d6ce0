"""The reference webhook receiver: verify the raw body, store durably, then answer 2xx.

Status per outcome: stored or duplicate → 200; unknown event type → 200 (stored, ignored by
consumers); missing/malformed headers, bad or stale timestamps, a malformed signature header, a
body that is not UTF-8 JSON with ``eventId``/``eventType``, or an ``eventId`` that differs from
``webhook-id`` → 400; a signature that does not match → 401. Never 5xx for anything a sender did:
a 5xx makes the provider retry forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..core.errors import WebhookVerificationError
from ..core.serving import BackgroundServer
from ..core.signing import STANDARD_WEBHOOKS, TIMESTAMP_TOLERANCE_SECONDS
from ..providers.base import Provider, SignatureScheme, get_provider
from ..security.secrets import secret_from_env
from .store import EventStore

__all__ = ["ReceiverConfig", "build_receiver", "create_receiver_app", "run_receiver"]

log = logging.getLogger("runbook.receiver")
T = TypeVar("T")
WEBHOOK_PATH = "/webhooks/redcloud"


def _reject(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


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
) -> dict[str, Any]:
    """Verify the signature on the raw body (the provider's scheme), then the envelope.

    Returns the parsed envelope.

    Raises:
        _Refused: the delivery is answered with this 4xx.
    """
    try:
        scheme.verify(keys, headers, body, tolerance=tolerance)
    except WebhookVerificationError as exc:
        reason = exc.code or "invalid_signature"
        raise _Refused(401 if reason == "invalid_signature" else 400, reason) from exc
    except Exception as exc:  # never a 5xx for what a sender did
        raise _Refused(400, "malformed_headers") from exc
    try:
        envelope = json.loads(body.decode("utf-8"))
        if not isinstance(envelope, dict):
            raise ValueError("not an object")
        event_id, event_type = envelope.get("eventId"), envelope.get("eventType")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            raise ValueError("no eventId/eventType")
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(400, "malformed_json") from exc
    if event_id != headers.get("webhook-id"):
        raise _Refused(400, "event_id_mismatch", event_type)
    return envelope


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
    path: str = WEBHOOK_PATH,
    noop_path: str | None = None,
    provider: Provider | None = None,
) -> Starlette:
    """A Starlette app that receives a provider's webhooks into ``store``.

    The provider (the default one when None) says how deliveries are signed (its
    :class:`~runbook_lib.providers.base.SignatureScheme`). ``noop_path`` (off by default;
    benchmarks only) adds a route that verifies exactly like ``path`` and answers 200 without
    storing anything, so a benchmark can isolate the durable write.
    """
    scheme = (provider or get_provider()).signature
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys or not all(keys):
        raise ValueError("the receiver needs at least one signing secret")
    stored = _Completions()

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        webhook_id = request.headers.get("webhook-id")
        try:
            envelope = _check(keys, request.headers, body, tolerance, scheme)
        except _Refused as refused:
            await stored.wait(
                store.submit_rejection(
                    refused.reason, webhook_id=webhook_id, event_type=refused.event_type
                )
            )
            log.info("rejected webhook %s: %s", webhook_id, refused.reason)
            return _reject(refused.status, refused.reason)
        assert webhook_id is not None  # _check compared it with the envelope's eventId
        try:
            # The writer thread answers once the batch holding this delivery is committed.
            outcome = await stored.wait(store.submit(body, webhook_id, envelope=envelope))
        except ValueError:
            await stored.wait(store.submit_rejection("malformed_json", webhook_id=webhook_id))
            return _reject(400, "malformed_json")
        return JSONResponse({"status": outcome})

    async def noop(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            _check(keys, request.headers, body, tolerance, scheme)
        except _Refused as refused:
            return _reject(refused.status, refused.reason)
        return JSONResponse({"status": "accepted"})

    async def healthz(request: Request) -> JSONResponse:
        counts = await run_in_threadpool(store.counts)
        return JSONResponse({"status": "ok", "events": counts["events"]})

    routes = [Route(path, receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    if noop_path is not None:
        routes.append(Route(noop_path, noop, methods=["POST"]))
    return Starlette(routes=routes)


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig:
    """How ``runbook receiver`` runs: where it listens, stores, and finds its secret."""

    host: str = "127.0.0.1"
    port: int = 8766
    db_path: Path = Path("state/receiver-events.sqlite")
    secret_env: str = "REDCLOUD_WEBHOOK_SECRET"
    path: str = WEBHOOK_PATH
    provider: str | None = None  # a registered provider's name; the default provider when None


def build_receiver(config: ReceiverConfig, environ: Mapping[str, str] | None = None) -> Starlette:
    """The receiver app for ``config``; refuses to start without a signing secret.

    Raises:
        MissingSecretError: the environment variable ``config.secret_env`` is unset.
    """
    env = dict(os.environ if environ is None else environ)
    secret = secret_from_env(config.secret_env, purpose="webhook signing secret", environ=env)
    # Several space-separated secrets: accept either while a rotation is under way.
    provider = get_provider(config.provider)
    return create_receiver_app(
        secrets=secret.reveal().split(),
        store=EventStore(config.db_path, parse=provider.event_from_envelope),
        path=config.path,
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
    path: str = WEBHOOK_PATH,
    provider: Provider | None = None,
) -> Iterator[RunningReceiver]:
    """Serve a receiver on 127.0.0.1 (a free port by default) until the block ends."""
    provider = provider or get_provider()
    store = EventStore(db_path, parse=provider.event_from_envelope)
    app = create_receiver_app(secrets=secrets, store=store, path=path, provider=provider)
    server = BackgroundServer(app, port=port, name="receiver")
    server.start()
    try:
        yield RunningReceiver(server.url, server.url + path, store, server)
    finally:
        server.stop()
        store.close()
