"""Result objects render outside data as text: no element or attribute ever comes from a value."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from runbook_lib.core.checks import Check, StepReport, Verdict
from runbook_lib.core.gate import CatalogItem, GateItem, GateReport
from runbook_lib.core.rendering import badge, esc, kv_table, rows_table
from runbook_lib.reporting.html import verdict_html
from runbook_lib.reporting.index import build_index
from runbook_lib.reporting.plots import Plot, timeline
from runbook_lib.reporting.snapshot import Drift
from runbook_lib.reporting.summary import Summary
from runbook_lib.runbooks.audit import DomainVerdict, StatusBlock
from runbook_lib.runbooks.trace import EscalationNote
from tests.htmlcheck import ADVERSARIAL, injected_markup, parse


def test_esc_escapes_both_quote_kinds_and_markup():
    assert esc("""<a href='x' title="y">&""") == (
        "&lt;a href=&#x27;x&#x27; title=&quot;y&quot;&gt;&amp;"
    )
    assert esc(None) == "" and esc(3) == "3"


def _check(bad: str) -> Check:
    return Check("c." + bad, bad, "FAIL", bad, {bad: bad}, (bad, bad), bad)


def _renderings(bad: str) -> dict[str, str]:
    """Every result object with ``bad`` in each of its text fields, rendered."""
    item = CatalogItem(bad, bad, bad, True)
    gate = GateReport(
        (GateItem(item, "NOT VERIFIED", bad, todo=bad, attested_by=bad, rehearsal=True),),
        expired_attestations=(bad,),
        unknown_attestations=(bad,),
    )
    summary = {
        "kind": bad, "environment": bad, "runId": bad, "startedAt": bad, "finishedAt": bad,
        "exitCode": bad, "outcome": bad, "checks": [_check(bad).to_dict()],
        "failedCell": {"cellIndex": bad, "section": bad, "error": bad, "message": bad},
        "gate": {"verdict": bad, "counts": {bad: 1}, "blockingUnmet": [{"id": bad, "todo": bad}],
                 "rehearsalAttestations": [bad]},
    }  # fmt: skip
    return {
        "badge": badge(bad, bad),
        "rows_table": rows_table([bad], [[bad]]),
        "kv_table": kv_table({bad: bad}),
        "check": _check(bad)._repr_html_(),
        "step": StepReport(
            bad, bad, (_check(bad),), {bad: bad}, ((bad, [bad], [[bad]]),), (bad,)
        )._repr_html_(),
        "verdict": Verdict(bad, bad, (_check(bad),), error=bad)._repr_html_(),
        "plot": Plot(bad, b"\x89PNG")._repr_html_(),
        "escalation": EscalationNote({bad: bad}, (bad,))._repr_html_(),
        "domain": DomainVerdict(bad, (bad,), ((bad, (bad,)),))._repr_html_(),
        "status": StatusBlock({bad: bad})._repr_html_(),
        "gate": gate._repr_html_(),
        "drift": Drift([(bad, bad, bad)])._repr_html_(),
        # the exit code is an int in the typed summary: no text of the sender's can reach it
        "report header": verdict_html(Summary.from_dict({**summary, "exitCode": 1})),
    }


@pytest.mark.parametrize("bad", ADVERSARIAL)
def test_no_result_object_lets_a_value_become_markup(bad):
    for name, html in _renderings(bad).items():
        assert injected_markup(html) == [], name
        # shown as text once: escaped, never dropped, never escaped twice
        assert bad in "".join(parse(html).text) + "".join(
            v or "" for _, attrs in parse(html).tags for v in attrs.values()
        ), name


def test_a_plot_title_stays_inside_its_alt_attribute():
    bad = ADVERSARIAL[0]
    (img,) = [attrs for tag, attrs in parse(Plot(bad, b"png")._repr_html_()).tags]
    assert img["alt"] == bad and img["src"].startswith("data:image/png;base64,")


def test_plot_text_is_drawn_literally_never_as_mathtext():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    plot = timeline([(when, "QUEUED", 1, True)], title=r"msg_$\notacommand{$ x")
    assert plot.png.startswith(b"\x89PNG")


@pytest.mark.parametrize("bad", ADVERSARIAL)
def test_the_reports_index_shows_summary_fields_as_text(tmp_path, bad):
    run = tmp_path / "2026-01-01" / "run"
    run.mkdir(parents=True)
    summary = {"kind": bad, "environment": bad, "outcome": bad, "startedAt": bad,
               "runId": bad, "counts": {bad: 1}}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    html = build_index(tmp_path).read_text()
    assert injected_markup(html) == []
    assert bad in "".join(parse(html).text)


def test_values_are_shown_for_people_never_as_python_reprs():
    from datetime import UTC, datetime

    from runbook_lib.core.rendering import esc, kv_table, show

    assert show(None) == "—" and show(True) == "yes" and show(False) == "no"
    assert show({"p50": 0.123456, "p95": None}) == "p50 0.123, p95 —"
    assert show(("a", "b")) == "a, b" and show([]) == "—"
    assert show(datetime(2026, 11, 24, 8, 0, tzinfo=UTC)) == "2026-11-24T08:00:00Z"
    assert esc(None) == "" and esc({"k": True}) == "k yes"
    table = kv_table({"sms": True, "window": ("x", "y"), "override": None})
    assert "True" not in table and "('" not in table and "None" not in table


def _header_cells(html: str) -> list[str]:
    return [tag for tag, _ in parse(html).tags if tag in ("thead", "th")]


def test_key_value_tables_have_no_empty_header_row():
    table = kv_table({"messageId": "msg_1", "attempts": 2})
    assert _header_cells(table) == []
    assert [t for t in parse(table).text if t.strip()] == ["messageId", "msg_1", "attempts", "2"]
    # a step's details are such a table, below its checks table (whose header row stays)
    check = Check("send.accepted", "Send accepted", "PASS", "ok")
    step = StepReport("send", "Controlled test send", (check,), details={"to": "+1•••0001"})
    html = step._repr_html_()
    assert _header_cells(html).count("thead") == 1
    assert re.findall(r"<th[^>]*>\s*</th>", html) == []  # no empty header cell anywhere


def test_a_table_with_headers_keeps_its_header_row():
    table = rows_table(["state", "at"], [("QUEUED", "07:00")])
    assert _header_cells(table) == ["thead", "th", "th"]
    assert rows_table(["", " "], [("a", "b")]).count("<th") == 0  # blank headers: none
