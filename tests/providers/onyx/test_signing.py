"""Onyx deliveries are verified by the shared Standard Webhooks code, plus envelope checks."""

from __future__ import annotations

import json

import pytest

from runbook_lib.core import signing as shared
from runbook_lib.core.errors import WebhookVerificationError
from runbook_lib.core.signing import generate_webhook_secret
from runbook_lib.providers.onyx import signing
from runbook_lib.security.secrets import Secret

NOW = 1_700_000_000
SECRET = Secret(generate_webhook_secret(), label="ONYX_WEBHOOK_SECRET")


def envelope(event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "order.status_changed",
            "createdAt": "2026-12-01T00:00:00Z",
            "environment": "sandbox",
            "partnerId": "ptn_1",
            "sequence": 2,
            "data": {"orderId": "pp_order_1", "previousStatus": "created", "status": "reserved"},
        }
    ).encode()


def test_it_reuses_the_shared_implementation_rather_than_a_copy():
    assert signing.signed_headers is shared.signed_headers
    assert signing.verify_webhook is shared.verify_webhook
    assert signing.TIMESTAMP_TOLERANCE_SECONDS == 300


def test_a_signed_delivery_verifies_into_a_typed_event():
    body = envelope()
    headers = signing.sign_delivery(SECRET, "evt_1", body, timestamp=NOW)
    assert headers["webhook-signature"].startswith("v1,")
    event = signing.verify_delivery(SECRET, headers, body, now=NOW + 299)
    assert (event.event_id, event.resource, event.state) == (
        "evt_1",
        ("order", "pp_order_1"),
        "reserved",
    )


def test_rotation_any_configured_secret_verifies():
    old, new = Secret(generate_webhook_secret()), Secret(generate_webhook_secret())
    body = envelope()
    headers = signing.sign_delivery([new], "evt_1", body, timestamp=NOW)
    assert signing.verify_delivery([old, new], headers, body, now=NOW).event_id == "evt_1"
    both = signing.sign_delivery([old, new], "evt_1", body, timestamp=NOW)
    assert len(both["webhook-signature"].split()) == 2
    assert signing.verify_delivery(old, both, body, now=NOW).event_id == "evt_1"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, b: (h, b + b" "), "invalid_signature"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW - 301)}, b), "stale_timestamp"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing_header"),
    ],
)
def test_tampered_stale_or_incomplete_deliveries_are_refused(mutate, code):
    body = envelope()
    headers, body = mutate(signing.sign_delivery(SECRET, "evt_1", body, timestamp=NOW), body)
    with pytest.raises(WebhookVerificationError) as info:
        signing.verify_delivery(SECRET, headers, body, now=NOW)
    assert info.value.code == code


def test_a_body_signed_under_another_events_id_is_refused():
    body = envelope("evt_other")
    headers = signing.sign_delivery(SECRET, "evt_1", body, timestamp=NOW)
    with pytest.raises(WebhookVerificationError) as info:
        signing.verify_delivery(SECRET, headers, body, now=NOW)
    assert info.value.code == "id_mismatch"


def test_a_signed_body_that_is_not_an_envelope_is_refused_as_malformed():
    body = b'{"id": "evt_1"}'
    headers = signing.sign_delivery(SECRET, "evt_1", body, timestamp=NOW)
    with pytest.raises(WebhookVerificationError) as info:
        signing.verify_delivery(SECRET, headers, body, now=NOW)
    assert info.value.code == "malformed_body"


def test_a_bad_secret_names_the_onyx_fix_not_another_providers():
    with pytest.raises(WebhookVerificationError) as info:
        signing.verify_delivery(
            "whsec_***notbase64",
            signing.sign_delivery(SECRET, "evt_1", envelope(), timestamp=NOW),
            envelope(),
            now=NOW,
        )
    assert info.value.code == "bad_secret"
    assert "Onyx" in info.value.remedy and "Red Cloud" not in info.value.remedy
