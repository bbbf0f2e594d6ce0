"""checked_send: reachability → pre-send → send, the send only when both allow."""

from __future__ import annotations

import json

import pytest

from runbook_lib.core.errors import ProviderError
from runbook_lib.providers.onyx import REASON_ACTIONS, checked_send

from .fakes import FakeOnyx, client_for, ok, problem

REACH = "/v1/partner/messaging/reachability"
PRE = "/v1/partner/messaging/pre-send"
SEND = "/v1/partner/messaging/messages"
ACCEPTED = {"message": {"messageId": "msg_1", "outcome": "allowed", "status": "accepted"}}


def reach(reachable=True, reason=None, consent="granted", thread="active"):
    return ok(
        {
            "reachable": reachable,
            "consentState": consent,
            "threadState": thread,
            "availableActions": ["send"] if reachable else [],
            "reasonCode": reason,
        }
    )


def run(fake):
    return checked_send(
        client_for(fake),
        app_id="app_1",
        subject="sub_1",
        thread_id="thr_1",
        intent="transactional",
        body="hello",
        idempotency_key="rb-send-1",
    )


def paths(fake):
    return [r.url.path for r in fake.requests]


def test_allowed_runs_the_three_steps_in_order_and_sends_once():
    fake = FakeOnyx(
        {
            ("POST", REACH): [reach()],
            ("POST", PRE): [ok({"outcome": "allowed"})],
            ("POST", SEND): [ok(ACCEPTED, 202)],
        }
    )
    attempt = run(fake)
    assert paths(fake) == [REACH, PRE, SEND]
    assert attempt.sent and attempt.acceptance.message_id == "msg_1"
    assert attempt.steps == ("reachability", "pre-send", "send") and attempt.action is None
    assert json.loads(fake.requests[1].content)["intent"] == "transactional"


@pytest.mark.parametrize(
    ("reason", "consent", "thread"),
    [
        ("NO_CONSENT", "denied", "active"),
        ("NO_CONSENT", "revoked", "active"),
        ("CONSENT_EXPIRED", "expired", "active"),
        ("THREAD_BLOCKED", "granted", "blocked"),
        ("THREAD_CLOSED", "granted", "closed"),
    ],
)
def test_unreachable_stops_before_pre_send_with_reason_and_action(reason, consent, thread):
    fake = FakeOnyx(
        {
            ("POST", REACH): [reach(False, reason, consent, thread)],
            ("POST", PRE): [ok({"outcome": "allowed"})],
            ("POST", SEND): [ok(ACCEPTED, 202)],
        }
    )
    attempt = run(fake)
    assert paths(fake) == [REACH]
    assert not attempt.sent and attempt.blocked_at == "reachability"
    assert attempt.reason_code == reason and attempt.action == REASON_ACTIONS[reason]
    assert attempt.to_dict()["steps"] == ["reachability"]


@pytest.mark.parametrize(
    ("outcome", "reason", "expected"),
    [
        ("blocked", "APP_NOT_VERIFIED", "APP_NOT_VERIFIED"),
        ("trust_insufficient", None, "INSUFFICIENT_TRUST"),
        ("unsupported", "FEATURE_GATED", "FEATURE_GATED"),
        ("consent_required", None, "NO_CONSENT"),
    ],
)
def test_a_refusing_pre_send_stops_before_the_send(outcome, reason, expected):
    fake = FakeOnyx(
        {
            ("POST", REACH): [reach()],
            ("POST", PRE): [ok({"outcome": outcome, "reasonCode": reason})],
            ("POST", SEND): [ok(ACCEPTED, 202)],
        }
    )
    attempt = run(fake)
    assert paths(fake) == [REACH, PRE]
    assert attempt.blocked_at == "pre-send" and attempt.reason_code == expected
    assert attempt.action == REASON_ACTIONS[expected]


def test_reachable_but_with_a_reason_code_does_not_proceed():
    fake = FakeOnyx(
        {
            ("POST", REACH): [reach(True, "CONSENT_EXPIRED")],
            ("POST", PRE): [ok({"outcome": "allowed"})],
        }
    )
    attempt = run(fake)
    assert paths(fake) == [REACH] and attempt.reason_code == "CONSENT_EXPIRED"


def test_a_send_blocked_by_onyx_after_the_checks_is_a_result_not_a_crash():
    fake = FakeOnyx(
        {
            ("POST", REACH): [reach()],
            ("POST", PRE): [ok({"outcome": "allowed"})],
            ("POST", SEND): [problem(422, "send_blocked", reason="NO_CONSENT", rid="req_b")],
        }
    )
    attempt = run(fake)
    assert paths(fake) == [REACH, PRE, SEND]
    assert not attempt.sent and attempt.blocked_at == "send"
    assert (attempt.reason_code, attempt.request_id) == ("NO_CONSENT", "req_b")


def test_an_error_that_is_not_policy_propagates():
    fake = FakeOnyx({("POST", REACH): [problem(400, "invalid_request")]})
    with pytest.raises(ProviderError):
        run(fake)


def test_the_send_carries_the_idempotency_key_and_the_subject_is_masked_in_evidence():
    fake = FakeOnyx(
        {
            ("POST", REACH): [reach()],
            ("POST", PRE): [ok({"outcome": "allowed"})],
            ("POST", SEND): [ok(ACCEPTED, 202)],
        }
    )
    attempt = checked_send(
        client_for(fake),
        app_id="app_1",
        subject="user-12345678",
        thread_id="thr_1",
        intent="informational",
        body="hi",
        idempotency_key="rb-send-9",
    )
    assert fake.requests[2].headers["idempotency-key"] == "rb-send-9"
    assert "user-1234" not in str(attempt.to_dict())
