"""Audit over Onyx events: blocks by reason code, consent changes, orders to escalate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runbook_lib.providers.base import get_provider
from runbook_lib.providers.onyx.audit import find_escalations

ONYX = get_provider("onyx")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(n: int, type_: str, data: dict, minutes_ago: float, sequence: int = 1):
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return ONYX.event_from_envelope({"id": f"evt_{n}", "type": type_, "createdAt": at,
                                     "environment": "sandbox", "partnerId": "ptn_1",
                                     "sequence": sequence, "data": data})  # fmt: skip


def test_blocks_consent_changes_and_orders_to_escalate_are_found():
    events = [
        _event(1, "message.blocked", {"messageId": "m1", "reasonCode": "NO_CONSENT"}, 5),
        _event(2, "message.blocked", {"messageId": "m2", "reasonCode": "NO_CONSENT"}, 5),
        _event(3, "message.blocked", {"messageId": "m3", "reasonCode": "THREAD_BLOCKED"}, 5),
        _event(4, "consent.revoked", {"subject": "sub_a"}, 4),
        # stuck: provisioning for 40 min; its older "reserved" event is superseded by sequence
        _event(5, "order.status_changed", {"orderId": "o_stuck", "status": "provisioning"}, 40, 3),
        _event(6, "order.status_changed", {"orderId": "o_stuck", "status": "reserved"}, 41, 2),
        # fine: provisioning for 2 min only, and one that reached esim_ready
        _event(7, "order.status_changed", {"orderId": "o_young", "status": "provisioning"}, 2, 3),
        _event(8, "order.status_changed", {"orderId": "o_done", "status": "esim_ready"}, 50, 4),
        _event(9, "order.status_changed", {"orderId": "o_review", "status": "manual_review"}, 1, 4),
    ]
    found = find_escalations(events, as_of=NOW, stuck_after=timedelta(minutes=15))
    assert found.blocked_by_reason == {"NO_CONSENT": 2, "THREAD_BLOCKED": 1}
    assert found.consent_changes == {"consent.revoked": 1}
    assert [o.order_id for o in found.stuck_orders] == ["o_stuck"]
    assert [o.order_id for o in found.manual_review] == ["o_review"]
    statuses = {c.check_id: c.status for c in found.checks(timedelta(minutes=15))}
    assert statuses == {"onyx.blocked": "WARN", "onyx.consent": "WARN",
                        "onyx.orders_stuck": "FAIL", "onyx.manual_review": "FAIL"}  # fmt: skip


def test_a_quiet_window_passes():
    found = find_escalations([], as_of=NOW, stuck_after=timedelta(minutes=15))
    assert {c.status for c in found.checks(timedelta(minutes=15))} == {"PASS"}


def test_the_audit_notebook_step_reads_the_window_from_the_receiver_store(tmp_path):
    import contextlib
    import time

    from runbook_lib.core.errors import BlockedByPolicyError
    from runbook_lib.core.parameters import load_parameters
    from runbook_lib.runbooks.audit import AuditRun
    from tests.stack import running_stack

    with running_stack(tmp_path, provider="onyx", order_step_seconds=0.05) as stack:
        params = load_parameters(stack.params())
        client = ONYX.build_client(params, environ=stack.env)
        s = params.settings
        for subject, thread in (
            ("sub_revoked", "thr_revoked"),
            ("sub_thread_blocked", "thr_blocked"),
        ):
            client.pre_send(app_id=s.app_id, subject=subject, intent=s.intent)
            with contextlib.suppress(BlockedByPolicyError):  # message.blocked is emitted
                client.send_message(app_id=s.app_id, subject=subject, thread_id=thread,
                                    intent=s.intent, body="x", idempotency_key=f"k-{subject}")  # fmt: skip
        client.create_order(
            package_id="pkg_mx_10gb_30d", partner_order_id="po-mx", idempotency_key="k-mx"
        )
        client.close()
        run = AuditRun(params, since="1h", environ=stack.env)
        deadline = time.monotonic() + 20
        while True:
            (report,) = run.provider_steps()
            by_id = {c.check_id: c for c in report.checks}
            if by_id["onyx.manual_review"].status == "FAIL" or time.monotonic() > deadline:
                break
            run = AuditRun(params, since="1h", environ=stack.env)
            time.sleep(0.2)
    assert "NO_CONSENT 1" in by_id["onyx.blocked"].summary
    assert "THREAD_BLOCKED 1" in by_id["onyx.blocked"].summary
    assert by_id["onyx.manual_review"].status == "FAIL"


def test_orders_read_back_from_a_store_or_export_are_timed_too():
    """Events read back from the columnar model carry occurred_at, not created_at: a stuck
    order is still found (it was never found from a store or export)."""
    from runbook_lib.sources.model import events_from_frame, frame_from_events

    events = [
        _event(1, "order.status_changed", {"orderId": "o_stuck", "status": "provisioning"}, 40, 3),
        _event(2, "order.status_changed", {"orderId": "o_young", "status": "provisioning"}, 2, 3),
    ]
    read_back = events_from_frame(frame_from_events(events))
    assert all(e.created_at is None for e in read_back)
    found = find_escalations(read_back, as_of=NOW, stuck_after=timedelta(minutes=15))
    assert [o.order_id for o in found.stuck_orders] == ["o_stuck"]
