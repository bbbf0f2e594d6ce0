"""The sandbox's HTTP surface, composed: the contract API and the ``/_sandbox`` control plane.

``api.py`` serves the Red Cloud v1 contract, ``control_plane.py`` the sandbox-only routes (mounted
at ``/_sandbox``); both share the state (``state.py``), the fault injection (``faults.py``) and the
webhook dispatcher (``webhooks.py``) that this app's lifespan runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from .api import ContractApi
from .control_plane import ControlPlane
from .http import RequestIdMiddleware, problem
from .state import SandboxState
from .webhooks import WebhookDispatcher

__all__ = ["create_app"]


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    code = "not_found" if status == 404 else "method_not_allowed"
    return problem(request, status, code, f"{request.method} {request.url.path} is not a route.")


def create_app(state: SandboxState) -> tuple[Starlette, WebhookDispatcher]:
    """The Starlette app serving ``state``, and the dispatcher its lifespan runs."""
    dispatcher = WebhookDispatcher(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dispatcher.start()
        try:
            yield
        finally:
            await dispatcher.stop()

    app = Starlette(
        exception_handlers={404: _not_found, 405: _not_found},
        routes=[
            *ContractApi(state, dispatcher).routes(),
            Mount("/_sandbox", routes=ControlPlane(state, dispatcher).routes()),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    return app, dispatcher
