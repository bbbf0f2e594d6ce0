"""The Onyx client against the live Onyx sandbox on a loopback port."""

from __future__ import annotations

import time

import httpx
import pytest

from runbook_lib.core.errors import AuthError, BlockedByPolicyError, ParameterError, ProviderError
from runbook_lib.core.retry import RetryPolicy
from runbook_lib.core.serving import BackgroundServer
from runbook_lib.providers.onyx import REASON_ACTIONS, OnyxClient, checked_send
from runbook_lib.providers.onyx.mapping import reconstruct
from runbook_lib.providers.onyx.sandbox import (
    DEFAULT_CREDENTIAL,
    LIMITED_CREDENTIAL,
    REVOKED_CREDENTIAL,
    OnyxSandbox,
    OnyxSandboxConfig,
    OnyxSandboxControl,
    run_onyx_sandbox,
)
from runbook_lib.security.secrets import Secret

from .receiver import Inbox, receiver_app

FAST = OnyxSandboxConfig(
    order_step_seconds=0.05,
    delivery_seconds=0.05,
    webhook_retry_schedule=(0.05, 0.1, 0.1),
    tick_seconds=0.01,
)
APP = "app_sbx_rehearsal"


@pytest.fixture
def onyx():
    with run_onyx_sandbox(FAST) as running:
        yield running


@pytest.fixture
def receiver():
    inbox = Inbox()
    with BackgroundServer(receiver_app(inbox), name="onyx-receiver") as server:
        yield inbox, server.url + "/hook"


def client(
    url: str, key: str = DEFAULT_CREDENTIAL, *, sleeps: list[float] | None = None
) -> OnyxClient:
    return OnyxClient(
        base_url=url,
        credential=Secret(key, label="ONYX_CREDENTIAL"),
        environment="sandbox",
        retry=RetryPolicy(max_attempts=3),
        sleep=(sleeps.append if sleeps is not None else time.sleep),
    )


def delivered(c: OnyxClient, event_id: str):
    """The event's history record once it says delivered (the receiver answers first)."""
    return wait_for(lambda: c.events().find(event_id), lambda r: r.delivery_status == "delivered")


