"""The one go-live notebook, run by papermill against the Onyx sandbox and the reference receiver.

GO with the rehearsal attestations of ``parameters/onyx-sandbox.yaml``; exit 1 naming the check
when the sandbox (its control plane) or the parameter file says something is not ready.
"""

from __future__ import annotations

import json

import pytest
import yaml

from runbook_lib.cli import run_go_live
from runbook_lib.core.parameters import load_parameters
from runbook_lib.providers.onyx.sandbox import OnyxSandboxControl
from runbook_lib.runbooks.go_live import GoLiveRun
from tests.stack import running_stack

pytestmark = pytest.mark.notebook


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, provider="onyx") as s:
        yield s


def _by_id(run):
    return {c.check_id: c for c in run.summary.checks}


def test_onyx_go_live_reaches_go_on_its_sandbox(stack, tmp_path):
    run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    checks = _by_id(run)
    failing = [c for c in run.summary.checks if c.status == "FAIL"]
    assert run.exit_code == 0, failing
    assert run.summary.outcome == "PASS"
    for check_id in ("credential.state", "credential.scopes", "launch.approval",
                     "messaging.reachability", "messaging.pre_send", "messaging.send",
                     "messaging.lifecycle", "webhooks.endpoint", "webhooks.test_event",
                     "webhooks.replay", "webhooks.history", "connectivity.catalogue",
                     "connectivity.idempotency", "connectivity.provisioning", "connectivity.usage",
                     "support.first_checks", "drill.revoked_credential",
                     "drill.wrong_environment_key", "drill.missing_scope", "drill.blocked_send",
                     "drill.consent_revoked", "drill.consent_expired",
                     "drill.signed_in_without_consent", "drill.webhook_signature",
                     "drill.replay_known_event", "drill.endpoint_outage"):  # fmt: skip
        assert checks[check_id].status == "PASS", checks[check_id]
    assert checks["auth.token"].summary.startswith("partner credential onyx_sk_test_…")
    probes = [c for c in run.summary.checks if c.check_id.startswith("probe.")]
    assert probes and {c.status for c in probes} == {"PASS"}, probes  # Standard Webhooks, proven
    assert checks["connectivity.packages"].status == "WARN"  # pkg_fr_1gb_7d is unavailable
    assert "pkg_fr_1gb_7d" in checks["connectivity.packages"].summary
    assert checks["gate.verdict"].status == "PASS" and "GO" in checks["gate.verdict"].summary
    evidence = json.loads((run.report_dir / "evidence.json").read_text())
    gate = {i["id"]: i for i in evidence["facts"]["gate"]["items"]}
    for item in ("SIGN-3", "SIGN-4"):  # sign-in items the API can show: checked, not attested
        assert gate[item]["status"] == "PASS", gate[item]
    html = (run.report_dir / "report.html").read_text()
    assert "sub_granted" not in html  # the test subject is shown masked only


def _declared_scopes_without(stack, scope: str) -> dict:
    onyx = yaml.safe_load(stack.params().read_text())["onyx"]
    onyx["scopes"] = [s for s in onyx["scopes"] if s != scope]
    return onyx


def _pending_market(stack):
    with OnyxSandboxControl(stack.sandbox.url) as control:
        control.set_launch("US", "connectivity", "sandbox", "in_review")
    return {}


def _consent_revoked(stack):
    with OnyxSandboxControl(stack.sandbox.url) as control:
        control.set_consent("sub_granted", "revoked")
    return {}


def _catalogue_differs(stack):
    with OnyxSandboxControl(stack.sandbox.url) as control:
        control.set_catalogue_version("2026.12")
    return {}


def _test_event_not_received(stack):
    """The endpoint registered for the integration is not the one that stores its events."""
    onyx = yaml.safe_load(stack.params().read_text())["onyx"]
    elsewhere = stack.receiver.webhook_url.rsplit("/", 1)[0] + "/nowhere"
    stack.sandbox.sandbox.state.outbox.register_webhook(elsewhere, ["message.allowed"])
    return {"onyx": {**onyx, "webhook_url": elsewhere, "lifecycle_timeout_seconds": 3}}


def _extra_scope(stack):
    return {"onyx": _declared_scopes_without(stack, "ledger:read")}


@pytest.mark.parametrize(
    ("arrange", "check_id", "named"),
    [
        (_pending_market, "launch.approval", "US connectivity sandbox: in_review"),
        (_extra_scope, "credential.scopes", "extra ledger:read"),
        (_consent_revoked, "messaging.reachability", "NO_CONSENT"),
        (_catalogue_differs, "connectivity.catalogue", "catalogue 2026.12 (approved 2026.11)"),
        (_test_event_not_received, "webhooks.test_event", "not found in the event store"),
    ],
    ids=[
        "market-pending",
        "scope-extra",
        "consent-revoked",
        "catalogue-differs",
        "test-event-lost",
    ],
)
def test_onyx_go_live_exits_1_naming_the_check(stack, tmp_path, arrange, check_id, named):
    overrides = arrange(stack)
    run = run_go_live(
        stack.params(**overrides), reports_root=tmp_path / "reports", extra_env=stack.env
    )
    check = _by_id(run)[check_id]
    assert run.exit_code == 1
    assert "NO-GO" in _by_id(run)["gate.verdict"].summary
    assert check.status == "FAIL" and named in check.summary, check
    if check_id == "messaging.reachability":  # blocked: the send is not attempted
        assert _by_id(run)["messaging.send"].status == "SKIP"
        outbox = stack.sandbox.sandbox.state.outbox
        assert [e.type for e in outbox.events.values() if e.type.startswith("message.")] == []


def test_a_failed_preflight_makes_no_onyx_send(stack, tmp_path):
    """Onyx's send is its own step (messaging): a failed preflight stops it as it stops the
    common one; nothing is asked of the messaging API and no message event exists."""
    data = yaml.safe_load(stack.params().read_text())
    data["event_source"]["path"] = str(tmp_path / "no-receiver-here.sqlite")
    path = tmp_path / "broken-store.yaml"
    path.write_text(yaml.safe_dump(data))
    golive = GoLiveRun(load_parameters(path), environ=stack.env, progress=lambda line: None)
    try:
        preflight = golive.preflight()
        golive.acquire_token()
        golive.identity()
        golive.senders()
        steps = golive.provider_steps()
    finally:
        golive.close()
    assert preflight.status == "FAIL"
    messaging = next(r for r in steps if any(c.check_id == "messaging.send" for c in r.checks))
    for check in messaging.checks:  # BLOCKED by it (issue 15: this asserted SKIP before)
        assert check.status == "BLOCKED" and "preflight.event_source" in check.summary, check
        assert check.blocked_by == "preflight.event_source"
    outbox = stack.sandbox.sandbox.state.outbox
    assert [e.type for e in outbox.events.values() if e.type.startswith("message.")] == []
