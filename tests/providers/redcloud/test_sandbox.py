"""The sandbox over real HTTP, and the runbook client against it."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runbook_lib import ClientCredentialsAuth, ProviderError, RedCloudClient, RetryPolicy, Secret
from runbook_lib.core.serving import BackgroundServer
from runbook_lib.core.signing import generate_webhook_secret, verify_webhook
from runbook_lib.providers.redcloud.sandbox import DEFAULT_CLIENT_SECRET, SandboxConfig, run_sandbox

WEBHOOK_SECRET = generate_webhook_secret()


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


class Capture:
    """A webhook endpoint that verifies signatures and answers from a script of statuses."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: list[dict] = []
        self.lock = threading.Lock()

        async def hook(request: Request) -> JSONResponse:
            body = await request.body()
            verify_webhook(WEBHOOK_SECRET, request.headers, body)
            with self.lock:
                status = self.statuses.pop(0) if self.statuses else 200
                self.received.append(
                    {
                        "id": request.headers["webhook-id"],
                        "status": status,
                        **__import__("json").loads(body),
                    }
                )
            return JSONResponse({}, status_code=status)

        self.server = BackgroundServer(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])]), name="capture"
        )

    @property
    def url(self):
        return self.server.url + "/hook"

    def accepted(self, message_id):
        with self.lock:
            return [
                r
                for r in self.received
                if r["status"] == 200 and r["data"].get("messageId") == message_id
            ]


@pytest.fixture
def capture():
    cap = Capture()
    cap.server.start()
    yield cap
    cap.server.stop()


@pytest.fixture
def sandbox(capture):
    config = SandboxConfig(
        webhook_url=capture.url,
        webhook_secret=WEBHOOK_SECRET,
        lifecycle_delay=0,
        webhook_retry_schedule=(0.05, 0.05, 0.05),
    )
    with run_sandbox(config) as running:
        yield running


def client_for(running, secret=DEFAULT_CLIENT_SECRET, **kw) -> RedCloudClient:
    auth = ClientCredentialsAuth(
        token_url=running.url + "/oauth/token",
        client_id="sbx_client_rehearsal",
        client_secret=Secret(secret),
    )
    return RedCloudClient(
        base_url=running.url, auth=auth, retry=RetryPolicy(max_attempts=3, base_delay=0.01), **kw
    )


def token(running, **kw):
    return httpx.post(running.url + "/oauth/token", **kw)


def send_body(to="+15005550001", **extra):
    return {
        "sendFrom": "num_sbx_primary",
        "to": to,
        "body": "hi",
        "externalReference": "ref-1",
        **extra,
    }


# -- token endpoint -------------------------------------------------------------------------------
def test_token_with_basic_and_with_form_credentials(sandbox):
    basic = token(
        sandbox,
        data={"grant_type": "client_credentials"},
        auth=("sbx_client_rehearsal", DEFAULT_CLIENT_SECRET),
    )
    form = token(
        sandbox,
        data={
            "grant_type": "client_credentials",
            "client_id": "sbx_client_rehearsal",
            "client_secret": DEFAULT_CLIENT_SECRET,
        },
    )
    for response in (basic, form):
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer" and response.json()["expires_in"] == 3600


