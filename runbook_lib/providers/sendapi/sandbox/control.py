"""The sandbox's control plane under ``/_sandbox`` (routes), and a client to steer it over HTTP.

GET  /_sandbox                              handshake: {"service": "sendapi-sandbox", ...}
GET|PUT|DELETE /_sandbox/faults             the fault profile (see .faults)
POST /_sandbox/sessions/{id}/disconnect     {reason?} → session.disconnected
POST /_sandbox/sessions/{id}/connect        → session.connected
POST /_sandbox/domains/{id}/verification    {verified: bool}
POST /_sandbox/events                       {event, data} → any event, delivered as a real one
GET  /_sandbox/deliveries                   every webhook attempt
GET  /_sandbox/messages                     every message sent
POST /_sandbox/reset                        forget messages, events, windows, faults
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ....core.sandbox_kit import SandboxControlClient
from .faults import SendApiFaultProfile
from .responses import error, read_json
from .state import SandboxState, iso

__all__ = ["ControlPlane", "SandboxControl"]

SERVICE = "sendapi-sandbox"


class ControlPlane:
    """The ``/_sandbox`` routes over one :class:`SandboxState`."""

    def __init__(self, state: SandboxState, wake: Callable[[], None]) -> None:
        self.state = state
        self.wake = wake

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/", self.handshake, methods=["GET"]),
            Route("/faults", self.faults, methods=["GET", "PUT", "DELETE"]),
            Route("/sessions/{id}/disconnect", self.session_status, methods=["POST"]),
            Route("/sessions/{id}/connect", self.session_status, methods=["POST"]),
            Route("/domains/{id}/verification", self.verification, methods=["POST"]),
            Route("/events", self.trigger, methods=["POST"]),
            Route("/deliveries", self.deliveries, methods=["GET"]),
            Route("/messages", self.messages, methods=["GET"]),
            Route("/reset", self.reset, methods=["POST"]),
        ]

    async def handshake(self, request: Request) -> Response:
        return JSONResponse({"service": SERVICE, "contract": "sendapi-v1", "boot": self.state.boot})

    async def faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.state.faults.apply(SendApiFaultProfile.from_dict(await read_json(request)))  # type: ignore[arg-type]
            except ValueError as exc:
                return error(request, 400, "invalid_request_error", "invalid_request", str(exc))
        elif request.method == "DELETE":
            self.state.faults.apply(SendApiFaultProfile())  # type: ignore[arg-type]
        return JSONResponse(self.state.faults.profile.to_dict())

    async def session_status(self, request: Request) -> Response:
        body = await read_json(request)
        connect = request.url.path.endswith("/connect")
        reason = (
            body.get("reason")
            if isinstance(body, dict) and isinstance(body.get("reason"), str)
            else None
        )
        envelope = self.state.set_session_status(
            request.path_params["id"], "connected" if connect else "disconnected",
            None if connect else (reason or "phone_offline"),
        )  # fmt: skip
        if envelope is None:
            return error(request, 404, "invalid_request_error", "not_found", "No such session.")
        self.wake()
        return JSONResponse(
            {"eventId": envelope["id"], "event": envelope["event"]}, status_code=202
        )

    async def verification(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("verified"), bool):
            return error(
                request,
                400,
                "invalid_request_error",
                "invalid_request",
                "give {verified: true|false}.",
            )
        with self.state.lock:
            domain = self.state.domains.get(request.path_params["id"])
            if domain is None:
                return error(request, 404, "invalid_request_error", "not_found", "No such domain.")
            domain["verified"] = body["verified"]
            domain["verified_at"] = iso() if body["verified"] else None
            return JSONResponse(dict(domain))

    async def trigger(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("event"), str):
            return error(
                request,
                400,
                "invalid_request_error",
                "invalid_request",
                "give event and optional data.",
            )
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        envelope = self.state.emit(body["event"], data)
        self.wake()
        return JSONResponse({"eventId": envelope["id"]}, status_code=202)

    async def deliveries(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({"data": list(self.state.attempts)})

    async def messages(self, request: Request) -> Response:
        with self.state.lock:
            ids = list(self.state.messages)
        return JSONResponse({"data": [self.state.message_view(i) for i in ids]})  # with channel

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})


class SandboxControl(SandboxControlClient):
    """Steer a running SendAPI sandbox over HTTP: from a notebook kernel, the CLI or a test."""

    CONTROL_PREFIX = "/_sandbox"

    API_PREFIX = "/v1"  # the contract's base URL works as well as the sandbox's root

    def handshake(self) -> dict[str, Any]:
        return self._call("GET", "/")

    def disconnect_session(self, session_id: str, reason: str = "phone_offline") -> str:
        return str(
            self._call("POST", f"/sessions/{session_id}/disconnect", {"reason": reason})["eventId"]
        )

    def connect_session(self, session_id: str) -> str:
        return str(self._call("POST", f"/sessions/{session_id}/connect", {})["eventId"])

    def set_domain_verified(self, domain_id: str, verified: bool) -> dict[str, Any]:
        return self._call("POST", f"/domains/{domain_id}/verification", {"verified": verified})

    def trigger(self, event: str, data: dict[str, Any] | None = None) -> str:
        return str(self._call("POST", "/events", {"event": event, "data": data or {}})["eventId"])

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/deliveries")["data"])

    def messages(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/messages")["data"])

    def reset(self) -> None:
        self._call("POST", "/reset")
