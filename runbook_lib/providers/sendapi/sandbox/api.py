"""The SendAPI v1 contract, served under ``/v1`` (routes only; rules live in the state).

Every POST needs an ``Idempotency-Key``: a 2xx answer is replayed for 24 h with
``Idempotent-Replayed: true``; the same key with another body is 409
``idempotency_key_mismatch``; a key whose first request is still running is 409
``idempotency_in_progress``. Keys are scoped per channel (403 4030). The rate limit and
``X-RateLimit-*`` headers are applied by the app's middleware, before any route.

Webhooks go to every active registered endpoint subscribed to the event (signed with that
endpoint's secret) and to a send's ``callback_url`` or a session's ``webhook_url`` (signed with
``SandboxConfig.webhook_secret``). Registration accepts ``https`` URLs, and ``http`` to loopback
only so tests and demos can receive locally.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ....core.sandbox_kit import ConnectionReset
from .config import INVALID_DESTINATION, NOT_ON_WHATSAPP, SandboxKey, domain_records
from .responses import error, ok, page, read_json
from .state import SandboxState, iso

__all__ = ["ContractApi"]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SENDER_ID = re.compile(r"^[A-Za-z0-9]{1,11}$")
EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})$")
PRINTABLE_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _public(hook: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    shown = {k: v for k, v in hook.items() if k != "consecutive_failures"}
    if not with_secret:
        shown["secret"] = hook["secret"][:10] + "…"
    return shown


def _session(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if k != "webhook_url"}


class ContractApi:
    """The ``/v1`` routes over one :class:`SandboxState`; ``wake`` tells the dispatcher."""

    def __init__(self, state: SandboxState, wake: Callable[[], None]) -> None:
        self.state = state
        self.wake = wake

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/account/usage", self.usage, methods=["GET"]),
            Route("/sms/sender-ids", self.sender_ids, methods=["GET"]),
            Route("/sms/send", self.sms_send, methods=["POST"]),
            Route("/sms/status/{id}", self.status, methods=["GET"]),
            Route("/whatsapp/sessions", self.sessions, methods=["GET", "POST"]),
            Route("/whatsapp/sessions/{id}", self.session, methods=["GET"]),
            Route("/whatsapp/contacts/{phone}/check", self.contact_check, methods=["GET"]),
            Route("/whatsapp/send", self.whatsapp_send, methods=["POST"]),
            Route("/whatsapp/messages/{id}", self.status, methods=["GET"]),
            Route("/email/domains", self.domains, methods=["GET", "POST"]),
            Route("/email/domains/{id}", self.domain, methods=["GET"]),
            Route("/email/domains/{id}/verify", self.verify_domain, methods=["POST"]),
            Route("/email/send", self.email_send, methods=["POST"]),
            Route("/email/status/{id}", self.status, methods=["GET"]),
            Route("/webhooks", self.webhooks, methods=["GET", "POST"]),
            Route("/webhooks/{id:int}", self.webhook, methods=["PUT", "DELETE"]),
        ]

    # -- cross-cutting --------------------------------------------------------------------
    async def fault(self, request: Request, route: str) -> Response | None:
        """Injected latency, 429 and 5xx for ``route`` (None: behave)."""
        faults = self.state.faults.route(route)
        if faults is None:
            return None
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if self.state.faults.roll(faults.reset_rate):
            return ConnectionReset()
        if self.state.faults.roll(faults.rate_429):
            return error(request, 429, "rate_limit_exceeded", "rate_limit_exceeded",
                         "Too many requests (injected).", retry_after=faults.retry_after)  # fmt: skip
        if self.state.faults.roll(faults.rate_5xx):
            return error(
                request,
                faults.status_5xx,
                "api_error",
                "server_error",
                "The service failed (injected).",
            )
        return None

    def auth(self, request: Request, channel: str | None) -> SandboxKey | Response:
        header = request.headers.get("authorization", "")
        value = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not value:
            return error(request, 401, "authentication_error", "missing_api_key",
                         "No API key: send Authorization: Bearer sk_…")  # fmt: skip
        key = self.state.config.key(value)
        if key is None:
            why = (
                "Live keys are not accepted by the sandbox."
                if value.startswith("sk_live_")
                else "Invalid API key."
            )
            return error(request, 401, "authentication_error", "invalid_api_key", why)
        if key.revoked:
            return error(
                request, 401, "authentication_error", "revoked_api_key", "This API key was revoked."
            )
        if key.expired:
            return error(
                request, 401, "authentication_error", "expired_api_key", "This API key has expired."
            )
        if channel is not None and channel not in key.scopes:
            return error(request, 403, "permission_error", "insufficient_scope",
                         f"This API key is not allowed to use {channel}.")  # fmt: skip
        return key

    async def guarded(
        self, request: Request, route: str, channel: str | None
    ) -> SandboxKey | Response:
        if (fault := await self.fault(request, route)) is not None:
            return fault
        return self.auth(request, channel)

    async def idempotent(self, request: Request, key: SandboxKey,
                         handler: Callable[[dict[str, Any]], Awaitable[Response]]) -> Response:  # fmt: skip
        idem = request.headers.get("idempotency-key")
        if not idem:
            return error(request, 400, "invalid_request_error", "missing_idempotency_key",
                         "Every POST needs an Idempotency-Key header.", param="Idempotency-Key")  # fmt: skip
        if not PRINTABLE_KEY.match(idem):
            return error(request, 400, "invalid_request_error", "invalid_request",
                         "Idempotency-Key must be 1-255 printable ASCII characters.", param="Idempotency-Key")  # fmt: skip
        body = await read_json(request)
        if not isinstance(body, dict):
            return error(
                request,
                400,
                "invalid_request_error",
                "invalid_request",
                "The body must be a JSON object.",
            )
        digest = self.state.body_hash({"path": request.url.path, "body": body})
        verdict, record = self.state.begin(key.value, idem, digest)
        if verdict == "mismatch":
            return error(request, 409, "idempotency_error", "idempotency_key_mismatch",
                         "This Idempotency-Key was used with a different request body.")  # fmt: skip
        if verdict == "in_progress":
            return error(request, 409, "idempotency_error", "idempotency_in_progress",
                         "A request with this Idempotency-Key is still being processed.")  # fmt: skip
        if verdict == "replay":
            return JSONResponse(
                record.response, status_code=record.status, headers={"Idempotent-Replayed": "true"}
            )
        status, payload = 500, None
        try:
            if self.state.config.send_processing_delay:
                await asyncio.sleep(self.state.config.send_processing_delay)
            response = await handler(body)
            status = response.status_code
            payload = response.body
        finally:
            self.state.finish(key.value, idem, status, json.loads(payload) if payload else None)
        self.wake()
        return response

    def _quota(self, request: Request, name: str, channel: str) -> Response | None:
        quota = self.state.config.quota(name)
        if quota is not None and self.state.count(channel) >= quota:
            code = "email_quota_exceeded" if channel == "email" else "quota_exceeded"
            return error(request, 402, "quota_error", code, f"The plan's {name} quota is used up.")
        return None

    # -- account --------------------------------------------------------------------------
    async def usage(self, request: Request) -> Response:
        key = await self.guarded(request, "usage", None)
        if isinstance(key, Response):
            return key
        config, state = self.state.config, self.state

        def item(name: str, used: int, **extra: Any) -> dict[str, Any]:
            quota = config.quota(name)
            share = round(100 * used / quota, 2) if quota else None
            return {"quota": quota, "percentage": share, **extra} | (
                {"sent": used} if "active" not in extra else {}
            )

        with state.lock:
            active = sum(1 for s in state.sessions.values() if s["status"] == "connected")
        now = datetime.now(UTC)
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(month=start.month % 12 + 1, year=start.year + (start.month == 12))
        return ok({
            "plan": config.plan,
            "billing_period": {"starts_at": iso(start.timestamp()), "ends_at": iso(end.timestamp() - 1)},
            "usage": {
                "whatsapp_messages": item("whatsapp_messages", state.count("whatsapp"), received=0),
                "sms": item("sms", state.count("sms"), cost_usd=0.0),
                "emails": item("emails", state.count("email")),
                "whatsapp_sessions": item("whatsapp_sessions", active, active=active),
            },
            "daily_breakdown": [],
        })  # fmt: skip

    # -- SMS ------------------------------------------------------------------------------
    async def sender_ids(self, request: Request) -> Response:
        key = await self.guarded(request, "sender_ids", "sms")
        if isinstance(key, Response):
            return key
        with self.state.lock:
            return page([dict(s) for s in self.state.sender_ids])

    async def sms_send(self, request: Request) -> Response:
        key = await self.guarded(request, "sms_send", "sms")
        if isinstance(key, Response):
            return key

        async def handle(body: dict[str, Any]) -> Response:
            to, text = body.get("to"), body.get("message", body.get("content"))
            sender = body.get("sender_id")
            if not isinstance(to, str) or not E164.match(to):
                return error(
                    request,
                    400,
                    "invalid_request_error",
                    "invalid_phone",
                    "to must be E.164.",
                    param="to",
                )
            if not isinstance(text, str) or not text or len(text) > 1600:
                return error(request, 400, "invalid_request_error", "invalid_request",
                             "message (or content) must be 1-1,600 characters.", param="message")  # fmt: skip
            if sender is not None:
                with self.state.lock:
                    known = {s["sender_id"]: s["status"] for s in self.state.sender_ids}
                if (
                    not isinstance(sender, str)
                    or not SENDER_ID.match(sender)
                    or known.get(sender) != "approved"
                ):
                    return error(request, 422, "invalid_request_error", "invalid_sender_id",
                                 "sender_id is not an approved sender id of this account.", param="sender_id")  # fmt: skip
            if to == INVALID_DESTINATION:
                return error(request, 422, "invalid_request_error", "invalid_destination",
                             "The destination cannot receive messages.", param="to")  # fmt: skip
            if (refused := self._quota(request, "sms", "sms")) is not None:
                return refused
            message = {"id": self.state.new_id("sms"), "object": "sms.message", "status": "queued", "to": to,
                       "segments": max(1, -(-len(text) // 160)), "created_at": iso()}  # fmt: skip
            callback = body.get("callback_url")
            self.state.record_message(
                "sms", message, self.state.outcome("sms", to),
                extra_urls=[callback] if isinstance(callback, str) else None,
                data={"id": message["id"], "to": to, "segments": message["segments"]},
            )  # fmt: skip
            return ok(message, status=201)

        return await self.idempotent(request, key, handle)

    async def status(self, request: Request) -> Response:
        channel = request.url.path.split("/")[2]
        key = await self.guarded(request, "status", channel)
        if isinstance(key, Response):
            return key
        view = self.state.message_view(request.path_params["id"])
        if view is None or view.pop("channel") != channel:
            return error(
                request, 404, "invalid_request_error", "not_found", f"No such {channel} message."
            )
        return ok(view)

    # -- WhatsApp -------------------------------------------------------------------------
    async def sessions(self, request: Request) -> Response:
        key = await self.guarded(request, "sessions", "whatsapp")
        if isinstance(key, Response):
            return key
        if request.method == "GET":
            with self.state.lock:
                return page([_session(s) for s in self.state.sessions.values()])

        async def create(body: dict[str, Any]) -> Response:
            name = body.get("name")
            if not isinstance(name, str) or not name:
                return error(
                    request,
                    400,
                    "invalid_request_error",
                    "missing_parameter",
                    "name is required.",
                    param="name",
                )
            session = {"id": self.state.new_id("sess"), "name": name, "status": "pending", "phone_number": None,
                       "last_seen_at": None, "message_count": 0, "created_at": iso(),
                       "webhook_url": body.get("webhook_url") if isinstance(body.get("webhook_url"), str) else None}  # fmt: skip
            with self.state.lock:
                self.state.sessions[session["id"]] = session
            qr = {
                "qr_code": "data:image/png;base64,iVBORw0KGgo=",
                "qr_expires_at": iso(datetime.now(UTC).timestamp() + 120),
            }
            return ok(_session(session) | qr, status=201)

        return await self.idempotent(request, key, create)

    async def session(self, request: Request) -> Response:
        key = await self.guarded(request, "sessions", "whatsapp")
        if isinstance(key, Response):
            return key
        with self.state.lock:
            session = self.state.sessions.get(request.path_params["id"])
            if session is None:
                return error(request, 404, "invalid_request_error", "not_found", "No such session.")
            return ok(_session(session))

    async def contact_check(self, request: Request) -> Response:
        key = await self.guarded(request, "contacts", "whatsapp")
        if isinstance(key, Response):
            return key
        phone = request.path_params["phone"]
        if not E164.match(phone):
            return error(
                request,
                400,
                "invalid_request_error",
                "invalid_phone",
                "phone must be E.164.",
                param="phone",
            )
        return ok({"phone": phone, "exists": phone not in (NOT_ON_WHATSAPP, INVALID_DESTINATION)})

    async def whatsapp_send(self, request: Request) -> Response:
        key = await self.guarded(request, "whatsapp_send", "whatsapp")
        if isinstance(key, Response):
            return key

        async def handle(body: dict[str, Any]) -> Response:
            session_id, to = body.get("session_id"), body.get("to")
            kind = body.get("type", "text")
            text = body.get("text")
            text = text.get("body") if isinstance(text, dict) else text
            text = text or body.get("message") or body.get("content")  # documented aliases
            if not isinstance(to, str) or not E164.match(to):
                return error(
                    request,
                    400,
                    "invalid_request_error",
                    "invalid_phone",
                    "to must be E.164.",
                    param="to",
                )
            if kind == "text" and (not isinstance(text, str) or not text):
                return error(request, 400, "invalid_request_error", "missing_parameter",
                             "a text message needs text.body (or message/content).", param="text")  # fmt: skip
            with self.state.lock:
                session = self.state.sessions.get(str(session_id))
                status, hook = (
                    (session["status"], session["webhook_url"]) if session else (None, None)
                )
            if session is None:
                return error(
                    request,
                    404,
                    "invalid_request_error",
                    "not_found",
                    "No such session.",
                    param="session_id",
                )
            if status != "connected":
                return error(request, 409, "conflict", "session_not_connected",
                             f"Session {session_id} is {status}, not connected.", param="session_id")  # fmt: skip
            if to == INVALID_DESTINATION:
                return error(request, 422, "invalid_request_error", "invalid_destination",
                             "The destination cannot receive messages.", param="to")  # fmt: skip
            if (wait := self.state.session_cap(str(session_id))) > 0:
                return error(request, 429, "rate_limit_exceeded", "sending_limited",
                             "This session reached its per-session sending cap.", retry_after=wait)  # fmt: skip
            if (refused := self._quota(request, "whatsapp_messages", "whatsapp")) is not None:
                return refused
            message = {"id": self.state.new_id("msg"), "session_id": session_id, "to": to, "type": kind,
                       "status": "accepted", "created_at": iso()}  # fmt: skip
            self.state.record_message(
                "whatsapp", message, self.state.outcome("whatsapp", to),
                extra_urls=[hook] if hook else None,
                data={"id": message["id"], "session_id": session_id, "to": to},
            )  # fmt: skip
            return ok(message, status=201)

        return await self.idempotent(request, key, handle)

    # -- email ----------------------------------------------------------------------------
    async def domains(self, request: Request) -> Response:
        key = await self.guarded(request, "domains", "email")
        if isinstance(key, Response):
            return key
        if request.method == "GET":
            with self.state.lock:
                return page([dict(d) for d in self.state.domains.values()])

        async def create(body: dict[str, Any]) -> Response:
            name = body.get("domain")
            if not isinstance(name, str) or "." not in name:
                return error(
                    request,
                    400,
                    "invalid_request_error",
                    "missing_parameter",
                    "domain is required.",
                    param="domain",
                )
            domain = {"id": self.state.new_id("dom"), "domain": name.lower(), "verified": False,
                      "records": domain_records(name.lower()), "verified_at": None, "created_at": iso()}  # fmt: skip
            with self.state.lock:
                self.state.domains[domain["id"]] = domain
            return ok(dict(domain), status=201)

        return await self.idempotent(request, key, create)

    async def domain(self, request: Request) -> Response:
        key = await self.guarded(request, "domains", "email")
        if isinstance(key, Response):
            return key
        with self.state.lock:
            domain = self.state.domains.get(request.path_params["id"])
            return (
                ok(dict(domain))
                if domain
                else error(request, 404, "invalid_request_error", "not_found", "No such domain.")
            )

    async def verify_domain(self, request: Request) -> Response:
        key = await self.guarded(request, "domains", "email")
        if isinstance(key, Response):
            return key

        async def verify(body: dict[str, Any]) -> Response:
            with self.state.lock:
                domain = self.state.domains.get(request.path_params["id"])
                if domain is None:
                    return error(
                        request, 404, "invalid_request_error", "not_found", "No such domain."
                    )
                # Records not live yet → 200 verified:false (contract §4); the control plane flips it.
                return ok({k: domain[k] for k in ("id", "domain", "verified", "verified_at")})

        return await self.idempotent(request, key, verify)

    async def email_send(self, request: Request) -> Response:
        key = await self.guarded(request, "email_send", "email")
        if isinstance(key, Response):
            return key

        async def handle(body: dict[str, Any]) -> Response:
            to, sender, subject = body.get("to"), body.get("from"), body.get("subject")
            recipients = [to] if isinstance(to, str) else to
            if (not isinstance(recipients, list) or not recipients or len(recipients) > 50
                    or not all(isinstance(r, str) and EMAIL.match(r) for r in recipients)):  # fmt: skip
                return error(request, 400, "invalid_request_error", "invalid_request",
                             "to must be an address or a list of 1-50 addresses.", param="to")  # fmt: skip
            if not isinstance(subject, str) or not subject:
                return error(
                    request,
                    400,
                    "invalid_request_error",
                    "missing_parameter",
                    "subject is required.",
                    param="subject",
                )
            if not any(body.get(k) for k in ("html", "text", "template_id")):
                return error(request, 400, "invalid_request_error", "missing_parameter",
                             "give html, text or template_id.", param="text")  # fmt: skip
            match = EMAIL.match(sender) if isinstance(sender, str) else None
            with self.state.lock:
                verified = {d["domain"] for d in self.state.domains.values() if d["verified"]}
            if match is None or match.group(1).lower() not in verified:
                return error(request, 422, "invalid_request_error", "invalid_from_domain",
                             "from must be an address on a verified domain.", param="from")  # fmt: skip
            if (refused := self._quota(request, "emails", "email")) is not None:
                return refused
            message = {
                "id": self.state.new_id("eml"),
                "status": "queued",
                "to": to,
                "created_at": iso(),
            }
            self.state.record_message("email", message, self.state.outcome("email", recipients[0]),
                                      data={"id": message["id"], "to": recipients[0], "from": sender})  # fmt: skip
            return ok(message, status=201)

        return await self.idempotent(request, key, handle)

    # -- webhooks -------------------------------------------------------------------------
    async def webhooks(self, request: Request) -> Response:
        key = await self.guarded(request, "webhooks", None)
        if isinstance(key, Response):
            return key
        if request.method == "GET":
            with self.state.lock:
                return page([_public(h) for h in self.state.webhooks.values()])

        async def create(body: dict[str, Any]) -> Response:
            url, events = body.get("url"), body.get("events")
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or not (
                parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
            ):
                return error(request, 400, "invalid_request_error", "invalid_request",
                             "url must be https (http only to a loopback address).", param="url")  # fmt: skip
            if (
                not isinstance(events, list)
                or not events
                or not all(isinstance(e, str) for e in events)
            ):
                return error(request, 400, "invalid_request_error", "missing_parameter",
                             'events must be a list such as ["*"] or ["message.*"].', param="events")  # fmt: skip
            return ok(_public(self.state.add_webhook(url, events), with_secret=True), status=201)

        return await self.idempotent(request, key, create)

    async def webhook(self, request: Request) -> Response:
        key = await self.guarded(request, "webhooks", None)
        if isinstance(key, Response):
            return key
        hook_id = request.path_params["id"]
        with self.state.lock:
            hook = self.state.webhooks.get(hook_id)
        if hook is None:
            return error(request, 404, "invalid_request_error", "not_found", "No such webhook.")
        if request.method == "DELETE":
            with self.state.lock:
                self.state.webhooks.pop(hook_id, None)
            return ok({"id": hook_id, "deleted": True})
        body = await read_json(request)
        if not isinstance(body, dict):
            return error(
                request,
                400,
                "invalid_request_error",
                "invalid_request",
                "The body must be a JSON object.",
            )
        with self.state.lock:
            if isinstance(body.get("events"), list):
                hook["events"] = [str(e) for e in body["events"]]
            if isinstance(body.get("is_active"), bool):
                hook["is_active"] = body["is_active"]
                hook["consecutive_failures"] = 0
            return ok(_public(hook))
