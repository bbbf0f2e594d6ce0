"""Failure drills: each provoked on purpose against the live sandbox, safe behaviour asserted."""

from __future__ import annotations

import pytest

from runbook_lib.cli import run_go_live
from runbook_lib.runbooks.drills import DrillContext, client_factory, run_drills
from runbook_lib.security.secrets import REGISTRY
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
