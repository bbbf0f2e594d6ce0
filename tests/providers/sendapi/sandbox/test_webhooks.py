"""Signed webhooks from the live sandbox: headers, retries, faults, sessions, unique event ids."""

from __future__ import annotations

import time
import uuid

from runbook_lib.providers.sendapi.mapping import fold_events
from runbook_lib.providers.sendapi.sandbox import DEFAULT_WEBHOOK_SECRET, SandboxConfig, run_sandbox

from ..receiver import Receiver, wait_until
from .conftest import FAST, client_for


def envelopes(receiver):
    return [{"id": e.id, "event": e.event, "timestamp": e.timestamp.isoformat(), "data": dict(e.data)}
            for e in receiver.events]  # fmt: skip


def test_deliveries_are_signed_and_name_event_and_delivery(client, receiver, sandbox):
    sent = client.send_sms(to="+15005550101", message="hi", idempotency_key=str(uuid.uuid4()))
    wait_until(
        lambda: sandbox.sandbox.pending_deliveries() == 0 and len(receiver.of(sent.message_id)) == 2
    )
    attempts = sandbox.control.deliveries()
    assert [a["event"] for a in attempts] == ["sms.sent", "sms.delivered"]
    assert all(a["status"] == 200 for a in attempts)
    assert len({a["deliveryId"] for a in attempts}) == 2
    assert all(
        e.id.startswith("evt_") and e.delivery_id.startswith("dlv_") for e in receiver.events
    )


def test_a_failing_endpoint_is_retried_with_the_same_event_id():
    receiver = Receiver(DEFAULT_WEBHOOK_SECRET, fail_first=2)
    with receiver, run_sandbox(SandboxConfig(webhook_url=receiver.url, **FAST)) as running:
        event_id = running.control.trigger("sms.delivered", {"id": "sms_x", "status": "delivered"})
        wait_until(lambda: running.sandbox.pending_deliveries() == 0)
        attempts = [a for a in running.control.deliveries() if a["eventId"] == event_id]
    assert [a["status"] for a in attempts] == [500, 500, 200]
    assert len({a["deliveryId"] for a in attempts}) == 3 and receiver.events[0].id == event_id


def test_retries_end_on_the_schedule_and_count_failures():
    receiver = Receiver(DEFAULT_WEBHOOK_SECRET, fail_first=100)
    with receiver, run_sandbox(SandboxConfig(webhook_url=receiver.url, **FAST)) as running:
        running.control.trigger("sms.sent", {"id": "sms_x"})
        wait_until(lambda: running.sandbox.pending_deliveries() == 0)
        with client_for(running) as c:
            (hook,) = c.webhooks()
    assert receiver.hits == 1 + len(FAST["webhook_retry_schedule"])
    assert hook.failure_count == receiver.hits and hook.is_active
    assert hook.secret is None and hook.secret_prefix == DEFAULT_WEBHOOK_SECRET[:10]


def test_an_endpoint_that_keeps_failing_is_disabled():
    with Receiver(DEFAULT_WEBHOOK_SECRET, fail_first=100) as receiver:
        config = SandboxConfig(webhook_url=receiver.url, disable_after_failures=3, **FAST)
        with run_sandbox(config) as running:
            for i in range(2):
                running.control.trigger("sms.sent", {"id": f"sms_{i}"})
            wait_until(lambda: running.sandbox.pending_deliveries() == 0)
            with client_for(running) as c:
                (hook,) = c.webhooks()
    assert not hook.is_active and hook.failure_count == 3


def test_disconnecting_a_session_emits_session_disconnected(client, receiver, sandbox):
    event_id = sandbox.control.disconnect_session("sess_sbx_primary", reason="phone_offline")
    wait_until(lambda: any(e.id == event_id for e in receiver.events))
    book = fold_events(envelopes(receiver), now=time.time())
    health = book.sessions["sess_sbx_primary"]
    assert health.status == "disconnected" and health.reason == "phone_offline"
    assert client.whatsapp_session("sess_sbx_primary").status == "disconnected"
    sandbox.control.connect_session("sess_sbx_primary")
    wait_until(lambda: len(receiver.events) == 2)
    assert fold_events(envelopes(receiver), now=time.time()).sessions["sess_sbx_primary"].connected


