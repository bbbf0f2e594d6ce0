"""The sandbox's contract API: the Red Cloud v1 routes (token, whoami, numbers, send) over its state.

Faults are injected per route (:mod:`.faults`); a send that is accepted wakes the webhook
dispatcher (:mod:`.webhooks`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..contract import API
from .config import INVALID_DESTINATION
from .http import ConnectionReset, problem, request_id
from .state import SandboxState, iso
from .webhooks import WebhookDispatcher

__all__ = ["ContractApi"]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
PRINTABLE_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
SCOPE = "messages:send numbers:read"


class ContractApi:
    """The routes a Red Cloud client talks to."""

    def __init__(self, state: SandboxState, dispatcher: WebhookDispatcher) -> None:
        self.state = state
        self.config = state.config
        self.dispatcher = dispatcher

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root, methods=["GET"]),
            Route(API["token"], self.token, methods=["POST"]),
            Route(API["whoami"], self.whoami, methods=["GET"]),
            Route(API["numbers"], self.numbers, methods=["GET"]),
            Route(API["send"], self.send, methods=["POST"]),
        ]

    async def api_fault(self, request: Request, route: str) -> Response | None:
        """Injected latency, resets, 429 and 5xx for ``route`` (None: behave)."""
        faults = self.state.faults.route(route)
        if faults is None:
            return None
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if self.state.faults.roll(faults.reset_rate):
            return ConnectionReset()
        if self.state.faults.roll(faults.rate_429):
            return problem(
                request, 429, "rate_limited", "Too many requests (injected).", retryable=True,
                headers={"Retry-After": str(faults.retry_after)},
            )  # fmt: skip
        if self.state.faults.roll(faults.rate_5xx):
            if route == "token":
                return JSONResponse({"error": "temporarily_unavailable"}, faults.status_5xx)
            return problem(
                request, faults.status_5xx, "service_unavailable", "The service failed (injected).",
                retryable=True, headers={"Retry-After": "1"} if faults.status_5xx == 503 else None,
            )  # fmt: skip
        return None

    # -- auth -------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        if (fault := await self.api_fault(request, "token")) is not None:
            return fault
        # application/x-www-form-urlencoded, parsed here to avoid a multipart dependency
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
                client_id, _, client_secret = decoded.partition(":")
                client_id, client_secret = unquote(client_id), unquote(client_secret)
            except (binascii.Error, UnicodeDecodeError):
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "bad Basic header"}, 400
                )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if client_id != self.config.client_id or not secrets.compare_digest(
            str(client_secret or ""), self.config.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed."},
                401,
                headers={"WWW-Authenticate": 'Basic realm="redcloud"'},
            )
        return JSONResponse(
            {"access_token": self.state.issue_token(), "token_type": "Bearer",
             "expires_in": self.config.token_ttl, "scope": SCOPE},
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        code = self.state.token_problem(token)
        if code is None:
            return None
        detail = (
            "The access token expired."
            if code == "token_expired"
            else "The access token is not valid."
        )
        return problem(
            request, 401, code, detail,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'},
        )  # fmt: skip

    # -- API --------------------------------------------------------------------------------
    async def whoami(self, request: Request) -> Response:
        if (fault := await self.api_fault(request, "whoami")) is not None:
            return fault
        if (denied := self.authenticate(request)) is not None:
            return denied
        with self.state.lock:
            total = len(self.state.numbers)
            active = sum(1 for n in self.state.numbers if n["status"] == "ACTIVE")
            last_ok, last_fail = self.state.last_success_at, self.state.last_failure_at
        return JSONResponse(
            {
                "clientId": self.config.api_client_id,
                "clientName": self.config.client_name,
                "accountId": self.config.account_id,
                "environment": self.config.environment,
                "scopes": SCOPE.split(),
                "assignedNumbers": {"total": total, "active": active},
                "webhook": {
                    "url": self.state.webhook_url,
                    "status": self.state.webhook_status(),
                    "signingSecretSet": bool(self.config.webhook_secret),
                    "lastSuccessAt": iso(last_ok) if last_ok else None,
                    "lastFailureAt": iso(last_fail) if last_fail else None,
                },
            }
        )

    async def numbers(self, request: Request) -> Response:
        if (fault := await self.api_fault(request, "numbers")) is not None:
            return fault
        if (denied := self.authenticate(request)) is not None:
            return denied
        limit_text = request.query_params.get("limit")
        cursor = request.query_params.get("cursor")
        try:
            limit = int(limit_text) if limit_text else self.config.numbers_page_size
            if not 1 <= limit <= 100:
                raise ValueError
        except ValueError:
            return problem(
                request, 400, "invalid_request", "limit must be an integer from 1 to 100."
            )
        offset = 0
        if cursor:
            try:
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:"))
                if offset < 0:
                    raise ValueError
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return problem(
                    request, 400, "invalid_request", "cursor is not one this API issued."
                )
        with self.state.lock:
            page = [dict(n) for n in self.state.numbers[offset : offset + limit]]
            more = offset + limit < len(self.state.numbers)
        next_cursor = (
            base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode() if more else None
        )
        return JSONResponse({"data": page, "nextCursor": next_cursor})

    async def send(self, request: Request) -> Response:
        if (fault := await self.api_fault(request, "send")) is not None:
            return fault
        if (denied := self.authenticate(request)) is not None:
            return denied
        key = request.headers.get("idempotency-key")
        if key is None or key == "":
            return problem(
                request, 400, "missing_idempotency_key", "The Idempotency-Key header is required."
            )
        if not PRINTABLE_KEY.match(key):
            return problem(
                request,
                400,
                "invalid_request",
                "Idempotency-Key must be 1-255 printable ASCII characters.",
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return problem(request, 400, "invalid_request", "The body is not valid JSON.")
        if not isinstance(body, dict):
            return problem(request, 400, "invalid_request", "The body must be a JSON object.")
        verdict, record = self.state.begin(key, self.state.body_hash(body))
        if verdict == "in_progress":
            return problem(
                request, 409, "idempotency_request_in_progress",
                "A request with this Idempotency-Key is still being processed.",
                retryable=True, headers={"Retry-After": "1"},
            )  # fmt: skip
        if verdict == "reused":
            return problem(
                request, 422, "idempotency_key_reused",
                "This Idempotency-Key was used with a different request body.",
            )  # fmt: skip
        if verdict == "replay":
            assert record is not None and record.response is not None
            return JSONResponse(
                record.response,
                status_code=record.status,
                headers={"Idempotent-Replayed": "true"},
                media_type="application/json"
                if record.status < 400
                else "application/problem+json",
            )
        try:
            if self.config.send_processing_delay:
                await asyncio.sleep(self.config.send_processing_delay)
            status, payload = self._accept_or_refuse(request, body)
        except BaseException:
            self.state.finish(key, 0, None)
            raise
        self.state.finish(key, status, payload)
        if status == 202:
            self.dispatcher.wake()
        media = "application/json" if status == 202 else "application/problem+json"
        return JSONResponse(payload, status_code=status, media_type=media)

    def _accept_or_refuse(
        self, request: Request, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        def refuse(status: int, code: str, detail: str) -> tuple[int, dict[str, Any]]:
            return status, json.loads(problem(request, status, code, detail).body)

        send_from, to, text = body.get("sendFrom"), body.get("to"), body.get("body")
        media, reference = body.get("media"), body.get("externalReference")
        if not isinstance(send_from, str) or not isinstance(to, str):
            return refuse(400, "invalid_request", "sendFrom and to are required strings.")
        if text is not None and not isinstance(text, str):
            return refuse(400, "invalid_request", "body must be a string.")
        if not text and not media:
            return refuse(400, "invalid_request", "A message needs a body or media.")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 128):
            return refuse(
                400,
                "invalid_request",
                "externalReference must be a string of at most 128 characters.",
            )
        if media is not None and (
            not isinstance(media, list)
            or not all(isinstance(m, dict) and isinstance(m.get("url"), str) for m in media)
        ):
            return refuse(400, "invalid_request", "media must be a list of {url, contentType}.")
        number = self.state.number(send_from)
        if number is None or number["status"] != "ACTIVE" or not number["smsEnabled"]:
            why = (
                "unknown"
                if number is None
                else f"{number['status']}, SMS {'on' if number['smsEnabled'] else 'off'}"
            )
            return refuse(422, "invalid_send_from", f"sendFrom {send_from} cannot send ({why}).")
        if media and not number["mmsEnabled"]:
            return refuse(422, "mms_not_enabled", f"Number {send_from} is not MMS-enabled.")
        if not E164.match(to) or to == INVALID_DESTINATION:
            return refuse(422, "invalid_destination", "to must be a reachable E.164 number.")
        return 202, self.state.create_message(body, request_id(request))

    async def root(self, request: Request) -> Response:
        return JSONResponse({"service": "redcloud-sandbox", "contract": "v1"})
