"""OnyxClient on httpx.MockTransport: typed resources, retries, idempotency, error mapping."""

from __future__ import annotations

import httpx
import pytest

from runbook_lib.core.errors import (
    AuthError,
    BlockedByPolicyError,
    ParameterError,
    ProviderError,
    ProviderUnavailableError,
)
from runbook_lib.providers.onyx import OnyxClient
from runbook_lib.security.secrets import REGISTRY, Secret

from .fakes import LIVE_KEY, TEST_KEY, FakeOnyx, client_for, ok, problem

ME = {
    "partnerId": "ptn_1",
    "environment": "sandbox",
    "credential": {"id": "cred_1", "state": "active", "scopes": ["orders:write", "events:replay"]},
    "launch": [
        {
            "market": "US",
            "capability": "messaging",
            "environment": "production",
            "status": "approved",
        },
        {
            "market": "GB",
            "capability": "connectivity",
            "environment": "production",
            "status": "in_review",
        },
    ],
}
ORDER = {
    "orderId": "pp_order_1",
    "partnerOrderId": "po-1",
    "customerReference": "cust-778899",
    "packageId": "pkg_us",
    "catalogueVersion": "2026-11",
    "status": "created",
    "currency": "USD",
    "onyxPartnerNetPriceUsd": 4.2,
    "createdAt": "t",
    "updatedAt": "t",
}


def test_me_is_a_typed_identity_with_approvals_and_scope_findings():
    fake = FakeOnyx({("GET", "/v1/partner/me"): [ok(ME, rid="req_me")]})
    me = client_for(fake).me()
    assert (me.partner_id, me.credential_state, me.request_id) == ("ptn_1", "active", "req_me")
    assert me.approval("US", "messaging", "production") == "approved"
    assert me.approval("DE", "messaging", "production") == "not_requested"
    pending = me.unapproved(
        [("US", "messaging", "production"), ("GB", "connectivity", "production")]
    )
    assert [(p.market, p.status) for p in pending] == [("GB", "in_review")]
    assert me.extra_scopes(["orders:write"]) == ("events:replay",)
    assert me.missing_scopes(["orders:write", "webhooks:manage"]) == ("webhooks:manage",)
    assert me.to_dict()["credential"]["scopes"] == ["orders:write", "events:replay"]


def test_every_request_carries_the_bearer_credential_and_no_log_entry_shows_it():
    fake = FakeOnyx({("GET", "/v1/partner/me"): [ok(ME)]})
    client = client_for(fake)
    client.me()
    assert fake.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert TEST_KEY not in repr(client) + str([e.to_dict() for e in client.request_log])


def test_a_wrong_environment_key_is_refused_before_any_request():
    fake = FakeOnyx({})
    with pytest.raises(ParameterError):
        client_for(fake, key=LIVE_KEY, environment="sandbox")
    with pytest.raises(ParameterError):
        client_for(fake, key=TEST_KEY, environment="production")
    assert fake.requests == []


def test_an_answer_missing_a_contract_field_names_the_field_and_request_id():
    body = {"partnerId": "p", "environment": "sandbox", "credential": {"id": "c", "scopes": []}}
    fake = FakeOnyx({("GET", "/v1/partner/me"): [ok(body, rid="req_bad")]})
    with pytest.raises(ProviderError) as info:
        client_for(fake).me()
    assert "state" in str(info.value) and "req_bad" in str(info.value)


