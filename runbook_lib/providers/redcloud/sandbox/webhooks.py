"""The sandbox's webhook dispatcher: signed deliveries, retried on the schedule until a 2xx.

One delivery at a time, in due order, so the lifecycle scenarios (out of order, duplicates)
arrive exactly as designed. Each attempt is signed anew (fresh ``webhook-timestamp``, same
``webhook-id``). A 410 disables that endpoint. The loop and the fault decisions are the shared
:class:`~runbook_lib.core.sandbox_kit.WebhookDispatcher`; this says how Red Cloud signs.
"""

from __future__ import annotations

import time
from typing import Any

from ....core import sandbox_kit
from ....core.sandbox_kit import STALE_SECONDS, Attempt
from ....core.signing import generate_webhook_secret, signed_headers
from .state import OutboundEvent, SandboxState

__all__ = ["WebhookDispatcher"]


class WebhookDispatcher(sandbox_kit.WebhookDispatcher[OutboundEvent]):
    """An asyncio task that drains the state's outbox."""

    def __init__(self, state: SandboxState) -> None:
        super().__init__(state.faults, timeout=state.config.webhook_timeout)
        self.state = state

    def due(self, now: float) -> list[OutboundEvent]:
        return self.state.due_events(now)

    def next_due(self) -> float | None:
        return self.state.next_due()

    def attempt(self, item: OutboundEvent) -> Attempt[OutboundEvent]:
        assert item.url  # due_events holds only events with an endpoint
        return Attempt(item, item.url, item.body, self.state.config.webhook_secret)

    def wrong_secret(self) -> str:
        return generate_webhook_secret()  # signed, but not with the account's secret

    def sign(
        self, attempt: Attempt[OutboundEvent], secret: Any, *, stale: bool
    ) -> tuple[bytes, dict[str, str]]:
        timestamp = int(time.time()) - (STALE_SECONDS if stale else 0)
        return attempt.body, signed_headers(
            secret, attempt.item.event_id, attempt.body, timestamp=timestamp
        )

    def record(
        self, attempt: Attempt[OutboundEvent], status: int | None, error: str | None
    ) -> None:
        self.state.record_attempt(attempt.item, status, error)
