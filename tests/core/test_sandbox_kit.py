"""The shared webhook dispatcher: its fault decisions, its POST and its wake, for any provider."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from runbook_lib.core.errors import RunbookError
from runbook_lib.core.sandbox_kit import (
    STALE_SECONDS,
    Attempt,
    FaultProfile,
    Faults,
    SandboxControlClient,
    WebhookDispatcher,
)


class _Dispatcher(WebhookDispatcher[str]):
    """A provider of one-line items: signs with a header naming the secret and staleness."""

    def __init__(self, faults: Faults, transport: httpx.MockTransport) -> None:
        super().__init__(faults, timeout=1.0, transport=transport)
        self.recorded: list[tuple[str, int | None, str | None]] = []

    def due(self, now: float) -> list[str]:
        return []

    def attempt(self, item: str) -> Attempt[str] | None:
        return (
            None if item == "gone" else Attempt(item, "http://receiver.test/hook", b"{}", "right")
        )

    def wrong_secret(self) -> str:
        return "wrong"

    def sign(
        self, attempt: Attempt[str], secret: Any, *, stale: bool
    ) -> tuple[bytes, dict[str, str]]:
        return attempt.body, {"x-secret": secret, "x-age": str(STALE_SECONDS if stale else 0)}

    def record(self, attempt: Attempt[str], status: int | None, error: str | None) -> None:
        self.recorded.append((attempt.item, status, error))


def _run(webhooks: dict[str, Any], items: list[str], *, duplicates_at_dispatch: bool = False):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    faults = Faults(FaultProfile.from_dict({"webhooks": webhooks}))
    dispatcher = _Dispatcher(faults, httpx.MockTransport(handler))
    dispatcher.DUPLICATES_AT_DISPATCH = duplicates_at_dispatch  # type: ignore[misc]

    async def go() -> None:
        await dispatcher.start()
        try:
            for item in items:
                await dispatcher.deliver(item)
        finally:
            await dispatcher.stop()

    asyncio.run(go())
    return dispatcher, seen


def test_a_clean_profile_posts_once_signed_with_the_endpoint_secret_and_records_the_status():
    dispatcher, seen = _run({}, ["evt_1"])
    assert [(r.headers["x-secret"], r.headers["x-age"]) for r in seen] == [("right", "0")]
    assert dispatcher.recorded == [("evt_1", 204, None)]


def test_drop_and_outage_record_an_injected_failure_without_posting():
    for webhooks, reason in [
        ({"drop_rate": 1.0}, "dropped (injected)"),
        ({"outages": [{"start": 0, "seconds": 3600}]}, "endpoint outage (injected)"),
    ]:
        dispatcher, seen = _run(webhooks, ["evt_1"])
        assert seen == []
        assert dispatcher.recorded == [("evt_1", None, reason)]


def test_bad_signature_and_stale_timestamp_reach_the_provider_signer():
    _, seen = _run({"bad_signature_rate": 1.0}, ["evt_1"])
    assert seen[0].headers["x-secret"] == "wrong"
    _, seen = _run({"stale_timestamp_rate": 1.0}, ["evt_1"])
    assert seen[0].headers["x-age"] == str(STALE_SECONDS)


def test_a_duplicate_is_a_second_post_only_where_the_provider_duplicates_at_dispatch():
    dispatcher, seen = _run({"duplicate_rate": 1.0}, ["evt_1"], duplicates_at_dispatch=True)
    assert len(seen) == 2 and dispatcher.recorded == [("evt_1", 204, None)]
    _, seen = _run({"duplicate_rate": 1.0}, ["evt_1"])  # the state queues it again instead
    assert len(seen) == 1


def test_an_item_no_longer_deliverable_is_neither_posted_nor_recorded():
    dispatcher, seen = _run({}, ["gone"])
    assert seen == [] and dispatcher.recorded == []


def test_wake_after_the_loop_closed_is_harmless():
    """A late wake (a request thread after shutdown) must not raise 'Event loop is closed'."""
    dispatcher, _ = _run({}, [])
    dispatcher.wake()


class _Control(SandboxControlClient):
    CONTROL_PREFIX = "/_sandbox"


def _control(response: httpx.Response) -> SandboxControlClient:
    transport = httpx.MockTransport(lambda request: response)
    return _Control("http://sandbox.test/", transport=transport)


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (
            httpx.Response(400, json={"detail": "api.nope: unknown route"}),
            "api.nope: unknown route",
        ),
        (httpx.Response(400, json={"error": {"message": "Bad profile."}}), "Bad profile."),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "<html>Bad Gateway</html>"),
        (httpx.Response(500), ""),
    ],
)
def test_a_control_error_is_one_runbook_error_naming_call_status_and_detail(response, said):
    """Whatever the body (JSON detail, an error envelope, a proxy's HTML, nothing), no bare decode error."""
    response.headers["x-request-id"] = "req_1"
    with _control(response) as control, pytest.raises(RunbookError) as caught:
        control.set_faults({"api": {"nope": {}}})
    assert f"sandbox control PUT /faults failed: {said}" in str(caught.value)
    assert caught.value.status == response.status_code
    assert caught.value.request_id == "req_1"


def test_the_control_client_talks_to_the_sandbox_root_whatever_the_contract_prefix():
    class Prefixed(_Control):
        API_PREFIX = "/v1"

    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={}))
    Prefixed("http://sandbox.test/v1/", transport=transport).clear_faults()
    _Control("http://sandbox.test", transport=transport).faults()
    assert [(r.method, str(r.url)) for r in seen] == [
        ("DELETE", "http://sandbox.test/_sandbox/faults"),
        ("GET", "http://sandbox.test/_sandbox/faults"),
    ]
