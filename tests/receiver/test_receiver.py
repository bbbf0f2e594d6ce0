"""The reference receiver over real HTTP: raw-body signatures, durability, duplicates, 4xx only."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
import yaml

from runbook_lib import ConfigurationError, MissingSecretError
from runbook_lib.core.signing import generate_webhook_secret, signed_headers
from runbook_lib.providers.base import DEFAULT_PROVIDER, get_provider, provider_names
from runbook_lib.receiver import (
    EventStore,
    ReceiverConfig,
    build_receiver,
    create_receiver_app,
    run_receiver,
    webhook_path,
)
from tests.stack import ROOT

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
        kwargs["timestamp"] = (
            int(time.time()) + 330
        )  # margin: a slow request must not age into the window
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


# -- limits: what one request from anyone on the internet may cost -----------------------------
def raw_connection(receiver, head: bytes) -> socket.socket:
    """A socket that has sent ``head`` (request line and headers) to the receiver."""
    sock = socket.create_connection(("127.0.0.1", receiver.server.port))
    sock.settimeout(20)  # generous: a receiver that holds the request on never answers at all
    sock.sendall(head)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of one response (the receiver closes or sends content-length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def request_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_declared_body_over_the_cap_is_413_before_a_byte_of_it_is_read(tmp_path):
    with run_receiver(db_path=tmp_path / "e.sqlite", secrets=[SECRET]) as r:
        path = r.webhook_url.removeprefix(r.url)
        sock = raw_connection(r, request_head(path, Content_Length=str(100 * 1024 * 1024)))
        try:
            status, answer = read_response(sock)  # no body was sent: answered from the header
        finally:
            sock.close()
        assert (status, answer["reason"]) == (413, "body_too_large")
        assert r.store.counts()["rejections"] == {"body_too_large": 1}


def test_a_streamed_body_over_the_cap_is_413_and_the_rest_is_never_read(tmp_path):
    """A chunked body (no Content-Length) of 64 MiB against a 64 KiB cap: the answer comes while
    the sender is still sending, and the connection is closed instead of drained."""
    cap, total, chunk = 64 * 1024, 64 * 1024 * 1024, 16 * 1024
    with run_receiver(db_path=tmp_path / "e.sqlite", secrets=[SECRET], max_body_bytes=cap) as r:
        path = r.webhook_url.removeprefix(r.url)
        sock = raw_connection(r, request_head(path, Transfer_Encoding="chunked"))
        sent = [0]

        def stream() -> None:
            frame = b"%x\r\n" % chunk + b"a" * chunk + b"\r\n"
            with contextlib.suppress(OSError):  # the receiver closed: the point of the test
                while sent[0] < total:
                    sock.sendall(frame)
                    sent[0] += chunk

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        try:
            status, answer = read_response(sock)
            sender.join(20)
        finally:
            sock.close()
        assert (status, answer["reason"]) == (413, "body_too_large")
        assert not sender.is_alive() and sent[0] < total  # it stopped reading: sending failed
        assert r.store.counts()["rejections"] == {"body_too_large": 1}


def test_a_stalled_body_is_answered_408_after_the_read_deadline(tmp_path):
    with run_receiver(db_path=tmp_path / "e.sqlite", secrets=[SECRET], body_timeout=0.5) as r:
        path = r.webhook_url.removeprefix(r.url)
        sock = raw_connection(r, request_head(path, Content_Length="100") + b'{"eventId"')
        try:
            status, answer = read_response(sock)  # the other 90 bytes never come
            assert sock.recv(1) == b""  # and the connection is closed
        finally:
            sock.close()
        assert (status, answer["reason"]) == (408, "body_timeout")
        assert r.store.counts()["rejections"] == {"body_timeout": 1}


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_an_overlong_webhook_header_is_400_and_never_stored_whole(receiver, header):
    body = envelope()
    h = signed_headers(SECRET, "evt_1", body)
    h[header] = "x" * 5000
    response = httpx.post(receiver.webhook_url, content=body, headers=h)
    assert response.status_code == 400 and response.json()["reason"] == "header_too_long"
    assert receiver.store.counts()["rejections"] == {"header_too_long": 1}
    (sample,) = receiver.store.rejections()
    assert len(sample["webhookId"]) <= 128


def test_unsigned_floods_with_huge_headers_are_counted_exactly_in_a_bounded_database(tmp_path):
    """3,000 unsigned requests, half with an 8 KB webhook-id: every one counted by reason, the
    details of the newest 50 kept, and the database stays small (one row each: ~24 MB)."""
    db = tmp_path / "e.sqlite"
    with run_receiver(db_path=db, secrets=[SECRET], rejection_samples=50) as r:
        body = envelope()

        def flood(n: int) -> int:
            webhook_id = f"evt_{n}_" + ("x" * 8000 if n % 2 else "")
            headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(time.time()))}
            return client.post(r.webhook_url, content=body, headers=headers).status_code

        with httpx.Client() as client, ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(flood, range(3000)))
        assert set(codes) == {400}
        counts = r.store.counts()
        assert counts["rejections"] == {"header_too_long": 1500, "missing_header": 1500}
        assert counts["deliveries"] == 3000 and counts["events"] == 0
        samples = r.store.rejections()
        assert len(samples) == 50 and all(len(s["webhookId"]) <= 128 for s in samples)
    size = sum(f.stat().st_size for f in tmp_path.glob("e.sqlite*"))
    assert size < 2_000_000, f"{size} bytes"


@pytest.mark.parametrize(
    "inner",
    [
        b"[" * 2000 + b"]" * 2000,  # RecursionError in the parser
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b"1" * 5000,  # more digits than int() converts
    ],
    ids=["deep_list", "deep_object", "huge_number"],
)
def test_a_signed_body_that_cannot_be_parsed_is_400_never_500(receiver, inner):
    body = b'{"eventId":"evt_1","eventType":"message.sent","data":{"x":' + inner + b"}}"
    response = post(receiver, body)
    assert response.status_code == 400 and response.json()["reason"] == "malformed_json"
    assert receiver.store.counts()["rejections"] == {"malformed_json": 1}
    assert receiver.store.events() == []


# -- the signing secret: refused at start, never shown ------------------------------------------
BAD_SECRETS = {
    "blank": "   ",
    "no_prefix": base64.b64encode(b"k" * 32).decode(),
    "not_base64": "whsec_not*base64!",
    "empty_key": "whsec_",
    "bad_rotation_element": f"{SECRET} whsec_%%%",
}


@pytest.mark.parametrize("case", BAD_SECRETS)
def test_receiver_refuses_an_invalid_secret_naming_the_variable_not_the_value(tmp_path, case):
    value = BAD_SECRETS[case]
    config = ReceiverConfig(db_path=tmp_path / "e.sqlite")
    with pytest.raises(ConfigurationError) as info:
        build_receiver(config, environ={"REDCLOUD_WEBHOOK_SECRET": value})
    message = str(info.value)
    assert "REDCLOUD_WEBHOOK_SECRET" in message and "whsec_" in message and "\n" not in message
    for part in value.split():  # no element of the value, valid or not, is shown
        if part.removeprefix("whsec_"):
            assert part.removeprefix("whsec_") not in message


@pytest.mark.parametrize("case", BAD_SECRETS)
def test_runbook_receiver_with_an_invalid_secret_exits_3_with_one_line(
    tmp_path, monkeypatch, capsys, case
):
    from runbook_lib.cli import main

    monkeypatch.setenv("REDCLOUD_WEBHOOK_SECRET", BAD_SECRETS[case])
    code = main(["receiver", "--db", str(tmp_path / "e.sqlite"), "--port", "0"])
    captured = capsys.readouterr()
    assert code == 3
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("runbook receiver:") and "REDCLOUD_WEBHOOK_SECRET" in line
    for part in BAD_SECRETS[case].split():
        if part.removeprefix("whsec_"):
            assert part.removeprefix("whsec_") not in captured.err + captured.out


def test_create_receiver_app_checks_its_secrets_the_same_way(tmp_path):
    store = EventStore(tmp_path / "e.sqlite")
    try:
        for bad in ([], ["whsec_%%%"], ["plain-text"]):
            with pytest.raises(ConfigurationError):
                create_receiver_app(secrets=bad, store=store)
    finally:
        store.close()


# -- where: /webhooks/<kind>, the receiver's own provider ---------------------------------------
def _signed_probe(provider, secret: str) -> tuple[bytes, dict[str, str]]:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    event = provider.probe_envelope(
        provider.lifecycle.outbound_events[0], event_id="evt_path_1", message_id="msg_path_1",
        sequence=1, conversation_id="conv_path", now=now,
    )  # fmt: skip
    body = json.dumps(event).encode()
    return body, provider.signature.sign(secret, "evt_path_1", body)


@pytest.mark.parametrize("kind", provider_names())
def test_a_receiver_takes_its_providers_webhooks_at_webhooks_kind(tmp_path, kind):
    """Each provider's receiver serves /webhooks/<kind>; another provider's path is a 404 naming it."""
    provider = get_provider(kind)
    secret = provider.signature.generate_secret()
    body, headers = _signed_probe(provider, secret)
    with run_receiver(db_path=tmp_path / "e.sqlite", secrets=[secret], provider=provider) as r:
        assert r.webhook_url == f"{r.url}/webhooks/{kind}"
        assert httpx.post(r.webhook_url, content=body, headers=headers).status_code == 200
        for other in set(provider_names()) - {kind}:
            refused = httpx.post(f"{r.url}/webhooks/{other}", content=body, headers=headers)
            assert refused.status_code == 404
            assert refused.json()["path"] == f"/webhooks/{kind}"
            assert f"/webhooks/{kind}" in refused.json()["detail"]
            assert f"--provider {other}" in refused.json()["detail"]
        (event,) = r.store.events()  # the refused posts stored nothing
        assert event.event_id == "evt_path_1"


def test_red_cloud_webhooks_still_arrive_at_webhooks_redcloud(receiver):
    assert receiver.webhook_url.endswith("/webhooks/redcloud")
    assert post(receiver, envelope()).status_code == 200


@pytest.mark.parametrize("kind", provider_names())
def test_runbook_receiver_serves_and_names_its_providers_path(tmp_path, kind):
    assert ReceiverConfig(provider=kind).path == webhook_path(kind) == f"/webhooks/{kind}"
    assert ReceiverConfig().path == "/webhooks/redcloud"  # the default provider's


@pytest.mark.parametrize("sample", sorted((ROOT / "parameters").glob("*.yaml")), ids=str)
def test_the_parameter_files_point_at_the_path_their_providers_receiver_serves(sample):
    """A sandbox file names the reference receiver's path; an example file any path, but not
    another provider's."""
    data = yaml.safe_load(sample.read_text())
    kind = data["provider"].get("kind", DEFAULT_PROVIDER)
    urls = [data["webhooks"]["endpoint_url"]]
    own = data.get(kind)
    if isinstance(own, dict) and own.get("webhook_url"):
        urls.append(own["webhook_url"])
    for url in urls:
        path = httpx.URL(url).path
        if data["provider"].get("sandbox"):
            assert path == ReceiverConfig(provider=kind).path, (sample.name, url)
        others = {webhook_path(k) for k in provider_names()} - {webhook_path(kind)}
        assert path not in others, (sample.name, url)
