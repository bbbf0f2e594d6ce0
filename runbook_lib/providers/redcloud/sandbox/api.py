"""The sandbox's HTTP surface: the Red Cloud v1 contract plus ``/_sandbox/`` inspection routes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import INVALID_DESTINATION
from .faults import FaultProfile
from .state import SandboxState, iso
from .webhooks import WebhookDispatcher

__all__ = ["create_app"]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
PRINTABLE_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
SCOPE = "messages:send numbers:read"


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


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:
        return None


def _rid(request: Request) -> str:
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
        "requestId": _rid(request),
        "retryable": retryable,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


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


def create_app(state: SandboxState) -> tuple[Starlette, WebhookDispatcher]:
    """The Starlette app serving ``state``, and the dispatcher its lifespan runs."""
    config = state.config
    dispatcher = WebhookDispatcher(state)

    async def api_fault(request: Request, route: str) -> Response | None:
        """Injected latency, resets, 429 and 5xx for ``route`` (None: behave)."""
        faults = state.faults.route(route)
        if faults is None:
            return None
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if state.faults.roll(faults.reset_rate):
            return ConnectionReset()
        if state.faults.roll(faults.rate_429):
            return problem(
                request, 429, "rate_limited", "Too many requests (injected).", retryable=True,
                headers={"Retry-After": str(faults.retry_after)},
            )  # fmt: skip
        if state.faults.roll(faults.rate_5xx):
            if route == "token":
                return JSONResponse({"error": "temporarily_unavailable"}, faults.status_5xx)
            return problem(
                request, faults.status_5xx, "service_unavailable", "The service failed (injected).",
                retryable=True, headers={"Retry-After": "1"} if faults.status_5xx == 503 else None,
            )  # fmt: skip
        return None

    # -- auth -------------------------------------------------------------------------------
    async def token(request: Request) -> Response:
        if (fault := await api_fault(request, "token")) is not None:
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
        if client_id != config.client_id or not secrets.compare_digest(
            str(client_secret or ""), config.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed."},
                401,
                headers={"WWW-Authenticate": 'Basic realm="redcloud"'},
            )
        return JSONResponse(
            {"access_token": state.issue_token(), "token_type": "Bearer",
             "expires_in": config.token_ttl, "scope": SCOPE},
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip

    def authenticate(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        code = state.token_problem(token)
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
    async def whoami(request: Request) -> Response:
        if (fault := await api_fault(request, "whoami")) is not None:
            return fault
        if (denied := authenticate(request)) is not None:
            return denied
        with state.lock:
            total = len(state.numbers)
            active = sum(1 for n in state.numbers if n["status"] == "ACTIVE")
            last_ok, last_fail = state.last_success_at, state.last_failure_at
        return JSONResponse(
            {
                "clientId": config.api_client_id,
                "clientName": config.client_name,
                "accountId": config.account_id,
                "environment": config.environment,
                "scopes": SCOPE.split(),
                "assignedNumbers": {"total": total, "active": active},
                "webhook": {
                    "url": state.webhook_url,
                    "status": state.webhook_status(),
                    "signingSecretSet": bool(config.webhook_secret),
                    "lastSuccessAt": iso(last_ok) if last_ok else None,
                    "lastFailureAt": iso(last_fail) if last_fail else None,
                },
            }
        )

    async def numbers(request: Request) -> Response:
        if (fault := await api_fault(request, "numbers")) is not None:
            return fault
        if (denied := authenticate(request)) is not None:
            return denied
        limit_text = request.query_params.get("limit")
        cursor = request.query_params.get("cursor")
        try:
            limit = int(limit_text) if limit_text else config.numbers_page_size
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
        with state.lock:
            page = [dict(n) for n in state.numbers[offset : offset + limit]]
            more = offset + limit < len(state.numbers)
        next_cursor = (
            base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode() if more else None
        )
        return JSONResponse({"data": page, "nextCursor": next_cursor})

    async def send(request: Request) -> Response:
        if (fault := await api_fault(request, "send")) is not None:
            return fault
        if (denied := authenticate(request)) is not None:
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
        verdict, record = state.begin(key, state.body_hash(body))
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
            if config.send_processing_delay:
                await asyncio.sleep(config.send_processing_delay)
            status, payload = _accept_or_refuse(request, body)
        except BaseException:
            state.finish(key, 0, None)
            raise
        state.finish(key, status, payload)
        if status == 202:
            dispatcher.wake()
        media = "application/json" if status == 202 else "application/problem+json"
        return JSONResponse(payload, status_code=status, media_type=media)

    def _accept_or_refuse(request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
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
        number = state.number(send_from)
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
        return 202, state.create_message(body, _rid(request))

    async def root(request: Request) -> Response:
        return JSONResponse({"service": "redcloud-sandbox", "contract": "v1"})

    # -- sandbox-only inspection ------------------------------------------------------------
    async def sbx_messages(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"data": list(state.messages.values())})

    async def sbx_webhooks(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"data": list(state.attempts)})

    async def sbx_revoke(request: Request) -> Response:
        return JSONResponse({"revoked": state.revoke_all_tokens()})

    async def sbx_token_ttl(request: Request) -> Response:
        body = await _json(request)
        ttl = body.get("ttl") if isinstance(body, dict) else None
        if not isinstance(ttl, int) or ttl < 1:
            return problem(
                request, 400, "invalid_request", "ttl must be a whole number of seconds >= 1."
            )
        state.token_ttl = ttl
        return JSONResponse({"ttl": ttl})

    async def sbx_faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                state.faults.apply(FaultProfile.from_dict(await _json(request)))
            except ValueError as exc:
                return problem(request, 400, "invalid_request", str(exc))
        elif request.method == "DELETE":
            state.faults.apply(FaultProfile())
        return JSONResponse(state.faults.profile.to_dict())

    async def sbx_trigger(request: Request) -> Response:
        """Any event, with payload overrides, delivered like a real one."""
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("eventType"), str):
            return problem(
                request, 400, "invalid_request", "give eventType and optional data overrides."
            )
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        message_id = data.get("messageId")
        number_id = data.get("numberId") or "num_sbx_primary"
        event = state.enqueue(
            body["eventType"], data, url=state.target_url(number_id), message_id=message_id
        )
        dispatcher.wake()
        return JSONResponse({"eventId": event.event_id}, status_code=202)

    async def sbx_inbound(request: Request) -> Response:
        """Simulate a handset replying: a ``message.inbound`` event (media allowed)."""
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("from"), str):
            return problem(
                request, 400, "invalid_request", "give from, numberId, body and/or media."
            )
        number = state.number(body.get("numberId") or "num_sbx_primary")
        if number is None:
            return problem(request, 400, "invalid_request", "numberId is not a sandbox number.")
        data = {
            "messageId": state.new_id("msg"),
            "conversationId": body.get("conversationId") or state.new_id("conv"),
            "numberId": number["numberId"],
            "from": body["from"],
            "to": number["phoneNumber"],
            "body": body.get("body", ""),
            "media": body.get("media") or [],
            "receivedAt": iso(),
        }
        event = state.enqueue("message.inbound", data, url=state.target_url(number["numberId"]))
        dispatcher.wake()
        return JSONResponse({"eventId": event.event_id, **data}, status_code=202)

    async def sbx_resend(request: Request) -> Response:
        body = await _json(request)
        event_id = body.get("eventId") if isinstance(body, dict) else None
        event = state.resend(event_id) if isinstance(event_id, str) else None
        if event is None:
            return problem(request, 404, "not_found", "no such eventId.")
        dispatcher.wake()
        return JSONResponse({"eventId": event.event_id}, status_code=202)

    async def sbx_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "not_found" if status == 404 else "method_not_allowed"
        return problem(
            request, status, code, f"{request.method} {request.url.path} is not a route."
        )

    app = Starlette(
        exception_handlers={404: not_found, 405: not_found},
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/api/core/whoami", whoami, methods=["GET"]),
            Route("/api/core/numbers", numbers, methods=["GET"]),
            Route("/api/core/messages/send", send, methods=["POST"]),
            Route("/_sandbox/messages", sbx_messages, methods=["GET"]),
            Route("/_sandbox/webhooks", sbx_webhooks, methods=["GET"]),
            Route("/_sandbox/tokens/revoke", sbx_revoke, methods=["POST"]),
            Route("/_sandbox/tokens/ttl", sbx_token_ttl, methods=["POST"]),
            Route("/_sandbox/faults", sbx_faults, methods=["GET", "PUT", "DELETE"]),
            Route("/_sandbox/events", sbx_trigger, methods=["POST"]),
            Route("/_sandbox/inbound", sbx_inbound, methods=["POST"]),
            Route("/_sandbox/webhooks/resend", sbx_resend, methods=["POST"]),
            Route("/_sandbox/reset", sbx_reset, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    return app, dispatcher
