"""A live SendAPI sandbox and a verifying receiver, per test."""

from __future__ import annotations

import pytest

from runbook_lib.providers.sendapi.client import RetrySettings, SendApiClient
from runbook_lib.providers.sendapi.sandbox import (
    DEFAULT_WEBHOOK_SECRET,
    SANDBOX_KEY,
    SandboxConfig,
    run_sandbox,
)
from runbook_lib.security.secrets import Secret

from ..receiver import Receiver

FAST = {"lifecycle_delay": 0.02, "webhook_retry_schedule": (0.05, 0.1, 0.2)}


def client_for(running, key: str = SANDBOX_KEY, **kwargs) -> SendApiClient:
    kwargs.setdefault("retry", RetrySettings(max_attempts=3, base_delay=0.05, max_delay=0.2))
    return SendApiClient(
        api_key=Secret(key, label="SENDAPI_API_KEY"), base_url=running.base_url, **kwargs
    )


@pytest.fixture
def receiver():
    with Receiver(DEFAULT_WEBHOOK_SECRET) as r:
        yield r


@pytest.fixture
def sandbox(receiver):
    with run_sandbox(SandboxConfig(webhook_url=receiver.url, **FAST)) as running:
        yield running


@pytest.fixture
def client(sandbox):
    with client_for(sandbox) as c:
        yield c
