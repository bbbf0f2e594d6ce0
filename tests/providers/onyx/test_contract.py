"""Onyx envelopes in the common event model (providers/onyx/contract.py)."""

from __future__ import annotations

import json

import pytest

from runbook_lib.providers.onyx.contract import LIFECYCLE, event_from_envelope, probe_envelope


def _wire(type_: str, data: dict, **extra) -> dict:
    return {"id": "evt_1", "type": type_, "createdAt": "2026-01-01T00:00:00Z",
            "environment": "sandbox", "partnerId": "ptn_1", "sequence": 2, "data": data, **extra}  # fmt: skip


def test_delivery_updated_is_keyed_by_its_status_and_every_event_names_its_resource():
    event = event_from_envelope(
        _wire("message.delivery_updated", {"messageId": "m1", "status": "delivered"})
    )
    assert (event.event_type, event.message_id, event.sequence) == (
        "message.delivery_updated.delivered",
        "m1",
        2,
    )
    assert LIFECYCLE.state_of(event.event_type) == "DELIVERED"
    order = event_from_envelope(
        _wire("order.status_changed", {"orderId": "o1", "status": "reserved"})
    )
    assert (order.conversation_id, order.status, order.message_id) == ("order:o1", "reserved", None)
    blocked = event_from_envelope(
        _wire("message.blocked", {"messageId": "m2", "reasonCode": "NO_CONSENT"})
    )
    assert blocked.failure_code == "NO_CONSENT"


def test_an_unknown_event_type_is_kept_not_refused():
    """A receiver acknowledges and ignores types it does not know (the probe checks it)."""
    event = event_from_envelope(json.dumps(_wire("message.future_thing", {"x": 1})))
    assert (event.event_id, event.event_type, event.status) == (
        "evt_1",
        "message.future_thing",
        None,
    )


@pytest.mark.parametrize("body", ["[]", "{}", '{"id": "evt_1"}', "not json",
                                  json.dumps(_wire("message.allowed", {}))])  # fmt: skip
def test_what_is_not_an_onyx_envelope_is_a_value_error(body):
    with pytest.raises(ValueError):
        event_from_envelope(body)


def test_probe_envelopes_round_trip_and_carry_the_probe_marker():
    for event_type in LIFECYCLE.outbound_events:
        wire = probe_envelope(
            event_type, event_id="evt_p", message_id="msg_probe_1", sequence=1, now="t"
        )
        assert "runbook-probe" in json.dumps(wire)
        assert event_from_envelope(wire).event_type == event_type
