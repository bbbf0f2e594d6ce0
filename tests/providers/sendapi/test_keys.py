"""API keys: mode by prefix only, and the mode-matches-environment check."""

from __future__ import annotations

import pytest

from runbook_lib.core.errors import ConfigurationError
from runbook_lib.providers.sendapi.keys import ApiKeyAuth, check_key_mode, key_mode
from runbook_lib.security.secrets import Secret

from .fakes import LIVE_KEY, TEST_KEY


def test_mode_comes_from_the_prefix():
    assert key_mode(Secret(LIVE_KEY)) == "live"
    assert key_mode(Secret(TEST_KEY)) == "test"


def test_a_key_without_a_known_prefix_is_refused_without_showing_it():
    with pytest.raises(ConfigurationError) as info:
        key_mode(Secret("pk_wrong_value_123", label="SENDAPI_API_KEY"))
    assert "pk_wrong_value_123" not in str(info.value) and "SENDAPI_API_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("key", "environment", "status"),
    [
        (LIVE_KEY, "production", "PASS"),
        (TEST_KEY, "production", "FAIL"),
        (TEST_KEY, "staging", "PASS"),
        (LIVE_KEY, "staging", "FAIL"),
        (LIVE_KEY, "sandbox", "FAIL"),
        ("nonsense", "production", "FAIL"),
    ],
)
def test_live_keys_belong_to_production_only(key, environment, status):
    check = check_key_mode(Secret(key, label="SENDAPI_API_KEY"), environment)
    assert check.status == status
    shown = str(check.to_dict())
    assert key not in shown
    assert (check.remedy is None) == (status == "PASS")


def test_the_check_shows_the_prefix_only():
    check = check_key_mode(Secret(TEST_KEY, label="SENDAPI_API_KEY"), "production")
    assert "sk_test_…" in check.summary and "sk_live_" in check.remedy


def test_auth_refuses_a_plain_string():
    with pytest.raises(TypeError, match="Secret"):
        ApiKeyAuth(TEST_KEY)  # type: ignore[arg-type]
