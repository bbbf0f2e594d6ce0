"""The incident audit and the message trace over SendAPI events: notebooks under papermill
against the live sandbox, and the per-channel pieces on their own."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import yaml

from runbook_lib.cli import run_read_only
from runbook_lib.core.lifecycle_table import audit_lifecycles
from runbook_lib.core.parameters import load_parameters
from runbook_lib.providers.base import get_provider
from runbook_lib.providers.sendapi.audit import channel_funnels, session_health
from runbook_lib.sources import frame_from_events, open_event_source
from tests.stack import running_stack, sample_parameters

PROVIDER = get_provider("sendapi")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def envelope_event(n: int, event_type: str, message_id: str, **data):
    body = PROVIDER.probe_envelope(event_type, event_id=f"evt_{n}", message_id=message_id,
                                   now=(T0 + timedelta(seconds=n)).isoformat())  # fmt: skip
    body["data"].update(data)
    at = (T0 + timedelta(seconds=n)).isoformat()
    return PROVIDER.event_from_envelope(body, arrival=n, received_at=at)


def test_funnel_per_channel_counts_each_channel_and_its_own_outcomes():
    events = [
        envelope_event(1, "sms.delivered", "sms_1"),
        envelope_event(2, "sms.sent", "sms_1"),  # late
        envelope_event(3, "message.sent", "msg_1"),
        envelope_event(4, "message.read", "msg_1"),
        envelope_event(5, "email.sent", "eml_1"),
        envelope_event(6, "email.bounced", "eml_1"),
        envelope_event(7, "email.sent", "eml_2"),
        envelope_event(8, "email.complained", "eml_2"),
        envelope_event(8, "email.complained", "eml_2"),  # a retried delivery
    ]
    frame = frame_from_events(events)
    table = audit_lifecycles(frame, model=PROVIDER.lifecycle)
    funnels = channel_funnels(frame, table.messages)
    assert funnels["sms"].delivered == 1 and funnels["sms"].not_final == 0
    assert funnels["whatsapp"].delivered == 1 and funnels["whatsapp"].outcomes["read"] == 1
    email = funnels["email"]
    assert email.messages == 2 and email.failed == 1 and email.delivered == 1
    assert email.rate("bounced") == 0.5 and email.rate("complained") == 0.5


def test_session_health_latest_timestamp_wins_and_duplicates_count_once():
    def session(n: int, event_type: str, at: int):
        return {"event_id": f"evt_s{n}", "event_type": event_type, "conversation_id": "sess_1",
                "status": event_type.split(".")[1], "failure_reason": "phone_offline",
                "occurred_at": T0 + timedelta(seconds=at), "arrival": n}  # fmt: skip

    frame = pl.DataFrame([session(1, "session.connected", 30), session(2, "session.disconnected", 10),
                          session(2, "session.disconnected", 10)])  # fmt: skip
    health = session_health(frame)["sess_1"]
    assert health.status == "connected" and health.disconnections == 1


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, provider="sendapi") as s:
        yield s


def all_channels() -> dict:
    section = yaml.safe_load(sample_parameters("sendapi").read_text())["sendapi"]
    return {**section, "channels": ["sms", "whatsapp", "email"]}


def wait_for(params_path, event_types: set[str], timeout: float = 20.0) -> pl.DataFrame:
    source = open_event_source(load_parameters(params_path).event_source)
    deadline = time.monotonic() + timeout
    while True:
        frame = source.load(since=datetime.now(UTC) - timedelta(hours=1), until=datetime.now(UTC))
        if event_types <= set(frame["event_type"].to_list()) or time.monotonic() > deadline:
            return frame
        time.sleep(0.2)


@pytest.mark.notebook
def test_audit_notebook_reports_a_disconnect_a_bounce_and_a_complaint(stack, tmp_path, monkeypatch):
    params = stack.params(sendapi=all_channels())
    s = load_parameters(params).settings
    client = PROVIDER.build_client(load_parameters(params), environ=stack.env)
    try:
        client.send_sms(to="+15005550101", message="audit", idempotency_key="k-sms",
                        sender_id=s.sender_id)  # fmt: skip
        for n, to in enumerate(("bounce@example.com", "complaint@example.com")):
            client.send_email(to=to, from_address=s.email_from, subject="audit", text="audit",
                              idempotency_key=f"k-eml-{n}")  # fmt: skip
    finally:
        client.close()
    stack.sandbox.control.disconnect_session(s.whatsapp_session_id)
    wait_for(params, {"sms.delivered", "email.bounced", "email.complained", "session.disconnected"})
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    run = run_read_only("audit", params, reports_root=tmp_path / "reports",
                        notebook_parameters={"since": "1h"})  # fmt: skip
    checks = {c.check_id: c for c in run.summary.checks}
    assert run.summary.error is None or "Traceback" not in str(run.summary.error)
    funnel = checks["sendapi.funnel"]
    assert "sms 1 (delivered 1" in funnel.summary and "email 2" in funnel.summary
    assert checks["audit.funnel"].summary.count("not final 0") == 1  # delivered is final
    assert checks["sendapi.email.bounce_rate"].status == "FAIL"  # 1 of 2
    assert checks["sendapi.email.complaint_rate"].status == "FAIL"
    assert checks["sendapi.session.events"].status == "WARN"
    assert "1 disconnection(s)" in checks["sendapi.session.events"].summary
    assert checks["sendapi.session.current"].status == "FAIL"
    assert checks["sendapi.quota"].status in ("PASS", "WARN")
    evidence = json.loads((run.report_dir / "evidence.json").read_text())
    verdict = evidence["facts"]["failureDomain"]
    named = [verdict["domain"], *(a["domain"] for a in verdict["also"])]
    assert "WhatsApp session" in named and "email domain" in named
    html = (run.report_dir / "report.html").read_text()
    assert "WhatsApp session" in html and "bounce" in html and "complain" in html
    assert run.exit_code == 1  # a failure domain was found


@pytest.mark.notebook
def test_trace_notebook_follows_an_email_to_its_complaint(stack, tmp_path, monkeypatch):
    params = stack.params(sendapi=all_channels())
    s = load_parameters(params).settings
    client = PROVIDER.build_client(load_parameters(params), environ=stack.env)
    try:
        sent = client.send_email(to="complaint@example.com", from_address=s.email_from,
                                 subject="trace", text="trace", idempotency_key="k-trace")  # fmt: skip
    finally:
        client.close()
    wait_for(params, {"email.complained"})
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    run = run_read_only("trace", params, reports_root=tmp_path / "reports",
                        notebook_parameters={"message_id": sent.message_id,
                                             "external_reference": ""})  # fmt: skip
    checks = {c.check_id: c for c in run.summary.checks}
    assert checks["trace.found"].status == "PASS"
    assert checks["trace.outcome"].summary == "delivered (email.complained applied)"
    assert checks["trace.anomalies"].status == "PASS", checks["trace.anomalies"]
    journey = json.loads((run.report_dir / "evidence.json").read_text())["facts"]["trace"][
        "journey"
    ]
    assert [j["eventType"] for j in journey] == [
        "email.sent",
        "email.delivered",
        "email.complained",
    ]


@pytest.mark.notebook
def test_audit_with_a_failing_webhook_endpoint_names_webhook_delivery(stack, tmp_path, monkeypatch):
    """The endpoint is down for SendAPI (sandbox outage): GET /v1/webhooks counts the failed
    deliveries, and the audit names the shared "webhook delivery" domain with that evidence."""
    params = stack.params()
    s = load_parameters(params).settings
    control = stack.sandbox.control
    control.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": 600}]}})
    client = PROVIDER.build_client(load_parameters(params), environ=stack.env)
    try:
        client.send_sms(to="+15005550101", message="audit", idempotency_key="k-outage",
                        sender_id=s.sender_id)  # fmt: skip
        deadline = time.monotonic() + 20
        while not any("outage" in (d["error"] or "") for d in control.deliveries()):
            assert time.monotonic() < deadline, "no delivery attempt hit the outage"
            time.sleep(0.2)
        for key, value in stack.env.items():
            monkeypatch.setenv(key, value)
        run = run_read_only("audit", params, reports_root=tmp_path / "reports",
                            notebook_parameters={"since": "1h"})  # fmt: skip
    finally:
        client.close()
        control.clear_faults()
    evidence = json.loads((run.report_dir / "evidence.json").read_text())
    verdict = evidence["facts"]["failureDomain"]
    assert verdict["domain"] == "webhook delivery", verdict
    assert any("failure_count" in e for e in verdict["evidence"]), verdict
    checks = {c.check_id: c for c in run.summary.checks}
    assert checks["audit.api"].status == "PASS"  # the API itself answered: not "provider"
    assert run.exit_code == 1
