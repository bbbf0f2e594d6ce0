"""An Onyx sandbox with an incident in its window, for the sources, the audit and the trace.

In the receiver store once :func:`make_incident` returns: a delivered send (``message.allowed``
→ ``message.delivery_updated``), a blocked send (``message.blocked`` ``THREAD_BLOCKED``), the test
subject's consent revoked (``consent.revoked``), and an order that stops in ``provisioning``
(a package whose walk ends there: past any window, it is an escalation trigger).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runbook_lib.core.errors import BlockedByPolicyError
from runbook_lib.core.parameters import RunbookParameters
from runbook_lib.providers.base import get_provider
from runbook_lib.providers.onyx.sandbox import OnyxSandboxControl
from runbook_lib.providers.onyx.sandbox.config import PACKAGES, Package
from runbook_lib.sources import ReceiverStoreSource
from tests.stack import Stack, running_stack

ONYX = get_provider("onyx")
STUCK_PACKAGE = Package("pkg_us_stuck_1gb", "USA 1 GB (stalls)", "US", "North America", "active",
                        1024, 7, 2.0, ("reserved", "provisioning"))  # fmt: skip


@dataclass(frozen=True)
class Incident:
    delivered_message: str
    blocked_message: str
    stuck_order: str


@contextlib.contextmanager
def incident_stack(folder: Path) -> Iterator[Stack]:
    """The Onyx stack (sandbox + receiver) with the stalling package in its catalogue."""
    with running_stack(
        folder, provider="onyx", order_step_seconds=0.05, packages=(*PACKAGES, STUCK_PACKAGE)
    ) as stack:
        yield stack


def make_incident(stack: Stack, params: RunbookParameters, *, timeout: float = 20) -> Incident:
    """Cause the incident through the sandbox's API and control plane; wait until stored."""
    s = params.settings
    client = ONYX.build_client(params, environ=stack.env)
    try:
        sent = client.send_message(app_id=s.app_id, subject=s.test_subject, thread_id=s.thread_id,
                                   intent=s.intent, body="incident", idempotency_key="k-ok")  # fmt: skip
        with contextlib.suppress(BlockedByPolicyError):
            client.send_message(app_id=s.app_id, subject="sub_thread_blocked",
                                thread_id="thr_blocked", intent=s.intent, body="x",
                                idempotency_key="k-blocked")  # fmt: skip
        order = client.create_order(
            package_id=STUCK_PACKAGE.package_id, partner_order_id="po-stuck", idempotency_key="k-o"
        )
    finally:
        client.close()
    with OnyxSandboxControl(stack.sandbox.url) as control:
        control.set_consent(s.test_subject, "revoked")
    store = ReceiverStoreSource(stack.receiver.store_path)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            frame = store.load()
            types = dict(zip(frame["event_id"], frame["event_type"], strict=True))
            orders = frame.filter(frame["conversation_id"] == f"order:{order.order_id}")
            if (
                "message.delivery_updated.delivered" in types.values()
                and "message.blocked" in types.values()
                and "consent.revoked" in types.values()
                and "provisioning" in orders["status"].to_list()
            ):
                break
        if time.monotonic() > deadline:
            raise AssertionError("the incident's events did not reach the receiver store")
        time.sleep(0.1)
    blocked = frame.filter(frame["event_type"] == "message.blocked")["message_id"].item()
    assert sent.message_id is not None
    return Incident(sent.message_id, blocked, order.order_id)
