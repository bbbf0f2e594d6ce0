"""Live progress: the kernel's progress lines reach the console while the run goes on."""

from __future__ import annotations

import io

import pytest

from runbook_lib.reporting.progress import (
    PROGRESS_ENV,
    ConsolePrinter,
    ProgressChannel,
    report_progress,
)


def test_progress_lines_cross_the_channel_in_order(monkeypatch, capsys):
    got: list[str] = []
    with ProgressChannel(got.append) as channel:
        monkeypatch.setenv(PROGRESS_ENV, str(channel.path))
        for n in range(50):
            report_progress(f"line {n}", in_cell=n % 2 == 0)
    assert got == [f"line {n}" for n in range(50)]
    assert capsys.readouterr().out.count("line ") == 25  # in the cell only where asked


def test_without_a_channel_progress_is_the_cell_output_only(monkeypatch, capsys):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    report_progress("waiting for webhooks")
    assert capsys.readouterr().out == "waiting for webhooks\n"


@pytest.mark.parametrize("colour", [True, False])
def test_the_console_colours_only_a_terminal(colour):
    out = io.StringIO()
    ConsolePrinter(out, colour=colour)("step Token: PASS (2 pass)")
    text = out.getvalue()
    assert ("\x1b[" in text) is colour
    assert text.startswith("[") and "step Token" in text


@pytest.mark.notebook
def test_a_cli_run_prints_each_step_while_it_runs(tmp_path, capsys):
    from runbook_lib.cli import run_go_live
    from tests.stack import running_stack

    with running_stack(tmp_path) as stack:
        run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    out = capsys.readouterr().out
    assert run.exit_code == 0
    for expected in ("step Preflight: PASS", "Waiting up to", "step Release gate"):
        assert expected in out, out[-2000:]
    assert out.index("step Preflight") < out.index("step Release gate")
