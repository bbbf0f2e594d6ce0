"""The webhook conformance probe: passes the project's receiver, flags each broken handler exactly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runbook_lib.core.errors import WebhookVerificationError
from runbook_lib.core.serving import BackgroundServer, free_port
from runbook_lib.core.signing import generate_webhook_secret, verify_webhook
from runbook_lib.providers.redcloud.contract import EVENT_STATES as STATE_BY_EVENT
from runbook_lib.providers.redcloud.contract import event_from_envelope
from runbook_lib.receiver import run_receiver
from runbook_lib.runbooks.probe import StoreReader, run_probe

SECRET = generate_webhook_secret()


class Handler:
    """A webhook handler that is correct unless told to have exactly one defect."""

    def __init__(self, defect: str | None = None) -> None:
        self.defect = defect
        self.rows: list = []  # stored events, one per row
        self.state: dict[str, tuple[int, str]] = {}  # messageId -> (applied sequence, state)
        self.lock = threading.Lock()

    # the probe's reader interface
    def events_for_message(self, message_id):
        with self.lock:
            return [e for e in self.rows if e.message_id == message_id]

    def message_state(self, message_id):
        with self.lock:
            return self.state.get(message_id, (0, None))[1]

    async def handle(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = dict(request.headers)
        if self.defect == "accepts_unsigned" and "webhook-signature" not in headers:
            pass
        else:
            if self.defect == "500_on_malformed_signature":
                for part in headers.get("webhook-signature", "").split():
                    version, _, value = part.partition(",")
                    if not version or not value:
                        raise RuntimeError("cannot parse signature")  # becomes a 500
            checked = body
            if self.defect == "verifies_reserialized_body":
                try:
                    checked = json.dumps(json.loads(body)).encode()
                except ValueError:
                    checked = body
            try:
                verify_webhook(
                    SECRET,
                    headers,
                    checked,
                    tolerance=10**9 if self.defect == "skips_timestamp_check" else 300,
                )
            except WebhookVerificationError as exc:
                return JSONResponse(
                    {"rejected": exc.code},
                    status_code=400 if exc.code != "invalid_signature" else 401,
                )
        try:
            event = event_from_envelope(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return JSONResponse({"rejected": "malformed"}, status_code=400)
        if (
            event.event_type not in (*STATE_BY_EVENT, "message.inbound")
            and self.defect == "500_on_unknown_type"
        ):
            raise RuntimeError("unknown event type")
        if self.defect == "answers_after_6s":
            await asyncio.sleep(6)
        with self.lock:
            known = any(e.event_id == event.event_id for e in self.rows)
            if not known or self.defect == "stores_duplicates":
                self.rows.append(event)
            if event.event_type in STATE_BY_EVENT and event.message_id and not known:
                applied, _ = self.state.get(event.message_id, (0, None))
                seq = event.sequence or 0
                if seq > applied or self.defect == "applies_out_of_order":
                    self.state[event.message_id] = (seq, STATE_BY_EVENT[event.event_type])
        return JSONResponse({"ok": True})


def serve(handler: Handler) -> BackgroundServer:
    app = Starlette(routes=[Route("/hook", handler.handle, methods=["POST"])])
    return BackgroundServer(app, name="handler").start()


def test_probe_passes_every_check_against_the_project_receiver(tmp_path):
    db = tmp_path / "events.sqlite"
    with run_receiver(db_path=db, secrets=[SECRET]) as receiver:
        result = run_probe(receiver.webhook_url, SECRET, reader=StoreReader(db), burst=10)
    assert result.findings == [], [c.summary for c in result.checks if c.status != "PASS"]
    assert {c.status for c in result.checks} == {"PASS"}
    assert len(result.checks) == 17


def test_a_correct_handler_passes_too():
    handler = Handler()
    server = serve(handler)
    try:
        result = run_probe(server.url + "/hook", SECRET, reader=handler, burst=5)
    finally:
        server.stop()
    assert result.findings == []


@pytest.mark.parametrize(
    "defect,finding",
    [
        ("verifies_reserialized_body", "probe.reserialized_body"),
        ("skips_timestamp_check", "probe.timestamp_window"),
        ("500_on_unknown_type", "probe.unknown_event_type"),
        ("stores_duplicates", "probe.stored_once"),
        ("applies_out_of_order", "probe.final_state"),
        ("answers_after_6s", "probe.ack_latency"),
        ("accepts_unsigned", "probe.missing_signature"),
        ("500_on_malformed_signature", "probe.malformed_signature_header"),
    ],
)
def test_each_broken_handler_gets_its_finding_and_nothing_else(defect, finding):
    handler = Handler(defect)
    server = serve(handler)
    try:
        result = run_probe(server.url + "/hook", SECRET, reader=handler, burst=5)
    finally:
        server.stop()
    assert result.findings == [finding], [
        (c.check_id, c.summary) for c in result.checks if c.status != "PASS"
    ]
    (check,) = [c for c in result.checks if c.check_id == finding]
    assert check.remedy


def test_runbook_probe_command_prints_each_check_and_exits_0(tmp_path, monkeypatch, capsys):
    from runbook_lib.cli import main

    db = tmp_path / "events.sqlite"
    monkeypatch.setenv("PROBE_SECRET", SECRET)
    with run_receiver(db_path=db, secrets=[SECRET]) as receiver:
        code = main(["probe", "--url", receiver.webhook_url, "--secret-env", "PROBE_SECRET",
                     "--event-store", str(db), "--burst", "3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "probe: PASS" in out and out.count("PASS ") >= 17
    assert SECRET not in out


def test_runbook_probe_against_a_broken_handler_exits_1_naming_the_check(monkeypatch, capsys):
    from runbook_lib.cli import main

    handler = Handler("accepts_unsigned")
    server = serve(handler)
    monkeypatch.setenv("PROBE_SECRET", SECRET)
    try:
        code = main(
            ["probe", "--url", server.url + "/hook", "--secret-env", "PROBE_SECRET", "--burst", "3"]
        )
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 1 and "probe: FAIL (probe.missing_signature)" in out and "fix:" in out


# -- endpoints that do not answer -------------------------------------------------------------
def test_an_endpoint_that_refuses_connections_fails_the_acknowledgement_checks():
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    result = run_probe(url, SECRET, burst=3, timeout=2.0)
    checks = {c.check_id: c for c in result.checks}
    for check_id in ("probe.valid_events", "probe.ack_latency", "probe.duplicates",
                     "probe.rotation", "probe.unknown_event_type", "probe.missing_signature"):  # fmt: skip
        assert checks[check_id].status == "FAIL", (check_id, checks[check_id].summary)
    assert result.latency == {}  # no answer, no latency figure
    assert "ConnectError" in checks["probe.ack_latency"].summary
    assert "p50" not in checks["probe.ack_latency"].summary


class Trickler:
    """A loopback server that answers every request one byte every 50 ms, for ever."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000_000
            for byte in answer:
                if self.stop.wait(0.05):
                    return
                conn.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_an_endpoint_that_trickles_its_answer_is_cut_off_at_each_requests_deadline():
    """Per-read timeouts never fire on a byte every 50 ms; the overall deadline does."""
    trickler = Trickler()
    outcome: dict = {}
    probe = threading.Thread(
        target=lambda: outcome.update(
            result=run_probe(f"http://127.0.0.1:{trickler.port}/hook", SECRET, burst=2, timeout=0.5)
        ),
        daemon=True,
    )
    try:
        probe.start()
        probe.join(120)  # generous for a loaded machine; without a deadline it never returns
        assert not probe.is_alive(), "the probe hangs on an endpoint that trickles"
    finally:
        trickler.close()
    checks = {c.check_id: c for c in outcome["result"].checks}
    assert checks["probe.valid_events"].status == "FAIL"
    assert checks["probe.ack_latency"].status == "FAIL"
    assert "no answer within 0.5 s" in checks["probe.ack_latency"].summary