def wait_for(read, done, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: last {value!r}")
        time.sleep(0.02)


# -- credential and launch --------------------------------------------------------------------
def test_me_shows_credential_scopes_and_approved_and_pending_markets(onyx):
    me = client(onyx.url).me()
    assert (me.credential_id, me.credential_state, me.environment) == (
        "cred_sbx_default",
        "active",
        "sandbox",
    )
    assert "webhooks:manage" in me.scopes
    assert me.approval("US", "messaging", "production") == "approved"
    assert me.approval("GB", "connectivity", "production") == "in_review"
    assert me.request_id and me.request_id.startswith("req_")


def test_configured_scopes_and_approvals_are_what_me_reports():
    config = OnyxSandboxConfig(
        scopes=("orders:read",), launch=(("FR", "connectivity", "production", "rejected"),)
    )
    with run_onyx_sandbox(config) as running:
        me = client(running.url).me()
    assert me.scopes == ("orders:read",)
    assert me.unapproved([("FR", "connectivity", "production")])[0].status == "rejected"


def test_set_market_approval_mid_run_changes_me(onyx):
    OnyxSandboxControl(onyx.url).set_launch("GB", "connectivity", "production", "approved")
    assert client(onyx.url).me().approval("GB", "connectivity", "production") == "approved"


def test_every_answer_carries_ratelimit_headers_recorded_by_the_client(onyx):
    c = client(onyx.url)
    c.me()
    c.catalogue()
    first, second = c.request_log
    assert first.rate_limit.limit == 600
    assert second.rate_limit.remaining == first.rate_limit.remaining - 1


@pytest.mark.parametrize("key", [REVOKED_CREDENTIAL, "onyx_sk_test_not_a_sandbox_key"])
def test_revoked_or_unknown_credential_is_an_auth_error(onyx, key):
    with pytest.raises(AuthError) as info:
        client(onyx.url, key).me()
    assert info.value.status == 401 and info.value.request_id


def test_revoking_the_credential_mid_run_stops_it(onyx):
    c = client(onyx.url)
    c.me()
    OnyxSandboxControl(onyx.url).revoke_credential()
    with pytest.raises(AuthError):
        c.me()


def test_a_live_key_on_the_sandbox_host_is_refused_by_the_server(onyx):
    response = httpx.get(
        onyx.url + "/v1/partner/me", headers={"Authorization": "Bearer onyx_sk_live_x1"}
    )
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    # and the client refuses it before sending anything
    with pytest.raises(ParameterError):
        OnyxClient(base_url=onyx.url, credential=Secret("onyx_sk_live_x1"), environment="sandbox")
    wrong_side = OnyxClient(
        base_url=onyx.url, credential=Secret("onyx_sk_live_x1"), environment="production"
    )
    with pytest.raises(AuthError):
        wrong_side.me()


def test_a_missing_scope_is_403_insufficient_scope(onyx):
    limited = client(onyx.url, LIMITED_CREDENTIAL)
    assert limited.catalogue().packages
    with pytest.raises(ProviderError) as info:
        limited.webhooks()
    assert (info.value.status, info.value.code) == (403, "insufficient_scope")


# -- messaging --------------------------------------------------------------------------------
def send(
    url: str,
    subject: str,
    thread: str,
    *,
    app: str = APP,
    intent: str = "transactional",
    key: str = "k",
    via: OnyxClient | None = None,
):
    return checked_send(
        via or client(url),
        app_id=app,
        subject=subject,
        thread_id=thread,
        intent=intent,
        body="Your code is 123456",
        idempotency_key=f"rb-{subject}-{key}",
    )


def test_an_allowed_subject_goes_through_all_three_steps_and_is_accepted(onyx):
    attempt = send(onyx.url, "sub_granted", "thr_granted")
    assert attempt.sent and attempt.steps == ("reachability", "pre-send", "send")
    assert attempt.acceptance.status == "accepted" and attempt.acceptance.message_id.startswith(
        "msg_"
    )


@pytest.mark.parametrize(
    ("subject", "thread", "app", "blocked_at", "reason"),
    [
        ("sub_denied", "thr_denied", APP, "reachability", "NO_CONSENT"),
        ("sub_revoked", "thr_revoked", APP, "reachability", "NO_CONSENT"),
        ("sub_expired", "thr_expired", APP, "reachability", "CONSENT_EXPIRED"),
        ("sub_thread_blocked", "thr_blocked", APP, "reachability", "THREAD_BLOCKED"),
        ("sub_thread_closed", "thr_closed", APP, "reachability", "THREAD_CLOSED"),
        ("sub_low_trust", "thr_low_trust", APP, "pre-send", "INSUFFICIENT_TRUST"),
        ("sub_granted", "thr_granted", "app_sbx_unverified", "pre-send", "APP_NOT_VERIFIED"),
        ("sub_granted", "thr_granted", "app_sbx_gated", "pre-send", "FEATURE_GATED"),
    ],
)
def test_each_blocked_case_stops_with_its_reason_and_nothing_is_sent(
    onyx, subject, thread, app, blocked_at, reason
):
    c = client(onyx.url)
    attempt = send(onyx.url, subject, thread, app=app, via=c)
    assert (attempt.blocked_at, attempt.reason_code) == (blocked_at, reason)
    assert attempt.action == REASON_ACTIONS[reason]
    assert not attempt.sent
    assert not [e for e in c.request_log if e.path.endswith("/messages")]
    assert client(onyx.url).events(event_type="message.allowed").events == ()


@pytest.mark.parametrize(
    ("subject", "thread", "app", "status", "reason"),
    [
        ("sub_revoked", "thr_revoked", APP, 422, "NO_CONSENT"),
        ("sub_thread_closed", "thr_closed", APP, 422, "THREAD_CLOSED"),
        ("sub_granted", "thr_granted", "app_sbx_gated", 403, "FEATURE_GATED"),
    ],
)
def test_sending_without_the_checks_is_refused_by_onyx_with_the_reason(
    onyx, subject, thread, app, status, reason
):
    c = client(onyx.url)
    with pytest.raises(BlockedByPolicyError) as info:
        c.send_message(
            app_id=app,
            subject=subject,
            thread_id=thread,
            intent="transactional",
            body="x",
            idempotency_key="rb-direct",
        )
    assert (info.value.status, info.value.reason_code) == (status, reason)
    assert len([e for e in c.request_log if e.path.endswith("/messages")]) == 1


def test_consent_revoked_mid_run_stops_sends(onyx):
    assert send(onyx.url, "sub_granted", "thr_granted", key="1").sent
    OnyxSandboxControl(onyx.url).set_consent("sub_granted", "revoked")
    after = send(onyx.url, "sub_granted", "thr_granted", key="2")
    assert (after.sent, after.blocked_at, after.reason_code) == (
        False,
        "reachability",
        "NO_CONSENT",
    )
    history = client(onyx.url).events(event_type="consent.revoked")
    assert len(history.events) == 1


# -- catalogue and orders ---------------------------------------------------------------------
def test_catalogue_has_active_limited_and_unavailable_and_a_settable_version(onyx):
    c = client(onyx.url)
    cat = c.catalogue()
    assert {p.status for p in cat.packages} == {"active", "limited", "unavailable"}
    assert [p.package_id for p in cat.unavailable()] == ["pkg_fr_1gb_7d"]
    assert c.package("pkg_gb_3gb_15d").status == "limited"
    OnyxSandboxControl(onyx.url).set_catalogue_version("2026.12")
    assert c.catalogue().catalogue_version == "2026.12"


def test_an_order_walks_to_esim_ready_with_usage_and_observed_at(onyx):
    c = client(onyx.url)
    order = c.create_order(
        package_id="pkg_us_5gb_30d", partner_order_id="po-1", idempotency_key="rb-order-1"
    )
    assert order.created and order.status == "created" and order.order_id.startswith("pp_order_")
    seen = set()
    final = wait_for(
        lambda: c.order(order.order_id), lambda o: seen.add(o.status) or o.status == "esim_ready"
    )
    assert seen <= {"created", "reserved", "provisioning", "esim_ready"}
    esim = next(e for e in c.esims() if e.order_id == final.order_id)
    usage = c.usage(esim.iccid)
    assert usage.observed_at and usage.status == "not_started"
    book = reconstruct(
        # the order's lifecycle as the event history tells it, in order
        [e for e in _events_of(onyx) if e.type == "order.status_changed"]
    )
    assert book.get("order", order.order_id).states == (
        "created",
        "reserved",
        "provisioning",
        "esim_ready",
    )


def _events_of(onyx):
    from runbook_lib.providers.onyx.events import OnyxEvent

    with onyx.sandbox.state.lock:
        return [OnyxEvent.from_wire(e.body) for e in onyx.sandbox.state.outbox.events.values()]


def test_one_package_lands_in_manual_review_and_stays(onyx):
    c = client(onyx.url)
    order = c.create_order(
        package_id="pkg_mx_10gb_30d", partner_order_id="po-mx", idempotency_key="rb-mx"
    )
    final = wait_for(lambda: c.order(order.order_id), lambda o: o.status == "manual_review")
    assert final.status == "manual_review"
    assert not [e for e in c.esims() if e.order_id == order.order_id]


def test_idempotency_same_key_same_order_other_body_conflict_no_key_400(onyx):
    c = client(onyx.url)
    first = c.create_order(
        package_id="pkg_us_5gb_30d", partner_order_id="po-2", idempotency_key="rb-order-2"
    )
    again = c.create_order(
        package_id="pkg_us_5gb_30d", partner_order_id="po-2", idempotency_key="rb-order-2"
    )
    assert first.created and not again.created and again.order_id == first.order_id
    with pytest.raises(ProviderError) as info:
        c.create_order(
            package_id="pkg_gb_3gb_15d", partner_order_id="po-2", idempotency_key="rb-order-2"
        )
    assert (info.value.status, info.value.code) == (409, "idempotency_conflict")
    raw = c.request_raw(
        "POST", "/v1/partner/orders", json={"packageId": "pkg_us_5gb_30d", "partnerOrderId": "x"}
    )
    assert raw.status_code == 400 and raw.json()["code"] == "invalid_request"


def test_unavailable_package_and_unapproved_market_are_refused(onyx):
    c = client(onyx.url)
    with pytest.raises(ProviderError) as info:
        c.create_order(
            package_id="pkg_fr_1gb_7d", partner_order_id="po-fr", idempotency_key="rb-fr"
        )
    assert (info.value.status, info.value.code) == (422, "unknown_package")
    OnyxSandboxControl(onyx.url).set_launch("US", "connectivity", "sandbox", "in_review")
    with pytest.raises(BlockedByPolicyError) as gated:
        c.create_order(
            package_id="pkg_us_5gb_30d", partner_order_id="po-us", idempotency_key="rb-us"
        )
    assert gated.value.reason_code == "FEATURE_GATED"


# -- webhooks, history, replay --------------------------------------------------------------------
def register(
    url: str,
    inbox: Inbox,
    hook_url: str,
    types=(
        "message.allowed",
        "message.delivery_updated",
        "order.status_changed",
        "consent.revoked",
    ),
):
    hook = client(url).create_webhook(url=hook_url, event_types=list(types))
    inbox.secret = hook.secret
    return hook


def test_a_test_event_is_delivered_signed_and_verified_by_the_receiver(onyx, receiver):
    inbox, hook_url = receiver
    c = client(onyx.url)
    hook = register(onyx.url, inbox, hook_url)
    assert [h.webhook_id for h in c.webhooks()] == [hook.webhook_id]
    assert all(h.secret is None for h in c.webhooks())  # the secret is shown once
    test = c.test_webhook(hook.webhook_id)
    inbox.wait_for(lambda i: test.event_id in i.ids())
    assert inbox.rejected == []
    # the sandbox records the attempt once the receiver's answer is back: wait for it
    record = delivered(c, test.event_id)
    assert record.delivery_status == "delivered" and record.attempts == 1


def test_message_lifecycle_arrives_allowed_then_delivery_updated(onyx, receiver):
    inbox, hook_url = receiver
    register(onyx.url, inbox, hook_url)
    attempt = send(onyx.url, "sub_granted", "thr_granted")
    mid = attempt.acceptance.message_id
    inbox.wait_for(lambda i: any(e.type == "message.delivery_updated" for e in i.events))
    life = reconstruct(inbox.events).get("message", mid)
    assert life.states == ("allowed", "delivered") and life.anomalies == ()


def test_replaying_a_past_event_redelivers_the_same_id_and_the_receiver_dedupes(onyx, receiver):
    inbox, hook_url = receiver
    register(onyx.url, inbox, hook_url)
    c = client(onyx.url)
    order = c.create_order(
        package_id="pkg_us_5gb_30d", partner_order_id="po-r", idempotency_key="rb-r"
    )
    inbox.wait_for(lambda i: len(i.events) >= 1)
    past = inbox.events[0]
    replay = c.replay(past.event_id, idempotency_key="rb-replay-1")
    assert replay.event_id == past.event_id
    inbox.wait_for(lambda i: i.ids().count(past.event_id) == 2)
    book = reconstruct(inbox.events)
    assert book.get("order", order.order_id).duplicates >= 1
    test = c.test_webhook(register(onyx.url, inbox, hook_url).webhook_id)
    with pytest.raises(ProviderError) as info:
        c.replay(test.event_id, idempotency_key="rb-replay-2")
    assert (info.value.status, info.value.code) == (409, "event_not_replayable")


def test_an_endpoint_outage_is_retried_and_history_shows_the_attempts(onyx, receiver):
    inbox, hook_url = receiver
    hook = register(onyx.url, inbox, hook_url)
    inbox.fail_next = 2
    test = client(onyx.url).test_webhook(hook.webhook_id)
    inbox.wait_for(lambda i: test.event_id in i.ids())
    record = delivered(client(onyx.url), test.event_id)
    assert (record.delivery_status, record.attempts) == ("delivered", 3)


def test_an_endpoint_down_for_good_ends_failed_and_exhausted_in_history(onyx, receiver):
    inbox, hook_url = receiver
    hook = register(onyx.url, inbox, hook_url)
    inbox.fail_next = 100
    test = client(onyx.url).test_webhook(hook.webhook_id)
    record = wait_for(
        lambda: client(onyx.url).events().find(test.event_id),
        lambda r: r.delivery_status == "failed",
    )
    assert record.retry_state == "exhausted" and record.failure_reason == "HTTP 500"
    assert record.attempts == 1 + len(FAST.webhook_retry_schedule)
    assert client(onyx.url).events().failing()


def test_a_bad_signature_fault_is_refused_by_the_receiver(onyx, receiver):
    inbox, hook_url = receiver
    hook = register(onyx.url, inbox, hook_url)
    OnyxSandboxControl(onyx.url).set_faults({"webhooks": {"bad_signature_rate": 1.0}})
    client(onyx.url).test_webhook(hook.webhook_id)
    inbox.wait_for(lambda i: len(i.rejected) >= 1)
    assert inbox.rejected[0] == "invalid_signature" and inbox.events == []


def test_sequence_rises_per_resource(onyx):
    c = client(onyx.url)
    c.create_order(package_id="pkg_us_5gb_30d", partner_order_id="po-s", idempotency_key="rb-s")
    wait_for(lambda: len(_events_of(onyx)), lambda n: n >= 5)
    by_resource: dict = {}
    for e in _events_of(onyx):
        by_resource.setdefault(e.resource, []).append(e.sequence)
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_resource.values())


