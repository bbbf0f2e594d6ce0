"""Reports as data: outside values never become markup, nothing loads from another host, and
runs started together from one folder keep their kernels apart and leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from runbook_lib.cli import run_go_live, run_read_only
from tests.htmlcheck import ADVERSARIAL, external_loads, injected_markup, parse, python_reprs
from tests.stack import running_stack

pytestmark = pytest.mark.notebook

BAD_MESSAGE_IDS = [f"msg_{bad}" for bad in ADVERSARIAL]


def _wait_for_events(store: Path, message_ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(store) as db:
            marks = ",".join("?" * len(message_ids))
            query = f"SELECT COUNT(DISTINCT message_id) FROM events WHERE message_id IN ({marks})"
            if db.execute(query, message_ids).fetchone()[0] == len(message_ids):
                return
        time.sleep(0.1)
    raise AssertionError(f"the receiver did not store events for {message_ids}")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """go-live with adversarial parameter values, then webhooks whose fields are adversarial,
    then a trace by each adversarial id and reference, and an audit over all of it."""
    folder = tmp_path_factory.mktemp("adversarial")
    with running_stack(folder) as stack:
        data = yaml.safe_load(stack.params().read_text())
        data["test_send"]["external_reference_prefix"] = ADVERSARIAL[0]
        data["attestations"][0]["by"] = ADVERSARIAL[1]
        data["attestations"][0]["note"] = ADVERSARIAL[2]
        params = stack.params(test_send=data["test_send"], attestations=data["attestations"])
        root = folder / "reports"
        go = run_go_live(params, reports_root=root, extra_env=stack.env)
        assert go.exit_code == 0, go.summary.error or go.summary.checks

        control = stack.sandbox.url + "/_sandbox"
        for message_id, bad in zip(BAD_MESSAGE_IDS, ADVERSARIAL, strict=True):
            common = {"messageId": message_id, "externalReference": bad, "to": bad}
            for event_type, extra in (
                ("message.queued", {"sequence": 1, "status": "QUEUED"}),
                ("message.failed", {"sequence": 2, "status": "FAILED",
                                    "failure": {"code": bad, "reason": bad}}),
            ):  # fmt: skip
                body = {"eventType": event_type, "data": {**common, **extra}}
                httpx.post(control + "/events", json=body, timeout=10).raise_for_status()
            inbound = {"from": bad, "body": bad, "conversationId": bad}
            httpx.post(control + "/inbound", json=inbound, timeout=10).raise_for_status()
        _wait_for_events(stack.receiver.store_path, BAD_MESSAGE_IDS)

        runs = {"go-live": go}
        runs["trace by messageId"] = run_read_only(
            "trace", params, reports_root=root, extra_env=stack.env,
            notebook_parameters={"message_id": BAD_MESSAGE_IDS[0], "external_reference": ""},
        )  # fmt: skip
        runs["trace by externalReference"] = run_read_only(
            "trace", params, reports_root=root, extra_env=stack.env,
            notebook_parameters={"message_id": "",
                                 "external_reference": go.summary.messages[0]["externalReference"]},
        )  # fmt: skip
        runs["audit"] = run_read_only(
            "audit", params, reports_root=root, extra_env=stack.env,
            notebook_parameters={"since": "1h", "window_from": "", "window_to": ""},
        )  # fmt: skip
        for name, run in runs.items():
            assert run.summary.outcome != "ERROR", (name, run.summary.failed_cell)
        yield stack, params, runs


REPORTS = ["go-live", "trace by messageId", "trace by externalReference", "audit"]


def _html(reports, name: str) -> str:
    return (reports[2][name].report_dir / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", REPORTS)
def test_adversarial_values_stay_text_in_every_report(reports, name):
    html = _html(reports, name)
    assert injected_markup(html) == []
    doc = parse(html)
    shown = "".join(doc.text) + "".join(v or "" for _, a in doc.tags for v in a.values())
    assert any(bad in shown for bad in ADVERSARIAL), "the adversarial values reached the report"


@pytest.mark.parametrize("name", REPORTS)
def test_no_python_repr_where_a_person_reads(reports, name):
    """No None, True/False, dict or tuple repr in what the report shows (values are formatted)."""
    assert python_reprs(_html(reports, name)) == []


def test_a_webhook_messageid_is_the_plot_alt_text_not_an_element(reports):
    doc = parse(_html(reports, "trace by messageId"))
    images = [attrs for tag, attrs in doc.tags if tag == "img"]
    assert any(BAD_MESSAGE_IDS[0] in (a.get("alt") or "") for a in images)  # the timeline


@pytest.mark.parametrize("name", REPORTS)
def test_reports_load_nothing_from_another_host(reports, name):
    html = _html(reports, name)
    assert external_loads(html) == []
    assert parse(html).styles, "the CSS is inlined"
    assert "Verdict" in html and ".open(params_file" not in html  # verdict shown, code hidden


def test_plots_are_embedded(reports):
    for name in ("trace by messageId", "audit"):
        images = [a for tag, a in parse(_html(reports, name)).tags if tag == "img"]
        assert images and all(a["src"].startswith("data:image/png;base64,") for a in images)


def _kernel_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("kernel"))


def test_four_runs_started_together_from_one_folder_all_succeed(reports, tmp_path):
    stack, params, runs = reports
    message_id = runs["go-live"].summary.messages[0]["messageId"]
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, **stack.env}
    argv = [sys.executable, "-m", "runbook_lib.cli", "trace", "--params", str(params),
            "--message-id", message_id, "--reports", "reports"]  # fmt: skip
    procs = [
        subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    seen: set[str] = set()
    while any(p.poll() is None for p in procs):  # watch the folder while the kernels run
        seen.update(p.name for p in work.iterdir())
        time.sleep(0.05)
    outputs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert seen <= {"reports"} and sorted(os.listdir(work)) == ["reports"]
    assert _kernel_files(work) == []
    summaries = [json.loads(p.read_text()) for p in (work / "reports").glob("*/*/summary.json")]
    assert len(summaries) == 4 and {s["outcome"] for s in summaries} == {"PASS"}


_RUNNER = """
import sys
from pathlib import Path
from runbook_lib.reporting.execute import execute_report
try:
    execute_report(kind="trace", notebook=Path(sys.argv[1]), report_dir=Path(sys.argv[2]),
                   environment="sandbox", parameters={}, cwd=Path.cwd())
