"""The go-live notebook under papermill against the SendAPI sandbox and the reference receiver."""

from __future__ import annotations

import json

import pytest
import yaml

from runbook_lib.cli import run_go_live, run_read_only
from runbook_lib.providers.sendapi.contract import LIFECYCLE
from runbook_lib.providers.sendapi.sandbox.config import VERIFIED_DOMAIN, domain_records
from tests.stack import running_stack, sample_parameters

from .dnsserver import serve_zone

pytestmark = pytest.mark.notebook


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, provider="sendapi") as s:
        yield s


def settings(**changes) -> dict:
    """The sample file's ``sendapi:`` section with ``changes``."""
    section = yaml.safe_load(sample_parameters("sendapi").read_text())["sendapi"]
    section["test_send"]["lifecycle_timeout_seconds"] = 20
    return {**section, **changes}


def by_id(run) -> dict:
    return {c.check_id: c for c in run.summary.checks}


def test_go_live_reaches_go_on_the_sandbox_for_sms_and_whatsapp(stack, tmp_path):
    run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    failing = [c for c in run.summary.checks if c.status not in ("PASS", "SKIP")]
    assert run.exit_code == 0, failing
    assert run.summary.gate["verdict"] == "GO"
    checks = by_id(run)
    for check_id in ("key.mode", "account.usage", "account.quota.sms", "account.quota.whatsapp",
                     "account.rate_limit", "webhooks.endpoint", "webhooks.events", "sms.sender_id",
                     "whatsapp.session", "whatsapp.last_seen", "whatsapp.contact", "send.accepted",
                     "send.replay", "lifecycle.sent", "lifecycle.final", "support.trace",
                     "send.accepted.whatsapp", "lifecycle.whatsapp.final",
                     "drill.invalid_key", "drill.revoked_key", "drill.expired_key",
                     "drill.scope_limited_key",
                     "drill.rate_limited", "drill.idempotency_mismatch", "drill.missing_key",
                     "drill.webhook_signature", "drill.endpoint_ack", "drill.webhook_outage",
                     "drill.session_disconnected"):  # fmt: skip
        assert checks[check_id].status == "PASS", checks[check_id]
    # the conformance probe runs with SendAPI's signatures (parameters/sendapi-sandbox.yaml)
    probe = [c for c in run.summary.checks if c.check_id.startswith("probe.")]
    assert len(probe) == 17 and all(c.status == "PASS" for c in probe), probe
    assert "sk_test_" in checks["key.mode"].summary and stack.client_secret not in str(
        run.summary.checks
    )
    sms, whatsapp = run.summary.messages  # one controlled send per declared channel
    assert sms["messageId"].startswith("sms_") and whatsapp["messageId"].startswith("msg_")
    assert sms["lifecycle"]["state"] == whatsapp["lifecycle"]["state"] == "DELIVERED"
    made = [(m["channel"], m.get("to")) for m in stack.sandbox.sandbox.state.messages.values()]
    # the replay made no second message; the 409 and outage drills made the two other SMS
    assert sorted(made) == [("sms", "+15005550101")] * 3 + [("whatsapp", "+15005550201")]


def test_a_disconnected_session_exits_1_naming_the_check(stack, tmp_path):
    stack.sandbox.control.disconnect_session("sess_sbx_primary")
    params = stack.params(sendapi=settings(channels=["whatsapp"]))
    run = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
    assert run.exit_code == 1
    session = by_id(run)["whatsapp.session"]
    assert session.status == "FAIL" and "disconnected" in session.summary
    # its sender failed: nothing is sent, BLOCKED by it (issue 15: this asserted SKIP before)
    assert by_id(run)["send.accepted"].status == "BLOCKED"
    assert by_id(run)["send.accepted"].blocked_by == "whatsapp.session"
    # the drills that send on (or disconnect) the session are BLOCKED by it too: one root cause
    assert [r.check.check_id for r in run.summary.root_causes] == ["whatsapp.session"]
    for drill in (
        "drill.idempotency_mismatch",
        "drill.webhook_outage",
        "drill.session_disconnected",
    ):
        assert by_id(run)[drill].status == "BLOCKED", by_id(run)[drill]
        assert by_id(run)[drill].blocked_by == "whatsapp.session"