# -- faults and restarts ------------------------------------------------------------------------
def test_injected_429_and_503_are_retried_by_the_client_then_reported(onyx):
    OnyxSandboxControl(onyx.url).set_faults({"api": {"me": {"rate_429": 1.0, "retry_after": 2}}})
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as info:
        client(onyx.url, sleeps=sleeps).me()
    assert info.value.status == 429 and sleeps == [2.0, 2.0]
    OnyxSandboxControl(onyx.url).set_faults(
        {"api": {"orders": {"rate_5xx": 1.0, "status_5xx": 503}}}
    )
    c = client(onyx.url, sleeps=[])
    with pytest.raises(ProviderError):
        c.create_order(package_id="pkg_us_5gb_30d", partner_order_id="po-f", idempotency_key="rb-f")
    assert {e.idempotency_key for e in c.request_log} == {"rb-f"} and len(c.request_log) == 3


def test_over_the_rate_limit_the_answer_is_429_with_retry_after():
    with run_onyx_sandbox(OnyxSandboxConfig(rate_limit_per_minute=2)) as running:
        sleeps: list[float] = []
        c = client(running.url, sleeps=sleeps)
        c.me()
        c.me()
        with pytest.raises(ProviderError) as info:
            c.me()
    assert (info.value.status, info.value.code) == (429, "rate_limited")
    assert c.request_log[-1].rate_limit.remaining == 0 and c.request_log[-1].retry_after > 0
    assert len(sleeps) == 2


