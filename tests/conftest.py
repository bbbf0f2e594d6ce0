"""Shared fixtures: every test starts with a clean environment and an empty secret registry."""

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
