"""The sandbox's webhook dispatcher: signed deliveries, retried on the schedule until a 2xx.

One delivery at a time, in due order (reversed under the ``reorder`` fault). Every attempt of
one event carries the same body (so the same ``evt_`` id and signature) and a new
``X-SendAPI-Delivery`` id. Injected faults (outage windows, drops, duplicates, a wrong secret, a
stale envelope timestamp) are decided by the shared
:class:`~runbook_lib.core.sandbox_kit.WebhookDispatcher`; this says how SendAPI signs and stales.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ....core import sandbox_kit
from ....core.sandbox_kit import STALE_SECONDS, Attempt
from ..signing import generate_secret, signed_headers
from .state import Delivery, SandboxState, iso

__all__ = ["WebhookDispatcher"]


class WebhookDispatcher(sandbox_kit.WebhookDispatcher[Delivery]):
    """An asyncio task that drains the state's outbox."""

    TASK_NAME = "sendapi-sandbox-webhooks"
    POLL_SECONDS = 0.25

    def __init__(self, state: SandboxState) -> None:
        super().__init__(state.faults, timeout=state.config.webhook_timeout)
        self.state = state

    def due(self, now: float) -> list[Delivery]:
        return self.state.due(now)

    def next_due(self) -> float | None:
        return self.state.next_due()

    def attempt(self, item: Delivery) -> Attempt[Delivery] | None:
        if not self.state.deliverable(item):
            return None
        return Attempt(item, item.url, item.body, item.secret, self.state.new_id("dlv"))

    def wrong_secret(self) -> str:
        return generate_secret()

    def sign(
        self, attempt: Attempt[Delivery], secret: Any, *, stale: bool
    ) -> tuple[bytes, dict[str, str]]:
        body = attempt.body
        if stale:  # the envelope's own timestamp is what a SendAPI receiver checks
            envelope = json.loads(body)
            envelope["timestamp"] = iso(time.time() - STALE_SECONDS)
            body = json.dumps(envelope, separators=(",", ":")).encode()
        assert attempt.attempt_id is not None
        headers = signed_headers(
            secret, body, event_type=attempt.item.event_type, delivery_id=attempt.attempt_id
        )
        return body, headers

    def record(self, attempt: Attempt[Delivery], status: int | None, error: str | None) -> None:
        assert attempt.attempt_id is not None
        self.state.record_attempt(attempt.item, attempt.attempt_id, status, error)
