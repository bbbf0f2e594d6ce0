"""The reference receiver over real HTTP: raw-body signatures, durability, duplicates, 4xx only."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from runbook_lib import MissingSecretError
from runbook_lib.core.signing import generate_webhook_secret, signed_headers
from runbook_lib.receiver import EventStore, ReceiverConfig, build_receiver, run_receiver

SECRET = generate_webhook_secret()
OLD_SECRET = generate_webhook_secret()


def envelope(event_id="evt_1", event_type="message.sent", seq=2, **data) -> bytes:
    body = {
        "eventId": event_id,
        "eventType": event_type,
        "createdAt": "2026-11-23T07:00:00Z",
        "data": {
            "messageId": "msg_1",
            "externalReference": "ref-1",
            "sequence": seq,
            "status": "SENT",
            "numberId": "num_a",
            "to": "+15005550001",
            **data,
        },
        "futureField": {"ignored": True},
    }
    return json.dumps(body, separators=(",", ":")).encode()


@pytest.fixture
def receiver(tmp_path):
    with run_receiver(db_path=tmp_path / "events.sqlite", secrets=[SECRET]) as r:
        yield r


def post(receiver, body: bytes, *, msg_id="evt_1", secret=SECRET, headers=None, **kw):
    h = signed_headers(secret, msg_id, body, **kw)
    h.update(headers or {})
    return httpx.post(
        receiver.webhook_url, content=body, headers={k: v for k, v in h.items() if v is not None}
    )


def test_valid_event_is_stored_with_its_raw_body(receiver):
    body = envelope()
    response = post(receiver, body)
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    (event,) = receiver.store.events_for_message("msg_1")
    assert (event.sequence, event.status, event.external_reference) == (2, "SENT", "ref-1")
    raw = receiver.store._db.execute("SELECT raw_body FROM events").fetchone()[0]
    assert raw.encode() == body


def test_duplicates_are_acknowledged_and_stored_once(receiver):
    body = envelope()
    assert post(receiver, body).status_code == 200
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda _: post(receiver, body).status_code, range(2)))
    assert codes == [200, 200]
    (event,) = receiver.store.events()
    assert event.delivery_count == 3
    outcomes = [d["outcome"] for d in receiver.store.deliveries("evt_1")]
    assert outcomes.count("accepted") == 1 and outcomes.count("duplicate") == 2


@pytest.mark.parametrize(
    "case,expected,reason",
    [
        ("wrong_secret", 401, "invalid_signature"),
        ("altered_body", 401, "invalid_signature"),
        ("reserialized", 401, "invalid_signature"),
        ("stale", 400, "stale_timestamp"),
        ("future", 400, "future_timestamp"),
        ("garbage_signature", 400, "malformed_signature"),
        ("bare_version", 400, "malformed_signature"),
        ("unknown_version", 401, "invalid_signature"),
        ("bad_timestamp", 400, "bad_timestamp"),
    ],
)
def test_bad_deliveries_get_4xx_and_are_recorded(receiver, case, expected, reason):
    body = envelope()
    kwargs: dict = {}
    send_body = body
    extra: dict = {}
    if case == "wrong_secret":
        kwargs["secret"] = generate_webhook_secret()
    elif case == "altered_body":
        send_body = body.replace(b'"sequence":2', b'"sequence":3')
    elif case == "reserialized":
        send_body = json.dumps(json.loads(body), indent=1).encode()
    elif case == "stale":
        kwargs["timestamp"] = int(time.time()) - 301
    elif case == "future":
        kwargs["timestamp"] = int(time.time()) + 301
    elif case == "garbage_signature":
        extra["webhook-signature"] = "garbage"
    elif case == "bare_version":
        extra["webhook-signature"] = "v1"
    elif case == "unknown_version":
        extra["webhook-signature"] = "v2,c2lnbmF0dXJl"
    elif case == "bad_timestamp":
        extra["webhook-timestamp"] = "yesterday"
    h = signed_headers(kwargs.pop("secret", SECRET), "evt_1", body, **kwargs)
    h.update(extra)
    response = httpx.post(receiver.webhook_url, content=send_body, headers=h)
    assert response.status_code == expected
    assert receiver.store.events() == []
    assert receiver.store.counts()["rejections"] == {reason: 1}


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_400(receiver, header):
    body = envelope()
    h = signed_headers(SECRET, "evt_1", body)
    del h[header]
    assert httpx.post(receiver.webhook_url, content=body, headers=h).status_code == 400


@pytest.mark.parametrize(
    "body", [b"\xff\xfe not utf-8", b"{not json", b"[1,2]", b'{"eventId": "evt_1"}']
)
def test_malformed_body_with_valid_signature_is_400(receiver, body):
    response = post(receiver, body)
    assert response.status_code == 400
    assert receiver.store.counts()["rejections"] == {"malformed_json": 1}


def test_text_that_cannot_be_stored_is_400_and_recorded(receiver):
    """A lone surrogate is valid JSON but not storable text: a 4xx, never a 5xx retried forever."""
    body = envelope(messageId="msg_\ud800")
    assert b"\\ud800" in body
    response = post(receiver, body)
    assert response.status_code == 400 and response.json()["reason"] == "malformed_json"
    assert receiver.store.counts()["rejections"] == {"malformed_json": 1}


def test_a_sequence_beyond_64_bits_is_stored_as_missing(receiver):
    body = envelope(seq=10**30)
    assert post(receiver, body).status_code == 200
    (event,) = receiver.store.events()
    assert event.sequence is None  # the raw body keeps what was sent
    raw = receiver.store._db.execute("SELECT raw_body FROM events").fetchone()[0]
    assert str(10**30) in raw


def test_event_id_must_match_webhook_id(receiver):
    assert post(receiver, envelope(event_id="evt_other")).status_code == 400


def test_unknown_event_type_is_acknowledged(receiver):
    body = envelope(event_id="evt_9", event_type="message.reaction")
    assert post(receiver, body, msg_id="evt_9").status_code == 200
    assert [e.event_type for e in receiver.store.events()] == ["message.reaction"]


def test_rotation_signature_list_is_accepted(tmp_path):
    with run_receiver(db_path=tmp_path / "e.sqlite", secrets=[SECRET]) as r:
        body = envelope()
        h = signed_headers([OLD_SECRET, SECRET], "evt_1", body)
        assert " " in h["webhook-signature"]
        assert httpx.post(r.webhook_url, content=body, headers=h).status_code == 200


def test_store_is_readable_from_a_second_connection_while_writing(receiver):
    reader = EventStore(receiver.store.path)
    for i in range(5):
        body = envelope(event_id=f"evt_{i}", seq=i + 1)
        assert post(receiver, body, msg_id=f"evt_{i}").status_code == 200
        assert len(reader.events_for_message("msg_1")) == i + 1
    reader.close()


def test_receiver_refuses_to_start_without_a_secret(tmp_path):
    with pytest.raises(MissingSecretError) as info:
        build_receiver(ReceiverConfig(db_path=tmp_path / "e.sqlite"), environ={})
    assert "REDCLOUD_WEBHOOK_SECRET" in str(info.value)


def test_healthz_counts_events(receiver):
    post(receiver, envelope())
    assert httpx.get(receiver.url + "/healthz").json() == {"status": "ok", "events": 1}
