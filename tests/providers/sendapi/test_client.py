"""SendApiClient on httpx.MockTransport: auth, pacing, retries, error mapping, envelopes."""

from __future__ import annotations

import json
import logging
from collections import deque

import httpx
import pytest

from runbook_lib.core.errors import (
    AuthError,
    ConfigurationError,
    MissingSecretError,
    ProviderError,
    ProviderUnavailableError,
    SendPolicyError,
)
from runbook_lib.providers.sendapi.client import SendApiClient, client_from_env
from runbook_lib.providers.sendapi.ratelimit import RateLimiter
from runbook_lib.security.secrets import Secret

from .fakes import TEST_KEY, FakeTime, error_body, make_client, reply

ACCEPTED = {"id": "sms_1", "object": "sms.message", "status": "queued", "to": "+15005550101"}


def test_every_request_carries_the_key_as_bearer_and_nothing_shows_it(caplog):
    seen = []

    def handler(request):
        seen.append(request.headers["authorization"])
        return reply(200, {"data": {"plan": "growth", "usage": {}}}, {"x-request-id": "req_1"})

    client, _ = make_client(handler)
    with caplog.at_level(logging.DEBUG):
        client.usage()
    assert seen == [f"Bearer {TEST_KEY}"]
    shown = repr(client) + repr(client.auth) + caplog.text + str(client.request_log)
    assert TEST_KEY not in shown
    assert "sk_test_…" in repr(client)


def test_plain_http_is_refused_except_on_loopback():
    key = Secret(TEST_KEY)
    with pytest.raises(ConfigurationError, match="not HTTPS"):
        SendApiClient(api_key=key, base_url="http://sendapi.co/v1")
    SendApiClient(api_key=key, base_url="http://127.0.0.1:9/v1").close()


def test_a_missing_key_is_refused_before_any_request():
    with pytest.raises(MissingSecretError, match="SENDAPI_API_KEY"):
        client_from_env(environ={})
    with pytest.raises(ConfigurationError, match="neither sk_live_ nor sk_test_"):
        SendApiClient(api_key=Secret("", label="SENDAPI_API_KEY"))


def test_a_post_without_idempotency_key_is_refused_and_nothing_is_sent():
    calls = []
    client, _ = make_client(lambda r: calls.append(r) or reply(201, ACCEPTED))
    with pytest.raises(SendPolicyError, match="Idempotency-Key"):
        client.send_sms(to="+15005550101", message="hi", idempotency_key="")
    assert calls == []


def test_rate_limit_headers_are_recorded_for_callers():
    headers = {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "41",
        "x-ratelimit-reset": "1900000030",
    }
    client, _ = make_client(lambda r: reply(200, {"plan": "starter"}, headers))
    client.usage()
    state = client.rate_limit
    assert (state.limit, state.reset_at) == (60, 1_900_000_030.0)
    assert state.remaining == 41


