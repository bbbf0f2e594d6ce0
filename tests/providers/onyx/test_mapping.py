"""Events → lifecycles per resource: sequence decides, duplicates and late events change nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lib.core.errors import EventSourceError
from runbook_lib.providers.onyx.events import OnyxEvent
from runbook_lib.providers.onyx.mapping import LifecycleTracker, reconstruct


def ev(eid, type_, seq, **data):
    return OnyxEvent.from_wire(
        {"id": eid, "type": type_, "createdAt": f"t{seq:03d}-{eid}", "sequence": seq, "data": data}
    )


MESSAGE = [
    ev("e1", "message.allowed", 1, messageId="m1"),
    ev("e2", "message.delivery_updated", 2, messageId="m1", status="sent"),
    ev("e3", "message.delivery_updated", 3, messageId="m1", status="delivered"),
]
ORDER = [
    ev("o1", "order.status_changed", 1, orderId="pp_1", status="created"),
    ev(
        "o2", "order.status_changed", 2, orderId="pp_1", previousStatus="created", status="reserved"
    ),
    ev(
        "o3",
        "order.status_changed",
        3,
        orderId="pp_1",
        previousStatus="reserved",
        status="provisioning",
    ),
    ev(
        "o4",
        "order.status_changed",
        4,
        orderId="pp_1",
        previousStatus="provisioning",
        status="esim_ready",
    ),
]
CONSENT = [
    ev("c1", "consent.granted", 1, subject="sub_a"),
    ev("c2", "consent.revoked", 2, subject="sub_a"),
    ev("c3", "consent.granted", 1, subject="sub_b"),
]
ALL = MESSAGE + ORDER + CONSENT


def test_in_order_events_give_each_resource_its_final_state_and_first_seen():
    book = reconstruct(ALL)
    m = book.get("message", "m1")
    assert m.final_state == "delivered" and m.states == ("allowed", "sent", "delivered")
    assert m.first_seen_at("sent") == "t002-e2" and m.anomalies == ()
    assert book.get("order", "pp_1").final_state == "esim_ready"
    assert book.get("consent", "sub_a").final_state == "revoked"
    assert book.get("consent", "sub_b").final_state == "granted"


def test_an_older_event_arriving_late_is_flagged_and_does_not_move_the_state_back():
    tracker = LifecycleTracker()
    assert [tracker.apply(e) for e in (MESSAGE[0], MESSAGE[2], MESSAGE[1])] == [
        "applied",
        "applied",
        "late",
    ]
    m = tracker.book().get("message", "m1")
    assert m.final_state == "delivered" and m.late == 1
    assert m.first_seen_at("sent") == "t002-e2"


def test_a_repeated_event_id_is_a_duplicate_and_changes_nothing():
    tracker = LifecycleTracker()
    assert [tracker.apply(e) for e in (CONSENT[0], CONSENT[1], CONSENT[0])] == [
        "applied",
        "applied",
        "duplicate",
    ]
    c = tracker.book().get("consent", "sub_a")
    assert c.final_state == "revoked" and c.duplicates == 1


def test_at_an_equal_sequence_allowed_precedes_the_delivery_update():
    same = [
        ev("d", "message.delivery_updated", 5, messageId="m2", status="delivered"),
        ev("a", "message.allowed", 5, messageId="m2"),
    ]
    for events in (same, same[::-1]):
        assert reconstruct(events).get("message", "m2").final_state == "delivered"


def test_contract_breaches_are_anomalies():
    book = reconstruct(
        [
            ev("x1", "message.delivery_updated", 1, messageId="m3", status="delivered"),
            ev("y1", "message.blocked", 1, messageId="m4", reasonCode="NO_CONSENT"),
            ev("y2", "message.delivery_updated", 2, messageId="m4", status="delivered"),
            ev(
                "z1",
                "order.status_changed",
                2,
                orderId="pp_2",
                previousStatus="esim_ready",
                status="provisioning",
            ),
        ]
    )
    assert book.get("message", "m3").anomalies
    assert "blocked" in book.get("message", "m4").anomalies[0]
    assert book.get("message", "m4").reason_code == "NO_CONSENT"
    assert "esim_ready → provisioning" in book.get("order", "pp_2").anomalies[0]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        {"id": "e", "type": "order.status_changed", "createdAt": "t", "data": {}},
        {"id": "e", "type": "order.status_changed", "createdAt": "t", "sequence": 1, "data": {}},
        {
            "id": "e",
            "type": "message.delivery_updated",
            "createdAt": "t",
            "sequence": 1,
            "data": {"messageId": "m"},
        },
    ],
)
def test_a_malformed_envelope_is_an_event_source_error_naming_the_field(body):
    with pytest.raises(EventSourceError) as info:
        OnyxEvent.from_wire(body)
    assert info.value.code == "malformed_event"


def _view(book):
    return {
        k: (r.final_state, r.states, r.first_seen, r.event_ids) for k, r in book.resources.items()
    }


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_permutation_with_duplicates_gives_the_same_lifecycles(data):
    extra = data.draw(st.lists(st.sampled_from(ALL), max_size=12))
    arrival = data.draw(st.permutations(ALL + extra))
    assert _view(reconstruct(arrival)) == _view(reconstruct(ALL))
    book = reconstruct(arrival)
    assert book.duplicates == len(extra)
