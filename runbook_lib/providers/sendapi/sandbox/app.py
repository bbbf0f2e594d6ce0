"""The SendAPI sandbox app: the contract under ``/v1``, the control plane under ``/_sandbox``.

:class:`RateLimitMiddleware` runs before every ``/v1`` route: it gives each response an
``X-Request-Id`` and the key's ``X-RateLimit-Limit/Remaining/Reset``, and answers 429 4029 with
``Retry-After`` once the key's window is full — errors included, as the contract says.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api import ContractApi
from .control import ControlPlane
from .responses import error
from .state import SandboxState
from .webhooks import WebhookDispatcher

__all__ = ["RateLimitMiddleware", "create_app"]


class RateLimitMiddleware:
    """Request ids everywhere; per-key rate limiting and headers on ``/v1``."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        extra = [(b"x-request-id", rid.encode())]
        if scope["path"].startswith("/v1/"):
            headers = dict(scope.get("headers") or [])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else "anonymous"
            decision = self.state.hit(key or "anonymous")
            extra += [(b"x-ratelimit-limit", str(decision.limit).encode()),
                      (b"x-ratelimit-remaining", str(decision.remaining).encode()),
                      (b"x-ratelimit-reset", str(decision.reset).encode())]  # fmt: skip
            if not decision.allowed:
                response = error(Request(scope), 429, "rate_limit_exceeded", "rate_limit_exceeded",
                                 "Rate limit exceeded for this API key.", retry_after=decision.retry_after)  # fmt: skip
                response.raw_headers.extend(extra)
                await response(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(state: SandboxState) -> tuple[Starlette, WebhookDispatcher]:
    """The Starlette app serving ``state``, and the dispatcher its lifespan runs."""
    dispatcher = WebhookDispatcher(state)
    api = ContractApi(state, dispatcher.wake)
    control = ControlPlane(state, dispatcher.wake)

    async def root(request: Request) -> Response:
        return JSONResponse({"service": "sendapi-sandbox", "contract": "sendapi-v1", "api": "/v1"})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "not_found" if status == 404 else "method_not_allowed"
        return error(
            request,
            status,
            "invalid_request_error",
            code,
            f"{request.method} {request.url.path} is not a route.",
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()

    app = Starlette(
        routes=[
            Route("/", root, methods=["GET"]),
            Mount("/v1", routes=api.routes),
            Mount("/_sandbox", routes=control.routes),
        ],  # fmt: skip
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.add_middleware(RateLimitMiddleware, state=state)
    return app, dispatcher
