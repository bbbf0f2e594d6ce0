"""What every provider's sandbox shares: fault profiles, request ids, connection resets, times.

Provider-neutral on purpose: a sandbox under ``providers/<kind>/sandbox/`` imports these from
here, never from another provider's folder. A provider subclasses :class:`FaultProfile` only to
name its routes (``ROUTES``); the profile shape, validation, seeded dice and webhook faults are
the same everywhere:

    api:
      <route>: {rate_429: 0.2, retry_after: 1, rate_5xx: 0.1, status_5xx: 503, latency_ms: 50, reset_rate: 0.05}
    webhooks: {drop_rate: 0.1, duplicate_rate: 0.2, reorder: true, delay_seconds: 2,
               bad_signature_rate: 0.1, stale_timestamp_rate: 0.1,
               outages: [{start: 0, seconds: 5}]}
    seed: 7

:class:`WebhookDispatcher` is the one webhook sender: start/stop/wake, the drain loop, the
fault decisions (outage, drop, duplicate, wrong secret, stale timestamp) and the POST; a
provider's subclass says only what is due, how it signs, how it stales, and what it records.
:class:`SandboxControlClient` is the one client of a sandbox's ``/_sandbox`` control plane
(faults get/set/clear, the error it raises); a provider's subclass adds its own drills' calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

import httpx
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import RunbookError

__all__ = [
    "REHEARSAL_RETRY_SCHEDULE",
    "STALE_SECONDS",
    "Attempt",
    "ConnectionReset",
    "FaultProfile",
    "Faults",
    "RequestIdMiddleware",
    "RouteFaults",
    "SandboxControlClient",
    "WebhookDispatcher",
    "WebhookFaults",
    "body_hash",
    "iso",
    "only_keys",
]

# A rehearsal's webhook retry schedule (seconds between attempts): the contracts' schedules (5 s,
# 5 min, 30 min, ...) compressed so a drill's endpoint outage of a few seconds is retried within
# a quarter of a second of its end. The demo and the tests start sandboxes with it; a sandbox
# started without it keeps its contract's schedule.
REHEARSAL_RETRY_SCHEDULE: tuple[float, ...] = (0.05, 0.1, 0.1) + (0.25,) * 16 + (0.5, 1.0, 2.0, 5.0)


def iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body_hash(body: Any) -> str:
    """The canonical JSON digest a sandbox compares idempotent requests by."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _rate(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _nonneg(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def only_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse unknown keys of a fault profile section, naming them and what is allowed."""
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


@dataclass(frozen=True)
class RouteFaults:
    """Faults for one API route of a provider's sandbox."""

    rate_429: float = 0.0
    retry_after: int = 1
    rate_5xx: float = 0.0
    status_5xx: int = 503
    latency_ms: float = 0.0
    reset_rate: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> RouteFaults:
        only_keys(data, set(cls.__dataclass_fields__), where)
        status = int(data.get("status_5xx", 503))
        if status not in (500, 502, 503, 504):
            raise ValueError(f"{where}.status_5xx must be 500, 502, 503 or 504")
        return cls(
            rate_429=_rate(data.get("rate_429", 0.0), f"{where}.rate_429"),
            retry_after=int(_nonneg(data.get("retry_after", 1), f"{where}.retry_after")),
            rate_5xx=_rate(data.get("rate_5xx", 0.0), f"{where}.rate_5xx"),
            status_5xx=status,
            latency_ms=_nonneg(data.get("latency_ms", 0.0), f"{where}.latency_ms"),
            reset_rate=_rate(data.get("reset_rate", 0.0), f"{where}.reset_rate"),
        )


@dataclass(frozen=True)
class WebhookFaults:
    """Faults in webhook delivery."""

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder: bool = False
    delay_seconds: float = 0.0
    bad_signature_rate: float = 0.0
    stale_timestamp_rate: float = 0.0
    outages: tuple[tuple[float, float], ...] = ()  # (start offset s, length s) from apply time

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookFaults:
        only_keys(data, set(cls.__dataclass_fields__), "webhooks")
        outages = []
        for i, window in enumerate(data.get("outages") or []):
            if not isinstance(window, dict):
                raise ValueError(f"webhooks.outages[{i}] must be {{start, seconds}}")
            only_keys(window, {"start", "seconds"}, f"webhooks.outages[{i}]")
            outages.append(
                (
                    _nonneg(window.get("start", 0), f"webhooks.outages[{i}].start"),
                    _nonneg(window.get("seconds", 0), f"webhooks.outages[{i}].seconds"),
                )
            )
        return cls(
            drop_rate=_rate(data.get("drop_rate", 0.0), "webhooks.drop_rate"),
            duplicate_rate=_rate(data.get("duplicate_rate", 0.0), "webhooks.duplicate_rate"),
            reorder=bool(data.get("reorder", False)),
            delay_seconds=_nonneg(data.get("delay_seconds", 0.0), "webhooks.delay_seconds"),
            bad_signature_rate=_rate(
                data.get("bad_signature_rate", 0.0), "webhooks.bad_signature_rate"
            ),
            stale_timestamp_rate=_rate(
                data.get("stale_timestamp_rate", 0.0), "webhooks.stale_timestamp_rate"
            ),
            outages=tuple(outages),
        )


