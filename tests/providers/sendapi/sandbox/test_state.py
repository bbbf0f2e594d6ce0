"""The sandbox's rules without HTTP: rate windows, idempotency, caps, ids, fault profiles."""

from __future__ import annotations

from collections import deque

import pytest

from runbook_lib.providers.sendapi.sandbox import SandboxConfig, SendApiFaultProfile
from runbook_lib.providers.sendapi.sandbox.state import SandboxState


def test_the_rate_window_counts_per_key_and_says_when_it_resets():
    state = SandboxState(SandboxConfig(rate_limit=2, rate_window=10.0))
    first, second, third = (state.hit("a", now=100.0 + i) for i in range(3))
    assert (first.remaining, second.remaining) == (1, 0) and first.allowed and second.allowed
    assert not third.allowed and third.retry_after == 8 and third.reset == 110
    assert state.hit("b", now=102.0).allowed  # per key
    assert state.hit("a", now=110.5).allowed  # the first request left the window


def test_idempotency_replays_for_the_window_then_forgets():
    state = SandboxState(SandboxConfig(idempotency_window=24 * 3600.0))
    assert state.begin("key", "k", "h1")[0] == "new"
    assert state.begin("key", "k", "h1")[0] == "in_progress"
    state.finish("key", "k", 201, {"data": {"id": "sms_1"}})
    assert state.begin("key", "k", "h1")[0] == "replay"
    assert state.begin("key", "k", "h2")[0] == "mismatch"
    assert state.begin("other", "k", "h2")[0] == "new"  # scoped per API key
    state.idempotency[("key", "k")].created -= 24 * 3600 + 1
    assert state.begin("key", "k", "h2")[0] == "new"


def test_a_refused_request_is_not_cached():
    state = SandboxState(SandboxConfig())
    state.begin("key", "k", "h1")
    state.finish("key", "k", 422, {"success": False})
    assert state.begin("key", "k", "h1")[0] == "new"


def test_session_caps_per_minute():
    state = SandboxState(SandboxConfig(session_per_minute=2))
    state.session_sends["s"] = deque([1000.0, 1010.0])
    assert state.session_cap("s", now=1020.0) == 40
    assert state.session_cap("s", now=1061.0) == 0


def test_ids_differ_between_two_states_made_alike():
    a, b = SandboxState(SandboxConfig()), SandboxState(SandboxConfig())
    assert a.boot != b.boot and a.new_id("evt") != b.new_id("evt")


def test_fault_profiles_name_the_bad_key():
    with pytest.raises(ValueError, match="unknown route"):
        SendApiFaultProfile.from_dict({"api": {"send": {}}})
    with pytest.raises(ValueError, match="rate_429"):
        SendApiFaultProfile.from_dict({"api": {"sms_send": {"rate_429": 2}}})
    profile = SendApiFaultProfile.from_dict({"api": {"sms_send": {"rate_5xx": 0.5}}, "seed": 4})
    assert SendApiFaultProfile.from_dict(profile.to_dict()) == profile
