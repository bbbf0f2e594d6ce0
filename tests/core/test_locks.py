"""One go-live per environment: a second run is refused naming the holder; dead holders are replaced."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from runbook_lib import cli
from runbook_lib.core.locks import EnvironmentLock, lock_path_for
from runbook_lib.reporting.summary import Summary
from tests.stack import ROOT

HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from runbook_lib.core.locks import EnvironmentLock

    lock = EnvironmentLock.acquire(Path(sys.argv[1]), environment="sandbox", run_id=sys.argv[2])
    print("held", flush=True)
    if sys.argv[3] == "hold":
        sys.stdin.read()  # hold until the test closes our stdin
    # "die": exit without releasing, as a killed run does
    """
)


def params_file(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    data["ledger_path"] = str(tmp_path / "state" / "send-ledger.sqlite")
    data["provider"]["base_url"] = "http://127.0.0.1:9"  # never reached: refused before
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def lock_file(tmp_path: Path) -> Path:
    return lock_path_for(tmp_path / "state" / "send-ledger.sqlite", "sandbox")


def holder(lock: Path, run_id: str, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), run_id, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("REDCLOUD_CLIENT_SECRET", "sbx-lock-test-secret")


@pytest.mark.parametrize("command", ["go-live", "drills"])
def test_a_second_run_of_the_environment_exits_3_naming_the_holder(
    tmp_path, capsys, secret, command
):
    params = params_file(tmp_path)
    process = holder(lock_file(tmp_path), "run-of-the-holder", "hold")
    try:
        code = cli.main([command, "--params", str(params), "--reports", str(tmp_path / "r")])
    finally:
        process.communicate("")
    err = capsys.readouterr().err
    assert code == 3
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err
    assert f"pid {process.pid}" in line and "run run-of-the-holder" in line
    assert "started 20" in line and "Fix: wait for that run to finish" in line


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tmp_path):
    path = lock_file(tmp_path)
    dead = holder(path, "run-that-crashed", "die")
    dead.communicate("")
    assert dead.returncode == 0 and json.loads(path.read_text())["pid"] == dead.pid
    lock = EnvironmentLock.acquire(path, environment="sandbox", run_id="run-now")
    try:
        assert lock.takeover_note is not None
        assert f"pid {dead.pid}" in lock.takeover_note and "run-that-crashed" in lock.takeover_note
        assert "no longer running" in lock.takeover_note
        assert json.loads(path.read_text())["runId"] == "run-now"
    finally:
        lock.release()


def test_the_lock_is_released_when_the_run_fails(tmp_path, secret, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("notebook machinery broke")

    monkeypatch.setattr(cli, "_execute", broken)
    with pytest.raises(RuntimeError):
        cli.run_go_live(params_file(tmp_path), reports_root=tmp_path / "r")
    lock = EnvironmentLock.acquire(lock_file(tmp_path), environment="sandbox", run_id="next")
    assert lock.takeover_note is None  # released cleanly, not left behind
    lock.release()


def test_the_run_holds_the_lock_while_it_executes(tmp_path, secret, monkeypatch):
    seen = {}

    def execute(kind, params_path, environment, **kwargs):
        with pytest.raises(cli.ConfigurationError, match="is running") as info:
            EnvironmentLock.acquire(lock_file(tmp_path), environment="sandbox", run_id="other")
        seen["refusal"] = str(info.value)
        seen["run_id"] = kwargs["run_id"]
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_execute", execute)
    with pytest.raises(KeyboardInterrupt):
        cli.run_go_live(params_file(tmp_path), reports_root=tmp_path / "r")
    assert seen["run_id"] and f"run {seen['run_id']}" in seen["refusal"]


def test_a_taken_over_lock_is_in_the_summary_for_a_scheduler(tmp_path, secret):
    """summary.json's lockTakenOver names the run whose stale lock this run took over."""
    dead = holder(lock_file(tmp_path), "run-that-crashed", "die")
    dead.communicate("")
    run = cli.run_go_live(params_file(tmp_path), reports_root=tmp_path / "r")
    written = json.loads((run.report_dir / "summary.json").read_text())
    taken = written["lockTakenOver"]
    assert (taken["pid"], taken["runId"]) == (dead.pid, "run-that-crashed")
    assert taken["startedAt"].startswith("20")
    assert Summary.load(run.report_dir).lock_taken_over == taken  # the typed reader has it too
    # the next run found the lock released: nothing taken over
    again = cli.run_go_live(params_file(tmp_path), reports_root=tmp_path / "r")
    assert json.loads((again.report_dir / "summary.json").read_text())["lockTakenOver"] is None
