"""What the Onyx sandbox's route modules share: problem+json, body parsing, the state."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .rules import Refusal
from .state import OnyxSandboxState

__all__ = ["data", "problem", "read_json", "refused", "state_of"]


def state_of(request: Request) -> OnyxSandboxState:
    return request.app.state.onyx


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    reason_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 body with Onyx's extensions (``code``, ``reasonCode``, ``requestId``)."""
    body: dict[str, Any] = {
        "type": f"https://onyxmobile.net/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        "requestId": request.state.request_id,
    }
    if reason_code:
        body["reasonCode"] = reason_code
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def refused(request: Request, refusal: Refusal) -> JSONResponse:
    return problem(
        request, refusal.status, refusal.code, refusal.detail, reason_code=refusal.reason_code
    )


def data(payload: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse({"data": payload}, status_code=status, headers=headers or None)


async def read_json(request: Request) -> Any:
    """The body as JSON, or a ``Refusal`` for 400 when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return Refusal(400, "invalid_request", "The body is not valid JSON.")