def test_a_bad_fault_profile_is_refused_naming_the_route(onyx):
    with pytest.raises(Exception) as info:
        OnyxSandboxControl(onyx.url).set_faults({"api": {"token": {"rate_429": 1}}})
    assert "token" in str(info.value) and "messaging" in str(info.value)


def test_event_ids_never_repeat_across_sandbox_restarts_with_the_same_seed():
    ids = []
    for _ in range(2):
        sandbox = OnyxSandbox(OnyxSandboxConfig(seed=7))
        sandbox.state.set_consent("sub_granted", "revoked")
        sandbox.state.set_thread("thr_granted", "closed")
        ids.append(set(sandbox.event_ids()))
    assert len(ids[0]) == 2 and not ids[0] & ids[1]


def test_the_sandbox_answers_its_handshake_and_binds_loopback_only(onyx):
    assert OnyxSandboxControl(onyx.url).handshake()["service"] == "onyx-sandbox"
    assert onyx.url.startswith("http://127.0.0.1:")


def test_the_docstring_tables_name_every_seeded_subject_package_app_and_market():
    import runbook_lib.providers.onyx.sandbox as module
    from runbook_lib.providers.onyx.sandbox.config import APPS, DEFAULT_LAUNCH, PACKAGES, SUBJECTS

    doc = module.__doc__
    names = [s.subject for s in SUBJECTS] + [s.thread_id for s in SUBJECTS]
    names += [p.package_id for p in PACKAGES] + [a.app_id for a in APPS]
    assert [n for n in names if f"``{n}``" not in doc] == []
    assert all(market in doc for market, *_ in DEFAULT_LAUNCH)


