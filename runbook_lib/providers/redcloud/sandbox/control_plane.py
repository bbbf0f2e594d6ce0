"""The sandbox's control plane, mounted at ``/_sandbox/``: inspect, steer faults, trigger events.

Only a sandbox serves it; the runbook learns that a target is the sandbox from its parameter file
(``provider.sandbox``), never by calling these routes. :class:`~.control.SandboxControl` is its
client.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import FaultProfile
from .http import json_body, problem
from .state import SandboxState, iso
from .webhooks import WebhookDispatcher

__all__ = ["ControlPlane"]


class ControlPlane:
    """The ``/_sandbox/`` routes over the sandbox's state."""

    def __init__(self, state: SandboxState, dispatcher: WebhookDispatcher) -> None:
        self.state = state
        self.dispatcher = dispatcher

    def routes(self) -> list[Route]:
        """Relative to the mount point ``/_sandbox``."""
        return [
            Route("/messages", self.messages, methods=["GET"]),
            Route("/webhooks", self.webhooks, methods=["GET"]),
            Route("/tokens/revoke", self.revoke, methods=["POST"]),
            Route("/tokens/ttl", self.token_ttl, methods=["POST"]),
            Route("/faults", self.faults, methods=["GET", "PUT", "DELETE"]),
            Route("/events", self.trigger, methods=["POST"]),
            Route("/inbound", self.inbound, methods=["POST"]),
            Route("/webhooks/resend", self.resend, methods=["POST"]),
            Route("/reset", self.reset, methods=["POST"]),
        ]

    async def messages(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({"data": list(self.state.messages.values())})

    async def webhooks(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({"data": list(self.state.attempts)})

    async def revoke(self, request: Request) -> Response:
        return JSONResponse({"revoked": self.state.revoke_all_tokens()})

    async def token_ttl(self, request: Request) -> Response:
        body = await json_body(request)
        ttl = body.get("ttl") if isinstance(body, dict) else None
        if not isinstance(ttl, int) or ttl < 1:
            return problem(
                request, 400, "invalid_request", "ttl must be a whole number of seconds >= 1."
            )
        self.state.token_ttl = ttl
        return JSONResponse({"ttl": ttl})

    async def faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.state.faults.apply(FaultProfile.from_dict(await json_body(request)))
            except ValueError as exc:
                return problem(request, 400, "invalid_request", str(exc))
        elif request.method == "DELETE":
            self.state.faults.apply(FaultProfile())
        return JSONResponse(self.state.faults.profile.to_dict())

    async def trigger(self, request: Request) -> Response:
        """Any event, with payload overrides, delivered like a real one."""
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("eventType"), str):
            return problem(
                request, 400, "invalid_request", "give eventType and optional data overrides."
            )
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        message_id = data.get("messageId")
        number_id = data.get("numberId") or "num_sbx_primary"
        event = self.state.enqueue(
            body["eventType"], data, url=self.state.target_url(number_id), message_id=message_id
        )
        self.dispatcher.wake()
        return JSONResponse({"eventId": event.event_id}, status_code=202)

    async def inbound(self, request: Request) -> Response:
        """Simulate a handset replying: a ``message.inbound`` event (media allowed)."""
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("from"), str):
            return problem(
                request, 400, "invalid_request", "give from, numberId, body and/or media."
            )
        number = self.state.number(body.get("numberId") or "num_sbx_primary")
        if number is None:
            return problem(request, 400, "invalid_request", "numberId is not a sandbox number.")
        data = {
            "messageId": self.state.new_id("msg"),
            "conversationId": body.get("conversationId") or self.state.new_id("conv"),
            "numberId": number["numberId"],
            "from": body["from"],
            "to": number["phoneNumber"],
            "body": body.get("body", ""),
            "media": body.get("media") or [],
            "receivedAt": iso(),
        }
        event = self.state.enqueue(
            "message.inbound", data, url=self.state.target_url(number["numberId"])
        )
        self.dispatcher.wake()
        return JSONResponse({"eventId": event.event_id, **data}, status_code=202)

    async def resend(self, request: Request) -> Response:
        body = await json_body(request)
        event_id = body.get("eventId") if isinstance(body, dict) else None
        event = self.state.resend(event_id) if isinstance(event_id, str) else None
        if event is None:
            return problem(request, 404, "not_found", "no such eventId.")
        self.dispatcher.wake()
        return JSONResponse({"eventId": event.event_id}, status_code=202)

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})