class WindowServer:
    """A mock SendAPI enforcing ``limit`` requests per ``window`` s on the fake clock."""

    def __init__(self, fake: FakeTime, limit: int, window: float) -> None:
        self.fake, self.limit, self.window = fake, limit, window
        self.times: deque[float] = deque()
        self.statuses: list[int] = []
        self.remaining_seen: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.fake.now
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        reset = int(self.times[0] + self.window if self.times else now + self.window) + 1
        if len(self.times) >= self.limit:
            self.statuses.append(429)
            headers = {"retry-after": str(max(1, int(reset - now))), "x-ratelimit-limit": str(self.limit),
                       "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}  # fmt: skip
            return reply(429, error_body("rate_limit_exceeded", 4029), headers)
        self.times.append(now)
        remaining = self.limit - len(self.times)
        self.remaining_seen.append(remaining)
        self.statuses.append(200)
        headers = {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(remaining),
                   "x-ratelimit-reset": str(reset)}  # fmt: skip
        return reply(200, {"plan": "starter", "usage": {}}, headers)


def test_the_limiter_slows_down_before_the_limit_and_meets_no_429():
    fake = FakeTime()
    server = WindowServer(fake, limit=10, window=10.0)
    client, _ = make_client(server, time_=fake)
    for _ in range(25):
        client.usage()
    assert 429 not in server.statuses
    assert fake.sleeps, "25 requests against 10 per 10 s must have been paced"
    # The first pause came while requests were still left in the window: before the limit.
    first_pause = next(i for i, e in enumerate(client.request_log) if e.waited_s > 0)
    assert server.remaining_seen[first_pause - 1] > 0


def test_without_low_water_pacing_the_same_burst_spends_the_window_first():
    """The counterpart: pacing starts only when nothing remains (limiter still avoids the 429)."""
    fake = FakeTime()
    server = WindowServer(fake, limit=10, window=10.0)
    client, _ = make_client(
        server, time_=fake, limiter=RateLimiter(low_water=0.0, clock=fake.clock)
    )
    for _ in range(12):
        client.usage()
    first_pause = next(i for i, e in enumerate(client.request_log) if e.waited_s > 0)
    assert server.remaining_seen[first_pause - 1] == 0


def test_retry_after_on_429_is_honoured_with_the_same_key():
    keys, answers = [], deque([
        reply(429, error_body("rate_limit_exceeded", 4029), {"retry-after": "7"}),
        reply(201, ACCEPTED, {"x-request-id": "req_ok"}),
    ])  # fmt: skip

    def handler(request):
        keys.append(request.headers["idempotency-key"])
        return answers.popleft()

    client, fake = make_client(handler)
    acceptance = client.send_sms(to="+15005550101", message="hi", idempotency_key="key-1")
    assert fake.sleeps == [7.0]
    assert keys == ["key-1", "key-1"]
    assert (acceptance.message_id, acceptance.status, acceptance.attempts) == ("sms_1", "queued", 2)


def test_429_without_retry_after_waits_for_the_body_retry_after():
    answers = deque(
        [reply(429, error_body("rate_limit_exceeded", 4029, retry_after=3)), reply(200, {})]
    )
    client, fake = make_client(lambda r: answers.popleft())
    client.usage()
    assert fake.sleeps == [3.0]


def test_a_retry_after_longer_than_allowed_gives_up_at_once():
    calls = []
    client, fake = make_client(
        lambda r: calls.append(r) or reply(429, error_body("x", 4029), {"retry-after": "3600"})
    )
    with pytest.raises(ProviderError) as info:
        client.usage()
    assert (len(calls), fake.sleeps, info.value.code, info.value.retryable) == (1, [], "4029", True)


def test_5xx_backs_off_1s_doubling_to_60s_with_the_same_key():
    keys = []
    answers = deque([reply(503, error_body("api_error", 5030))] * 8 + [reply(201, ACCEPTED)])

    def handler(request):
        keys.append(request.headers["idempotency-key"])
        return answers.popleft()

    client, fake = make_client(handler, max_attempts=9)
    client.send_sms(to="+15005550101", message="hi", idempotency_key="same")
    assert fake.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]
    assert set(keys) == {"same"} and len(keys) == 9


