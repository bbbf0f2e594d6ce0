"""The reference receiver with SendAPI's scheme: events stored once under their envelope id."""

from __future__ import annotations

import json
import time

import httpx

from runbook_lib.core.parameters import EventSourceParameters
from runbook_lib.providers.base import get_provider
from runbook_lib.receiver import run_receiver
from runbook_lib.sources import PollingSource

SENDAPI = get_provider("sendapi")


def envelope(event_id: str, *, age: float = 0.0) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age))
    return json.dumps({"id": event_id, "event": "sms.delivered", "timestamp": stamp,
                       "data": {"id": "sms_rcv_1", "status": "delivered"}}).encode()  # fmt: skip


def test_retries_with_new_delivery_ids_are_stored_once_and_stale_ones_refused(tmp_path):
    secret = SENDAPI.signature.generate_secret()
    db = tmp_path / "events.sqlite"
    with run_receiver(db_path=db, secrets=[secret], provider=SENDAPI) as receiver:
        body = envelope("evt_rcv_1")
        answers = [
            httpx.post(receiver.webhook_url, content=body,
                       headers=SENDAPI.signature.sign(secret, f"dlv_{n}", body)).status_code
            for n in range(2)
        ]  # fmt: skip
        stale = envelope("evt_rcv_2", age=600)
        refused = httpx.post(receiver.webhook_url, content=stale,
                             headers=SENDAPI.signature.sign(secret, "dlv_9", stale))  # fmt: skip
    assert answers == [200, 200] and refused.status_code == 400
    source = PollingSource(EventSourceParameters(kind="receiver_sqlite", path=db))
    events = source.events_for(message_id="sms_rcv_1")
    assert [(e.event_id, e.delivery_count) for e in events] == [("evt_rcv_1", 2)]
