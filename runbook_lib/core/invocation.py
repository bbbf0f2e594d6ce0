"""How a fix names a setting: as a CLI flag under ``runbook``, as a parameter in a notebook.

The same runbook runs three ways: the ``runbook`` CLI (which executes the notebook under papermill
and sets :data:`INVOKED_BY_ENV` to ``cli`` for itself and the kernel), papermill run by hand
(``-p name value``) and JupyterLab (the parameters cell). A remedy that says ``--message-id`` is
wrong in Lab, one that says ``message_id`` is cryptic at a shell prompt; every fix that names a
setting words it through here, for the context it is shown in. Default: notebook/papermill.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = [
    "INVOKED_BY_ENV",
    "NOTEBOOK_FOR",
    "command_line",
    "from_cli",
    "invoked_by_cli",
    "new_run",
    "other_runbook",
    "set_setting",
    "setting",
]

INVOKED_BY_ENV = "RUNBOOK_INVOKED_BY"

# Each runbook kind's notebook (the CLI's subcommand has the kind's name).
NOTEBOOK_FOR = {
    "go-live": "go_live.ipynb",
    "drills": "drills.ipynb",
    "trace": "message_trace.ipynb",
    "audit": "incident_audit.ipynb",
}

# setting -> (CLI flag, notebook parameter)
_SETTINGS = {
    "params": ("--params", "params_file"),
    "run_id": ("--run-id", "run_id"),
    "message_id": ("--message-id", "message_id"),
    "external_reference": ("--external-reference", "external_reference"),
    "since": ("--since", "since"),
    "from": ("--from", "window_from"),
    "to": ("--to", "window_to"),
}


def from_cli() -> bool:
    """True when the ``runbook`` CLI runs this process (or the kernel it started)."""
    return os.environ.get(INVOKED_BY_ENV) == "cli"


@contextlib.contextmanager
def invoked_by_cli() -> Iterator[None]:
    """Word fixes for the CLI while the block runs (the CLI's own process; restored after)."""
    saved = os.environ.get(INVOKED_BY_ENV)
    os.environ[INVOKED_BY_ENV] = "cli"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(INVOKED_BY_ENV, None)
        else:
            os.environ[INVOKED_BY_ENV] = saved


def setting(name: str) -> str:
    """The setting as this context spells it: ``--message-id`` or ``message_id``."""
    flag, parameter = _SETTINGS[name]
    return flag if from_cli() else parameter


def _papermill(name: str, example: str) -> str:
    return f"-p {_SETTINGS[name][1]} {example}"


def set_setting(*alternatives: tuple[str, str]) -> str:
    """The fix "give this setting", e.g. ``set_setting(("message_id", "msg_..."))``.

    CLI: ``pass --message-id msg_...``; notebook: ``set message_id = "msg_..." in the parameters
    cell (papermill: -p message_id msg_...)``. Several alternatives are joined with "or".
    """
    if from_cli():
        return "pass " + " or ".join(f"{_SETTINGS[n][0]} {ex}" for n, ex in alternatives) + "."
    cell = " or ".join(f'{_SETTINGS[n][1]} = "{ex}"' for n, ex in alternatives)
    flags = " or ".join(_papermill(n, ex) for n, ex in alternatives)
    return f"set {cell} in the parameters cell (papermill: {flags})."


def new_run(kind: str = "go-live") -> str:
    """The fix "start a new run", as this context starts one."""
    if from_cli():
        return f"start a new run (runbook {kind} --new-run)"
    return 'start a new run (leave run_id empty: run_id = "", or omit -p run_id under papermill)'


def command_line(kind: str, *settings: tuple[str, str]) -> str:
    """The ``runbook`` command that runs ``kind`` with these settings (in any context)."""
    flags = " ".join(f"{_SETTINGS[n][0]} {ex}" for n, ex in settings)
    return f"runbook {kind} --params <file> {flags}".rstrip()


def other_runbook(kind: str, *settings: tuple[str, str]) -> str:
    """How to run another runbook with these settings: its command, or its notebook."""
    if from_cli():
        return command_line(kind, *settings)
    flags = " ".join(_papermill(n, ex) for n, ex in settings)
    return f"notebooks/{NOTEBOOK_FOR[kind]} with {flags}".rstrip()
