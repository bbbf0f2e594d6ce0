"""What the sandbox's apps share: request ids, problem+json answers, injected connection resets."""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ....core.sandbox_kit import ConnectionReset

__all__ = ["ConnectionReset", "RequestIdMiddleware", "json_body", "problem", "request_id"]


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


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:
        return None


def request_id(request: Request) -> str:
    return request.state.request_id


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    retryable: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "type": f"https://docs.redcloud.example/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        "requestId": request_id(request),
        "retryable": retryable,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )
