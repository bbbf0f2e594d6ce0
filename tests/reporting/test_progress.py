"""Live progress: the kernel's progress lines reach the console while the run goes on."""

from __future__ import annotations

import io

import pytest

from runbook_lib.reporting import progress
from runbook_lib.reporting.progress import (
    LIVE,
    PROGRESS_ENV,
    ConsolePrinter,
    ProgressChannel,
    Throttle,
    Waiting,
    report_progress,
)


class Clock:
    """A clock the test moves by hand (no test here waits for real time)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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


def test_a_wait_says_what_it_reached_and_the_time_left_at_most_every_second():
    clock, said = Clock(), []
    wait = Waiting("webhooks of msg_1", 30, say=said.append, clock=clock)
    for _ in range(9):  # polls every 0.1 s: one live line
        wait.update("")
        clock.now += 0.1
    clock.now += 12
    wait.update("queued → sent")
    assert said == [
        f"{LIVE}  waiting for webhooks of msg_1: nothing yet; 30 s left",
        f"{LIVE}  waiting for webhooks of msg_1: queued → sent; 17 s left",
    ]


def test_off_a_terminal_a_live_line_is_a_plain_heartbeat_at_most_every_5_s():
    clock, out = Clock(), io.StringIO()
    printer = ConsolePrinter(out, tty=False, clock=clock)
    printer("Waiting up to 30 s for webhooks")
    for n in range(12):  # a live line every second for 12 s
        printer(f"{LIVE}  waiting: {n} s in")
        clock.now += 1
    printer("step Lifecycle: PASS (3 pass)")
    lines = out.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "Waiting up to 30 s for webhooks",
        "  waiting: 0 s in",
        "  waiting: 5 s in",
        "  waiting: 10 s in",
        "step Lifecycle: PASS (3 pass)",
    ]
    assert (
        "\r" not in out.getvalue() and "\x1b" not in out.getvalue() and LIVE not in out.getvalue()
    )


def test_on_a_terminal_the_live_line_is_rewritten_in_place():
    clock, out = Clock(), io.StringIO()
    printer = ConsolePrinter(out, tty=True, colour=False, clock=clock)
    printer(f"{LIVE}  waiting: nothing yet; 30 s left")
    printer(f"{LIVE}  waiting: queued; 29 s left")
    printer("  1.2 s  sent")
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("sent\n")  # live lines end without a newline
    assert text.count("\r\x1b[K") == 2  # each later line clears the live one first
    assert text.rsplit("\r\x1b[K", 1)[1].endswith("  1.2 s  sent\n")


def test_in_a_cell_a_live_line_is_a_heartbeat_and_the_console_gets_every_one(monkeypatch, capsys):
    clock, got = Clock(), []
    monkeypatch.setattr(progress, "_CELL_HEARTBEAT", Throttle(5.0, clock=clock))
    with ProgressChannel(got.append) as channel:
        monkeypatch.setenv(PROGRESS_ENV, str(channel.path))
        for n in range(7):
            report_progress(f"{LIVE}waiting {n}")
            clock.now += 1
    assert capsys.readouterr().out == "waiting 0\nwaiting 5\n"
    assert got == [f"{LIVE}waiting {n}" for n in range(7)]


@pytest.mark.notebook
def test_a_cli_run_prints_each_step_while_it_runs(tmp_path, capsys):
    from runbook_lib.cli import run_go_live
    from tests.stack import running_stack

    with running_stack(tmp_path) as stack:
        run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
    out = capsys.readouterr().out
    assert run.exit_code == 0
    for expected in (
        "step Preflight: PASS",
        "Waiting up to",
        "step Release gate",
        "  waiting for ",
    ):  # a live line of a wait (lifecycle or outage drill)
        assert expected in out, out[-2000:]
    assert out.index("step Preflight") < out.index("step Release gate")
