"""The client against the live SendAPI sandbox: sends, idempotency, keys, limits, errors."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from runbook_lib.core.errors import AuthError, ProviderError
from runbook_lib.providers.sendapi.client import RetrySettings
from runbook_lib.providers.sendapi.mapping import fold_events
from runbook_lib.providers.sendapi.sandbox import (
    EXPIRED_KEY,
    INVALID_DESTINATION,
    REVOKED_KEY,
    SANDBOX_KEY,
    SMS_ONLY_KEY,
    UNVERIFIED_DOMAIN,
    VERIFIED_DOMAIN,
    SandboxConfig,
    run_sandbox,
)

from ..receiver import wait_until
from .conftest import FAST, client_for


def key() -> str:
    return str(uuid.uuid4())


def final_state(receiver, message_id: str, count: int) -> str | None:
    wait_until(lambda: len(receiver.of(message_id)) >= count)
    book = fold_events([{"id": e.id, "event": e.event, "timestamp": e.timestamp.isoformat(), "data": dict(e.data)}
                        for e in receiver.of(message_id)], now=time.time())  # fmt: skip
    return book.lifecycles[message_id]


def test_the_sandbox_binds_loopback_only(sandbox):
    assert sandbox.server.host == "127.0.0.1" and sandbox.url.startswith("http://127.0.0.1:")


def test_sms_delivered_and_failed_with_error_code(client, receiver):
    ok = client.send_sms(
        to="+15005550101", message="hi", idempotency_key=key(), sender_id="ACMEALERTS"
    )
    bad = client.send_sms(to="+15005550102", message="hi", idempotency_key=key())
    assert (
        ok.status == "queued"
        and ok.message_id.startswith("sms_")
        and ok.request_id.startswith("req_")
    )
    assert final_state(receiver, ok.message_id, 2).state == "delivered"
    failed = final_state(receiver, bad.message_id, 2)
    assert failed.state == "failed" and failed.error_code == "EC_INVALID_NUMBER"


def test_whatsapp_read_and_email_bounce_and_complaint(client, receiver):
    wa = client.send_whatsapp(
        session_id="sess_sbx_primary", to="+15005550201", text="hi", idempotency_key=key()
    )
    assert wa.status == "accepted"
    assert final_state(receiver, wa.message_id, 3).state == "read"
    sender = f"ops@{VERIFIED_DOMAIN}"
    bounce = client.send_email(
        to="bounce@x.test", from_address=sender, subject="s", text="t", idempotency_key=key()
    )
    complaint = client.send_email(to=["complaint@x.test"], from_address=sender, subject="s", html="<p>t</p>",
                                  idempotency_key=key())  # fmt: skip
    assert final_state(receiver, bounce.message_id, 2).state == "bounced"
    assert final_state(receiver, complaint.message_id, 3).state == "complained"


def test_status_endpoints_follow_the_lifecycle(client, receiver):
    sent = client.send_sms(to="+15005550101", message="hi", idempotency_key=key())
    wait_until(lambda: len(receiver.of(sent.message_id)) == 2)
    body = client.request_raw("GET", f"/sms/status/{sent.message_id}").json()
    assert body["data"]["status"] == "delivered"


def test_an_idempotent_replay_returns_the_first_answer_without_a_second_send(client, sandbox):
    k = key()
    first = client.send_sms(to="+15005550101", message="hi", idempotency_key=k)
    again = client.send_sms(to="+15005550101", message="hi", idempotency_key=k)
    assert not first.replayed and again.replayed and again.message_id == first.message_id
    assert len(sandbox.control.messages()) == 1


def test_the_same_key_with_another_body_is_409(client):
    k = key()
    client.send_sms(to="+15005550101", message="hi", idempotency_key=k)
    with pytest.raises(ProviderError) as info:
        client.send_sms(to="+15005550101", message="changed", idempotency_key=k)
    assert (info.value.status, info.value.code) == (409, "idempotency_key_mismatch")
    assert "new key" in info.value.remedy and info.value.request_id.startswith("req_")


def test_a_concurrent_duplicate_is_409_in_progress(receiver):
    with run_sandbox(
        SandboxConfig(webhook_url=receiver.url, send_processing_delay=1.5, **FAST)
    ) as running:
        k, results = key(), []

        def send():
            with client_for(running) as c:
                try:
                    results.append(
                        c.send_sms(to="+15005550101", message="hi", idempotency_key=k).message_id
                    )
                except ProviderError as exc:
                    results.append(exc.code)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join()
    assert sorted(r.split("_")[0] for r in results) == ["idempotency", "sms"]
    assert "idempotency_in_progress" in results


def test_a_real_429_carries_retry_after_and_the_client_waits_it_out(receiver):
    config = SandboxConfig(webhook_url=receiver.url, rate_limit=3, rate_window=3.0, **FAST)
    with run_sandbox(config) as running:
        with client_for(running) as spender:
            for _ in range(3):
                spender.usage()
        raw = httpx.get(
            running.base_url + "/account/usage", headers={"Authorization": f"Bearer {SANDBOX_KEY}"}
        )
        assert raw.status_code == 429 and int(raw.headers["retry-after"]) >= 1
        assert raw.json()["error"]["code"] == 4029 and raw.headers["x-ratelimit-remaining"] == "0"
        slept = []
        with client_for(running, sleep=lambda s: (slept.append(s), time.sleep(s))) as late:
            late.usage()  # knows nothing of the spender: meets the 429, honours Retry-After
        assert [e.status for e in late.request_log] == [429, 200]
        assert slept and slept[0] >= 1 - 0.05


def test_the_clients_limiter_avoids_429_over_a_burst_beyond_the_limit(receiver):
    config = SandboxConfig(webhook_url=receiver.url, rate_limit=4, rate_window=1.0, **FAST)
    with run_sandbox(config) as running, client_for(running) as c:
        for _ in range(7):
            c.usage()
        assert {e.status for e in c.request_log} == {200}
        assert any(e.waited_s > 0 for e in c.request_log)


def test_every_response_carries_rate_limit_headers_errors_included(sandbox):
    for path, headers in (("/account/usage", {"Authorization": f"Bearer {SANDBOX_KEY}"}),
                          ("/account/usage", {}), ("/nowhere", {"Authorization": f"Bearer {SANDBOX_KEY}"})):  # fmt: skip
        response = httpx.get(sandbox.base_url + path, headers=headers)
        assert {
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-request-id",
        } <= set(response.headers)


@pytest.mark.parametrize(
    ("api_key", "status", "code"),
    [(REVOKED_KEY, 401, "4012"), (EXPIRED_KEY, 401, "4013"), ("sk_test_unknown_key_0000", 401, "4011"),
     ("sk_live_not_for_the_sandbox", 401, "4011")],
)  # fmt: skip
def test_keys_that_do_not_work_are_401_with_their_code(sandbox, api_key, status, code):
    with client_for(sandbox, key=api_key) as c, pytest.raises(AuthError) as info:
        c.usage()
    assert (info.value.status, info.value.code) == (status, code)


def test_a_missing_key_is_4010(sandbox):
    body = httpx.get(sandbox.base_url + "/account/usage").json()
    assert body["success"] is False and body["error"]["code"] == 4010


def test_an_sms_only_key_is_403_4030_on_email_and_whatsapp(sandbox):
    with client_for(sandbox, key=SMS_ONLY_KEY) as c:
        c.send_sms(to="+15005550101", message="hi", idempotency_key=key())
        for call in (lambda: c.send_email(to="a@x.test", from_address=f"ops@{VERIFIED_DOMAIN}", subject="s",
                                          text="t", idempotency_key=key()),
                     lambda: c.send_whatsapp(session_id="sess_sbx_primary", to="+15005550201", text="t",
                                             idempotency_key=key()),
                     c.whatsapp_sessions):  # fmt: skip
            with pytest.raises(AuthError) as info:
                call()
            assert (info.value.status, info.value.code) == (403, "4030")


def test_email_from_an_unverified_domain_is_422_until_verified(client, sandbox):
    sender = f"ops@{UNVERIFIED_DOMAIN}"
    with pytest.raises(ProviderError) as info:
        client.send_email(
            to="a@x.test", from_address=sender, subject="s", text="t", idempotency_key=key()
        )
    assert (info.value.status, info.value.code) == (422, "invalid_from_domain")
    domains = {d.domain: d for d in client.email_domains()}
    assert domains[VERIFIED_DOMAIN].verified and not domains[UNVERIFIED_DOMAIN].verified
    assert {r.purpose for r in domains[UNVERIFIED_DOMAIN].records} == {"spf", "dkim", "dmarc"}
    assert not client.verify_email_domain("dom_sbx_pending", idempotency_key=key()).verified
    sandbox.control.set_domain_verified("dom_sbx_pending", True)
    assert (
        client.send_email(
            to="a@x.test", from_address=sender, subject="s", text="t", idempotency_key=key()
        ).status
        == "queued"
    )


def test_whatsapp_on_a_disconnected_session_is_409_and_caps_apply(receiver):
    config = SandboxConfig(webhook_url=receiver.url, session_per_minute=2, **FAST)
    with (
        run_sandbox(config) as running,
        client_for(running, retry=RetrySettings(max_attempts=1)) as c,
    ):
        with pytest.raises(ProviderError) as info:
            c.send_whatsapp(
                session_id="sess_sbx_backup", to="+15005550201", text="t", idempotency_key=key()
            )
        assert (info.value.status, info.value.code) == (409, "session_not_connected")
        for _ in range(2):
            c.send_whatsapp(
                session_id="sess_sbx_primary", to="+15005550201", text="t", idempotency_key=key()
            )
        with pytest.raises(ProviderError) as capped:
            c.send_whatsapp(
                session_id="sess_sbx_primary", to="+15005550201", text="t", idempotency_key=key()
            )
        assert (capped.value.status, capped.value.code) == (429, "sending_limited")


def test_contacts_check_and_dead_numbers(client):
    assert client.contact_check("+15005550201").on_whatsapp is True
    assert client.contact_check("+15005550204").on_whatsapp is False
    with pytest.raises(ProviderError) as info:
        client.send_sms(to=INVALID_DESTINATION, message="hi", idempotency_key=key())
    assert info.value.status == 422


@pytest.mark.parametrize(
    ("path", "body"),
    [("/sms/send", {"to": "+15005550101", "content": "alias"}),
     ("/whatsapp/send", {"session_id": "sess_sbx_primary", "to": "+15005550201", "message": "alias"}),
     ("/whatsapp/send", {"session_id": "sess_sbx_primary", "to": "+15005550201", "type": "text", "content": "alias"})],
)  # fmt: skip
def test_the_documented_text_aliases_are_accepted(client, path, body):
    response = client.request_raw("POST", path, json=body, headers={"Idempotency-Key": key()})
    assert response.status_code == 201, response.text


def test_a_post_without_idempotency_key_is_400_at_the_server_too(sandbox):
    response = httpx.post(sandbox.base_url + "/sms/send", json={"to": "+15005550101", "message": "x"},
                          headers={"Authorization": f"Bearer {SANDBOX_KEY}"})  # fmt: skip
    assert (
        response.status_code == 400
        and response.json()["error"]["code"] == "missing_idempotency_key"
    )


def test_usage_counts_sends_and_quota_exhaustion_is_402(receiver):
    config = SandboxConfig(webhook_url=receiver.url, quotas=(("sms", 1), ("emails", 5)), **FAST)
    with run_sandbox(config) as running, client_for(running) as c:
        c.send_sms(to="+15005550101", message="hi", idempotency_key=key())
        usage = c.usage()
        assert usage.channel("sms").exhausted and usage.channel("emails").share == 0
        with pytest.raises(ProviderError) as info:
            c.send_sms(to="+15005550101", message="again", idempotency_key=key())
        assert (info.value.status, info.value.code) == (
            402,
            "4020",
        ) and "quota" in info.value.remedy


def test_injected_5xx_are_retried_by_the_client(client, sandbox):
    sandbox.control.set_faults({"api": {"usage": {"rate_5xx": 0.5, "status_5xx": 503}}, "seed": 3})
    for _ in range(4):
        client.usage()
    statuses = [e.status for e in client.request_log]
    assert 503 in statuses and statuses.count(200) == 4


def test_unknown_fault_routes_are_refused_with_the_allowed_list(sandbox):
    from runbook_lib.core.errors import RunbookError

    with pytest.raises(RunbookError, match="sms_send"):
        sandbox.control.set_faults({"api": {"send": {"rate_5xx": 1}}})


def test_the_verified_domains_records_pass_the_dns_checks_when_served(client):
    """The sandbox's records and the DNS checks agree: a zone built from them passes."""
    from runbook_lib.providers.sendapi.dns_checks import ResolverSettings, check_domain_dns

    from ..dnsserver import serve_zone

    domain = next(d for d in client.email_domains() if d.verified)
    zone = "\n".join(f'{r.name}. 60 IN TXT "{r.value}"' for r in domain.records)
    with serve_zone(zone) as port:
        report = check_domain_dns(
            domain, resolver=ResolverSettings(nameserver="127.0.0.1", port=port)
        )
    assert report.status == "PASS", report.to_dict()


