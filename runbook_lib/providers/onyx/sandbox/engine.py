"""The Onyx sandbox's clockwork: orders walk their states, messages get delivery updates, and
signed webhooks go out and are retried on the configured schedule until a 2xx.

One asyncio task ticks every ``tick_seconds``. Each attempt is signed anew (fresh
``webhook-timestamp``, same ``webhook-id`` = event id) with the endpoint's secret. Webhook faults
(drop, duplicate, outage, bad signature, stale timestamp, delay, reorder) come from the shared
fault profile and are decided by the shared
:class:`~runbook_lib.core.sandbox_kit.WebhookDispatcher`; a duplicate is a second POST here.
"""

from __future__ import annotations

import time
from typing import Any

from ....core import sandbox_kit
from ....core.sandbox_kit import STALE_SECONDS, Attempt
from ....core.signing import generate_webhook_secret
from ..signing import sign_delivery
from .outbox import Delivery, Endpoint, StoredEvent
from .state import OnyxSandboxState

__all__ = ["Engine"]

Due = tuple[Delivery, StoredEvent, Endpoint]


class Engine(sandbox_kit.WebhookDispatcher[Due]):
    """Started and stopped by the app's lifespan."""

    TASK_NAME = "onyx-sandbox-engine"
    DUPLICATES_AT_DISPATCH = True

    def __init__(self, state: OnyxSandboxState) -> None:
        super().__init__(state.faults, timeout=state.config.webhook_timeout)
        self.state = state

    def due(self, now: float) -> list[Due]:
        self.state.advance()  # each tick moves orders and messages on before webhooks go out
        due = self.state.outbox.due_deliveries(now)
        if self.faults.profile.webhooks.reorder:
            due.reverse()
        return due

    def wait_seconds(self) -> float:
        return self.state.config.tick_seconds

    def attempt(self, item: Due) -> Attempt[Due]:
        _, event, hook = item
        return Attempt(item, hook.url, event.body, hook.secret)

    def wrong_secret(self) -> str:
        return generate_webhook_secret()  # signed, but not with the endpoint's secret

    def sign(
        self, attempt: Attempt[Due], secret: Any, *, stale: bool
    ) -> tuple[bytes, dict[str, str]]:
        timestamp = int(time.time()) - (STALE_SECONDS if stale else 0)
        event_id = attempt.item[1].event_id
        return attempt.body, sign_delivery(secret, event_id, attempt.body, timestamp=timestamp)

    def record(self, attempt: Attempt[Due], status: int | None, error: str | None) -> None:
        self.state.outbox.record_attempt(attempt.item[0], status, error)
