"""The provider contract suite: every registered provider's client, sandbox and receiver pass it.

A new provider is registered in ``runbook_lib/providers/base.py`` and ships
``parameters/<kind>-sandbox.yaml``; this file then runs it through the same checks as Red Cloud
(see docs/providers.md).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from runbook_lib.core.errors import WebhookVerificationError
from runbook_lib.core.gate import load_catalog
from runbook_lib.core.lifecycle import STATES, reconstruct
from runbook_lib.core.parameters import EventSourceParameters, load_parameters
from runbook_lib.core.sends import Acceptance
from runbook_lib.providers.base import Provider, SandboxKit, get_provider, provider_names
from runbook_lib.runbooks.drills import COMMON_DRILLS
from runbook_lib.sources import PollingSource
from tests.stack import running_stack, sample_parameters

PROVIDERS = provider_names()


@pytest.fixture(params=PROVIDERS)
def provider(request) -> Provider:
    return get_provider(request.param)


@pytest.fixture
def stack(provider, tmp_path):
    with running_stack(tmp_path, provider=provider.kind) as s:
        yield s


def _envelope(provider: Provider, event_type: str, n: int = 1) -> dict:
    # now, at the call, not a fixed date nor the time of collection: a provider that signs no
    # timestamp (SendAPI) judges the envelope's own freshness, and a long run outlives a constant
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return provider.probe_envelope(
        event_type, event_id=f"evt_contract_{n}", message_id="msg_contract_1", sequence=n,
        conversation_id="conv_contract", now=now,
    )  # fmt: skip


# -- offline: the protocol's pieces ---------------------------------------------------------
def test_the_provider_implements_the_protocol(provider):
    assert isinstance(provider, Provider)
    assert provider.kind in PROVIDERS and provider.title
    assert isinstance(provider.sandbox(), SandboxKit)
    own = provider.drill_functions()
    assert [d for d in provider.drills if d not in own and d not in COMMON_DRILLS] == []
    assert sample_parameters(provider.kind).is_file()


def test_its_lifecycle_model_maps_every_outbound_event_to_a_common_state(provider):
    model = provider.lifecycle
    assert model.outbound_events and set(model.state_by_event.values()) <= set(STATES)
    assert model.ordered_by in ("sequence", "rank")
    for state in ("QUEUED", "SENT", "DELIVERED", "FAILED"):
        assert model.state_of(model.event_of(state)) == state


def test_its_envelopes_parse_into_the_event_model(provider):
    for n, event_type in enumerate(provider.lifecycle.outbound_events, start=1):
        event = provider.event_from_envelope(json.dumps(_envelope(provider, event_type, n)))
        assert (event.event_type, event.message_id) == (event_type, "msg_contract_1")
    with pytest.raises(ValueError):
        provider.event_from_envelope("[]")


def test_its_signature_scheme_verifies_what_it_signs_and_nothing_else(provider):
    scheme = provider.signature
    secret, other = scheme.generate_secret(), scheme.generate_secret()
    assert scheme.valid_secret(secret) and not scheme.valid_secret("not-a-secret")
    body = json.dumps(_envelope(provider, provider.lifecycle.outbound_events[0])).encode()
    headers = scheme.sign(secret, "evt_contract_1", body)
    assert scheme.verify([secret], headers, body) == "evt_contract_1"
    with pytest.raises(WebhookVerificationError):
        scheme.verify([other], headers, body)
    with pytest.raises(WebhookVerificationError):
        scheme.verify([secret], headers, body + b" ")


def test_its_readiness_catalogue_loads_and_names_unique_items(provider):
    items = load_catalog(provider.kind)
    ids = [i.item_id for i in items]
    assert items and len(ids) == len(set(ids))


# -- live: its client against its sandbox, its events through the receiver ---------------------
def test_identity_and_senders_pass_against_its_sandbox(provider, stack):
    params = load_parameters(stack.params())
    client = provider.build_client(params, environ=stack.env)
    try:
        client.acquire_token()
        identity = provider.identity_step(client, params)
        senders = provider.senders_step(client, params, identity.resource)
    finally:
        client.close()
    for result in (identity, senders):
        assert result.checks and {c.status for c in result.checks} == {"PASS"}, result.checks
        assert result.snapshot is not None


def test_a_controlled_send_is_accepted_and_its_webhooks_reach_delivered(provider, stack):
    params = load_parameters(stack.params())
    client = provider.build_client(params, environ=stack.env)
    try:
        payload = provider.send_payload(params, "contract-run")
        first = client.send(payload, idempotency_key="rb-contract-1")
        again = client.send(payload, idempotency_key="rb-contract-1")
    finally:
        client.close()
    assert isinstance(first, Acceptance) and first.message_id
    assert (first.http_status, first.status) == (first.expected_http_status, first.expected_status)
    assert again.message_id == first.message_id and again.replayed
    source = PollingSource(
        EventSourceParameters(kind="receiver_sqlite", path=stack.receiver.store_path)
    )
    deadline, lifecycle = time.monotonic() + 20, None
    while time.monotonic() < deadline:
        events = source.events_for(message_id=first.message_id)
        lifecycle = reconstruct(events, provider.lifecycle).messages.get(first.message_id)
        if lifecycle and lifecycle.is_terminal:
            break
        time.sleep(0.1)
    assert lifecycle is not None and lifecycle.state == "DELIVERED", lifecycle


def test_its_receiver_takes_its_signed_events_and_refuses_others(provider, stack):
    scheme = provider.signature
    body = json.dumps(_envelope(provider, provider.lifecycle.outbound_events[0])).encode()
    good = httpx.post(
        stack.receiver.webhook_url, content=body, headers=scheme.sign(stack.webhook_secret, "evt_contract_1", body)
    )  # fmt: skip
    bad = httpx.post(
        stack.receiver.webhook_url, content=body,
        headers=scheme.sign(scheme.generate_secret(), "evt_contract_1", body),
    )  # fmt: skip
    assert good.status_code == 200 and 400 <= bad.status_code < 500
