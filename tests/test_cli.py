"""The runbook CLI: help that explains itself, usage errors exit 3."""

from __future__ import annotations

import pytest

from runbook_lib.cli import main


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
