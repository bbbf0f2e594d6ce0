"""Partner credential: mode by prefix, shown by prefix only, Bearer flow, digest comparison."""

from __future__ import annotations

import httpx
import pytest

from runbook_lib.core.errors import ParameterError
from runbook_lib.providers.onyx import (
    PartnerCredentialAuth,
    check_credential_mode,
    compare_secrets,
    credential_mode,
    expected_mode,
    shown,
)
from runbook_lib.security.secrets import Secret

from .fakes import LIVE_KEY, TEST_KEY


def test_mode_comes_from_the_prefix_and_is_shown_by_prefix_only():
    assert credential_mode(Secret(LIVE_KEY)) == "live"
    assert credential_mode(Secret(TEST_KEY)) == "test"
    assert shown(Secret(TEST_KEY)) == "onyx_sk_test_…"
    assert "unit0123" not in shown(Secret(LIVE_KEY))


@pytest.mark.parametrize("value", ["sk_test_123", "onyx_sk_test_", "whsec_abc", "Bearer x"])
def test_a_value_that_is_not_an_onyx_credential_is_refused_naming_the_variable(value):
    with pytest.raises(ParameterError) as info:
        credential_mode(Secret(value, label="ONYX_CREDENTIAL"))
    assert "ONYX_CREDENTIAL" in str(info.value)
    assert value not in str(info.value).replace("onyx_sk_live_ or onyx_sk_test_", "")


@pytest.mark.parametrize(
    ("environment", "wanted"),
    [("production", "live"), ("Production", "live"), ("sandbox", "test"), ("preview", "test")],
)
def test_live_is_for_production_and_test_for_everything_else(environment, wanted):
    assert expected_mode(environment) == wanted


@pytest.mark.parametrize(
    ("key", "environment"), [(LIVE_KEY, "sandbox"), (LIVE_KEY, "preview"), (TEST_KEY, "production")]
)
def test_a_key_for_the_other_environment_is_refused_without_showing_it(key, environment):
    with pytest.raises(ParameterError) as info:
        check_credential_mode(Secret(key, label="ONYX_CREDENTIAL"), environment)
    text = str(info.value)
    assert environment in text and "ONYX_CREDENTIAL" in text
    assert "unit0123456789" not in text


def test_auth_flow_sends_bearer_and_its_repr_hides_the_value():
    auth = PartnerCredentialAuth(Secret(TEST_KEY))
    request = httpx.Request("GET", "https://x.test/v1/partner/me")
    sent = next(auth.auth_flow(request))
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert TEST_KEY not in repr(auth)


def test_compare_secrets_says_they_differ_without_showing_either():
    preview, production = Secret(TEST_KEY, label="preview"), Secret(LIVE_KEY, label="production")
    result = compare_secrets(preview, production)
    assert result.differ is True
    text = str(result.to_dict()) + result._repr_html_()
    assert TEST_KEY not in text and LIVE_KEY not in text
    assert result.first_digest != result.second_digest


def test_compare_secrets_catches_the_same_secret_used_twice():
    result = compare_secrets(Secret(TEST_KEY, label="a"), Secret(TEST_KEY, label="b"))
    assert result.differ is False
    assert result.first_digest == result.second_digest


def test_digests_are_keyed_per_run_so_they_cannot_be_matched_across_runs():
    a = compare_secrets(Secret(TEST_KEY), Secret(LIVE_KEY))
    b = compare_secrets(Secret(TEST_KEY), Secret(LIVE_KEY))
    assert a.first_digest != b.first_digest
    fixed = compare_secrets(Secret(TEST_KEY), Secret(LIVE_KEY), key=b"k" * 32)
    again = compare_secrets(Secret(TEST_KEY), Secret(LIVE_KEY), key=b"k" * 32)
    assert fixed.first_digest == again.first_digest
