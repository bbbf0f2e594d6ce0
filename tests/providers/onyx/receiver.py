"""A tiny webhook receiver for the Onyx sandbox tests: verifies with the Onyx signing module."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runbook_lib.core.errors import WebhookVerificationError
from runbook_lib.providers.onyx.events import OnyxEvent
from runbook_lib.providers.onyx.signing import verify_delivery
from runbook_lib.security.secrets import Secret


@dataclass
class Inbox:
    secret: Secret | None = None
    events: list[OnyxEvent] = field(default_factory=list)  # verified, every delivery
    rejected: list[str] = field(default_factory=list)  # verification codes
    fail_next: int = 0  # answer 500 this many times (an endpoint outage)

    def ids(self) -> list[str]:
        return [e.event_id for e in self.events]

    def wait_for(self, predicate: Callable[[Inbox], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver never saw what was expected: {self.ids()}")
            time.sleep(0.02)


def receiver_app(inbox: Inbox) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        if inbox.fail_next > 0:
            inbox.fail_next -= 1
            return JSONResponse({"ok": False}, status_code=500)
        body = await request.body()
        try:
            assert inbox.secret is not None
            event = verify_delivery(inbox.secret, request.headers, body)
        except WebhookVerificationError as exc:
            inbox.rejected.append(exc.code or "")
            return JSONResponse({"error": exc.code}, status_code=400)
        inbox.events.append(event)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