def test_rate_limited_then_ok_retries_after_retry_after_and_records_ratelimit_headers():
    rl = {"RateLimit-Limit": "600", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"}
    fake = FakeOnyx(
        {
            ("GET", "/v1/partner/me"): [
                problem(429, "rate_limited", headers={"Retry-After": "3", **rl}),
                ok(
                    ME,
                    **{
                        "RateLimit-Limit": "600",
                        "RateLimit-Remaining": "599",
                        "RateLimit-Reset": "60",
                    },
                ),
            ]
        }
    )
    sleeps: list[float] = []
    client = client_for(fake, sleeps=sleeps)
    client.me()
    assert sleeps == [3.0]
    first, second = client.request_log
    assert (first.status, first.retry_after, first.rate_limit.remaining) == (429, 3.0, 0)
    assert (second.status, second.rate_limit.remaining, second.rate_limit.limit) == (200, 599, 600)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_order_creation_is_retried_with_the_same_idempotency_key(status):
    fake = FakeOnyx(
        {
            ("POST", "/v1/partner/orders"): [
                problem(status, "internal"),
                problem(status, "internal"),
                ok({"order": ORDER}, 201),
            ]
        }
    )
    sleeps: list[float] = []
    order = client_for(fake, sleeps=sleeps).create_order(
        package_id="pkg_us", partner_order_id="po-1", idempotency_key="rb-key-1"
    )
    assert order.created and order.status == "created"
    keys = [r.headers["idempotency-key"] for r in fake.requests]
    assert keys == ["rb-key-1"] * 3
    assert len(sleeps) == 2 and all(0 < s <= 4.0 for s in sleeps)


def test_timeouts_are_retried_then_reported_as_unavailable():
    boom = httpx.ReadTimeout("slow")
    fake = FakeOnyx({("GET", "/v1/partner/me"): [boom]})
    client = client_for(fake, max_attempts=3)
    with pytest.raises(ProviderUnavailableError):
        client.me()
    assert len(fake.requests) == 3
    assert [e.error for e in client.request_log] == ["ReadTimeout"] * 3


def test_retries_are_bounded_and_the_error_says_so():
    fake = FakeOnyx({("GET", "/v1/partner/me"): [problem(503, "internal", rid="req_5")]})
    with pytest.raises(ProviderError) as info:
        client_for(fake, max_attempts=3).me()
    assert len(fake.requests) == 3
    assert info.value.retryable and "3 attempt" in str(info.value)


@pytest.mark.parametrize("status", [422, 403, 429, 503])
def test_a_policy_reason_code_is_never_retried_whatever_the_status(status):
    fake = FakeOnyx(
        {
            ("POST", "/v1/partner/messaging/messages"): [
                problem(status, "send_blocked", reason="THREAD_BLOCKED"),
                ok({"message": {}}, 202),
            ]
        }
    )
    sleeps: list[float] = []
    with pytest.raises(BlockedByPolicyError) as info:
        client_for(fake, sleeps=sleeps).send_message(
            app_id="app",
            subject="s",
            thread_id="t",
            intent="transactional",
            body="hi",
            idempotency_key="k1",
        )
    assert len(fake.requests) == 1 and sleeps == []
    assert info.value.reason_code == "THREAD_BLOCKED"


@pytest.mark.parametrize("key", [None, "", "has space", "x" * 256])
def test_order_creation_without_a_usable_key_is_refused_before_any_request(key):
    fake = FakeOnyx({})
    with pytest.raises(ParameterError) as info:
        client_for(fake).create_order(package_id="p", partner_order_id="o", idempotency_key=key)
    assert "idempotency-key" in str(info.value)
    assert fake.requests == []


def test_same_key_replay_is_the_same_order_and_conflict_is_mapped():
    fake = FakeOnyx(
        {
            ("POST", "/v1/partner/orders"): [
                ok({"order": ORDER}, 201),
                ok({"order": ORDER}, 200),
                problem(409, "idempotency_conflict", rid="req_409"),
            ]
        }
    )
    client = client_for(fake)
    first = client.create_order(package_id="pkg_us", partner_order_id="po-1", idempotency_key="k")
    again = client.create_order(package_id="pkg_us", partner_order_id="po-1", idempotency_key="k")
    assert first.created and not again.created and first.order_id == again.order_id
    with pytest.raises(ProviderError) as info:
        client.create_order(package_id="pkg_gb", partner_order_id="po-1", idempotency_key="k")
    assert info.value.code == "idempotency_conflict" and len(fake.requests) == 3


def test_order_to_dict_masks_the_customer_reference_and_keeps_state_verbatim():
    fake = FakeOnyx(
        {
            ("GET", "/v1/partner/orders/pp_order_1"): [
                ok({"order": {**ORDER, "status": "manual_review"}}),
            ]
        }
    )
    order = client_for(fake).order("pp_order_1")
    assert order.status == "manual_review"
    assert order.to_dict()["customerReference"].endswith("8899")
    assert "cust-77" not in str(order.to_dict())


def test_catalogue_flags_unavailable_packages():
    data = {
        "catalogueVersion": "2026-11",
        "packages": [
            {"packageId": "a", "status": "active"},
            {"packageId": "b", "status": "limited"},
            {"packageId": "c", "status": "unavailable"},
        ],
    }
    cat = client_for(FakeOnyx({("GET", "/v1/partner/catalog/packages"): [ok(data)]})).catalogue()
    assert cat.catalogue_version == "2026-11"
    assert [p.package_id for p in cat.unavailable()] == ["c"]
    assert cat.to_dict()["unavailable"] == ["c"]


def test_usage_keeps_observed_at_and_masks_the_iccid():
    usage = {
        "iccid": "8901260000000012345",
        "status": "active",
        "observedAt": "2026-12-01T10:00:00Z",
        "dataMbTotal": 1024,
        "dataMbUsed": 10,
    }
    fake = FakeOnyx(
        {("GET", "/v1/partner/esims/8901260000000012345/usage"): [ok({"usage": usage})]}
    )
    result = client_for(fake).usage("8901260000000012345")
    assert result.observed_at == "2026-12-01T10:00:00Z"
    assert result.to_dict()["iccid"].endswith("2345") and "890126" not in result.to_dict()["iccid"]


def test_a_new_webhook_secret_is_a_secret_and_registered_for_the_leak_guard():
    raw = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAwMDAwMDAwMDA="
    hook = {
        "webhookId": "wh_1",
        "url": "https://r.test/h",
        "eventTypes": ["message.allowed"],
        "environment": "sandbox",
        "status": "active",
        "secret": raw,
        "createdAt": "t",
    }
    fake = FakeOnyx({("POST", "/v1/partner/webhooks"): [ok({"webhook": hook}, 201)]})
    webhook = client_for(fake).create_webhook(
        url="https://r.test/h", event_types=["message.allowed"]
    )
    assert isinstance(webhook.secret, Secret) and webhook.secret.reveal() == raw
    assert raw not in repr(webhook) + str(webhook.to_dict())
    assert raw in dict(REGISTRY.items())


def test_event_history_follows_every_page_and_finds_failing_deliveries():
    page1 = {
        "events": [
            {
                "eventId": "evt_1",
                "type": "message.allowed",
                "deliveryStatus": "delivered",
                "attempts": 1,
            }
        ],
        "nextCursor": "c2",
    }
    page2 = {
        "events": [
            {
                "eventId": "evt_2",
                "type": "order.status_changed",
                "deliveryStatus": "failed",
                "attempts": 8,
                "failureReason": "HTTP 500",
                "retryState": "exhausted",
            }
        ],
        "nextCursor": None,
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return ok(page2 if request.url.params.get("cursor") == "c2" else page1)

    fake = FakeOnyx({("GET", "/v1/partner/events"): [answer]})
    history = client_for(fake).events()
    assert history.pages == 2 and [e.event_id for e in history.events] == ["evt_1", "evt_2"]
    assert [e.event_id for e in history.failing()] == ["evt_2"]
    assert history.failing()[0].retry_state == "exhausted"


def test_replay_needs_a_key_and_maps_not_replayable():
    fake = FakeOnyx(
        {
            ("POST", "/v1/partner/events/evt_1/replay"): [
                ok({"replay": {"eventId": "evt_1", "deliveryId": "dlv_1"}}, 202),
                problem(409, "event_not_replayable"),
            ]
        }
    )
    client = client_for(fake)
    with pytest.raises(ParameterError):
        client.replay("evt_1", idempotency_key="")
    assert client.replay("evt_1", idempotency_key="r1").delivery_id == "dlv_1"
    with pytest.raises(ProviderError) as info:
        client.replay("evt_1", idempotency_key="r2")
    assert info.value.code == "event_not_replayable" and "30 days" in info.value.remedy


def test_unauthenticated_is_not_retried_and_is_an_auth_error():
    fake = FakeOnyx({("GET", "/v1/partner/me"): [problem(401, "unauthenticated")]})
    with pytest.raises(AuthError):
        client_for(fake).me()
    assert len(fake.requests) == 1


def test_bad_intent_is_refused_before_any_request():
    fake = FakeOnyx({})
    with pytest.raises(ParameterError) as info:
        client_for(fake).pre_send(app_id="a", subject="s", intent="marketing")
    assert "informational" in str(info.value) and fake.requests == []


def test_repr_shows_the_prefix_only():
    client = OnyxClient(base_url="http://x", credential=Secret(TEST_KEY), environment="sandbox")
    assert "onyx_sk_test_…" in repr(client) and TEST_KEY not in repr(client)


def test_an_iccid_in_a_path_is_masked_in_the_log_evidence_and_errors(caplog):
    iccid = "8901260000000012345"
    fake = FakeOnyx({("GET", f"/v1/partner/esims/{iccid}/usage"): [problem(404, "esim_not_found")]})
    client = client_for(fake)
    with (
        caplog.at_level("INFO", logger="runbook.onyx.client"),
        pytest.raises(ProviderError) as info,
    ):
        client.usage(iccid)
    assert fake.requests[0].url.path == f"/v1/partner/esims/{iccid}/usage"  # sent as is
    shown = str(info.value) + str([e.to_dict() for e in client.request_log]) + caplog.text
    assert iccid not in shown and "2345" in shown


def test_build_onyx_client_reads_the_credential_from_the_environment_and_checks_its_mode():
    from runbook_lib.core.errors import MissingSecretError
    from runbook_lib.providers.onyx import build_onyx_client

    with pytest.raises(MissingSecretError) as info:
        build_onyx_client(
            base_url="http://x", credential_env="ONYX_KEY", environment="sandbox", environ={}
        )
    assert "ONYX_KEY" in str(info.value)
    with pytest.raises(ParameterError):
        build_onyx_client(
            base_url="http://x",
            credential_env="ONYX_KEY",
            environment="sandbox",
            environ={"ONYX_KEY": LIVE_KEY},
        )
    client = build_onyx_client(
        base_url="http://x",
        credential_env="ONYX_KEY",
        environment="production",
        environ={"ONYX_KEY": LIVE_KEY},
    )
    assert client.mode == "live" and LIVE_KEY in dict(REGISTRY.items())


# -- what the seam's client protocol asks of every provider's client ---------------------------
def test_acquire_token_proves_the_partner_credential_with_me_and_shows_it_by_prefix():
    fake = FakeOnyx({("GET", "/v1/partner/me"): [ok(ME, rid="req_me")]})
    info = client_for(fake).acquire_token()
    assert (info.credential_id, info.state, info.request_id) == ("cred_1", "active", "req_me")
    assert info.scope == "orders:write events:replay"
    assert info.summary == "partner credential onyx_sk_test_… (cred_1) accepted: active"
    assert TEST_KEY not in repr(info.to_dict()) and info.to_dict()["credential"].endswith("…")


def test_the_controlled_send_maps_to_the_common_acceptance_and_a_replay_to_200():
    sent = {"message": {"messageId": "msg_1", "outcome": "allowed", "status": "accepted"}}
    fake = FakeOnyx(
        {
            ("POST", "/v1/partner/messaging/messages"): [
                ok(sent, 202, rid="req_1"),
                ok(sent, 202, rid="req_2", **{"idempotent-replayed": "true"}),
            ]
        }
    )
    client = client_for(fake)
    payload = {"appId": "app_1", "subject": "sub_1", "threadId": "thr_1",
               "intent": "transactional", "body": "hi"}  # fmt: skip
    first = client.send(payload, idempotency_key="rb-1")
    again = client.send(payload, idempotency_key="rb-1")
    assert (first.message_id, first.http_status, first.status) == ("msg_1", 202, "accepted")
    assert (first.expected_http_status, first.expected_status) == (202, "accepted")
    assert again.replayed and again.http_status == 200 and again.message_id == "msg_1"
    keys = [
        r.headers["idempotency-key"] for r in fake.calls("POST", "/v1/partner/messaging/messages")
    ]
    assert keys == ["rb-1", "rb-1"]


def test_with_credential_keeps_the_client_and_refuses_a_key_of_the_other_environment():
    fake = FakeOnyx({("GET", "/v1/partner/me"): [ok(ME)]})
    client = client_for(fake)
    other = client.with_credential(Secret("onyx_sk_test_other0123456789"))
    assert (other.base_url, other.environment) == (client.base_url, client.environment)
    other.me()
    assert fake.requests[-1].headers["authorization"] == "Bearer onyx_sk_test_other0123456789"
    with pytest.raises(ParameterError):
        client.with_credential(Secret(LIVE_KEY))
