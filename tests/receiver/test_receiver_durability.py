"""Group commit in the receiver's store: a 2xx survives kill -9, batches share one commit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from runbook_lib.core.serving import free_port
from runbook_lib.core.signing import generate_webhook_secret, signed_headers
from runbook_lib.receiver import EventStore, webhook_path

SECRET = generate_webhook_secret()
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def envelope(event_id: str, seq: int = 1) -> bytes:
    body = {
        "eventId": event_id,
        "eventType": "message.sent",
        "createdAt": "2026-11-23T07:00:00Z",
        "data": {
            "messageId": f"msg_{event_id}",
            "externalReference": "ref-durable",
            "sequence": seq,
            "status": "SENT",
            "numberId": "num_a",
            "to": "+15005550001",
            "occurredAt": "2026-11-23T07:00:00Z",
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _start_receiver(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDCLOUD_WEBHOOK_SECRET": SECRET}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "runbook_lib.cli", "receiver", "--db", str(db)]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the receiver exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the receiver did not start within 30 s")


def test_every_2xx_survives_kill_9_mid_burst(tmp_path):
    """Kill -9 after ~300 of 2000 answers: every event answered 2xx is in the store, intact."""
    db, port = tmp_path / "events.sqlite", free_port()
    url = f"http://127.0.0.1:{port}{webhook_path()}"  # `runbook receiver`: the default provider
    requests = []
    for n in range(2000):
        event_id = f"evt_burst_{n:05d}"
        body = envelope(event_id)
        requests.append((event_id, body, signed_headers(SECRET, event_id, body)))
    acked: list[str] = []
    lock, killed = threading.Lock(), threading.Event()
    process = _start_receiver(db, port, tmp_path / "receiver.log")
    try:
        with httpx.Client(limits=httpx.Limits(max_connections=32), timeout=10) as client:

            def post(request: tuple[str, bytes, dict[str, str]]) -> None:
                event_id, body, headers = request
                if killed.is_set():
                    return
                try:
                    response = client.post(url, content=body, headers=headers)
                except httpx.TransportError:
                    return  # in flight when the process died: never acknowledged
                if response.status_code == 200:
                    with lock:
                        acked.append(event_id)
                        if len(acked) >= 300 and not killed.is_set():
                            os.kill(process.pid, signal.SIGKILL)
                            killed.set()

            with ThreadPoolExecutor(32) as pool:
                list(pool.map(post, requests))
        assert killed.is_set(), "the burst finished before the kill"
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()
    store = EventStore(db)
    try:
        stored = {event.event_id for event in store.events()}  # every raw body parses again
        lost = sorted(set(acked) - stored)
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged events lost: {lost[:5]}"
        assert store.record(envelope(acked[0]), acked[0]) == "duplicate"  # writable again
    finally:
        store.close()


def _blocked_writes(db: Path):
    """Hold SQLite's write lock from another connection, so queued deliveries pile up."""
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    return blocker


