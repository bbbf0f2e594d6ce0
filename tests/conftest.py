"""Shared fixtures: every test starts with a clean environment and an empty secret registry;
``golive`` is one passing go-live on the sandbox, run once for the tests that read its reports."""

from __future__ import annotations

import pytest

from runbook_lib.security.secrets import REGISTRY

RUNBOOK_ENV_VARS = (
    "REDCLOUD_CLIENT_SECRET",
    "REDCLOUD_WEBHOOK_SECRET",
    "RUNBOOK_REPORT_DIR",
    "RUNBOOK_INVOKED_BY",
)


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch):
    for name in RUNBOOK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    REGISTRY.clear()
    yield
    REGISTRY.clear()


@pytest.fixture(scope="session")
def golive(tmp_path_factory):
    """One go-live on the sandbox: a real send with its webhooks, and a passing report.

    Yields ``(stack, params, run)``; the stack keeps running for the tests that trace or audit it.
    """
    from runbook_lib.cli import run_go_live
    from tests.stack import running_stack

    folder = tmp_path_factory.mktemp("stack")
    with running_stack(folder) as stack:
        params = stack.params()
        run = run_go_live(params, reports_root=folder / "reports", extra_env=stack.env)
        assert run.exit_code == 0, run.summary.error
        yield stack, params, run