def test_timeouts_are_retried_with_backoff_then_reported_unavailable():
    keys = []

    def handler(request):
        keys.append(request.headers["idempotency-key"])
        raise httpx.ReadTimeout("slow", request=request)

    client, fake = make_client(handler, max_attempts=3)
    with pytest.raises(ProviderUnavailableError, match="3 time"):
        client.send_email(to="a@b.test", from_address="ops@mail.test", subject="s", text="t",
                          idempotency_key="k")  # fmt: skip
    assert fake.sleeps == [1, 2] and keys == ["k", "k", "k"]


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 410, 422])
def test_other_4xx_are_never_retried(status):
    calls = []
    client, fake = make_client(
        lambda r: calls.append(r) or reply(status, error_body("invalid_request_error", 4000))
    )
    with pytest.raises((ProviderError, AuthError)):
        client.send_sms(to="+15005550101", message="hi", idempotency_key="k")
    assert len(calls) == 1 and fake.sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "remedy_word"),
    [
        (401, error_body("authentication_error", 4010), AuthError, "4010", "no API key was sent"),
        (401, error_body("authentication_error", 4011), AuthError, "4011", "copy it again"),
        (401, error_body("authentication_error", 4012), AuthError, "4012", "revoked"),
        (401, error_body("authentication_error", 4013), AuthError, "4013", "expired"),
        (403, error_body("permission_error", 4030), AuthError, "4030", "scoped"),
        (402, error_body("quota_error", 4020), ProviderError, "4020", "quota"),
        (402, error_body("quota_error", 4028), ProviderError, "4028", "quota"),
        (402, error_body("quota_error", 4021), ProviderError, "4021", "top up"),
        (
            402,
            error_body("quota_error", "email_quota_exceeded"),
            ProviderError,
            "email_quota_exceeded",
            "quota",
        ),
        (
            402,
            error_body("billing_error", "subscription_required"),
            ProviderError,
            "subscription_required",
            "paid plan",
        ),
        (
            402,
            error_body("billing_error", "subscription_expired"),
            ProviderError,
            "subscription_expired",
            "renew",
        ),
        (
            409,
            error_body("idempotency_error", "idempotency_key_mismatch"),
            ProviderError,
            "idempotency_key_mismatch",
            "identical body",
        ),
        (
            409,
            error_body("idempotency_error", "idempotency_in_progress"),
            ProviderError,
            "idempotency_in_progress",
            "still running",
        ),
        (
            409,
            error_body("conflict", "session_not_connected"),
            ProviderError,
            "session_not_connected",
            "QR",
        ),
        (
            422,
            error_body("invalid_request_error", "invalid_from_domain"),
            ProviderError,
            "invalid_from_domain",
            "verified domain",
        ),
        (
            422,
            error_body("invalid_request_error", None),
            ProviderError,
            "unprocessable",
            "cannot be carried out",
        ),
        (429, error_body("rate_limit_exceeded", 4029), ProviderError, "4029", "Retry-After"),
        # The other documented envelope: {"error": {type, code, param, message}}, no success flag.
        (
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "missing_parameter",
                    "param": "to",
                    "message": "to is required",
                }
            },
            ProviderError,
            "missing_parameter",
            "see param",
        ),  # fmt: skip
        (
            401,
            {"error": {"type": "authentication_error", "code": "revoked_api_key", "message": "x"}},
            AuthError,
            "revoked_api_key",
            "revoked",
        ),
    ],
)
def test_each_error_code_maps_to_the_tree_with_its_fix(status, body, cls, code, remedy_word):
    client, _ = make_client(
        lambda r: reply(status, body, {"x-request-id": "req_header"}), max_attempts=1
    )
    with pytest.raises(cls) as info:
        client.usage()
    error = info.value
    assert (error.status, error.code) == (status, code)
    assert remedy_word in error.remedy
    expected_rid = body["error"].get("request_id") or "req_header"
    assert error.request_id == expected_rid and str(error).startswith(f"[{expected_rid}]")


def test_an_error_body_never_leaks_a_key_into_the_excerpt():
    body = {
        "error": {"type": "authentication_error", "code": 4011, "message": f"bad key {TEST_KEY}"}
    }
    client, _ = make_client(lambda r: reply(401, body))
    with pytest.raises(AuthError) as info:
        client.usage()
    assert TEST_KEY not in info.value.body_excerpt and "sk_test_****" in info.value.body_excerpt


USAGE = {
    "plan": "growth",
    "billing_period": {"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-31T23:59:59Z"},
    "usage": {"whatsapp_messages": {"sent": 120, "received": 3, "quota": 1000, "percentage": 12.0},
              "sms": {"sent": 50, "cost_usd": 1.5, "quota": 50},
              "emails": {"sent": 10, "quota": 100},
              "whatsapp_sessions": {"active": 1, "quota": 2}},
}  # fmt: skip


