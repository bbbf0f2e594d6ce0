"""The onyx-v1 contract's routes, mounted at ``/v1/partner``.

Each handler is wrapped by :func:`endpoint`: injected faults first (as a real edge would fail),
then the Bearer credential and the route's scope, then the handler; a rule broken inside the state
(:class:`~.state.RefusalError`) becomes problem+json.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ....core.sandbox_kit import ConnectionReset
from ..client import INTENTS
from .outbox import SUBSCRIBABLE
from .responses import data, problem, read_json, refused, state_of
from .rules import Refusal, RefusalError
from .state import Credential

__all__ = ["routes"]

Handler = Callable[[Request, Credential], Awaitable[Response]]
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


async def _fault(request: Request, route: str) -> Response | None:
    state = state_of(request)
    faults = state.faults.route(route)
    if faults is None:
        return None
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if state.faults.roll(faults.reset_rate):
        return ConnectionReset()
    if state.faults.roll(faults.rate_429):
        return problem(
            request,
            429,
            "rate_limited",
            "Too many requests (injected).",
            headers={"Retry-After": str(faults.retry_after)},
        )
    if state.faults.roll(faults.rate_5xx):
        return problem(request, faults.status_5xx, "internal", "The service failed (injected).")
    return None


def endpoint(
    route: str, scope: str | None = None
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            if (fault := await _fault(request, route)) is not None:
                return fault
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            cred = state_of(request).authenticate(token, scope)
            if isinstance(cred, Refusal):
                headers = (
                    {"WWW-Authenticate": 'Bearer realm="onyx"'} if cred.status == 401 else None
                )
                return problem(request, cred.status, cred.code, cred.detail, headers=headers)
            try:
                return await handler(request, cred)
            except RefusalError as exc:
                return refused(request, exc.refusal)

        return run

    return wrap


async def _object(request: Request, required: tuple[str, ...]) -> dict[str, Any]:
    body = await read_json(request)
    if isinstance(body, Refusal):
        raise RefusalError(body)
    if not isinstance(body, dict):
        raise RefusalError(Refusal(400, "invalid_request", "The body must be a JSON object."))
    missing = [k for k in required if not isinstance(body.get(k), str) or not body[k]]
    if missing:
        raise RefusalError(
            Refusal(400, "invalid_request", f"Required string field(s): {', '.join(missing)}.")
        )
    return body


def _key(request: Request, required: bool) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None or key == "":
        if required:
            raise RefusalError(
                Refusal(400, "invalid_request", "The idempotency-key header is required.")
            )
        return None
    if not _KEY.match(key):
        raise RefusalError(
            Refusal(400, "invalid_request", "idempotency-key must be 1-255 printable characters.")
        )
    return key


def _answer(status: int, body: dict[str, Any], replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(body, status_code=status, headers=headers)


# -- identity ---------------------------------------------------------------------------------
@endpoint("me")
async def me(request: Request, cred: Credential) -> Response:
    return data(state_of(request).identity(cred))


# -- messaging --------------------------------------------------------------------------------
@endpoint("messaging")
async def reachability(request: Request, cred: Credential) -> Response:
    body = await _object(request, ("appId", "subject"))
    return data(state_of(request).reachability(body["appId"], body["subject"]))


@endpoint("messaging")
async def pre_send(request: Request, cred: Credential) -> Response:
    body = await _object(request, ("appId", "subject", "intent"))
    if body["intent"] not in INTENTS:
        raise RefusalError(
            Refusal(400, "invalid_request", f"intent must be one of {', '.join(INTENTS)}.")
        )
    return data(state_of(request).pre_send(body["appId"], body["subject"], body["intent"]))


@endpoint("messaging")
async def messages(request: Request, cred: Credential) -> Response:
    key = _key(request, required=False)
    body = await _object(request, ("appId", "subject", "threadId", "intent"))
    if body["intent"] not in INTENTS:
        raise RefusalError(
            Refusal(400, "invalid_request", f"intent must be one of {', '.join(INTENTS)}.")
        )
    state = state_of(request)
    if key is None:
        return _answer(*state.send(body), False)
    return _answer(*state.idempotent("messages", key, body, lambda: state.send(body)))


# -- catalogue, orders, services ----------------------------------------------------------------
@endpoint("catalogue", "catalogue:read")
async def packages(request: Request, cred: Credential) -> Response:
    state = state_of(request)
    with state.lock:
        items = [state.package_wire(p) for p in state.packages.values()]
        version = state.catalogue_version
    return data({"catalogueVersion": version, "packages": items})


@endpoint("catalogue", "catalogue:read")
async def package(request: Request, cred: Credential) -> Response:
    state = state_of(request)
    found = state.packages.get(request.path_params["package_id"])
    if found is None:
        return problem(request, 404, "package_not_found", "No such package in the catalogue.")
    with state.lock:
        return data({"package": state.package_wire(found)})


@endpoint("orders", "orders:write")
async def create_order(request: Request, cred: Credential) -> Response:
    key = _key(request, required=True)
    body = await _object(request, ("packageId", "partnerOrderId"))
    state = state_of(request)
    assert key is not None
    return _answer(*state.idempotent("orders", key, body, lambda: state.create_order(body)))


@endpoint("orders", "orders:read")
async def get_order(request: Request, cred: Credential) -> Response:
    order = state_of(request).order(request.path_params["order_id"])
    if order is None:
        return problem(request, 404, "order_not_found", "No such order in this environment.")
    return data({"order": order})


@endpoint("esims", "usage:read")
async def esims(request: Request, cred: Credential) -> Response:
    state = state_of(request)
    with state.lock:
        items = [{k: v for k, v in e.items()} for e in state.esims.values()]
    return data({"esims": items})


def _esim(request: Request) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        found = state.esims.get(request.path_params["iccid"])
        if found is None:
            raise RefusalError(Refusal(404, "esim_not_found", "No such ICCID in this environment."))
        return dict(found)


@endpoint("esims", "usage:read")
async def esim(request: Request, cred: Credential) -> Response:
    return data({"esim": _esim(request)})


@endpoint("esims", "usage:read")
async def usage(request: Request, cred: Credential) -> Response:
    return data({"usage": _esim(request)["usage"]})


# -- webhooks and events ----------------------------------------------------------------------
@endpoint("webhooks", "webhooks:manage")
async def create_webhook(request: Request, cred: Credential) -> Response:
    body = await _object(request, ("url",))
    types = body.get("eventTypes")
    if not re.match(r"^https?://", body["url"]):
        raise RefusalError(Refusal(400, "invalid_request", "url must be an http(s) URL."))
    if not isinstance(types, list) or not types or not set(types) <= set(SUBSCRIBABLE):
        raise RefusalError(
            Refusal(
                400,
                "invalid_request",
                f"eventTypes must be a non-empty list of: {', '.join(SUBSCRIBABLE)}.",
            )
        )
    state = state_of(request)
    hook = state.outbox.register_webhook(body["url"], types)
    return data({"webhook": {**hook.public(state.config.environment), "secret": hook.secret}}, 201)


@endpoint("webhooks", "webhooks:manage")
async def list_webhooks(request: Request, cred: Credential) -> Response:
    state = state_of(request)
    with state.lock:
        hooks = [
            h.public(state.config.environment)
            for h in state.outbox.webhooks.values()
            if h.status != "deleted"
        ]
    return data({"webhooks": hooks})


@endpoint("webhooks", "webhooks:manage")
async def delete_webhook(request: Request, cred: Credential) -> Response:
    if not state_of(request).outbox.delete_webhook(request.path_params["webhook_id"]):
        return problem(request, 404, "webhook_not_found", "No such webhook.")
    return Response(status_code=204)


@endpoint("webhooks", "webhooks:manage")
async def test_webhook(request: Request, cred: Credential) -> Response:
    state = state_of(request)
    webhook_id = request.path_params["webhook_id"]
    with state.lock:
        hook = state.outbox.webhooks.get(webhook_id)
        if hook is None or hook.status == "deleted":
            return problem(request, 404, "webhook_not_found", "No such webhook.")
        event = state.outbox.emit(
            "webhook.test",
            ("webhook", webhook_id),
            {"webhookId": webhook_id, "test": True},
            target=webhook_id,
        )
    return data(
        {"event": {"eventId": event.event_id, "type": event.type, "webhookId": webhook_id}}, 202
    )


@endpoint("events", "webhooks:manage")
async def events(request: Request, cred: Credential) -> Response:
    q = request.query_params
    return data(state_of(request).outbox.history(q.get("type"), q.get("since"), q.get("cursor")))


@endpoint("events", "events:replay")
async def replay(request: Request, cred: Credential) -> Response:
    state = state_of(request)
    event_id = request.path_params["event_id"]
    key = _key(request, required=False)
    if key is None:
        return _answer(*state.outbox.replay(event_id), False)
    return _answer(
        *state.idempotent(
            "replay", key, {"eventId": event_id}, lambda: state.outbox.replay(event_id)
        )
    )


def routes() -> list[Route]:
    """The contract's routes, relative to ``/v1/partner``."""
    return [
        Route("/me", me, methods=["GET"]),
        Route("/messaging/reachability", reachability, methods=["POST"]),
        Route("/messaging/pre-send", pre_send, methods=["POST"]),
        Route("/messaging/messages", messages, methods=["POST"]),
        Route("/catalog/packages", packages, methods=["GET"]),
        Route("/catalog/packages/{package_id}", package, methods=["GET"]),
        Route("/orders", create_order, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/esims", esims, methods=["GET"]),
        Route("/esims/{iccid}", esim, methods=["GET"]),
        Route("/esims/{iccid}/usage", usage, methods=["GET"]),
        Route("/webhooks", create_webhook, methods=["POST"]),
        Route("/webhooks", list_webhooks, methods=["GET"]),
        Route("/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
        Route("/webhooks/{webhook_id}/test", test_webhook, methods=["POST"]),
        Route("/events", events, methods=["GET"]),
        Route("/events/{event_id}/replay", replay, methods=["POST"]),
    ]