def test_a_configured_test_key_is_the_accounts_key(receiver):
    from runbook_lib.core.errors import ConfigurationError

    mine = "sk_test_my_own_rehearsal_key_42"
    with run_sandbox(SandboxConfig(api_key=mine, webhook_url=receiver.url, **FAST)) as running:
        with client_for(running, key=mine) as c:
            assert c.usage().plan == "growth"
        with client_for(running, key=SANDBOX_KEY) as c, pytest.raises(AuthError):
            c.usage()
    with pytest.raises(ConfigurationError, match="sk_test_"):
        SandboxConfig(api_key="sk_live_real_money_000")


def test_injected_connection_resets_end_in_unavailable_after_retries(client, sandbox):
    from runbook_lib.core.errors import ProviderUnavailableError

    sandbox.control.set_faults({"api": {"usage": {"reset_rate": 1.0}}})
    with pytest.raises(ProviderUnavailableError):
        client.usage()
    assert [e.error is not None for e in client.request_log] == [True, True, True]


def test_a_status_lookup_is_per_channel(client):
    sent = client.send_sms(to="+15005550101", message="hi", idempotency_key=key())
    assert client.request_raw("GET", f"/email/status/{sent.message_id}").status_code == 404
    assert client.request_raw("GET", f"/sms/status/{sent.message_id}").status_code == 200


def test_api_faults_are_seeded_so_a_rehearsal_repeats_exactly(sandbox):
    profile = {"api": {"usage": {"rate_5xx": 0.5, "rate_429": 0.2, "retry_after": 1}}, "seed": 11}
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    runs = []
    for _ in range(2):
        sandbox.control.set_faults(profile)
        runs.append(
            [
                httpx.get(sandbox.base_url + "/account/usage", headers=headers).status_code
                for _ in range(12)
            ]
        )
    assert runs[0] == runs[1] and {200, 503} <= set(runs[0])


def test_sandbox_refusals_come_with_their_own_fix(client):
    with pytest.raises(ProviderError) as sender:
        client.send_sms(
            to="+15005550101", message="hi", sender_id="ACMEPENDING", idempotency_key=key()
        )
    assert (sender.value.code, sender.value.status) == ("invalid_sender_id", 422)
    assert "approved" in sender.value.remedy
    with pytest.raises(ProviderError) as dead:
        client.send_sms(to=INVALID_DESTINATION, message="hi", idempotency_key=key())
    assert dead.value.code == "invalid_destination" and "cannot receive" in dead.value.remedy
