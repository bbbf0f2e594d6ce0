"""Onyx's drills against its live sandbox and the receiver: each provokes its failure on purpose."""

from __future__ import annotations

import pytest

from runbook_lib.core.parameters import load_parameters
from runbook_lib.providers.base import get_provider
from runbook_lib.runbooks.drills import DrillContext, client_factory, run_drills
from runbook_lib.sources import PollingSource
from tests.stack import running_stack

PROVIDER = get_provider("onyx")


@pytest.fixture
def ctx(tmp_path):
    with running_stack(tmp_path, provider="onyx") as stack:
        params = load_parameters(stack.params())
        client = PROVIDER.build_client(params, environ=stack.env)
        yield DrillContext(
            client=client, make_client=client_factory(client), send_from="", to="",
            endpoint_url=stack.receiver.webhook_url, event_store=PollingSource(params.event_source),
            sandbox_url=stack.sandbox.url, provider=PROVIDER, params=params, key_prefix="rb-drill",
        )  # fmt: skip
        client.close()


def test_every_onyx_drill_passes_against_its_sandbox(ctx):
    checks = {c.check_id: c for c in run_drills(ctx)}
    assert list(checks) == [f"drill.{name}" for name in PROVIDER.drills]
    assert {c.status for c in checks.values()} == {"PASS"}, checks
    assert "THREAD_BLOCKED" in checks["drill.blocked_send"].summary
    assert "NO_CONSENT" in checks["drill.consent_revoked"].summary
    assert "CONSENT_EXPIRED" in checks["drill.consent_expired"].summary
    assert "NO_CONSENT" in checks["drill.signed_in_without_consent"].summary


@pytest.mark.parametrize(
    "drill", ["consent_revoked", "consent_expired", "signed_in_without_consent"]
)
def test_consent_drills_restore_the_test_subject_and_send_nothing(ctx, drill):
    s = ctx.params.settings
    check = PROVIDER.drill_functions()[drill](ctx)
    assert check.status == "PASS", check
    assert check.evidence["blockedAt"] == "reachability", check.evidence  # never at the send
    assert ctx.client.reachability(app_id=s.app_id, subject=s.test_subject).reachable


def test_a_consent_drill_fails_when_the_reason_is_not_the_one_expected(ctx):
    """The sign-in checks are real: a subject refused for another reason does not pass them."""
    from runbook_lib.providers.onyx.drills import _consent_changed

    check = _consent_changed(ctx, "revoked", "CONSENT_EXPIRED", "drill.x", "x")
    assert check.status == "FAIL" and "NO_CONSENT" in check.summary, check


def test_drills_that_need_provider_side_control_are_skipped_off_the_sandbox(ctx):
    off = DrillContext(**{**ctx.__dict__, "sandbox_url": None})
    checks = {c.check_id: c.status for c in run_drills(off)}
    for name in ("revoked_credential", "missing_scope", "blocked_send", "consent_revoked",
                 "consent_expired", "signed_in_without_consent", "endpoint_outage"):  # fmt: skip
        assert checks[f"drill.{name}"] == "SKIP"


def test_a_client_that_takes_a_live_key_on_the_sandbox_fails_the_drill(ctx):
    class Lenient:
        def close(self) -> None: ...

    lax = DrillContext(**{**ctx.__dict__, "make_client": lambda secret: Lenient()})
    check = PROVIDER.drill_functions()["wrong_environment_key"](lax)
    assert check.status == "FAIL" and "accepted" in check.summary


def test_the_endpoint_outage_drill_says_what_it_waits_for_and_the_time_left(ctx):
    lines: list[str] = []
    check = PROVIDER.drill_functions()["endpoint_outage"](
        DrillContext(**{**ctx.__dict__, "progress": lines.append})
    )
    assert check.status == "PASS", check
    assert any("waiting for test event" in line and "s left" in line for line in lines), lines
