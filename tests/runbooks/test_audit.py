"""The incident audit names the right failure domain for each fault, and says so when healthy."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from runbook_lib.core.errors import EventSourceError, ParameterError
from runbook_lib.core.parameters import load_parameters
from runbook_lib.core.signing import generate_webhook_secret
from runbook_lib.providers.redcloud.client import build_client
from runbook_lib.providers.redcloud.sandbox import SandboxControl
from runbook_lib.runbooks.audit import AuditRun, parse_window
from runbook_lib.sources import ReceiverStoreSource
from tests.stack import running_stack

FAST_RETRY = {"max_attempts": 2, "base_delay_seconds": 0.01, "max_delay_seconds": 0.05}


def send(stack, to: str, count: int, params) -> None:
    client = build_client(load_parameters(params), environ=stack.env)
    try:
        for n in range(count):
            body = {
                "sendFrom": "num_sbx_primary",
                "to": to,
                "body": "audit test",
                "externalReference": f"audit-{to}-{n}",
            }
            client.send_message(body, idempotency_key=f"audit-{to}-{n}")
    finally:
        client.close()


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def stored(stack) -> int:
    if not stack.receiver.store_path.exists():
        return 0
    return ReceiverStoreSource(stack.receiver.store_path).load().height


def audit(stack, params, env=None) -> AuditRun:
    run = AuditRun(load_parameters(params), since="1h", environ=env or stack.env)
    run.context()
    run.funnel()
    run.stuck()
    run.webhook_health()
    run.failure_domain()
    run.close()
    return run


def test_parse_window():
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert parse_window("2h", now=now) == (now - timedelta(hours=2), now)
    start, end = parse_window(window_from="2026-11-23T08:00:00Z", window_to="2026-11-23T09:00:00Z")
    assert end - start == timedelta(hours=1)
    for bad in ({"since": "2 weeks"}, {}, {"since": "1h", "window_from": "2026-11-23T08:00Z"},
                {"window_from": "2026-11-23T10:00Z", "window_to": "2026-11-23T09:00Z"}):  # fmt: skip
        with pytest.raises(ParameterError):
            parse_window(**bad, now=now)


def test_healthy_window_says_so(tmp_path):
    with running_stack(tmp_path) as stack:
        params = stack.params()
        send(stack, "+15005550001", 3, params)
        wait_for(lambda: stored(stack) >= 9)
        run = audit(stack, params)
    assert run.domain.domain == "healthy", run.domain
    assert run.funnel_counts["delivered"] == 3 and run.funnel_counts["failed"] == 0
    assert run.verdict().outcome == "PASS"
    assert "nothing" in run.status_block().lines["What broke"]


def test_bad_credentials_point_to_auth(tmp_path):
    with running_stack(tmp_path) as stack:
        env = {**stack.env, "REDCLOUD_CLIENT_SECRET": "wrong-" + "x" * 12}
        run = audit(stack, stack.params(), env=env)
    assert run.domain.domain == "auth"
    assert "invalid_client" in run.domain.evidence[0]
    assert run.verdict().outcome == "FAIL"


def test_api_5xx_points_to_the_provider(tmp_path):
    with running_stack(tmp_path) as stack:
        params = stack.params(retry=FAST_RETRY)
        with SandboxControl(stack.sandbox.url) as control:
            control.set_faults(
                {"api": {"whoami": {"rate_5xx": 1.0}, "numbers": {"rate_5xx": 1.0}}, "seed": 1}
            )
        run = audit(stack, params)
    assert run.domain.domain == "provider", run.domain
    assert "5xx" in run.domain.evidence[0]


def test_rejected_webhooks_point_to_the_integration(tmp_path):
    with running_stack(tmp_path, receiver_secret=generate_webhook_secret()) as stack:
        params = stack.params()
        send(stack, "+15005550001", 2, params)
        source = ReceiverStoreSource(stack.receiver.store_path)
        wait_for(lambda: stack.receiver.store_path.exists() and source.deliveries().height >= 2)
        run = audit(stack, params)
    assert run.domain.domain == "integration", run.domain
    assert "invalid_signature" in run.domain.evidence[0]


def test_unreachable_endpoint_points_to_webhook_delivery(tmp_path):
    with running_stack(tmp_path) as stack:
        params = stack.params()
        with SandboxControl(stack.sandbox.url) as control:
            control.set_faults({"webhooks": {"outages": [{"start": 0, "seconds": 120}]}, "seed": 1})
            send(stack, "+15005550001", 2, params)
            wait_for(lambda: any(a["status"] is None for a in control.webhook_attempts()))
            run = audit(stack, params)
    assert run.domain.domain == "webhook delivery", run.domain
    assert "FAILING" in run.domain.evidence[0]


def test_messages_stuck_in_queued_point_to_a_queue_backlog(tmp_path):
    with running_stack(tmp_path) as stack:
        params = stack.params(audit={"stuck_after_minutes": 0.002})
        send(stack, "+15005550003", 3, params)  # sandbox: stays queued
        wait_for(lambda: stored(stack) >= 3)
        time.sleep(0.3)
        run = audit(stack, params)
    assert run.domain.domain == "queue backlog", run.domain
    assert run.recorder.facts["stuck"]["count"] == 3


def test_unreadable_export_lines_are_named_in_the_audit(tmp_path):
    import json

    export = tmp_path / "events.jsonl"
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    good = {"eventId": "e1", "eventType": "message.queued", "createdAt": at, "receivedAt": at,
            "data": {"messageId": "m1", "sequence": 1, "status": "QUEUED"}}  # fmt: skip
    export.write_text(json.dumps(good) + "\n{broken\n")
    with running_stack(tmp_path) as stack:
        params = stack.params(event_source={"kind": "jsonl", "path": str(export)})
        run = AuditRun(load_parameters(params), since="1h", environ=stack.env)
        report = run.funnel()
    source = next(c for c in report.checks if c.check_id == "audit.source")
    assert source.status == "WARN" and "line 2" in source.summary
    assert run.funnel_counts["accepted (seen)"] == 1


def test_a_window_without_any_event_is_a_dead_pipeline_not_healthy(tmp_path):
    """No webhook at all (receiver up, nothing arrives) names the event pipeline, never healthy."""
    with running_stack(tmp_path) as stack:
        run = audit(stack, stack.params())
    assert run.domain.domain == "event pipeline", run.domain
    assert "no webhook event at all" in run.domain.evidence[0]
    assert run.verdict().outcome == "FAIL"


def test_a_quiet_environment_can_say_so(tmp_path):
    """audit.expect_traffic: false keeps an empty window healthy (a quiet-by-design environment)."""
    with running_stack(tmp_path) as stack:
        run = audit(stack, stack.params(audit={"expect_traffic": False}))
    assert run.domain.domain == "healthy", run.domain


def test_an_audit_over_a_missing_store_is_not_healthy_and_creates_nothing(tmp_path):
    with running_stack(tmp_path) as stack:
        params = stack.params()
        missing = tmp_path / "no-such-store.sqlite"
        data = __import__("yaml").safe_load(params.read_text())
        data["event_source"]["path"] = str(missing)
        params.write_text(__import__("yaml").safe_dump(data))
        run = AuditRun(load_parameters(params), since="1h", environ=stack.env)
        run.context()
        with pytest.raises(EventSourceError, match="does not exist"):  # the report names it, exit 2
            run.funnel()
        run.close()
    assert not missing.exists()


def test_latencies_are_never_negative_when_events_arrive_out_of_order(tmp_path):
    """A delivery that arrives before its queued event never makes a negative latency."""
    with running_stack(tmp_path) as stack:
        params = stack.params()
        send(stack, "+15005550006", 4, params)  # sandbox: delivery, sent, queued in that order
        wait_for(lambda: stored(stack) >= 12)
        run = audit(stack, params)
    facts = run.recorder.facts
    assert run.funnel_counts["delivered"] == 4
    for figure in ("timeToSent", "timeToDelivery"):
        values = [v for v in facts[figure].values() if v is not None]
        assert values and min(values) >= 0, (figure, facts[figure])