def test_a_deleted_webhook_is_gone_and_its_id_is_404(onyx):
    c = client(onyx.url)
    hook = c.create_webhook(url="http://127.0.0.1:9/hook", event_types=["order.status_changed"])
    c.delete_webhook(hook.webhook_id)
    assert c.webhooks() == ()
    with pytest.raises(ProviderError) as info:
        c.test_webhook(hook.webhook_id)
    assert info.value.status == 404


def test_duplicate_fault_delivers_the_same_event_id_twice_and_the_tracker_says_duplicate(
    onyx, receiver
):
    from runbook_lib.providers.onyx.mapping import LifecycleTracker

    inbox, hook_url = receiver
    hook = register(onyx.url, inbox, hook_url)
    OnyxSandboxControl(onyx.url).set_faults({"webhooks": {"duplicate_rate": 1.0}})
    test = client(onyx.url).test_webhook(hook.webhook_id)
    inbox.wait_for(lambda i: i.ids().count(test.event_id) == 2)
    tracker = LifecycleTracker()
    assert [tracker.apply(e) for e in inbox.events] == ["applied", "duplicate"]


def test_dropped_deliveries_are_retried_then_failed_with_the_reason(onyx, receiver):
    inbox, hook_url = receiver
    hook = register(onyx.url, inbox, hook_url)
    OnyxSandboxControl(onyx.url).set_faults({"webhooks": {"drop_rate": 1.0}})
    test = client(onyx.url).test_webhook(hook.webhook_id)
    record = wait_for(
        lambda: client(onyx.url).events().find(test.event_id),
        lambda r: r.delivery_status == "failed",
    )
    assert record.failure_reason == "dropped (injected)" and inbox.events == []


def test_the_kit_config_registers_the_endpoint_for_the_cli_app_and_the_running_sandbox():
    from runbook_lib.providers.base import get_provider

    kit = get_provider("onyx").sandbox()
    config = kit.config(webhook_url="http://127.0.0.1:9/hooks", lifecycle_delay=0.1)
    assert config.client_id == "cred_sbx_default" and config.credential.startswith("onyx_sk_test_")
    app = kit.app(config)
    (hook,) = app.state.outbox.webhooks.values()
    assert hook.url == "http://127.0.0.1:9/hooks" and "message.allowed" in hook.event_types
    with kit.run(config) as running:
        assert [h.url for h in running.sandbox.state.outbox.webhooks.values()] == [hook.url]
