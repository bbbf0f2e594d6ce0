"""The Onyx sandbox's clockwork: orders walk their states, messages get delivery updates, and
signed webhooks go out and are retried on the configured schedule until a 2xx.

One asyncio task ticks every ``tick_seconds``. Each attempt is signed anew (fresh
``webhook-timestamp``, same ``webhook-id`` = event id) with the endpoint's secret. Webhook faults
(drop, duplicate, outage, bad signature, stale timestamp, delay, reorder) come from the shared
fault profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from ....core.signing import generate_webhook_secret
from ..signing import sign_delivery
from .outbox import Delivery, Endpoint, StoredEvent
from .state import OnyxSandboxState

__all__ = ["Engine"]


class Engine:
    """Started and stopped by the app's lifespan."""

    def __init__(self, state: OnyxSandboxState) -> None:
        self.state = state
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.state.config.webhook_timeout)
        self._task = asyncio.create_task(self._run(), name="onyx-sandbox-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            self.state.advance()
            due = self.state.outbox.due_deliveries(time.time())
            if self.state.faults.profile.webhooks.reorder:
                due.reverse()
            for delivery, event, hook in due:
                await self._deliver(delivery, event, hook)
            await asyncio.sleep(self.state.config.tick_seconds)

    async def _deliver(self, delivery: Delivery, event: StoredEvent, hook: Endpoint) -> None:
        assert self._client is not None
        faults = self.state.faults
        hooks = faults.profile.webhooks
        if faults.in_outage():
            self.state.outbox.record_attempt(delivery, None, "endpoint outage (injected)")
            return
        if faults.roll(hooks.drop_rate):
            self.state.outbox.record_attempt(delivery, None, "dropped (injected)")
            return
        secret = hook.secret
        if faults.roll(hooks.bad_signature_rate):
            secret = generate_webhook_secret()  # signed, but not with the endpoint's secret
        timestamp = int(time.time()) - (600 if faults.roll(hooks.stale_timestamp_rate) else 0)
        headers = sign_delivery(secret, event.event_id, event.body, timestamp=timestamp)
        copies = 2 if faults.roll(hooks.duplicate_rate) else 1
        status: int | None = None
        error: str | None = None
        for _ in range(copies):
            try:
                response = await self._client.post(hook.url, content=event.body, headers=headers)
                status, error = response.status_code, None
            except httpx.HTTPError as exc:
                status, error = None, type(exc).__name__
        self.state.outbox.record_attempt(delivery, status, error)
