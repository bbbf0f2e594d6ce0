"""Body-only X-SendAPI-Signature: sign, verify (rotation), freshness, dedupe key."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from runbook_lib.core.errors import WebhookVerificationError
from runbook_lib.providers.sendapi.signing import (
    generate_secret,
    sign,
    signed_headers,
    verify_signature,
    verify_webhook,
)

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXNlbmRhcGk"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


def body(**overrides) -> bytes:
    envelope = {"id": "evt_1", "event": "sms.delivered", "timestamp": "2026-12-01T12:00:00Z",
                "data": {"id": "sms_1", "status": "delivered"}} | overrides  # fmt: skip
    return json.dumps(envelope).encode()


def test_the_key_is_the_whole_whsec_string_and_the_message_the_raw_body():
    raw = body()
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert sign(SECRET, raw) == f"sha256={expected}"


def test_a_signed_delivery_verifies_and_yields_its_dedupe_key():
    raw = body()
    headers = signed_headers(SECRET, raw, event_type="sms.delivered", delivery_id="dlv_1")
    event = verify_webhook(SECRET, headers, raw, now=NOW + 10)
    assert (event.dedupe_key, event.event, event.delivery_id) == ("evt_1", "sms.delivered", "dlv_1")
    assert event.data["id"] == "sms_1"


def test_headers_are_matched_case_insensitively_for_plain_dicts():
    raw = body()
    headers = {
        k.lower(): v
        for k, v in signed_headers(SECRET, raw, event_type="x", delivery_id="d").items()
    }
    assert verify_webhook(SECRET, headers, raw, now=NOW).id == "evt_1"


@pytest.mark.parametrize(
    "tamper",
    [lambda raw: raw + b" ", lambda raw: raw.replace(b"delivered", b"failed", 1)],
)
def test_any_change_to_the_body_breaks_the_signature(tamper):
    raw = body()
    header = sign(SECRET, raw)
    with pytest.raises(WebhookVerificationError) as info:
        verify_signature(SECRET, header, tamper(raw))
    assert info.value.code == "invalid_signature"


def test_the_wrong_secret_is_rejected():
    raw = body()
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify_signature(generate_secret(), sign(SECRET, raw), raw)


def test_a_base64_decoded_key_is_not_accepted():
    """Standard Webhooks decodes the key; SendAPI signs with the string itself."""
    import base64

    raw = body()
    decoded = base64.b64decode(SECRET.removeprefix("whsec_") + "==")
    header = "sha256=" + hmac.new(decoded, raw, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookVerificationError):
        verify_signature(SECRET, header, raw)


def test_rotation_lists_in_the_header_and_in_the_secrets_both_verify():
    raw, new = body(), generate_secret()
    verify_signature(SECRET, f"sha256={'0' * 64} {sign(SECRET, raw)}", raw)
    verify_signature(f"{new} {SECRET}", sign(SECRET, raw), raw)
    verify_signature([new, SECRET], sign(SECRET, raw), raw)
    both = signed_headers([new, SECRET], raw, event_type="x", delivery_id="d")
    verify_signature(new, both["X-SendAPI-Signature"], raw)


@pytest.mark.parametrize(
    ("header", "code"),
    [(None, "missing_header"), ("", "missing_header"), ("v1,abc", "malformed_signature"),
     ("sha256=zz", "malformed_signature")],
)  # fmt: skip
def test_missing_or_malformed_headers_say_so(header, code):
    with pytest.raises(WebhookVerificationError) as info:
        verify_signature(SECRET, header, body())
    assert info.value.code == code


@pytest.mark.parametrize(
    ("offset", "code"),
    [(301, "stale_timestamp"), (-61, "future_timestamp")],
)
def test_old_and_future_envelopes_are_rejected_though_signed(offset, code):
    raw = body()
    headers = signed_headers(SECRET, raw, event_type="sms.delivered", delivery_id="d")
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(SECRET, headers, raw, now=NOW + offset)
    assert info.value.code == code


@pytest.mark.parametrize("offset", [299, -59, 0])
def test_envelopes_inside_the_window_pass(offset):
    raw = body()
    headers = signed_headers(SECRET, raw, event_type="sms.delivered", delivery_id="d")
    assert verify_webhook(SECRET, headers, raw, now=NOW + offset).id == "evt_1"


@pytest.mark.parametrize("raw", [b"[]", b"not json", json.dumps({"event": "x"}).encode()])
def test_a_signed_body_that_is_no_envelope_is_rejected(raw):
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(SECRET, {"X-SendAPI-Signature": sign(SECRET, raw)}, raw, now=NOW)
    assert info.value.code == "bad_envelope"


def test_no_secret_configured_is_a_clear_error():
    with pytest.raises(WebhookVerificationError) as info:
        verify_signature("  ", sign(SECRET, b"{}"), b"{}")
    assert info.value.code == "bad_secret"


def test_secrets_may_be_given_as_secret_objects():
    from runbook_lib.security.secrets import Secret

    raw = body()
    verify_signature(Secret(SECRET, label="SENDAPI_WEBHOOK_SECRET"), sign(SECRET, raw), raw)
    verify_signature([Secret(generate_secret()), Secret(SECRET)], sign(SECRET, raw), raw)