def test_event_ids_never_repeat_across_sandbox_restarts(receiver):
    seen = []
    for _ in range(2):
        with run_sandbox(SandboxConfig(webhook_url=receiver.url, **FAST)) as running:
            running.control.set_faults({"seed": 1})
            seen += [running.control.trigger("sms.sent", {"id": "sms_same"}) for _ in range(3)]
            running.control.reset()
            seen.append(running.control.trigger("sms.sent", {"id": "sms_same"}))
    assert len(set(seen)) == len(seen) == 8


def test_a_registered_webhook_gets_its_own_secret_and_its_events(client, sandbox):
    with Receiver("unset") as second:
        hook = client.create_webhook(
            url=second.url, events=["email.*"], idempotency_key=str(uuid.uuid4())
        )
        second.secret = hook.secret.reveal()
        assert hook.secret_prefix == second.secret[:10] and hook.events == ("email.*",)
        sandbox.control.trigger("email.delivered", {"id": "eml_1"})
        sandbox.control.trigger("sms.delivered", {"id": "sms_1"})
        wait_until(lambda: len(second.events) == 1)
        assert second.rejected == [] and second.events[0].event == "email.delivered"
        listed = {h.url: h for h in client.webhooks()}
        assert listed[second.url].secret is None  # a later GET shows the prefix only


def test_a_per_message_callback_url_receives_that_messages_events(client, receiver):
    with Receiver(DEFAULT_WEBHOOK_SECRET) as callback:
        sent = client.send_sms(to="+15005550101", message="hi", idempotency_key=str(uuid.uuid4()),
                               callback_url=callback.url)  # fmt: skip
        wait_until(lambda: len(callback.of(sent.message_id)) == 2)
    wait_until(lambda: len(receiver.of(sent.message_id)) == 2)


def test_duplicated_and_reordered_deliveries_still_fold_to_the_right_state(
    client, receiver, sandbox
):
    sandbox.control.set_faults({"webhooks": {"duplicate_rate": 1.0, "reorder": True}, "seed": 5})
    sent = client.send_whatsapp(session_id="sess_sbx_primary", to="+15005550201", text="hi",
                                idempotency_key=str(uuid.uuid4()))  # fmt: skip
    wait_until(lambda: len(receiver.of(sent.message_id)) == 6)
    book = fold_events(envelopes(receiver), now=time.time())
    assert book.lifecycles[sent.message_id].state == "read" and book.duplicates == 3


def test_bad_signatures_and_stale_envelopes_are_rejected_by_the_receiver(receiver, sandbox):
    sandbox.control.set_faults({"webhooks": {"bad_signature_rate": 1.0}})
    sandbox.control.trigger("sms.sent", {"id": "sms_a"})
    wait_until(lambda: "invalid_signature" in receiver.rejected)
    sandbox.control.set_faults({"webhooks": {"stale_timestamp_rate": 1.0}})
    sandbox.control.trigger("sms.sent", {"id": "sms_b"})
    wait_until(lambda: "stale_timestamp" in receiver.rejected)
    assert receiver.events == []


def test_dropped_deliveries_and_outages_are_retried_then_delivered(receiver, sandbox):
    sandbox.control.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": 0.15}]}})
    event_id = sandbox.control.trigger("sms.sent", {"id": "sms_o"})
    wait_until(lambda: sandbox.sandbox.pending_deliveries() == 0)
    assert any(e.id == event_id for e in receiver.events)
    errors = [a["error"] for a in sandbox.control.deliveries() if a["eventId"] == event_id]
    assert errors[0] == "endpoint outage (injected)" and errors[-1] is None


def test_dropped_deliveries_are_retried_until_the_schedule_ends(receiver, sandbox):
    sandbox.control.set_faults({"webhooks": {"drop_rate": 1.0}})
    event_id = sandbox.control.trigger("sms.sent", {"id": "sms_d"})
    wait_until(lambda: sandbox.sandbox.pending_deliveries() == 0)
    errors = [a["error"] for a in sandbox.control.deliveries() if a["eventId"] == event_id]
    assert errors == ["dropped (injected)"] * (1 + len(FAST["webhook_retry_schedule"]))
    assert receiver.hits == 0
