"""The sandbox's webhook dispatcher: signed deliveries, retried on the schedule until a 2xx.

One delivery at a time, in due order (reversed under the ``reorder`` fault). Every attempt of
one event carries the same body (so the same ``evt_`` id and signature) and a new
``X-SendAPI-Delivery`` id. Injected faults: outage windows, drops, duplicates, a wrong secret,
a stale envelope timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx

from ..signing import generate_secret, signed_headers
from .state import Delivery, SandboxState, iso

__all__ = ["WebhookDispatcher"]


class WebhookDispatcher:
    """An asyncio task that drains the state's outbox."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self.state.config.webhook_timeout)
        self._task = asyncio.create_task(self._run(), name="sendapi-sandbox-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        """Tell the dispatcher new events are due (safe from any thread)."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            for delivery in self.state.due(time.time()):
                await self._deliver(delivery)
            next_due = self.state.next_due()
            timeout = 0.25 if next_due is None else min(0.25, max(0.0, next_due - time.time()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._client is not None
        if not self.state.deliverable(delivery):
            return
        faults = self.state.faults
        hooks = faults.profile.webhooks
        delivery_id = self.state.new_id("dlv")
        if faults.in_outage():
            self.state.record_attempt(delivery, delivery_id, None, "endpoint outage (injected)")
            return
        if faults.roll(hooks.drop_rate):
            self.state.record_attempt(delivery, delivery_id, None, "dropped (injected)")
            return
        body = delivery.body
        if faults.roll(hooks.stale_timestamp_rate):
            envelope = json.loads(body)
            envelope["timestamp"] = iso(time.time() - 600)
            body = json.dumps(envelope, separators=(",", ":")).encode()
        secret = generate_secret() if faults.roll(hooks.bad_signature_rate) else delivery.secret
        headers = signed_headers(
            secret, body, event_type=delivery.event_type, delivery_id=delivery_id
        )
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(delivery.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        self.state.record_attempt(delivery, delivery_id, status, error)
