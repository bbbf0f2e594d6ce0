"""The runbook CLI: help that explains itself, usage errors exit 3."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

from runbook_lib.cli import build_parser, main
from runbook_lib.core.errors import RunbookError
from runbook_lib.security.leakguard import REDACTED, SecretChannel
from runbook_lib.security.secret_channel import encode_line, write_fifo
from runbook_lib.security.secrets import secret_from_env

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_commands_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("go-live", "demo", "sandbox", "receiver"):
        assert command in out
    assert "exit codes" in out


@pytest.mark.parametrize("argv", [[], ["go-live"], ["no-such-command"], ["go-live", "--params"]])
def test_usage_errors_exit_3(argv, capsys):
    assert main(argv) == 3
    assert "usage:" in capsys.readouterr().err


def test_go_live_with_missing_file_exits_3_and_names_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["go-live", "--params", "nope.yaml"]) == 3
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and "parameters/sandbox.yaml" in captured.err
    assert "report:" in captured.out


def test_receiver_refuses_to_start_without_a_signing_secret(capsys):
    assert main(["receiver", "--secret-env", "NO_SUCH_SECRET_VAR"]) == 3
    assert "NO_SUCH_SECRET_VAR" in capsys.readouterr().err


def test_faults_command_sets_shows_and_clears(tmp_path, capsys):
    from runbook_lib.providers.redcloud.sandbox import run_sandbox

    profile = tmp_path / "faults.yaml"
    profile.write_text("api:\n  send: {rate_5xx: 0.5}\nseed: 4\n")
    with run_sandbox() as running:
        assert main(["faults", "--url", running.url, "--profile", str(profile)]) == 0
        assert running.sandbox.state.faults.profile.api["send"].rate_5xx == 0.5
        assert main(["faults", "--url", running.url, "--clear"]) == 0
        assert running.sandbox.state.faults.profile.api == {}
        profile.write_text("api:\n  sned: {}\n")
        assert main(["faults", "--url", running.url, "--profile", str(profile)]) == 3
    assert "api.sned: unknown route" in capsys.readouterr().err


def _params_with_ledger(tmp_path, ledger_path):
    import yaml

    from .stack import ROOT

    data = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    data["ledger_path"] = ledger_path
    data["provider"]["base_url"] = "http://127.0.0.1:9"  # never reached: refused before
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _a_folder(target):
    target.mkdir()
    return str(target)


def _under_a_file(target):
    target.write_text("x")
    return str(target / "ledger.sqlite")


def _not_sqlite(target):
    target.write_text("not a database " * 100)
    return str(target)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_a_folder, "is a folder"),
        (_under_a_file, "cannot be created"),
        (_not_sqlite, "is not an SQLite database"),
        (lambda target: str(target) + "/", "names a folder"),
    ],
    ids=["directory", "parent-is-a-file", "not-sqlite", "trailing-slash"],
)
def test_a_bad_ledger_path_exits_3_with_one_line_before_any_network_call(
    tmp_path, capsys, monkeypatch, make, problem
):
    monkeypatch.setenv("REDCLOUD_CLIENT_SECRET", "sbx-ledger-test-secret")
    ledger = make(tmp_path / "target")
    code = main(["go-live", "--params", str(_params_with_ledger(tmp_path, ledger)),
                 "--new-run", "--reports", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    assert problem in err and "ledger_path" in err
    assert "Fix:" in err


def test_faults_with_no_sandbox_listening_exits_3_with_one_line(capsys):
    import socket

    with socket.socket() as probe:  # a free port, then nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["faults", "--url", f"http://127.0.0.1:{port}"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"127.0.0.1:{port}" in err and "runbook sandbox" in err and "--url" in err


def report_texts(reports: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in reports.rglob("*") if p.is_file())


@pytest.mark.parametrize("path", ["provider.client_secret_env", "event_source.password_env"])
def test_a_secret_pasted_into_an_env_field_exits_3_and_is_never_echoed(tmp_path, capsys, path):
    pasted = "hunter2-Pasted Secret/Value"
    data = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    section, key = path.split(".")
    data[section][key] = pasted
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(data))
    reports = tmp_path / "reports"
    assert main(["go-live", "--params", str(params), "--reports", str(reports)]) == 3
    captured = capsys.readouterr()
    assert f"{path}: the value is not an environment variable name" in captured.err
    summary = json.loads(next(reports.rglob("summary.json")).read_text())
    assert summary["exitCode"] == 3 and summary["leakGuard"]["status"] == "CLEAN"
    for shown in (captured.out, captured.err, report_texts(reports)):
        assert "hunter2" not in shown and quote(pasted) not in shown


def test_console_output_is_redacted_like_the_artifacts(tmp_path, capsys, monkeypatch):
    """A secret in an error message or a print, the kernel's too, never reaches the console."""
    own, from_kernel = "cs-" + "9f8e7d6c5b4a" * 2, 'tok "kernel" <é>-' + "0a1b2c3d4e5f"
    monkeypatch.setenv("RUNBOOK_TEST_SECRET", own)

    def leaky_index(root: Path, *_: object) -> Path:
        secret_from_env("RUNBOOK_TEST_SECRET", purpose="client secret")
        with SecretChannel() as channel:  # the kernel's end writes what it registers
            write_fifo(channel.path, encode_line(from_kernel, "access token (kernel)"))
        print(f"index built with {own} and {json.dumps(from_kernel)}", flush=True)
        print("no newline, then flush:", quote(own), end="", flush=True)
        raise RunbookError(f"upload refused for {own!r} / {from_kernel}")

    monkeypatch.setattr("runbook_lib.cli.build_index", leaky_index)
    assert main(["reports", "--reports", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    for shown in (captured.out, captured.err):
        assert REDACTED in shown
        assert "9f8e7d6c5b4a" not in shown and "0a1b2c3d4e5f" not in shown, shown
    assert "runbook reports: upload refused" in captured.err


def test_invalid_sql_column_mapping_exits_3_in_one_line_before_any_connection(tmp_path, capsys):
    data = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
    data["event_source"] = {
        "kind": "sql",
        "url": "postgresql://runbook@192.0.2.1:5432/events",  # TEST-NET: never reachable
        "password_env": "RUNBOOK_TEST_DB_PASSWORD",
        "table": "webhook_events",
        "columns": {"event_id": "evt_uuid", "event_type": "lower(kind)"},
    }
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(data))
    argv = ["audit", "--params", str(params), "--since", "2h", "--reports", str(tmp_path / "r")]
    assert main(argv) == 3
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out
    assert "columns.event_type" in lines[0] and "not a plain column name" in lines[0]
    assert "use letters, digits and underscores" in lines[0]  # the fix


def test_help_loads_none_of_the_heavy_libraries():
    """`runbook --help` answers without pydantic, httpx, nbformat, papermill or polars (fast)."""
    import subprocess
    import sys

    heavy = ("pydantic", "httpx", "nbformat", "papermill", "polars", "jsonschema", "pandas")
    code = (
        "import sys, contextlib, io\n"
        "from runbook_lib.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_sandbox_faults_refuses_a_bad_profile_before_serving(tmp_path, capsys):
    """`runbook sandbox --faults` (as the README documents) validates the profile first: exit 3."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("api: {send: {rate_429: 7}}\n")
    assert main(["sandbox", "--port", "0", "--faults", str(bad)]) == 3
    err = capsys.readouterr().err
    assert "fault profile" in err and "Fault injection" in err and "Traceback" not in err


def test_sandbox_starts_under_the_fault_profile_it_is_given(tmp_path, monkeypatch):
    """The profile given to `runbook sandbox --faults` is the one its control plane reports."""
    from runbook_lib.cli import cmd_sandbox
    from runbook_lib.core import serving

    profile = tmp_path / "faults.yaml"
    profile.write_text("api: {send: {rate_5xx: 0.5}}\nseed: 3\n")
    served = {}
    monkeypatch.setattr(serving, "serve_forever", lambda app, **kw: served.update(app=app))
    args = build_parser().parse_args(["sandbox", "--faults", str(profile)])
    assert cmd_sandbox(args) == 0
    import asyncio

    async def faults() -> dict:
        transport = httpx.ASGITransport(app=served["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://sbx") as client:
            return (await client.get("/_sandbox/faults")).json()

    assert asyncio.run(faults())["api"]["send"]["rate_5xx"] == 0.5


def _readme_commands() -> list[str]:
    """Every `runbook …` command line in the README: fenced blocks and inline code alike."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    snippets += [s.replace("\n", " ") for s in re.findall(r"(?<!`)`([^`]+)`(?!`)", prose)]
    found = []
    for snippet in snippets:
        for line in snippet.replace("\\\n", " ").splitlines():
            for match in re.finditer(
                r"(?:^|[\s/;&(=\"])runbook ([a-z][a-z-]*)((?: [^|;&>#`)\"]*)?)", line
            ):
                found.append(f"{match[1]}{match[2]}".strip())
    return found


def test_every_command_and_flag_the_readme_documents_exists():
    """README and CLI agree: each `runbook <command> --flag` shown parses with the real parser."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = _readme_commands()
    assert len(commands) > 10  # the README does document its commands
    wrong = []
    for command in commands:
        name, *words = command.split()
        sub = subparsers.choices.get(name)
        if sub is None:
            wrong.append(f"runbook {name}: no such command")
            continue
        options = {o for a in sub._actions for o in a.option_strings}
        flags = [w.strip("[]").split("=")[0] for w in words if w.strip("[]").startswith("--")]
        wrong += [f"runbook {name} {f}: no such option" for f in flags if f not in options]
    assert wrong == []