def test_a_session_on_another_number_fails(stack, tmp_path):
    params = stack.params(sendapi=settings(channels=["whatsapp"], whatsapp_number="+15005550199"))
    run = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
    assert run.exit_code == 1
    assert "not the dedicated +15005550199" in by_id(run)["whatsapp.session"].summary


@pytest.fixture
def served_records():
    zone = "\n".join(
        f'{r["name"]}. 60 IN TXT "{r["value"]}"' for r in domain_records(VERIFIED_DOMAIN).values()
    )
    with serve_zone(zone) as port:
        yield {"nameserver": "127.0.0.1", "port": port}


def email_settings(dns: dict) -> dict:
    return settings(channels=["email"], dns=dns)


def test_email_go_live_checks_the_records_really_served_by_dns(stack, tmp_path, served_records):
    run = run_go_live(stack.params(sendapi=email_settings(served_records)),
                      reports_root=tmp_path / "r", extra_env=stack.env)  # fmt: skip
    checks = by_id(run)
    assert run.exit_code == 0, [c for c in run.summary.checks if c.status == "FAIL"]
    for check_id in ("email.domain", "email.from", "email.dns.spf", "email.dns.dkim",
                     "email.dns.dmarc", "send.accepted", "lifecycle.final"):  # fmt: skip
        assert checks[check_id].status == "PASS", checks[check_id]
    assert run.summary.messages[0]["messageId"].startswith("eml_")


def test_an_unverified_domain_exits_1_naming_the_check(stack, tmp_path, served_records):
    stack.sandbox.control.set_domain_verified("dom_sbx_verified", False)
    run = run_go_live(stack.params(sendapi=email_settings(served_records)),
                      reports_root=tmp_path / "r", extra_env=stack.env)  # fmt: skip
    assert run.exit_code == 1
    domain = by_id(run)["email.domain"]
    assert domain.status == "FAIL" and "not verified" in domain.summary
    assert "/verify" in (domain.remedy or "")


def test_records_missing_from_dns_fail_with_the_record_to_publish(stack, tmp_path):
    with serve_zone("") as port:
        dns = {"nameserver": "127.0.0.1", "port": port}
        run = run_go_live(stack.params(sendapi=email_settings(dns)),
                          reports_root=tmp_path / "r", extra_env=stack.env)  # fmt: skip
    assert run.exit_code == 1
    spf = by_id(run)["email.dns.spf"]
    assert spf.status == "FAIL" and "v=spf1 include:spf.sendapi.co ~all" in (
        f"{spf.summary} {spf.remedy}"
    )


def test_trace_follows_a_sendapi_send_from_its_201_to_delivered(stack, tmp_path, monkeypatch):
    params = stack.params(sendapi=settings(channels=["sms"]), drills={"enabled": False})
    go = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env)
    assert by_id(go)["lifecycle.final"].status == "PASS"  # (NO-GO: its drills were off)
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    run = run_read_only(
        "trace", params, reports_root=tmp_path / "r",
        notebook_parameters={"message_id": go.summary.messages[0]["messageId"],
                             "external_reference": ""},
    )  # fmt: skip
    checks = by_id(run)
    assert run.exit_code == 0 and checks["trace.acceptance"].title == "Acceptance (201 queued)"
    assert checks["trace.outcome"].summary == "delivered (sms.delivered applied)"
    assert checks["trace.anomalies"].status == "PASS", checks["trace.anomalies"]
    # SendAPI's events carry no sequence: the trace words its order by state rank / event type
    found = checks["trace.found"].summary
    assert found.endswith("state DELIVERED by state rank, at sms.delivered"), found
    assert "in state rank order" in checks["trace.anomalies"].summary
    facts = json.loads((run.report_dir / "evidence.json").read_text())["facts"]
    journey = facts["trace"]["journey"]
    assert [j["eventType"] for j in journey] == ["sms.sent", "sms.delivered"]
    assert [j["stateRank"] for j in journey] == [LIFECYCLE.rank(j["eventType"]) for j in journey]
    assert journey[0]["stateRank"] < journey[1]["stateRank"]
    assert all("sequence" not in j for j in journey)
    escalation = facts["escalation"]["fields"]
    assert escalation["last applied event (by state rank)"] == "sms.delivered"
    assert "highest sequence" not in escalation
    html = (run.report_dir / "report.html").read_text()
    assert "sequence 0" not in html and "highest sequence" not in html
