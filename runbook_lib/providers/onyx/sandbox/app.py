"""The Onyx sandbox app: the contract under ``/v1/partner``, the control plane under ``/_sandbox``.

Every response carries ``X-Request-Id`` (the Red Cloud sandbox's middleware) and, on the
contract's routes, ``RateLimit-Limit/-Remaining/-Reset`` per credential (600 a minute); over the
budget the answer is ``429 rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ....core.sandbox_kit import RequestIdMiddleware
from . import api, control
from .engine import Engine
from .responses import problem
from .state import OnyxSandboxState

__all__ = ["create_app"]


class RateLimitMiddleware:
    """A one-minute window per credential (from its first request) on ``/v1/``, in RateLimit-*."""

    def __init__(self, app: ASGIApp, *, state: OnyxSandboxState) -> None:
        self.app = app
        self.state = state
        self._windows: dict[str, tuple[float, int]] = {}  # credential digest → (start, count)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        auth = dict(scope["headers"]).get(b"authorization", b"")
        who = hashlib.sha256(auth).hexdigest()
        now = time.time()
        start, count = self._windows.get(who, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        count += 1
        self._windows[who] = (start, count)
        limit = self.state.config.rate_limit_per_minute
        reset = str(max(1, int(60 - (now - start))))
        headers = [
            (b"ratelimit-limit", str(limit).encode()),
            (b"ratelimit-remaining", str(max(0, limit - count)).encode()),
            (b"ratelimit-reset", reset.encode()),
        ]
        if count > limit:
            body = json.dumps(
                {
                    "type": "https://onyxmobile.net/problems/rate_limited",
                    "title": "Rate limited",
                    "status": 429,
                    "detail": f"More than {limit} requests this minute.",
                    "code": "rate_limited",
                    "requestId": scope["state"]["request_id"],
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"retry-after", reset.encode()),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(headers)
            await send(message)

        await self.app(scope, receive, with_headers)


async def _root(request: Request) -> Response:
    return JSONResponse({"service": "onyx-sandbox", "contract": "onyx-v1"})


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    code = "not_found" if status == 404 else "method_not_allowed"
    return problem(request, status, code, f"{request.method} {request.url.path} is not a route.")


def create_app(state: OnyxSandboxState) -> Starlette:
    """The app serving ``state``; its lifespan runs the :class:`~.engine.Engine`."""
    engine = Engine(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    app = Starlette(
        routes=[
            Route("/", _root, methods=["GET"]),
            Mount("/v1/partner", routes=api.routes()),
            Mount("/_sandbox", routes=control.routes()),
        ],
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=lifespan,
    )
    app.state.onyx = state
    app.add_middleware(RateLimitMiddleware, state=state)
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer, even a 429, has an id
    return app