@dataclass(frozen=True)
class FaultProfile:
    """Every fault at once; the empty profile is a well-behaved provider."""

    ROUTES: ClassVar[tuple[str, ...]] = ()  # a provider's subclass names its routes

    api: dict[str, RouteFaults] = field(default_factory=dict)
    webhooks: WebhookFaults = WebhookFaults()
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaultProfile:
        """Validate a profile; raises ``ValueError`` naming the bad key and what is allowed."""
        data = data or {}
        if not isinstance(data, dict):
            raise ValueError("a fault profile is a mapping with api, webhooks and seed")
        only_keys(data, {"api", "webhooks", "seed"}, "fault profile")
        api = {}
        for route, faults in (data.get("api") or {}).items():
            if route not in cls.ROUTES:
                raise ValueError(f"api.{route}: unknown route; use one of {', '.join(cls.ROUTES)}")
            api[route] = RouteFaults.from_dict(faults or {}, f"api.{route}")
        return cls(
            api=api,
            webhooks=WebhookFaults.from_dict(data.get("webhooks") or {}),
            seed=int(data.get("seed", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        hooks = asdict(self.webhooks)
        hooks["outages"] = [{"start": s, "seconds": n} for s, n in self.webhooks.outages]
        return {
            "api": {k: asdict(v) for k, v in self.api.items()},
            "webhooks": hooks,
            "seed": self.seed,
        }


class Faults:
    """The active profile, its seeded dice, and when it was applied (for outage windows)."""

    def __init__(self, profile: Any = None) -> None:
        self._lock = threading.Lock()
        self.apply(FaultProfile() if profile is None else profile)

    def apply(self, profile: FaultProfile) -> None:
        with self._lock:
            self.profile = profile
            self.rng = random.Random(profile.seed)
            self.applied_at = time.time()

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self.rng.random() < rate

    def route(self, name: str) -> RouteFaults | None:
        return self.profile.api.get(name)

    def in_outage(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        elapsed = now - self.applied_at
        return any(
            start <= elapsed < start + length for start, length in self.profile.webhooks.outages
        )


class RequestIdMiddleware:
    """Every response carries ``X-Request-Id``; handlers read it from ``scope['state']``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


class InjectedConnectionReset(Exception):
    """Raised after the response has started, so the server drops the connection mid-answer."""


class _HideInjectedResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedConnectionReset)


logging.getLogger("uvicorn.error").addFilter(_HideInjectedResets())


class ConnectionReset(Response):
    """A response that starts, then breaks the connection: the client sees a transport error."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        raise InjectedConnectionReset("connection reset (injected)")


STALE_SECONDS = 600  # how far back a stale-timestamp fault dates an attempt: past every tolerance

ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Attempt(Generic[ItemT]):
    """One delivery attempt of a provider's outbox item: where it goes, what, signed with what."""

    item: ItemT
    url: str
    body: bytes
    secret: Any  # a str or a Secret, as the provider keeps it; only its signer reads it
    attempt_id: str | None = None  # a per-attempt id, where the provider's wire has one


class WebhookDispatcher(ABC, Generic[ItemT]):
    """An asyncio task that drains a sandbox's outbox, one attempt at a time, in due order.

    A subclass gives :meth:`due`, :meth:`attempt`, :meth:`wrong_secret`, :meth:`sign` and
    :meth:`record` (and :meth:`next_due` or :meth:`wait_seconds` to say when to look again).
    """

    TASK_NAME: ClassVar[str] = "sandbox-webhooks"
    POLL_SECONDS: ClassVar[float] = 0.5  # the longest it sleeps when nothing is due
    # True: a duplicate is a second POST of the same attempt; False: the state queues it again
    DUPLICATES_AT_DISPATCH: ClassVar[bool] = False

    def __init__(
        self,
        faults: Faults,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.faults = faults
        self._timeout = timeout
        self._transport = transport
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    # -- what a provider says ------------------------------------------------------------------
    @abstractmethod
    def due(self, now: float) -> Sequence[ItemT]:
        """The items to attempt now, in the order to attempt them."""

    def next_due(self) -> float | None:
        """When the next item falls due (``None``: nothing pending, poll)."""
        return None

    def wait_seconds(self) -> float:
        """How long to sleep before looking again, unless woken."""
        next_due = self.next_due()
        if next_due is None:
            return self.POLL_SECONDS
        return min(self.POLL_SECONDS, max(0.0, next_due - time.time()))

    @abstractmethod
    def attempt(self, item: ItemT) -> Attempt[ItemT] | None:
        """This attempt of ``item``, or ``None`` when it is no longer to be delivered."""

    @abstractmethod
    def wrong_secret(self) -> str:
        """A well-formed secret that is not the endpoint's (the bad-signature fault)."""

    @abstractmethod
    def sign(
        self, attempt: Attempt[ItemT], secret: Any, *, stale: bool
    ) -> tuple[bytes, dict[str, str]]:
        """The body to send and its headers; ``stale`` dates it :data:`STALE_SECONDS` back."""

    @abstractmethod
    def record(self, attempt: Attempt[ItemT], status: int | None, error: str | None) -> None:
        """Book the attempt's outcome (``status`` None: it never got an answer)."""

    # -- the shared machinery ------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        self._task = asyncio.create_task(self._run(), name=self.TASK_NAME)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        """Tell the dispatcher new items are due (safe from any thread, and after it stopped)."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            for item in self.due(time.time()):
                await self.deliver(item)
            timeout = self.wait_seconds()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def deliver(self, item: ItemT) -> None:
        """One attempt of ``item``, with the profile's webhook faults decided here."""
        assert self._client is not None
        attempt = self.attempt(item)
        if attempt is None:
            return
        faults = self.faults
        hooks = faults.profile.webhooks
        if faults.in_outage():
            self.record(attempt, None, "endpoint outage (injected)")
            return
        if faults.roll(hooks.drop_rate):
            self.record(attempt, None, "dropped (injected)")
            return
        secret = self.wrong_secret() if faults.roll(hooks.bad_signature_rate) else attempt.secret
        body, headers = self.sign(attempt, secret, stale=faults.roll(hooks.stale_timestamp_rate))
        copies = 1
        if self.DUPLICATES_AT_DISPATCH and faults.roll(hooks.duplicate_rate):
            copies = 2
        status: int | None = None
        error: str | None = None
        for _ in range(copies):
            try:
                response = await self._client.post(attempt.url, content=body, headers=headers)
                status, error = response.status_code, None
            except httpx.HTTPError as exc:
                status, error = None, type(exc).__name__
        self.record(attempt, status, error)


def _error_detail(response: httpx.Response) -> str:
    """What a control-plane error says: its ``detail`` or ``error.message``, else the raw text."""
    try:
        data = response.json()
    except ValueError:  # empty, or not JSON (a proxy's HTML page): show the text itself
        return response.text[:200]
    if isinstance(data, dict):
        if data.get("detail") is not None:
            return str(data["detail"])
        error = data.get("error")
        if isinstance(error, dict) and error.get("message") is not None:
            return str(error["message"])
    return response.text[:200]


class SandboxControlClient:
    """Steer a running sandbox's ``/_sandbox`` control plane over HTTP (notebook, CLI, test).

    A provider's subclass adds the calls its drills need; the faults calls are here because every
    sandbox serves ``GET|PUT|DELETE /_sandbox/faults``.
    """

    # Where the control plane lives is the provider's to say (tests/test_architecture.py keeps
    # control-plane URLs out of everything but the providers' folders).
    CONTROL_PREFIX: ClassVar[str]
    LABEL: ClassVar[str] = "sandbox"  # names the sandbox in an error
    API_PREFIX: ClassVar[str] = ""  # a contract prefix (``/v1``) a base URL may carry; dropped

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        if self.API_PREFIX:
            root = root.removesuffix(self.API_PREFIX)
        self._http = httpx.Client(
            base_url=root + self.CONTROL_PREFIX, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise RunbookError(
                f"{self.LABEL} control {method} {path} failed: {_error_detail(response)}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
        return response.json()

    def set_faults(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault profile (validated by the sandbox); returns it as applied."""
        return self._call("PUT", "/faults", profile)

    def clear_faults(self) -> dict[str, Any]:
        """Back to a well-behaved provider; returns the empty profile."""
        return self._call("DELETE", "/faults")

    def faults(self) -> dict[str, Any]:
        """The active fault profile."""
        return self._call("GET", "/faults")
