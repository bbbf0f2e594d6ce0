"""Receiver throughput: durable group-committed writes against the same server's no-op endpoint.

The receiver runs in a process of its own (so the client does not share its GIL) with the opt-in
no-op route, which verifies each delivery exactly like the real one and answers 200 without
storing. Both are posted the same kind of signed envelopes by one concurrent client, so the ratio
says what the durable write (SQLite WAL, synchronous=FULL, one fsynced commit per batch) costs.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from runbook_lib.core.serving import free_port
from runbook_lib.core.signing import generate_webhook_secret, signed_headers

EVENTS = 4000
CONCURRENCY = 64
ROUNDS = 9  # this machine's speed drifts between seconds; pair each round's two runs
TARGET = 0.70
NOOP_PATH = "/_bench/noop"
WEBHOOK_PATH = "/webhooks/redcloud"


def _serve(db_path: str, port: int, secret: str) -> None:
    """The receiver process: the real app plus the no-op route, served by uvicorn as the CLI does."""
    import uvicorn

    from runbook_lib.receiver import EventStore, create_receiver_app

    app = create_receiver_app(secrets=[secret], store=EventStore(db_path), noop_path=NOOP_PATH)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _envelope(event_id: str, n: int) -> bytes:
    status = ("QUEUED", "SENT", "DELIVERED")[n % 3]
    event_type = {"QUEUED": "message.queued", "SENT": "message.sent"}.get(
        status, "message.delivery"
    )
    body = {
        "eventId": event_id,
        "eventType": event_type,
        "createdAt": "2026-11-23T07:00:00Z",
        "data": {
            "messageId": f"msg_{n // 3:06d}",
            "externalReference": f"order-{n // 3:06d}",
            "sequence": n % 3 + 1,
            "status": status,
            "numberId": "num_bench",
            "to": "+15005550001",
            "occurredAt": "2026-11-23T07:00:00Z",
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _requests(secret: str, path: str, port: int, prefix: str) -> list[bytes]:
    """Signed HTTP/1.1 requests, encoded before the clock starts (unique event ids per round)."""
    out = []
    for n in range(EVENTS):
        event_id = f"evt_{prefix}_{n:06d}"
        body = _envelope(event_id, n)
        headers = signed_headers(secret, event_id, body)
        head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        head += f"content-length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        out.append(head.encode() + b"\r\n" + body)
    return out


async def _keep_alive_client(port: int, pending: Iterator[bytes]) -> None:
    """One keep-alive connection posting requests from ``pending`` one after another.

    A few lines of HTTP/1.1 rather than httpx: on 2 cores the client must cost far less CPU than
    the server, or the no-op baseline measures the client.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in pending:
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            if status_line.split(b" ")[1:2] != [b"200"]:
                raise SystemExit(f"the receiver answered {status_line!r}: {answer!r}")
    finally:
        writer.close()


async def _post_all(port: int, requests: list[bytes]) -> tuple[float, float]:
    """Post every request with CONCURRENCY in flight; (wall seconds, client CPU seconds)."""
    pending = iter(requests)
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(_keep_alive_client(port, pending) for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, time.process_time() - cpu


def _wait_ready(base: str, server: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise SystemExit("the receiver process exited before it was ready")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the receiver did not become ready within 30 s")


def main() -> None:
    secret = generate_webhook_secret()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rates: dict[str, list[float]] = {"noop": [], "durable": []}
    busy: dict[str, list[float]] = {"noop": [], "durable": []}
    with tempfile.TemporaryDirectory() as tmp:
        db_path = str(Path(tmp) / "events.sqlite")
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(db_path, port, secret), name="receiver", daemon=True
        )
        server.start()
        try:
            _wait_ready(base, server)
            for round_no in range(ROUNDS):  # alternate, so drift affects both alike
                for name, path in (("noop", NOOP_PATH), ("durable", WEBHOOK_PATH)):
                    requests = _requests(secret, path, port, f"{name}{round_no}")
                    wall, cpu = asyncio.run(_post_all(port, requests))
                    rates[name].append(EVENTS / wall)
                    busy[name].append(cpu / wall)
            stored = httpx.get(base + "/healthz", timeout=10).json()["events"]
        finally:
            server.terminate()
            server.join(10)
            if server.is_alive():
                server.kill()
                server.join()
    if stored != EVENTS * ROUNDS:  # the no-op stores nothing
        raise SystemExit(f"the store holds {stored} events, expected {EVENTS * ROUNDS}")
    noop, durable = statistics.median(rates["noop"]), statistics.median(rates["durable"])
    # Each round's durable run against the no-op run just before it: drift cancels out.
    ratios = [d / n for d, n in zip(rates["durable"], rates["noop"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"receiver throughput, {EVENTS} signed webhooks x {ROUNDS} rounds each, "
        f"{CONCURRENCY} in flight, median"
    )
    print(
        f"  no-op endpoint (verify only)   : {noop:7.0f} events/s  (baseline; "
        f"client CPU {statistics.median(busy['noop']):.0%} of wall)"
    )
    print(f"  durable (group commit, fsync)  : {durable:7.0f} events/s")
    print(
        f"  durable / no-op, median of the {ROUNDS} rounds' ratios: {ratio:.0%} "
        f"(rounds: {', '.join(f'{r:.0%}' for r in ratios)}; "
        f"target >= {TARGET:.0%}: {'met' if ratio >= TARGET else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