def test_queued_deliveries_share_one_commit_and_duplicates_inside_it_are_duplicates(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    try:
        blocker = _blocked_writes(store.path)
        first = store.submit(envelope("evt_first"), "evt_first")
        time.sleep(0.3)  # the writer holds evt_first and waits for the lock
        later = [store.submit(envelope(f"evt_{n}"), f"evt_{n}") for n in range(50)]
        twice = store.submit(envelope("evt_7", seq=1), "evt_7")
        assert not first.done() and not any(f.done() for f in later)  # nothing before commit
        blocker.execute("ROLLBACK")
        blocker.close()
        outcomes = [f.result(10) for f in later]
        assert first.result(10) == "accepted"
        assert outcomes == ["accepted"] * 50 and twice.result(10) == "duplicate"
        assert store.commits == 2
        (event,) = [e for e in store.events() if e.event_id == "evt_7"]
        assert event.delivery_count == 2
        assert [d["outcome"] for d in store.deliveries("evt_7")] == ["accepted", "duplicate"]
        assert [e.event_id for e in store.events()][:3] == ["evt_first", "evt_0", "evt_1"]
    finally:
        store.close()


def test_concurrent_records_are_batched(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    try:
        with ThreadPoolExecutor(32) as pool:
            outcomes = list(
                pool.map(lambda n: store.record(envelope(f"evt_{n}"), f"evt_{n}"), range(400))
            )
        assert outcomes == ["accepted"] * 400
        assert len(store.events()) == 400
        assert 0 < store.commits < 400
    finally:
        store.close()


def test_a_failing_delivery_fails_only_its_own_future(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    try:
        blocker = _blocked_writes(store.path)
        good = store.submit(envelope("evt_a"), "evt_a")
        not_envelope = store.submit(b"[1, 2]", "evt_b")
        # A lone surrogate parses as JSON but cannot be stored as text: this delivery alone fails.
        surrogate = envelope("evt_s").replace(b'"msg_evt_s"', b'"msg_\\ud800"')
        broken = store.submit(surrogate, "evt_s")
        also_good = store.submit(envelope("evt_c"), "evt_c")
        blocker.execute("ROLLBACK")
        blocker.close()
        assert good.result(10) == "accepted" and also_good.result(10) == "accepted"
        with pytest.raises(ValueError):
            not_envelope.result(10)
        with pytest.raises(UnicodeEncodeError):
            broken.result(10)
        assert [e.event_id for e in store.events()] == ["evt_a", "evt_c"]
    finally:
        store.close()


def test_close_flushes_queued_deliveries_and_refuses_new_ones(tmp_path):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    futures = [store.submit(envelope(f"evt_{n}"), f"evt_{n}") for n in range(100)]
    store.record_rejection("invalid_signature", webhook_id="evt_bad")
    store.close()
    assert all(f.done() and f.result() == "accepted" for f in futures)
    with pytest.raises(RuntimeError):
        store.submit(envelope("evt_late"), "evt_late")
    reopened = EventStore(path)
    try:
        assert reopened.counts() == {
            "events": 100,
            "deliveries": 101,
            "duplicates": 0,
            "rejections": {"invalid_signature": 1},
        }
    finally:
        reopened.close()


def test_a_store_opened_only_to_read_starts_no_writer(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    store.events()
    assert store._writer is None
    store.close()


def test_noop_route_verifies_like_the_real_one_and_stores_nothing(tmp_path):
    from runbook_lib.core.serving import running
    from runbook_lib.receiver import create_receiver_app

    store = EventStore(tmp_path / "events.sqlite")
    app = create_receiver_app(secrets=[SECRET], store=store, noop_path="/_bench/noop")
    try:
        with running(app) as server:
            url = server.url + "/_bench/noop"
            body = envelope("evt_noop")
            good = httpx.post(url, content=body, headers=signed_headers(SECRET, "evt_noop", body))
            wrong = signed_headers(generate_webhook_secret(), "evt_noop", body)
            assert good.status_code == 200
            assert httpx.post(url, content=body, headers=wrong).status_code == 401
            assert store.events() == [] and store.deliveries() == []
        default = create_receiver_app(secrets=[SECRET], store=store)
        assert "/_bench/noop" not in {route.path for route in default.routes}
    finally:
        store.close()


def test_batches_stay_within_sqlites_parameter_limit(tmp_path, monkeypatch):
    """Older SQLite builds allow 999 parameters: batches shrink to fit one statement."""
    from runbook_lib.receiver import store as store_module

    open_writer = store_module._open_writer

    def low_limit(path):
        db = open_writer(path)
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 60)  # 4 deliveries per statement
        return db

    monkeypatch.setattr(store_module, "_open_writer", low_limit)
    store = EventStore(tmp_path / "events.sqlite")
    try:
        blocker = _blocked_writes(store.path)
        first = store.submit(envelope("evt_first"), "evt_first")
        time.sleep(0.3)  # the writer holds evt_first and waits for the lock
        ids = [f"evt_{n}" for n in range(9)] + ["evt_2", "evt_first"]
        later = [store.submit(envelope(event_id), event_id) for event_id in ids]
        blocker.execute("ROLLBACK")
        blocker.close()
        assert first.result(10) == "accepted"
        assert [f.result(10) for f in later] == ["accepted"] * 9 + ["duplicate", "duplicate"]
        assert store.commits == 1 + 3  # evt_first alone, then 11 deliveries four at a time
        assert [e.event_id for e in store.events()] == ["evt_first"] + ids[:9]
        counts = {e.event_id: e.delivery_count for e in store.events()}
        assert counts["evt_2"] == counts["evt_first"] == 2 and counts["evt_3"] == 1
    finally:
        store.close()
