"""Checks, their preconditions and the verdict: what a failed requirement does to what needs it."""

from __future__ import annotations

from runbook_lib.core.checks import Check, StepReport, Verdict, resolve_blocked, root_causes
from runbook_lib.core.rendering import STATUS_COLOURS


def by_id(checks) -> dict[str, Check]:
    return {c.check_id: c for c in checks}


def test_a_check_whose_requirement_failed_is_blocked_by_it_with_a_fix_that_says_so():
    root = Check(
        "auth.token", "Access token acquired", "FAIL", "unreachable", remedy="check base_url."
    )
    resolved = by_id(resolve_blocked([
        root,
        Check("whoami.context", "Client context", "SKIP", "no token", requires=("auth.token",)),
        Check("drill.x", "drill", "FAIL", "could not run", requires=("auth.*",)),
        Check("preflight.clock", "Clock", "WARN", "no Date header", requires=("auth.token",)),
    ]))  # fmt: skip
    assert resolved["auth.token"] == root  # the root cause stays what it is
    for check_id in ("whoami.context", "drill.x", "preflight.clock"):
        check = resolved[check_id]
        assert check.status == "BLOCKED" and check.blocked_by == "auth.token", check
        assert check.remedy == "fix auth.token (Access token acquired) first, then re-run."
        assert "auth.token" in check.summary and not check.met
    assert "could not run" in resolved["drill.x"].summary  # what it found is kept, as evidence


def test_a_chain_of_requirements_points_at_its_root_and_a_pass_stays_a_pass():
    resolved = by_id(resolve_blocked([
        Check("lifecycle.queued", "q", "SKIP", "no send", requires=("send.accepted",)),
        Check("send.accepted", "send", "SKIP", "not sent", requires=("preflight.*",)),
        Check("preflight.webhook_endpoint", "Webhook endpoint answers", "FAIL", "refused"),
        Check("preflight.clock", "clock", "PASS", "ok", requires=("auth.token",)),
        Check("support.trace", "trace", "PASS", "found", requires=("lifecycle.queued",)),
    ]))  # fmt: skip
    assert resolved["send.accepted"].blocked_by == "preflight.webhook_endpoint"
    queued = resolved["lifecycle.queued"]
    assert queued.status == "BLOCKED" and queued.blocked_by == "preflight.webhook_endpoint"
    assert "send.accepted" in queued.summary  # it names the requirement it waited for too
    assert resolved["support.trace"].status == "PASS"  # it verified what it says
    assert resolved["preflight.clock"].status == "PASS"


def test_failures_that_require_each_other_keep_one_root_and_a_choice_is_never_blocked():
    resolved = by_id(resolve_blocked([
        Check("a", "a", "FAIL", "x", requires=("b",)),
        Check("b", "b", "FAIL", "y", requires=("a",)),
        Check("probe.all", "probe", "SKIP", "probe.enabled is false", requires=("a",), asked=False),
    ]))  # fmt: skip
    assert sorted(c.status for c in resolved.values() if c.check_id in "ab") == ["BLOCKED", "FAIL"]
    assert [r.check.check_id for r in root_causes(list(resolved.values()))] == ["b"]
    assert resolved["probe.all"].status == "SKIP"  # not asked for: nothing can block it


def test_the_verdict_names_the_root_cause_first_and_counts_blocked_as_not_met():
    root = Check("preflight.webhook_endpoint", "Webhook endpoint answers", "FAIL", "refused",
                 remedy="start the receiver.")  # fmt: skip
    other = Check("numbers.x", "Number x", "FAIL", "SUSPENDED")
    checks = resolve_blocked([
        root, other,
        *(Check(f"lifecycle.{s}", s, "SKIP", "no send", requires=(root.check_id,))
          for s in ("queued", "sent", "final")),
    ])  # fmt: skip
    verdict = Verdict("run-1", "sandbox", checks)
    assert verdict.outcome == "FAIL"
    assert verdict.counts == {"PASS": 0, "FAIL": 2, "BLOCKED": 3, "WARN": 0, "SKIP": 0}
    assert [(r.check.check_id, r.blocked) for r in verdict.root_causes] == [
        (root.check_id, 3),
        ("numbers.x", 0),
    ]
    assert verdict.headline() == (
        "FAIL: root cause preflight.webhook_endpoint (Webhook endpoint answers), 3 check(s) "
        "blocked by it; 1 more root cause(s): numbers.x"
    )
    html = verdict._repr_html_()
    assert html.index("Root causes") < html.index("<table")  # before the table of all checks
    assert STATUS_COLOURS["BLOCKED"] in html and "3 check(s) blocked by it" in html
    assert "start the receiver." in html
    assert verdict.to_dict()["rootCauses"][0]["blocked"] == 3
    only_blocked = Verdict("r", "sandbox", (checks[2],))
    assert only_blocked.outcome == "FAIL"  # a BLOCKED check is not met either


def test_a_step_with_a_blocked_check_is_blocked_and_shows_why():
    blocked = Check("lifecycle.queued", "queued", "BLOCKED", "not run: needs send.accepted",
                    remedy="fix auth.token (Access token acquired) first, then re-run.",
                    blocked_by="auth.token")  # fmt: skip
    step = StepReport("lifecycle", "Lifecycle", (Check("a", "a", "PASS", "ok"), blocked))
    assert step.status == "BLOCKED"
    html = step._repr_html_()
    assert STATUS_COLOURS["BLOCKED"] in html and "fix auth.token" in html
    assert STATUS_COLOURS["BLOCKED"] not in (STATUS_COLOURS["FAIL"], STATUS_COLOURS["SKIP"])
    assert blocked.to_dict()["blockedBy"] == "auth.token"