except KeyboardInterrupt:
    sys.exit(130)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_killed_run_stops_its_kernel_and_leaves_nothing(tmp_path, signum, exit_code):
    import nbformat

    marker, work, report = tmp_path / "kernel.json", tmp_path / "work", tmp_path / "report"
    work.mkdir()
    report.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import json, os, sys, pathlib\n"
            "pathlib.Path(os.environ['KERNEL_MARKER']).write_text("
            "json.dumps({'pid': os.getpid(), 'argv': sys.argv}))"
        ),
        nbformat.v4.new_code_cell("import time\ntime.sleep(300)"),
    ]
    nb_path = tmp_path / "sleeps.ipynb"
    nbformat.write(notebook, nb_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(nb_path), str(report)],
        cwd=work, env={**os.environ, "KERNEL_MARKER": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        kernel = json.loads(marker.read_text())
        connection = Path(kernel["argv"][kernel["argv"].index("-f") + 1])
        assert os.listdir(work) == []  # the sockets are not in the working folder
        assert (connection.parent.stat().st_mode & 0o777) == 0o700
        assert {p.name for p in connection.parent.iterdir()} >= {"kernel.json", "kernel-ipc-1"}
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == exit_code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not connection.parent.exists()
    deadline = time.monotonic() + 15
    while _alive(kernel["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(kernel["pid"])
    assert os.listdir(work) == []