def test_token_errors(sandbox):
    bad = token(
        sandbox, data={"grant_type": "client_credentials"}, auth=("sbx_client_rehearsal", "nope")
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    grant = token(
        sandbox,
        data={"grant_type": "password"},
        auth=("sbx_client_rehearsal", DEFAULT_CLIENT_SECRET),
    )
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


# -- API ----------------------------------------------------------------------------------------
def test_every_response_has_a_request_id_and_errors_are_problem_json(sandbox):
    response = httpx.get(sandbox.url + "/api/core/whoami")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["requestId"] == response.headers["x-request-id"]
    assert response.json()["code"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_whoami_shape(sandbox):
    who = client_for(sandbox).whoami().data
    assert who["environment"] == "sandbox"
    assert who["assignedNumbers"] == {"total": 4, "active": 3}
    assert who["webhook"]["status"] == "CONFIGURED" and who["webhook"]["signingSecretSet"] is True


def test_client_follows_pagination_one_number_per_page(sandbox):
    listing = client_for(sandbox).list_numbers(limit=1)
    assert listing.pages == 4
    assert [n["numberId"] for n in listing.numbers] == [
        "num_sbx_primary",
        "num_sbx_sms_only",
        "num_sbx_suspended",
        "num_sbx_override",
    ]
    assert len(set(listing.request_ids)) == 4


def test_bad_cursor_and_limit_are_invalid_request(sandbox):
    client = client_for(sandbox)
    for params in ({"cursor": "garbage!"}, {"limit": "0"}):
        with pytest.raises(ProviderError) as info:
            client._call("GET", "/api/core/numbers", params=params)
        assert info.value.status == 400 and info.value.code == "invalid_request"


def test_send_then_replay_returns_the_same_message(sandbox):
    client = client_for(sandbox)
    first = client.send_message(send_body(), idempotency_key="key-replay")
    again = client.send_message(send_body(), idempotency_key="key-replay")
    assert first.status == 202 and first.data["status"] == "QUEUED"
    assert first.data["externalReference"] == "ref-1" and first.data["messageId"].startswith("msg_")
    assert again.data["messageId"] == first.data["messageId"] and again.replayed
    assert sandbox.sandbox.message_count() == 1


def test_a_restarted_sandbox_never_reissues_message_or_event_ids(capture):
    """Same config, same seed, two starts: no messageId or eventId of the first comes back."""
    config = SandboxConfig(
        webhook_url=capture.url, webhook_secret=WEBHOOK_SECRET, lifecycle_delay=0, seed=7
    )
    sessions = []
    for _ in range(2):
        with run_sandbox(config) as running:
            client = client_for(running)
            sent = client.send_message(send_body(), idempotency_key="key-restart")
            message_id = sent.data["messageId"]
            assert wait_until(lambda: len(capture.accepted(message_id)) >= 3)  # noqa: B023
            client.close()
            events = {a["eventId"] for a in running.sandbox.webhook_attempts()}
            sessions.append((message_id, events))
    (first_id, first_events), (second_id, second_events) = sessions
    assert first_id != second_id
    assert first_events and second_events and not first_events & second_events


def test_reused_key_with_another_body_is_422(sandbox):
    client = client_for(sandbox)
    client.send_message(send_body(), idempotency_key="key-reuse")
    with pytest.raises(ProviderError) as info:
        client.send_message(send_body(body="other"), idempotency_key="key-reuse")
    assert (info.value.status, info.value.code) == (422, "idempotency_key_reused")


def test_missing_key_is_refused(sandbox):
    client = client_for(sandbox)
    client.acquire_token()
    response = client._http.post("/api/core/messages/send", json=send_body())
    assert response.status_code == 400 and response.json()["code"] == "missing_idempotency_key"
    with pytest.raises(ValueError):
        client.send_message(send_body(), idempotency_key="")
    assert sandbox.sandbox.message_count() == 0


@pytest.mark.parametrize(
    "send_from,code",
    [("num_sbx_suspended", "invalid_send_from"), ("num_nope", "invalid_send_from")],
)
def test_invalid_send_from_is_422_with_request_id_and_not_retried(sandbox, send_from, code):
    client = client_for(sandbox)
    with pytest.raises(ProviderError) as info:
        client.send_message(send_body(sendFrom=send_from), idempotency_key=f"k-{send_from}")
    assert (info.value.status, info.value.code) == (422, code)
    assert info.value.request_id and str(info.value).startswith(f"[{info.value.request_id}]")
    assert len([r for r in client.request_log if r.path.endswith("/send")]) == 1


def test_mms_on_sms_only_number_and_bad_destination(sandbox):
    client = client_for(sandbox)
    media = [{"url": "https://x.example/a.png", "contentType": "image/png"}]
    with pytest.raises(ProviderError, match="mms_not_enabled"):
        client.send_message(
            send_body(sendFrom="num_sbx_sms_only", media=media), idempotency_key="k-mms"
        )
    with pytest.raises(ProviderError, match="invalid_destination"):
        client.send_message(send_body(to="+15005550000"), idempotency_key="k-dest")


def test_same_key_while_in_progress_is_409(capture):
    config = SandboxConfig(
        webhook_url=capture.url,
        webhook_secret=WEBHOOK_SECRET,
        lifecycle_delay=0,
        send_processing_delay=0.5,
    )
    with run_sandbox(config) as running:
        client = client_for(running)
        client.acquire_token()
        headers = {"Idempotency-Key": "k-409"}
        results = []
        t = threading.Thread(
            target=lambda: results.append(
                client._http.post("/api/core/messages/send", json=send_body(), headers=headers)
            )
        )
        t.start()
        time.sleep(0.15)
        second = client._http.post("/api/core/messages/send", json=send_body(), headers=headers)
        t.join()
        assert (
            second.status_code == 409 and second.json()["code"] == "idempotency_request_in_progress"
        )
        assert results[0].status_code == 202
        # the client's own retry of 409 in-progress converges on the same message
        assert (
            client.send_message(send_body(), idempotency_key="k-409").data["messageId"]
            == results[0].json()["messageId"]
        )


def test_revoked_and_expired_tokens(capture):
    config = SandboxConfig(webhook_url=capture.url, webhook_secret=WEBHOOK_SECRET, token_ttl=1)
    with run_sandbox(config) as running:
        tok = token(
            running,
            data={"grant_type": "client_credentials"},
            auth=("sbx_client_rehearsal", DEFAULT_CLIENT_SECRET),
        ).json()["access_token"]
        ok = httpx.get(running.url + "/api/core/whoami", headers={"Authorization": f"Bearer {tok}"})
        assert ok.status_code == 200
        time.sleep(1.1)
        expired = httpx.get(
            running.url + "/api/core/whoami", headers={"Authorization": f"Bearer {tok}"}
        )
        assert expired.json()["code"] == "token_expired"
        running.sandbox.revoke_all_tokens()
        revoked = httpx.get(
            running.url + "/api/core/whoami", headers={"Authorization": f"Bearer {tok}"}
        )
        assert revoked.json()["code"] == "invalid_token"


def test_client_refreshes_a_revoked_token_transparently(sandbox):
    client = client_for(sandbox)
    client.whoami()
    sandbox.sandbox.revoke_all_tokens()
    assert client.whoami().status == 200
    assert client.auth.fetch_count == 2


# -- webhooks -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "to,expected",
    [
        ("+15005550001", ["message.queued", "message.sent", "message.delivery"]),
        ("+15005550002", ["message.queued", "message.sent", "message.failed"]),
        ("+15005550003", ["message.queued"]),
        ("+15005550004", ["message.queued", "message.sent"]),
        ("+15005550006", ["message.delivery", "message.sent", "message.queued"]),
        ("+14155550123", ["message.queued", "message.sent", "message.delivery"]),
    ],
)
def test_destinations_drive_each_lifecycle(sandbox, capture, to, expected):
    mid = (
        client_for(sandbox)
        .send_message(send_body(to=to), idempotency_key=f"k{to}")
        .data["messageId"]
    )
    assert wait_until(lambda: len(capture.accepted(mid)) == len(expected))
    time.sleep(0.1)
    got = capture.accepted(mid)
    assert [r["eventType"] for r in got] == expected
    assert sorted(r["data"]["sequence"] for r in got) == list(range(1, len(expected) + 1))
    if "message.failed" in expected:
        assert got[-1]["data"]["failure"]["code"] == "carrier_rejected"


def test_duplicate_destination_delivers_every_event_twice(sandbox, capture):
    mid = (
        client_for(sandbox)
        .send_message(send_body(to="+15005550005"), idempotency_key="k-dup")
        .data["messageId"]
    )
    assert wait_until(lambda: len(capture.accepted(mid)) == 6)
    ids = [r["id"] for r in capture.accepted(mid)]
    assert len(set(ids)) == 3


def test_unacknowledged_webhooks_are_retried_with_the_same_id(sandbox, capture):
    capture.statuses = [500, 503]
    mid = (
        client_for(sandbox)
        .send_message(send_body(to="+15005550003"), idempotency_key="k-retry")
        .data["messageId"]
    )

    def attempts() -> list[dict]:
        return [a for a in sandbox.sandbox.webhook_attempts() if a["messageId"] == mid]

    # the dispatcher records an attempt after the answer arrives: wait for the third record
    assert wait_until(lambda: len(capture.accepted(mid)) == 1 and len(attempts()) >= 3)
    assert [a["status"] for a in attempts()] == [500, 503, 200]
    assert len({a["eventId"] for a in attempts()}) == 1


def test_410_disables_the_endpoint_and_whoami_says_failing(sandbox, capture):
    capture.statuses = [410]
    client = client_for(sandbox)
    client.send_message(send_body(to="+15005550003"), idempotency_key="k-410")
    assert wait_until(lambda: len(sandbox.sandbox.webhook_attempts()) == 1)
    time.sleep(0.3)
    assert len(sandbox.sandbox.webhook_attempts()) == 1
    assert client.whoami().data["webhook"]["status"] == "FAILING"
