"""What the sandbox's apps share: request ids, problem+json answers, injected connection resets."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ....core.sandbox_kit import ConnectionReset, RequestIdMiddleware

__all__ = ["ConnectionReset", "RequestIdMiddleware", "json_body", "problem", "request_id"]


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
