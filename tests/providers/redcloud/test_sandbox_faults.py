"""Sandbox fault injection and control plane, against the real client and receiver."""

from __future__ import annotations

import time

import httpx
import pytest

from runbook_lib import ProviderError
from runbook_lib.providers.redcloud.sandbox import FaultProfile, SandboxControl
from tests.providers.redcloud.test_sandbox import client_for, send_body, wait_until
from tests.stack import running_stack


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path) as s:
        yield s


def stored_types(stack, message_id):
    return sorted(e.event_type for e in stack.receiver.store.events_for_message(message_id))


def test_429_with_retry_after_is_honoured_and_converges(stack):
    control = SandboxControl(stack.sandbox.url)
    control.set_faults({"api": {"send": {"rate_429": 1.0, "retry_after": 0}}})
    sleeps: list[float] = []
    client = client_for(stack.sandbox, secret=stack.client_secret, sleep=sleeps.append)
    with pytest.raises(ProviderError) as info:
        client.send_message(send_body(), idempotency_key="k-429")
    assert info.value.status == 429 and sleeps == [0.0, 0.0]
    control.clear_faults()
    assert client.send_message(send_body(), idempotency_key="k-429").status == 202


def test_5xx_and_connection_resets_are_retried_with_the_same_key(stack):
    stack.sandbox.sandbox.set_faults(
        {"api": {"send": {"rate_5xx": 0.5, "reset_rate": 0.3}}, "seed": 3}
    )
    client = client_for(stack.sandbox, secret=stack.client_secret, sleep=lambda s: None)
    client.retry = client.retry.__class__(max_attempts=10, base_delay=0)
    result = client.send_message(send_body(), idempotency_key="k-flaky")
    attempts = [r for r in client.request_log if r.path.endswith("/send")]
    assert result.status == 202 and len(attempts) > 1
    assert {r.idempotency_key for r in attempts} == {"k-flaky"}
    assert any(r.error for r in attempts) or any(r.status and r.status >= 500 for r in attempts)
    assert stack.sandbox.sandbox.message_count() == 1


def test_same_seed_gives_the_same_faults(stack):
    def statuses():
        stack.sandbox.sandbox.set_faults({"api": {"whoami": {"rate_5xx": 0.5}}, "seed": 11})
        return [httpx.get(stack.sandbox.url + "/api/core/whoami").status_code for _ in range(12)]

    first, second = statuses(), statuses()
    assert first == second and 503 in first and 401 in first


def test_latency_is_added(stack):
    stack.sandbox.sandbox.set_faults({"api": {"whoami": {"latency_ms": 300}}})
    started = time.monotonic()
    httpx.get(stack.sandbox.url + "/api/core/whoami")
    assert time.monotonic() - started >= 0.3


def test_bad_profiles_are_refused_naming_the_key(stack):
    response = httpx.put(
        stack.sandbox.url + "/_sandbox/faults", json={"api": {"send": {"rate_42": 1}}}
    )
    assert response.status_code == 400 and "rate_42" in response.json()["detail"]
    with pytest.raises(ValueError, match="drop_rate must be a number from 0 to 1"):
        FaultProfile.from_dict({"webhooks": {"drop_rate": 2}})


def test_outage_window_loses_nothing(stack):
    stack.sandbox.sandbox.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": 0.5}]}})
    client = client_for(stack.sandbox, secret=stack.client_secret)
    mid = client.send_message(send_body(), idempotency_key="k-outage").data["messageId"]
    assert wait_until(lambda: len(stored_types(stack, mid)) == 3, timeout=15)
    errors = [a["error"] for a in stack.sandbox.sandbox.webhook_attempts() if a["messageId"] == mid]
    assert "endpoint outage (injected)" in errors


@pytest.mark.parametrize(
    "fault,reason",
    [("bad_signature_rate", "invalid_signature"), ("stale_timestamp_rate", "stale_timestamp")],
)
def test_signature_faults_are_rejected_then_redelivered(stack, fault, reason):
    stack.sandbox.sandbox.set_faults({"webhooks": {fault: 0.5}, "seed": 1})
    client = client_for(stack.sandbox, secret=stack.client_secret)
    mid = client.send_message(send_body(), idempotency_key=f"k-{fault}").data["messageId"]
    assert wait_until(lambda: len(stored_types(stack, mid)) == 3, timeout=15)
    assert stack.receiver.store.counts()["rejections"].get(reason, 0) >= 1


def test_drop_duplicate_reorder_still_converge(stack):
    stack.sandbox.sandbox.set_faults(
        {"webhooks": {"drop_rate": 0.3, "duplicate_rate": 1.0, "reorder": True}, "seed": 5}
    )
    client = client_for(stack.sandbox, secret=stack.client_secret)
    mid = client.send_message(send_body(), idempotency_key="k-chaos").data["messageId"]
    assert wait_until(lambda: len(stored_types(stack, mid)) == 3, timeout=15)
    assert wait_until(lambda: stack.receiver.store.counts()["duplicates"] >= 3, timeout=15)


def test_trigger_inbound_resend_and_reset(stack):
    control = SandboxControl(stack.sandbox.url)
    event_id = control.trigger("message.reaction", {"messageId": "msg_x", "emoji": "+1"})
    inbound = control.inbound(
        sender="+14155550100",
        body="STOP",
        media=[{"url": "https://x.example/p.jpg", "contentType": "image/jpeg"}],
    )
    assert wait_until(lambda: len(stack.receiver.store.events()) == 2)
    (stored_inbound,) = stack.receiver.store.events_for_conversation(inbound["conversationId"])
    assert stored_inbound.event_type == "message.inbound" and stored_inbound.data["media"]
    control.resend(event_id)
    assert wait_until(lambda: stack.receiver.store.counts()["duplicates"] == 1)
    control.set_token_ttl(5)
    control.reset()
    assert control.messages() == [] and control.faults()["api"] == {}
