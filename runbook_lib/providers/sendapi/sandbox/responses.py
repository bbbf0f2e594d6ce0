"""The sandbox's answers in the contract's shapes: ``{"data": …}`` and the superset error body."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["error", "ok", "page", "read_json", "request_id"]

# Numeric codes of the contract's named errors (the others are sent by name).
NUMERIC = {"missing_api_key": 4010, "invalid_api_key": 4011, "revoked_api_key": 4012,
           "expired_api_key": 4013, "insufficient_scope": 4030, "quota_exceeded": 4020,
           "rate_limit_exceeded": 4029, "invalid_request": 4000, "invalid_phone": 4001}  # fmt: skip


def request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "req_unknown")


def ok(data: Any, *, status: int = 200, meta: dict[str, Any] | None = None,
       headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body: dict[str, Any] = {"data": data}
    if meta is not None:
        body["meta"] = meta
    return JSONResponse(body, status_code=status, headers=headers)


def page(items: list[Any]) -> JSONResponse:
    """A whole list as one page, with the contract's ``meta``."""
    return ok(
        items, meta={"total": len(items), "page": 1, "per_page": max(len(items), 1), "last_page": 1}
    )


def error(request: Request, status: int, etype: str, code: str, message: str, *,
          param: str | None = None, retry_after: int | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    """``{"success": false, "error": {type, code, message, param, request_id, retry_after?}}``."""
    body: dict[str, Any] = {"type": etype, "code": NUMERIC.get(code, code), "message": message,
                            "param": param, "request_id": request_id(request)}  # fmt: skip
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers = {"Retry-After": str(retry_after), **(headers or {})}
    return JSONResponse({"success": False, "error": body}, status_code=status, headers=headers)


async def read_json(request: Request) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:
        return None