def test_runbook_probe_against_a_refusing_endpoint_exits_1(monkeypatch, capsys):
    from runbook_lib.cli import main

    monkeypatch.setenv("PROBE_SECRET", SECRET)
    url = f"http://127.0.0.1:{free_port()}/hook"
    code = main(["probe", "--url", url, "--secret-env", "PROBE_SECRET", "--burst", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "probe: FAIL (" in out and "probe.ack_latency" in out


@pytest.mark.parametrize("url", ["hooks.example.com/webhook", "ftp://example.com/x", "http://"])
def test_runbook_probe_with_a_url_that_is_not_http_exits_3(monkeypatch, capsys, url):
    from runbook_lib.cli import main

    monkeypatch.setenv("PROBE_SECRET", SECRET)
    code = main(["probe", "--url", url, "--secret-env", "PROBE_SECRET"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and "not an http(s) URL" in line and SECRET not in line


# -- the probe speaks the provider's signature scheme (SendAPI: body-only X-SendAPI-Signature) --
def test_probe_passes_every_check_against_the_receiver_with_sendapi_signatures(tmp_path):
    from runbook_lib.providers.base import get_provider

    sendapi = get_provider("sendapi")
    secret = sendapi.signature.generate_secret()
    db = tmp_path / "events.sqlite"
    with run_receiver(db_path=db, secrets=[secret], provider=sendapi) as receiver:
        result = run_probe(
            receiver.webhook_url, secret, reader=StoreReader(db), burst=10, provider=sendapi
        )
    assert result.findings == [], [c.summary for c in result.checks if c.status != "PASS"]
    assert len(result.checks) == 17
    checks = {c.check_id: c for c in result.checks}
    assert "no X-SendAPI-Signature" in checks["probe.missing_signature"].summary
    assert "sha1" in checks["probe.unknown_signature_version"].summary
    assert result.latency["p95"] < 5


def test_a_sendapi_handler_that_ignores_the_signature_is_caught():
    """The bad-signature cases reach a SendAPI endpoint in its own header, not webhook-signature."""
    from runbook_lib.providers.base import get_provider

    sendapi = get_provider("sendapi")
    secret = sendapi.signature.generate_secret()

    async def accept_anything(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/hook", accept_anything, methods=["POST"])])
    server = BackgroundServer(app, name="lax").start()
    try:
        result = run_probe(f"{server.url}/hook", secret, burst=3, provider=sendapi)
    finally:
        server.stop()
    failed = {c.check_id for c in result.checks if c.status == "FAIL"}
    assert {"probe.missing_signature", "probe.wrong_secret", "probe.altered_body",
            "probe.timestamp_window", "probe.unknown_signature_version",
            "probe.malformed_signature_header"} <= failed  # fmt: skip
