"""Failure drills: each provoked on purpose against the live sandbox, safe behaviour asserted."""

from __future__ import annotations

import pytest

from runbook_lib.cli import run_go_live
from runbook_lib.core.ledger import SendLedger
from runbook_lib.providers.redcloud.sandbox import SandboxControl
from runbook_lib.runbooks.drills import DrillContext, client_factory, run_drills
from runbook_lib.security.secrets import REGISTRY
from tests.htmlcheck import python_reprs
from tests.providers.redcloud.test_sandbox import client_for
from tests.stack import running_stack

DRILL_IDS = [
    "drill.invalid_credentials",
    "drill.expired_token",
    "drill.invalid_send_from",
    "drill.missing_idempotency_key",
    "drill.webhook_signature",
    "drill.webhook_outage",
]


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path) as s:
        yield s


def context(stack, *, sandbox: bool) -> DrillContext:
    client = client_for(stack.sandbox, secret=stack.client_secret)
    client.acquire_token()
    return DrillContext(
        client=client,
        make_client=client_factory(client),
        send_from="num_sbx_primary",
        to="+15005550001",
        endpoint_url=stack.receiver.webhook_url,
        event_store=stack.receiver.store_path,
        sandbox_url=stack.sandbox.url if sandbox else None,
        outage_seconds=0.3,
        timeout=20,
    )


def test_every_drill_passes_against_the_sandbox(stack):
    checks = run_drills(context(stack, sandbox=True))
    assert [c.check_id for c in checks] == DRILL_IDS
    assert {c.check_id: c.status for c in checks} == dict.fromkeys(DRILL_IDS, "PASS"), [
        c.summary for c in checks
    ]


def test_against_another_provider_provider_side_drills_are_skipped_not_passed(stack):
    checks = {c.check_id: c for c in run_drills(context(stack, sandbox=False))}
    assert checks["drill.webhook_outage"].status == "SKIP"
    assert "not runnable" in checks["drill.webhook_outage"].summary
    # the revoked-token drill still runs: it swaps the cached token for one never issued
    assert checks["drill.expired_token"].status == "PASS"
    assert "never issued" in checks["drill.expired_token"].summary


def test_invalid_credentials_drill_never_shows_its_canary(stack):
    (check, *_) = run_drills(context(stack, sandbox=True))
    canaries = [value for value, label in REGISTRY.items() if label == "drill canary secret"]
    assert canaries and all(value not in repr(check) for value in canaries)


def test_runbook_drills_writes_a_passing_report(stack, tmp_path):
    run = run_go_live(
        stack.params(), reports_root=tmp_path / "r", extra_env=stack.env, kind="drills"
    )
    assert run.exit_code == 0, [c for c in run.summary.checks if c.status != "PASS"]
    assert run.report_dir.name.startswith("drills-sandbox-")
    assert {c.check_id for c in run.summary.checks} >= set(DRILL_IDS)


def test_bad_parameters_for_drills_give_a_drills_report(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: sandbox\nprovider: {}\n")
    run = run_go_live(bad, reports_root=tmp_path / "r", kind="drills")
    assert run.exit_code == 3
    assert run.report_dir.name.startswith("drills-unknown-")
    assert run.summary.kind == "drills"
    assert python_reprs((run.report_dir / "report.html").read_text()) == []


def _sandbox_message_ids(stack) -> list[str]:
    """Every message the provider's sandbox accepted, by id."""
    if stack.provider == "redcloud":
        with SandboxControl(stack.sandbox.url) as control:
            return [m["messageId"] for m in control.messages()]
    return [m["id"] for m in stack.sandbox.control.messages()]


@pytest.mark.parametrize("kind", ["redcloud", "sendapi"])  # the providers whose drills send
def test_every_drill_send_is_in_the_ledger_and_a_rerun_sends_none_again(tmp_path, kind):
    with running_stack(tmp_path, provider=kind) as stack:
        params = stack.params()
        run = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env, kind="drills")
        assert run.summary.check_statuses()["drill.webhook_outage"] == "PASS", run.summary.checks
        assert python_reprs((run.report_dir / "report.html").read_text()) == []
        sent = _sandbox_message_ids(stack)
        assert sent  # the outage drill sent at least one message
        ledger = SendLedger(tmp_path / "ledger.sqlite")
        try:
            outage = ledger.entry(run.summary.run_id, "drill-outage")
            assert outage is not None and outage.message_id in sent
            assert outage.idempotency_key.startswith(f"rb-sandbox-{run.summary.run_id}-")
            for message_id in sent:  # support can trace every one from the ledger
                assert ledger.find_send(message_id=message_id) is not None, message_id
        finally:
            ledger.close()
        again = run_go_live(params, reports_root=tmp_path / "r", extra_env=stack.env,
                            kind="drills", run_id=run.summary.run_id)  # fmt: skip
        assert again.summary.run_id == run.summary.run_id
        assert sorted(_sandbox_message_ids(stack)) == sorted(sent)  # replayed, none sent twice
