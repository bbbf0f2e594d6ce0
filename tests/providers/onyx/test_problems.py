"""problem+json → the exception tree; every policy reason code carries a person's action."""

from __future__ import annotations

import pytest

from runbook_lib.core.errors import AuthError, BlockedByPolicyError, ProviderError
from runbook_lib.providers.onyx import POLICY_REASON_CODES, REASON_ACTIONS, error_from_response
from runbook_lib.providers.onyx.problems import action_for, redact

from .fakes import problem

CONTRACT_REASON_CODES = {
    "NO_CONSENT",
    "CONSENT_EXPIRED",
    "APP_NOT_VERIFIED",
    "INSUFFICIENT_TRUST",
    "THREAD_BLOCKED",
    "THREAD_CLOSED",
    "FEATURE_GATED",
}


def test_every_contract_reason_code_has_its_own_action():
    assert POLICY_REASON_CODES == CONTRACT_REASON_CODES
    actions = [REASON_ACTIONS[c] for c in sorted(CONTRACT_REASON_CODES)]
    assert len(set(actions)) == len(actions)
    assert all(len(a) > 30 for a in actions)


def test_an_unknown_reason_code_still_gets_an_action_that_says_do_not_retry():
    assert "do not retry" in action_for("SOMETHING_NEW")
    assert action_for(None) is None


@pytest.mark.parametrize("reason", sorted(CONTRACT_REASON_CODES))
def test_a_blocked_send_becomes_blocked_by_policy_with_reason_action_and_request_id(reason):
    response = problem(422, "send_blocked", reason=reason, rid="req_blk")
    error = error_from_response("POST", "/v1/partner/messaging/messages", response)
    assert isinstance(error, BlockedByPolicyError)
    assert error.reason_code == reason
    assert error.remedy == REASON_ACTIONS[reason]
    assert error.retryable is False
    assert str(error).startswith("[req_blk] 422 send_blocked")
    assert reason in str(error)
    assert error.to_dict()["reasonCode"] == reason


def test_feature_gated_403_is_a_policy_outcome_not_a_scope_problem():
    error = error_from_response("POST", "/p", problem(403, "feature_gated", reason="FEATURE_GATED"))
    assert isinstance(error, BlockedByPolicyError)
    assert "launch approval" in error.remedy


def test_missing_scope_is_a_provider_error_saying_to_grant_the_scope():
    error = error_from_response("GET", "/p", problem(403, "insufficient_scope"))
    assert type(error) is ProviderError
    assert error.code == "insufficient_scope" and "scope" in error.remedy


def test_401_is_an_auth_error_naming_revoked_and_wrong_environment():
    error = error_from_response("GET", "/p", problem(401, "unauthenticated", rid="req_401"))
    assert isinstance(error, AuthError)
    assert error.request_id == "req_401"
    assert "revoked" in error.remedy and "environment" in error.remedy


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "rate_limited", True),
        (503, "internal", True),
        (409, "idempotency_conflict", False),
        (404, "order_not_found", False),
        (400, "invalid_request", False),
    ],
)
def test_other_problems_are_provider_errors_with_code_and_remedy(status, code, retryable):
    error = error_from_response("GET", "/p", problem(status, code))
    assert type(error) is ProviderError
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    assert error.remedy


def test_excerpts_mask_onyx_credentials_and_webhook_secrets():
    text = redact('{"detail":"key onyx_sk_live_abcDEF123 and whsec_c2VjcmV0 and Bearer tok123"}')
    assert "abcDEF123" not in text and "c2VjcmV0" not in text and "tok123" not in text
    assert "onyx_sk_live_****" in text
