"""Red Cloud's typed resources: built from the wire JSON once; missing or mistyped fields are None."""

from __future__ import annotations

from runbook_lib.providers.redcloud.resources import ClientContext, Number


def test_client_context_reads_the_whoami_fields_and_tolerates_wrong_types():
    context = ClientContext.from_wire(
        {"clientId": "cli_1", "apiClientId": "api_1", "clientName": 7, "environment": "sandbox",
         "assignedNumbers": {"total": 2, "active": True}, "webhook": "CONFIGURED"},
        request_id="req_1",
    )  # fmt: skip
    assert (context.client_id, context.api_client_id, context.client_name) == (
        "cli_1",
        "api_1",
        None,
    )
    assert (context.numbers_total, context.numbers_active) == (2, None)  # a bool is not a count
    assert context.webhook.status is None and context.request_id == "req_1"


def test_a_number_exposes_its_override_only_when_enabled():
    on = Number.from_wire({"numberId": "n1", "status": "ACTIVE", "smsEnabled": 1,
                           "webhookOverride": {"enabled": True, "url": "https://x"}})  # fmt: skip
    off = Number.from_wire(
        {"numberId": "n2", "webhookOverride": {"enabled": False, "url": "https://x"}}
    )
    assert (on.active, on.sms_enabled, on.webhook_override) == (True, True, "https://x")
    assert (off.active, off.mms_enabled, off.webhook_override) == (False, False, None)