@pytest.mark.parametrize("body", [USAGE, {"data": USAGE}, {"success": True, "data": USAGE}])
def test_usage_reads_bare_and_wrapped_envelopes(body):
    client, _ = make_client(lambda r: reply(200, body))
    usage = client.usage()
    assert usage.plan == "growth" and usage.period_end.day == 31
    assert usage.channel("whatsapp_messages").share == pytest.approx(0.12)
    assert usage.channel("sms").exhausted and usage.channel("emails").share == pytest.approx(0.1)
    assert usage.channel("whatsapp_sessions").used == 1


SESSION = {"id": "sess_1", "name": "ops", "status": "connected", "phone_number": "+15005550100",
           "last_seen_at": "2026-12-01T10:00:00Z", "message_count": 4, "created_at": "2026-11-01T00:00:00Z"}  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        [SESSION],
        {"data": [SESSION]},
        {"data": [SESSION], "meta": {"total": 1, "page": 1, "per_page": 20, "last_page": 1}},
    ],
)
def test_lists_read_bare_wrapped_and_paginated(body):
    client, _ = make_client(lambda r: reply(200, body))
    (session,) = client.whatsapp_sessions()
    assert (
        session.connected and session.phone_number == "+15005550100" and session.message_count == 4
    )


@pytest.mark.parametrize(
    "body",
    [{"id": "msg_1", "status": "accepted"}, {"data": {"id": "msg_1", "status": "accepted"}},
     {"messageId": "msg_1", "status": "ACCEPTED"}, {"data": {"message_id": "msg_1", "status": "accepted"}}],
)  # fmt: skip
def test_acceptance_reads_each_id_spelling(body):
    client, _ = make_client(
        lambda r: reply(201, body, {"x-request-id": "req_9", "idempotent-replayed": "true"})
    )
    acceptance = client.send_whatsapp(
        session_id="sess_1", to="+15005550201", text="hi", idempotency_key="k"
    )
    assert (acceptance.message_id, acceptance.status, acceptance.request_id) == (
        "msg_1",
        "accepted",
        "req_9",
    )
    assert acceptance.replayed and acceptance.to_dict()["replayed"] is True


def test_whatsapp_send_uses_the_documented_text_body_shape():
    sent = []
    client, _ = make_client(
        lambda r: sent.append(r) or reply(201, {"id": "msg_1", "status": "accepted"})
    )
    client.send_whatsapp(session_id="sess_1", to="+15005550201", text="hello", idempotency_key="k")
    assert json.loads(sent[0].content) == {"session_id": "sess_1", "to": "+15005550201", "type": "text",
                                           "text": {"body": "hello"}}  # fmt: skip


def test_domain_records_and_contact_check_and_sender_ids_are_typed():
    domain = {"id": "dom_1", "domain": "Mail.Example.Test", "verified": True, "verified_at": "2026-11-02T00:00:00Z",
              "records": {"spf": {"type": "TXT", "name": "mail.example.test", "value": "v=spf1 include:spf.sendapi.co ~all"},
                          "dkim": {"type": "TXT", "name": "sendapi._domainkey.mail.example.test", "value": "v=DKIM1; k=rsa; p=MIGf"},
                          "dmarc": {"type": "TXT", "name": "_dmarc.mail.example.test", "value": "v=DMARC1; p=quarantine"}}}  # fmt: skip

    def handler(request):
        path = request.url.path
        if path.endswith("/email/domains"):
            return reply(200, {"data": [domain]})
        if "/contacts/" in path:
            assert path.endswith("/whatsapp/contacts/+15005550201/check")
            return reply(200, {"data": {"phone": "+15005550201", "exists": True}})
        return reply(
            200,
            [
                {"id": "sid_1", "sender_id": "ACME", "status": "approved"},
                {"name": "PEND", "status": "pending"},
            ],
        )

    client, _ = make_client(handler)
    (typed,) = client.email_domains()
    assert typed.domain == "mail.example.test" and typed.verified
    assert typed.record("dmarc").value == "v=DMARC1; p=quarantine" and len(typed.records) == 3
    assert client.contact_check("+15005550201").on_whatsapp is True
    assert [(s.sender_id, s.usable) for s in client.sender_ids()] == [
        ("ACME", True),
        ("PEND", False),
    ]


