"""The sandbox's webhook dispatcher: signed deliveries, retried on the schedule until a 2xx.

One delivery at a time, in due order, so the lifecycle scenarios (out of order, duplicates)
arrive exactly as designed. Each attempt is signed anew (fresh ``webhook-timestamp``, same
``webhook-id``). A 410 disables that endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from ....core.signing import generate_webhook_secret, signed_headers
from .state import OutboundEvent, SandboxState

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
        self._task = asyncio.create_task(self._run(), name="sandbox-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        """Tell the dispatcher new events are due (safe from any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            for event in self.state.due_events(time.time()):
                await self._deliver(event)
            next_due = self.state.next_due()
            timeout = 0.5 if next_due is None else min(0.5, max(0.0, next_due - time.time()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _deliver(self, event: OutboundEvent) -> None:
        assert self._client is not None and event.url
        faults = self.state.faults
        hooks = faults.profile.webhooks
        if faults.in_outage():
            self.state.record_attempt(event, None, "endpoint outage (injected)")
            return
        if faults.roll(hooks.drop_rate):
            self.state.record_attempt(event, None, "dropped (injected)")
            return
        secret = self.state.config.webhook_secret
        if faults.roll(hooks.bad_signature_rate):
            secret = generate_webhook_secret()  # signed, but not with the account's secret
        timestamp = int(time.time()) - (600 if faults.roll(hooks.stale_timestamp_rate) else 0)
        headers = signed_headers(secret, event.event_id, event.body, timestamp=timestamp)
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(event.url, content=event.body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        self.state.record_attempt(event, status, error)
