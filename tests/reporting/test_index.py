"""The reports index: what each run ended as, at a glance, newest first, filterable."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from runbook_lib.cli import main
from runbook_lib.core.checks import Check, StepReport
from runbook_lib.reporting.index import build_index, read_index
from runbook_lib.reporting.summary import Summary, report_dir_name
from tests.htmlcheck import external_loads, injected_markup, parse


def _run(root, kind, env, hour, *, statuses=("PASS",), facts=None, outcome=None, error=None):
    started = datetime(2026, 11, 23, hour, 0, 0, tzinfo=UTC)
    folder = root / "2026-11-23" / report_dir_name(kind, env, started)
    folder.mkdir(parents=True)
    checks = tuple(Check(f"c.{i}", f"check {i}", s, "why") for i, s in enumerate(statuses))
    evidence = {"steps": [StepReport("s", "Step", checks).to_dict()] if checks else [],
                "facts": {"verdict": {"outcome": "x"}, **(facts or {})}}  # fmt: skip
    Summary.from_evidence(evidence, kind=kind, environment=env, run_id=f"{kind}-{hour}",
                          started=started, outcome=outcome, error=error).write(folder)  # fmt: skip
    return folder


def _reports(tmp_path):
    root = tmp_path / "reports"
    _run(root, "go-live", "sandbox", 8, facts={"gate": {"verdict": "GO"}})
    _run(root, "audit", "staging", 9, statuses=("FAIL",),
         facts={"failureDomain": {"domain": "auth", "evidence": ["x"]}})  # fmt: skip
    _run(root, "go-live", "staging", 10, statuses=("PASS", "FAIL"),
         facts={"gate": {"verdict": "NO-GO"}})  # fmt: skip
    _run(
        root,
        "go-live",
        "staging",
        11,
        statuses=(),
        outcome=("BAD_INPUT", 3),
        error="parameter file parameters/stagin.yaml does not exist. Fix: pass --params",
    )
    killed = (
        root
        / "2026-11-23"
        / report_dir_name("drills", "staging", datetime(2026, 11, 23, 12, tzinfo=UTC))
    )
    killed.mkdir()
    (killed / "evidence.json").write_text("{}")  # died before its summary
    (root / "2026-11-23" / "notes").mkdir()  # not a run's folder
    return root


def test_each_run_shows_kind_environment_outcome_gate_domain_and_exit_code(tmp_path):
    root = _reports(tmp_path)
    data = json.loads((build_index(root).parent / "index.json").read_text())
    rows = [(r["kind"], r["environment"], r["outcome"], r["gate"], r["failureDomain"],
             r["exitCode"]) for r in data["runs"]]  # fmt: skip
    assert rows == [  # newest first; the killed run is listed, not dropped
        ("drills", "staging", "INCOMPLETE", None, None, None),
        ("go-live", "staging", "FAIL", "NO-GO", "root cause c.1", 1),  # its root cause
        ("audit", "staging", "FAIL", None, "auth", 1),
        ("go-live", "sandbox", "PASS", "GO", None, 0),
    ]
    (never,) = data["neverStarted"]  # apart from the real runs
    assert (never["kind"], never["exitCode"]) == ("go-live", 3) and "stagin.yaml" in never["error"]


def test_the_html_index_has_the_columns_and_lists_runs_that_never_started_apart(tmp_path):
    html = build_index(_reports(tmp_path)).read_text()
    doc = parse(html)
    text = " ".join(doc.text)
    for header in ("kind", "environment", "outcome", "GO/NO-GO", "failure domain", "exit code"):
        assert f"<th>{header}</th>" in html
    assert "INCOMPLETE" in text and "NO-GO" in text and "auth" in text
    runs, never = html.split("Runs that never started")
    assert "stagin.yaml" in never and "stagin.yaml" not in runs
    assert injected_markup(html) == [] and external_loads(html) == []  # no script, works offline


def test_the_html_filters_each_environment_and_kind_with_css_alone(tmp_path):
    """Every value has a radio and a label; choosing it hides each row without its class."""
    html = build_index(_reports(tmp_path)).read_text()
    doc = parse(html)
    labels = {a["for"]: None for t, a in doc.tags if t == "label"}
    radios = [a["id"] for t, a in doc.tags if t == "input" and a.get("type") == "radio"]
    assert sorted(radios) == sorted(labels)
    rows = [a["class"].split() for t, a in doc.tags if t == "tr" and "r" in a.get("class", "")]
    assert len(rows) == 5  # four runs and the one that never started
    style = "".join(doc.styles)
    for letter, values in (("e", ["sandbox", "staging"]), ("k", ["audit", "drills", "go-live"])):
        for i, _value in enumerate(values):
            assert f"#f{letter}{i}:checked~* .r:not(.{letter}{i}){{display:none}}" in style
        for row in rows:  # each row carries exactly one class of each group
            assert len([c for c in row if re.fullmatch(rf"{letter}\d+", c)]) == 1
    text = " ".join(doc.text)
    assert "sandbox" in text and "drills" in text


def test_runbook_reports_lists_runs_filtered_by_environment_and_kind(tmp_path, capsys):
    root = _reports(tmp_path)
    assert main(["reports", "--reports", str(root), "--env", "staging", "--kind", "go-live"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("2026-")]
    assert len(lines) == 2 and all("go-live" in line and "staging" in line for line in lines)
    assert "NO-GO" in lines[0] and "never started" in out and "stagin.yaml" in lines[1]
    assert "sandbox" not in out.split("index:")[0]
    assert main(["reports", "--reports", str(root), "--env", "prod"]) == 0
    out = capsys.readouterr().out
    assert "no run of environment prod" in out and "sandbox, staging" in out
    assert main(["reports", "--reports", str(root), "--kind", "nope"]) == 3
    assert read_index(root).filtered(kind="audit").runs[0].failure_domain == "auth"
