"""The Onyx sandbox's control plane, mounted at ``/_sandbox``: steer the world mid-run.

GET    /_sandbox/                          handshake: {"service": "onyx-sandbox", ...}
GET|PUT|DELETE /_sandbox/faults            the fault profile (Onyx routes)
PUT    /_sandbox/subjects/{subject}/consent {"state": "revoked"}   (+ consent.* event)
PUT    /_sandbox/threads/{threadId}        {"state": "blocked"}    (+ thread.state_changed)
POST   /_sandbox/credentials/revoke        {"credentialId": "cred_sbx_default"} (optional)
PUT    /_sandbox/launch                    {"market", "capability", "environment", "status"}
PUT    /_sandbox/catalogue                 {"catalogueVersion": "2026.12"}
GET    /_sandbox/deliveries                every webhook delivery attempt
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import onyx_fault_profile
from .responses import problem, read_json, refused, state_of
from .rules import Refusal, RefusalError

__all__ = ["CONSENT_STATES", "LAUNCH_STATUSES", "THREAD_STATES", "routes"]

CONSENT_STATES = ("requested", "granted", "limited", "expired", "revoked", "denied")
THREAD_STATES = ("active", "muted", "archived", "blocked", "closed")
LAUNCH_STATUSES = ("not_requested", "in_review", "approved", "rejected")


async def _body(request: Request) -> dict:
    body = await read_json(request)
    if isinstance(body, Refusal):
        raise RefusalError(body)
    if not isinstance(body, dict):
        raise RefusalError(Refusal(400, "invalid_request", "The body must be a JSON object."))
    return body


def _one_of(body: dict, name: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in allowed:
        raise RefusalError(
            Refusal(400, "invalid_request", f"{name} must be one of {', '.join(allowed)}.")
        )
    return value


def _guarded(handler):
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except RefusalError as exc:
            return refused(request, exc.refusal)

    return run


async def handshake(request: Request) -> Response:
    state = state_of(request)
    return JSONResponse(
        {"service": "onyx-sandbox", "contract": "onyx-v1", "environment": state.config.environment}
    )


async def faults(request: Request) -> Response:
    state = state_of(request)
    if request.method == "PUT":
        try:
            state.faults.apply(onyx_fault_profile(await read_json(request)))
        except ValueError as exc:
            return problem(request, 400, "invalid_request", str(exc))
    elif request.method == "DELETE":
        state.faults.apply(onyx_fault_profile(None))
    return JSONResponse(state.faults.profile.to_dict())


@_guarded
async def consent(request: Request) -> Response:
    body = await _body(request)
    new = _one_of(body, "state", CONSENT_STATES)
    event = state_of(request).set_consent(request.path_params["subject"], new)
    return JSONResponse(
        {
            "subject": request.path_params["subject"],
            "state": new,
            "eventId": event.event_id if event else None,
        }
    )


@_guarded
async def thread(request: Request) -> Response:
    new = _one_of(await _body(request), "state", THREAD_STATES)
    event = state_of(request).set_thread(request.path_params["thread_id"], new)
    return JSONResponse(
        {"threadId": request.path_params["thread_id"], "state": new, "eventId": event.event_id}
    )


@_guarded
async def revoke(request: Request) -> Response:
    body = await _body(request)
    revoked = state_of(request).revoke_credential(body.get("credentialId"))
    return JSONResponse({"revoked": revoked})


@_guarded
async def launch(request: Request) -> Response:
    body = await _body(request)
    for name in ("market", "capability", "environment"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise RefusalError(Refusal(400, "invalid_request", f"{name} is required."))
    _one_of(body, "capability", ("connectivity", "messaging"))
    status = _one_of(body, "status", LAUNCH_STATUSES)
    state_of(request).set_launch(body["market"], body["capability"], body["environment"], status)
    return JSONResponse({k: body[k] for k in ("market", "capability", "environment", "status")})


@_guarded
async def catalogue(request: Request) -> Response:
    version = (await _body(request)).get("catalogueVersion")
    if not isinstance(version, str) or not version:
        raise RefusalError(Refusal(400, "invalid_request", "catalogueVersion is required."))
    state_of(request).set_catalogue_version(version)
    return JSONResponse({"catalogueVersion": version})


async def deliveries(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        return JSONResponse({"data": list(state.outbox.attempts)})


def routes() -> list[Route]:
    """The control plane's routes, relative to ``/_sandbox``."""
    return [
        Route("/", handshake, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "PUT", "DELETE"]),
        Route("/subjects/{subject}/consent", consent, methods=["PUT"]),
        Route("/threads/{thread_id}", thread, methods=["PUT"]),
        Route("/credentials/revoke", revoke, methods=["POST"]),
        Route("/launch", launch, methods=["PUT"]),
        Route("/catalogue", catalogue, methods=["PUT"]),
        Route("/deliveries", deliveries, methods=["GET"]),
    ]
