"""The release gate: catalog evaluation (unit) and GO / NO-GO at the end of a real go-live run."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from runbook_lib.cli import run_go_live
from runbook_lib.core.checks import Check
from runbook_lib.core.gate import evaluate_gate, load_catalog
from runbook_lib.core.parameters import Attestation
from runbook_lib.providers.base import provider_names
from runbook_lib.reporting.summary import Summary
from tests.stack import running_stack

ATTESTATION_ITEMS = {i.item_id for i in load_catalog() if i.attestation}
TODAY = date(2026, 11, 23)


def passing_checks() -> list[Check]:
    """One PASS check for every check id or pattern the catalog names."""
    ids = {p.replace("*", "x") for item in load_catalog() for p in item.checks}
    return [Check(i, i, "PASS", "ok") for i in sorted(ids)]


def always(ok: bool):
    return {
        "every_send_has_a_key": lambda: (ok, "rule"),
        "request_ids_recorded": lambda: (ok, "rule"),
    }


def attest(item: str, on: date = TODAY, **kw) -> Attestation:
    return Attestation(item=item, by="Dana Ops", when=on, **kw)


def test_catalog_covers_every_area_the_gate_targets():
    catalog = load_catalog()
    areas = {i.area for i in catalog}
    assert {"Authentication", "Client context", "Numbers", "Send flow", "Webhooks",
            "Operational visibility", "Failure paths", "Go-live steps", "Support handoff",
            "Release gate"} <= areas  # fmt: skip
    assert len({i.item_id for i in catalog}) == len(catalog)
    assert all(i.checks or i.evidence or i.attestation for i in catalog)


def test_all_checks_pass_but_no_attestations_is_no_go_listing_them():
    gate = evaluate_gate(passing_checks(), [], evidence_rules=always(True), today=TODAY)
    assert gate.verdict == "NO-GO"
    assert set(gate.missing_attestations) == ATTESTATION_ITEMS
    assert {i.item.item_id for i in gate.blocking_unmet} == ATTESTATION_ITEMS
    assert all("attestation" in (i.todo or "") for i in gate.blocking_unmet)


def test_checks_and_current_attestations_make_go():
    gate = evaluate_gate(
        passing_checks(),
        [attest(i) for i in ATTESTATION_ITEMS],
        evidence_rules=always(True),
        today=TODAY,
    )
    assert gate.verdict == "GO", gate.blocking_unmet
    statuses = {i.item.item_id: i.status for i in gate.items}
    assert all(statuses[i] == "ATTESTED" for i in ATTESTATION_ITEMS)
    assert "Dana Ops" in gate._repr_html_()


def test_an_expired_attestation_is_listed_and_does_not_count():
    old = TODAY - timedelta(days=200)
    atts = [attest(i) for i in ATTESTATION_ITEMS - {"AUTH-2"}] + [attest("AUTH-2", on=old)]
    gate = evaluate_gate(passing_checks(), atts, evidence_rules=always(True), today=TODAY)
    assert gate.verdict == "NO-GO"
    assert gate.expired_attestations == ("AUTH-2",)
    assert [i.item.item_id for i in gate.blocking_unmet] == ["AUTH-2"]


def test_a_failed_check_fails_its_item_with_the_checks_remedy_as_todo():
    checks = passing_checks()
    checks = [c for c in checks if c.check_id != "send.replay"] + [
        Check(
            "send.replay", "replay", "FAIL", "second messageId", remedy="send the same key again."
        )
    ]
    atts = [attest(i) for i in ATTESTATION_ITEMS]
    gate = evaluate_gate(checks, atts, evidence_rules=always(True), today=TODAY)
    failed = {i.item.item_id: i for i in gate.items if i.status == "FAIL"}
    assert set(failed) == {"SEND-2", "GEN-3"}
    assert failed["SEND-2"].todo == "send the same key again."
    # the gate only repeats send.replay's FAIL: it is NO-GO, BLOCKED by that root cause (issue 15;
    # this asserted a FAIL of its own before)
    gate_check = gate.as_check()
    assert gate.verdict == "NO-GO" and not gate_check.met
    assert gate_check.status == "BLOCKED" and gate_check.blocked_by == "send.replay"


def test_an_attestation_cannot_hide_a_check_that_failed_or_is_blocked_in_this_run():
    """A failing check wins over an attestation: it stands in only for checks that did not run."""
    checks = [c for c in passing_checks() if c.check_id not in ("send.replay", "support.trace")]
    checks += [
        Check("send.replay", "replay", "FAIL", "second messageId", remedy="send the same key."),
        Check("support.trace", "trace", "BLOCKED", "not run", blocked_by="send.replay"),
    ]
    atts = [attest(i) for i in ATTESTATION_ITEMS | {"SEND-2", "SUP-1", "FAIL-1"}]
    gate = evaluate_gate(
        [c for c in checks if c.check_id != "drill.invalid_credentials"], atts,
        evidence_rules=always(True), today=TODAY,
    )  # fmt: skip
    statuses = {i.item.item_id: i.status for i in gate.items}
    assert statuses["SEND-2"] == "FAIL"  # attested, but its check failed in this run
    assert statuses["SUP-1"] == "BLOCKED"  # attested, but its check is blocked
    assert statuses["FAIL-1"] == "ATTESTED"  # its drill did not run: the attestation stands in
    assert gate.verdict == "NO-GO"


def test_items_whose_checks_are_blocked_say_by_what_and_never_enable_and_run():
    """A wrong base URL: the token fails, everything that needs the API is BLOCKED by it; the
    gate says "blocked by auth.token", not "enable and run drill.X" (drills are enabled)."""
    root = Check(
        "auth.token", "Access token acquired", "FAIL", "unreachable", remedy="check base_url."
    )
    checks = [c for c in passing_checks() if not c.check_id.startswith(("auth.", "whoami.",
              "numbers.", "send.", "lifecycle.", "support.", "drill.", "probe."))]  # fmt: skip
    checks += [root] + [
        Check(i, i, "BLOCKED", "not run: needs auth.token", blocked_by="auth.token")
        for i in ("whoami.context", "numbers.list", "send.accepted", "send.replay",
                  "lifecycle.queued", "lifecycle.sent", "lifecycle.final", "support.trace",
                  "drill.all", "probe.all")
    ]  # fmt: skip
    gate = evaluate_gate(checks, [attest(i) for i in ATTESTATION_ITEMS],
                         evidence_rules=always(True), today=TODAY)  # fmt: skip
    unmet = gate.blocking_unmet
    assert unmet and not [i.todo for i in unmet if "enable and run" in (i.todo or "")]
    blocked = {i.item.item_id: i for i in unmet if i.status == "BLOCKED"}
    assert {"CTX-2", "NUM-1", "FAIL-1", "FAIL-6", "WH-3"} <= set(blocked)  # stood in for
    assert all(i.todo.startswith("blocked by auth.token: fix auth.token") for i in blocked.values())
    assert [i.item.item_id for i in unmet if i.status == "FAIL"] == ["AUTH-1"]
    gate_check = gate.as_check()  # the gate only repeats the root cause: BLOCKED by it
    assert gate_check.status == "BLOCKED" and gate_check.blocked_by == "auth.token"
    assert "BLOCKED" in gate._repr_html_()


def test_checks_that_did_not_run_leave_items_not_verified():
    checks = [c for c in passing_checks() if not c.check_id.startswith(("drill.", "probe."))]
    atts = [attest(i) for i in ATTESTATION_ITEMS]
    gate = evaluate_gate(checks, atts, evidence_rules=always(True), today=TODAY)
    unverified = {i.item.item_id for i in gate.items if i.status == "NOT VERIFIED"}
    assert {"FAIL-1", "FAIL-6", "WH-3", "GEN-6"} <= unverified
    assert gate.verdict == "NO-GO"


def test_a_failing_evidence_rule_fails_the_item():
    atts = [attest(i) for i in ATTESTATION_ITEMS]
    gate = evaluate_gate(passing_checks(), atts, evidence_rules=always(False), today=TODAY)
    assert {"SEND-1", "OPS-1"} <= {i.item.item_id for i in gate.items if i.status == "FAIL"}


def test_an_attestation_for_an_unknown_item_is_a_parameter_error(tmp_path):
    from runbook_lib.core.errors import ParameterError
    from runbook_lib.core.parameters import load_parameters
    from tests.stack import ROOT

    text = (ROOT / "parameters" / "sandbox.yaml").read_text()
    text = text.replace("item: GEN-5", "item: GEN-55")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ParameterError, match="GEN-55"):
        load_parameters(path)


# -- the gate at the end of a real go-live run ------------------------------------------------


@pytest.mark.notebook
def test_go_live_without_attestations_is_no_go_and_exits_1(tmp_path):
    with running_stack(tmp_path) as stack:
        run = run_go_live(
            stack.params(attestations=[]), reports_root=tmp_path / "reports", extra_env=stack.env
        )
    assert run.exit_code == 1
    gate = run.summary.gate
    assert gate["verdict"] == "NO-GO"
    assert set(gate["missingAttestations"]) == ATTESTATION_ITEMS
    assert {i["id"] for i in gate["blockingUnmet"]} == ATTESTATION_ITEMS
    failing = [c.check_id for c in run.summary.checks if c.status == "FAIL"]
    assert failing == ["gate.verdict"]  # everything else passed: only the gate holds it back
    html = (run.report_dir / "report.html").read_text()
    assert "NO-GO" in html and "To do before go-live" in html


@pytest.mark.notebook
def test_go_live_with_rehearsal_attestations_is_go_and_labelled(tmp_path):
    with running_stack(tmp_path) as stack:
        run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    assert run.exit_code == 0, [c for c in run.summary.checks if c.status != "PASS"]
    gate = Summary.load(run.report_dir).gate
    assert gate["verdict"] == "GO"
    assert set(gate["rehearsalAttestations"]) == ATTESTATION_ITEMS
    html = (run.report_dir / "report.html").read_text()
    assert "Rehearsal attestations" in html and "REHEARSAL" in html


@pytest.mark.parametrize("provider", provider_names())
def test_every_catalog_reads_the_same_with_the_fast_loader(provider):
    import yaml

    from runbook_lib.providers.base import get_provider

    text = get_provider(provider).readiness_catalog()
    expected = [raw["id"] for raw in yaml.safe_load(text)["items"]]
    assert [item.item_id for item in load_catalog(provider)] == expected
    assert yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == yaml.safe_load(
        text
    )


def test_evidence_missing_because_its_check_failed_is_blocked_by_that_root_cause():
    """No send was made because the sender failed: the keyed-sends evidence is BLOCKED by the
    sender's check (a rule naming what its evidence needs), not a FAIL of the gate's own."""
    checks = [c for c in passing_checks() if not c.check_id.startswith("send.accepted")]
    checks += [Check("numbers.x", "number active", "FAIL", "not active"),
               Check("send.accepted", "send", "BLOCKED", "not sent", blocked_by="numbers.x")]  # fmt: skip
    no_send = (False, "no send was made in this run", ("send.accepted*",))
    rules = {**always(True), "every_send_has_a_key": lambda: no_send}
    atts = [attest(i) for i in ATTESTATION_ITEMS]
    gate = evaluate_gate(checks, atts, evidence_rules=rules, today=TODAY)
    keyed = next(i for i in gate.items if i.item.evidence == "every_send_has_a_key")
    assert keyed.status == "BLOCKED" and keyed.caused_by == ("numbers.x",), keyed
    gate_check = gate.as_check()
    assert gate_check.status == "BLOCKED" and gate_check.blocked_by == "numbers.x"
    # what the evidence needs was met: the rule's own failure stays a FAIL
    met = passing_checks()
    gate = evaluate_gate(met, atts, evidence_rules=rules, today=TODAY)
    keyed = next(i for i in gate.items if i.item.evidence == "every_send_has_a_key")
    assert keyed.status == "FAIL" and gate.as_check().status == "FAIL"
