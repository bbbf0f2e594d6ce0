"""Fixes fit their context: CLI flags under `runbook`, parameters in Lab and under papermill."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import runbook_lib
from runbook_lib.cli import main
from runbook_lib.core.errors import ParameterError
from runbook_lib.core.invocation import (
    INVOKED_BY_ENV,
    invoked_by_cli,
    new_run,
    other_runbook,
    set_setting,
)
from runbook_lib.core.parameters import load_parameters
from runbook_lib.runbooks.audit import parse_window
from runbook_lib.runbooks.trace import TraceRun

PACKAGE = Path(runbook_lib.__file__).resolve().parent
# The flags of the runbooks' own commands, which a notebook knows as parameters.
RUN_FLAGS = re.compile(r"--(params|run-id|new-run|message-id|external-reference|since|from|to)\b")


@pytest.fixture(params=["cli", "notebook"])
def context(request, monkeypatch):
    if request.param == "cli":
        monkeypatch.setenv(INVOKED_BY_ENV, "cli")
    return request.param


def _words_for(context: str, text: str, *, flag: str, parameter: str) -> None:
    if context == "cli":
        assert flag in text, text
    else:
        assert parameter in text and f"-p {parameter}" in text, text
        assert not RUN_FLAGS.search(text), text


def test_the_helper_words_settings_for_the_context(context):
    fix = set_setting(("message_id", "msg_1"), ("external_reference", "order-1"))
    _words_for(context, fix, flag="--message-id msg_1", parameter="message_id")
    assert ("--new-run" in new_run()) is (context == "cli")
    trace = other_runbook("trace", ("message_id", "msg_1"))
    assert trace == (
        "runbook trace --params <file> --message-id msg_1"
        if context == "cli"
        else "notebooks/message_trace.ipynb with -p message_id msg_1"
    )


def test_a_missing_parameter_file_names_the_setting_of_the_context(context, tmp_path):
    with pytest.raises(ParameterError) as raised:
        load_parameters(tmp_path / "nope.yaml")
    _words_for(context, raised.value.remedy, flag="--params", parameter="params_file")


def test_a_trace_without_a_target_names_the_setting_of_the_context(context):
    trace = TraceRun.open(PACKAGE.parent / "parameters" / "sandbox.yaml")
    fix = trace.missing.remedy
    if context == "notebook":  # the shell example is labelled as such
        fix = fix.split(" Headless:")[0]
    _words_for(context, fix, flag="--message-id", parameter="message_id")


@pytest.mark.parametrize(
    ("since", "start", "end", "flag", "parameter"),
    [
        ("", "", "", "--since", "since"),
        ("2x", "", "", "--since", "since"),
        ("", "yesterday", "", "--from", "window_from"),
        ("2h", "2026-01-01T00:00Z", "", "--since", "since"),
    ],
)
def test_an_audit_window_error_names_the_settings_of_the_context(
    context, since, start, end, flag, parameter
):
    with pytest.raises(ParameterError) as raised:
        parse_window(since, start, end)
    text = str(raised.value)
    if context == "cli":
        assert flag in text, text
    else:
        assert parameter in text and not RUN_FLAGS.search(text), text


def test_the_cli_words_its_own_errors_with_flags_and_restores_the_context(tmp_path, capsys):
    assert main(["go-live", "--params", str(tmp_path / "nope.yaml")]) == 3
    assert "--params" in capsys.readouterr().err
    with pytest.raises(ParameterError) as raised:  # after the CLI returned: notebook wording again
        load_parameters(tmp_path / "nope.yaml")
    assert "params_file" in raised.value.remedy
    with invoked_by_cli():
        assert "--new-run" in new_run()
    assert "--new-run" not in new_run()


def test_no_library_text_names_a_run_flag_outside_the_cli_and_the_helper():
    """A remedy or message naming --params, --new-run, … by hand would be wrong in a notebook:
    every such text goes through runbook_lib.core.invocation."""
    allowed = {PACKAGE / "cli.py", PACKAGE / "core" / "invocation.py"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and RUN_FLAGS.search(node.value)
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert offenders == []