def test_a_created_webhook_holds_its_secret_as_a_secret_only():
    secret = "whsec_abcdefghijklmnopqrstuvwxyz012345"
    body = {"data": {"id": 7, "url": "https://hooks.example.test/sendapi", "events": ["message.*", "sms.delivered"],
                     "secret": secret, "is_active": True, "failure_count": 0}}  # fmt: skip
    client, _ = make_client(lambda r: reply(201, body))
    hook = client.create_webhook(
        url="https://hooks.example.test/sendapi", events=["*"], idempotency_key="k"
    )
    assert isinstance(hook.secret, Secret) and hook.secret.reveal() == secret
    assert secret not in repr(hook) + str(hook.to_dict())
    assert hook.id == "7" and hook.subscribes("message.read") and hook.subscribes("sms.delivered")
    assert not hook.subscribes("email.bounced")


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [(401, None, AuthError, "invalid_api_key"), (409, {"error": {"message": "conflict"}}, ProviderError, "conflict"),
     (502, b"<html>bad gateway</html>", ProviderError, None)],
)  # fmt: skip
def test_bodies_without_a_code_map_by_status_family(status, body, cls, code):
    content = (
        body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    )
    client, _ = make_client(lambda r: httpx.Response(status, content=content, headers={"x-request-id": "req_h"}),
                            max_attempts=1)  # fmt: skip
    with pytest.raises(cls) as info:
        client.usage()
    assert (info.value.code, info.value.request_id) == (code, "req_h") and info.value.remedy


def test_a_listed_webhook_never_turns_a_masked_secret_into_a_key():
    body = {"data": [{"id": 1, "url": "https://h.test/x", "events": ["*"], "secret": "whsec_abcd****",
                      "is_active": True, "failure_count": 2}]}  # fmt: skip
    client, _ = make_client(lambda r: reply(200, body))
    (hook,) = client.webhooks()
    assert hook.secret is None and hook.secret_prefix == "whsec_abcd" and hook.failure_count == 2


# -- the contract's per-WhatsApp-session caps, kept by the client --------------------------------
def whatsapp_recorder(fake):
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(fake.now)
        return reply(201, {"data": {"id": f"msg_{len(sent)}", "status": "accepted"}})

    return handler, sent


def test_whatsapp_sends_are_spaced_1_to_3_s_and_never_30_in_a_minute():
    fake = FakeTime()
    handler, sent = whatsapp_recorder(fake)
    client, _ = make_client(handler, time_=fake)
    for n in range(45):
        client.send_whatsapp(session_id="sess_1", to="+15005550201", text="hi",
                             idempotency_key=f"k{n}")  # fmt: skip
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 1.0  # never closer than the contract's 1 s (longer: the minute's cap)
    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) <= 30


def test_whatsapp_caps_are_per_session_and_the_day_cap_refuses_before_any_request():
    from runbook_lib.providers.sendapi.ratelimit import SessionCaps, SessionPacer

    fake = FakeTime()
    handler, sent = whatsapp_recorder(fake)
    pacer = SessionPacer(SessionCaps(per_minute=3, per_day=5, min_spacing=1, max_spacing=1),
                         clock=fake.clock, sleep=fake.sleep)  # fmt: skip
    client, _ = make_client(handler, time_=fake, session_pacer=pacer)

    def send(session: str, n: int):
        return client.send_whatsapp(session_id=session, to="+15005550201", text="hi",
                                    idempotency_key=f"{session}-{n}")  # fmt: skip

    for n in range(4):
        send("sess_a", n)
    assert sent[3] - sent[0] == pytest.approx(60)  # the 4th waited for the minute to pass
    send("sess_b", 0)  # another session has its own caps: nothing to wait out
    assert sent[4] == sent[3]
    send("sess_a", 4)
    with pytest.raises(SendPolicyError, match="per-session cap is 5 a day"):
        send("sess_a", 5)
    assert len(sent) == 6  # the refused send made no request
