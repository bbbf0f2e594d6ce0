"""OnyxProvider's credential step against the live sandbox: preview vs production by digests."""

from __future__ import annotations

import pytest
import yaml

from runbook_lib.core.parameters import load_parameters
from runbook_lib.providers.base import get_provider
from tests.stack import running_stack

ONYX = get_provider("onyx")
PREVIEW = "onyx_sk_test_preview_" + "a1" * 8
PRODUCTION = "onyx_sk_live_production_" + "b2" * 8


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path, provider="onyx") as s:
        yield s


def _identity(stack, extra_env):
    onyx = yaml.safe_load(stack.params().read_text())["onyx"]
    onyx |= {"preview_credential_env": "ONYX_PREVIEW", "production_credential_env": "ONYX_PROD"}
    params = load_parameters(stack.params("p2.yaml", onyx=onyx))
    client = ONYX.build_client(params, environ={**stack.env, **extra_env})
    try:
        return {c.check_id: c for c in ONYX.identity_step(client, params).checks}
    finally:
        client.close()


def test_different_preview_and_production_credentials_pass_without_showing_either(stack):
    checks = _identity(stack, {"ONYX_PREVIEW": PREVIEW, "ONYX_PROD": PRODUCTION})
    check = checks["credential.separate"]
    assert check.status == "PASS"
    shown = repr(check)
    assert PREVIEW not in shown and PRODUCTION not in shown


def test_the_same_value_for_both_fails(stack):
    checks = _identity(stack, {"ONYX_PREVIEW": PREVIEW, "ONYX_PROD": PREVIEW})
    assert checks["credential.separate"].status == "FAIL"


def test_with_only_one_available_there_is_nothing_to_compare(stack):
    assert "credential.separate" not in _identity(stack, {"ONYX_PREVIEW": PREVIEW})
