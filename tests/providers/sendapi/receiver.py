"""A tiny webhook receiver for the sandbox tests: verifies each delivery with signing.verify_webhook."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runbook_lib.core.errors import WebhookVerificationError
from runbook_lib.core.serving import BackgroundServer
from runbook_lib.providers.sendapi.signing import VerifiedEvent, verify_webhook


class Receiver:
    """Collects verified events; ``fail_first`` answers 500 to that many deliveries first."""

    def __init__(self, secret: str, *, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.events: list[VerifiedEvent] = []
        self.rejected: list[str] = []
        self.hits = 0
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hooks/sendapi", self.hook, methods=["POST"])])
        self.server = BackgroundServer(self.app, name="sendapi-receiver")

    @property
    def url(self) -> str:
        return self.server.url + "/hooks/sendapi"

    async def hook(self, request: Request) -> JSONResponse:
        raw = await request.body()
        with self._lock:
            self.hits += 1
            if self.hits <= self.fail_first:
                return JSONResponse({"ok": False}, status_code=500)
        try:
            event = verify_webhook(self.secret, request.headers, raw)
        except WebhookVerificationError as exc:
            with self._lock:
                self.rejected.append(exc.code or "")
            return JSONResponse({"error": exc.code}, status_code=401)
        with self._lock:
            self.events.append(event)
        return JSONResponse({"ok": True})

    def of(self, message_id: str) -> list[VerifiedEvent]:
        with self._lock:
            return [e for e in self.events if e.data.get("id") == message_id]

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll for an asynchronous outcome (webhook delivery); fail with the predicate's name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
