"""The incident audit and the message trace notebooks under papermill over Onyx events: an Onyx
sandbox whose window holds a delivered send, a blocked send, the test subject's consent revoked
and an order stuck in provisioning (:mod:`tests.providers.onyx.incident`)."""

from __future__ import annotations

import json

import pytest

from runbook_lib.cli import run_read_only
from runbook_lib.core.parameters import load_parameters
from runbook_lib.runbooks.trace import TraceRun
from runbook_lib.sources.export import export_events
from tests.providers.onyx.incident import incident_stack, make_incident

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onyx-incident")
    with incident_stack(folder) as stack:
        # the stuck order has been in provisioning past this window by the time the audit runs
        params = stack.params(audit={"stuck_after_minutes": 0.001})
        found = make_incident(stack, load_parameters(params))
        yield stack, params, found, folder


def _checks(run):
    return {c.check_id: c for c in run.summary.checks}


def _audit(stack, params, folder, name):
    return run_read_only("audit", params, reports_root=folder / name,
                         notebook_parameters={"since": "1h"}, extra_env=stack.env)  # fmt: skip


def test_the_audit_notebook_over_onyx_events(incident):
    stack, params, found, folder = incident
    run = _audit(stack, params, folder, "reports-audit")
    checks = _checks(run)
    assert run.summary.error is None, run.summary.error
    # Onyx's own step: blocks by reason code, consent changes, the escalation trigger
    assert checks["onyx.blocked"].status == "WARN"
    assert "THREAD_BLOCKED 1" in checks["onyx.blocked"].summary
    assert checks["onyx.consent"].status == "WARN"
    assert "consent.revoked 1" in checks["onyx.consent"].summary
    stuck = checks["onyx.orders_stuck"]
    assert stuck.status == "FAIL" and found.stuck_order in stuck.summary, stuck
    # the shared steps ran over the same events
    for check_id in ("audit.token", "audit.source", "audit.funnel", "audit.stuck",
                     "audit.rejections", "audit.domain"):  # fmt: skip
        assert checks[check_id].status != "SKIP", checks[check_id]
    assert "expires in" not in checks["audit.token"].summary  # a partner credential, no token
    assert "partner credential onyx_sk_test_…" in checks["audit.token"].summary
    funnel = checks["audit.funnel"].summary
    assert "delivered 1" in funnel, funnel
    assert run.exit_code == 1  # an order to escalate fails the audit
    html = (run.report_dir / "report.html").read_text()
    assert found.stuck_order in html and "Orders to escalate" in html


def test_the_audit_notebook_reads_an_onyx_jsonl_export(incident):
    """The same window from a JSONL export of the store: the same Onyx findings."""
    import yaml

    stack, params, found, folder = incident
    export = folder / "export.jsonl"
    export_events(stack.receiver.store_path, export)
    data = yaml.safe_load(params.read_text())
    data["event_source"] = {"kind": "jsonl", "path": str(export)}
    jsonl_params = folder / "jsonl-params.yaml"
    jsonl_params.write_text(yaml.safe_dump(data))
    checks = _checks(_audit(stack, jsonl_params, folder, "reports-jsonl"))
    assert "THREAD_BLOCKED 1" in checks["onyx.blocked"].summary
    assert "consent.revoked 1" in checks["onyx.consent"].summary
    assert found.stuck_order in checks["onyx.orders_stuck"].summary
    assert "line" not in checks["audit.source"].summary, checks["audit.source"]


def test_the_trace_notebook_follows_an_onyx_message(incident):
    stack, params, found, folder = incident
    run = run_read_only("trace", params, reports_root=folder / "reports-trace",
                        notebook_parameters={"message_id": found.delivered_message,
                                             "external_reference": ""},
                        extra_env=stack.env)  # fmt: skip
    assert run.exit_code == 0, run.summary.error
    checks = _checks(run)
    assert checks["trace.found"].status == "PASS"
    assert checks["trace.outcome"].status == "PASS"
    journey = json.loads((run.report_dir / "evidence.json").read_text())["facts"]["trace"][
        "journey"
    ]
    assert [j["eventType"] for j in journey] == [
        "message.allowed", "message.delivery_updated.delivered"
    ]  # fmt: skip
    assert journey[-1]["stateAfter"] == "DELIVERED"
    assert "data:image/png;base64" in (run.report_dir / "report.html").read_text()


def test_a_trace_of_a_blocked_onyx_message_names_its_reason_code(incident):
    """Automated (no notebook): a blocked send is final, with its reason code, not 'not found'."""
    _, params, found, _ = incident
    trace = TraceRun(load_parameters(params), message_id=found.blocked_message)
    trace.acceptance()
    webhooks = trace.webhooks()
    outcome = trace.outcome()
    trace.timeline()
    note = trace.escalation()
    assert webhooks.checks[0].status == "PASS", webhooks.checks[0]
    final = outcome.checks[0]
    assert final.status == "WARN" and "THREAD_BLOCKED" in final.summary, final
    assert "THREAD_BLOCKED" in note.fields["failure"]
