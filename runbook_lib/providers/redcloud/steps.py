"""Red Cloud's go-live steps: the client context (whoami) and the numbers, as checks.

The go-live runbook calls these through the provider protocol (``identity_step``,
``senders_step``); they read typed resources (:mod:`.resources`) and never raise for an
operational failure: a failing call is a FAIL check carrying its requestId and fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...core.checks import Check
from ...core.errors import RunbookError
from ...core.parameters import ExpectedNumber, RunbookParameters
from ..base import StepResult
from .contract import API
from .resources import ClientContext, Number, NumberInventory

__all__ = [
    "audit_context_step",
    "context_snapshot",
    "evidence_rules",
    "identity_step",
    "senders_step",
]

IDENTITY_STEP = ("whoami", "Client context (whoami)")
SENDERS_STEP = ("numbers", "Numbers")
AUDIT_CONTEXT_TITLE = "Context: token, whoami, numbers"


def fail_from(check_id: str, title: str, exc: RunbookError, **evidence: Any) -> Check:
    """A FAIL check from an error: its message, its requestId, its fix."""
    return Check(
        check_id,
        title,
        "FAIL",
        str(exc.message),
        evidence={**evidence, "error": exc.to_dict()},
        request_ids=(exc.request_id,) if exc.request_id else (),
        remedy=exc.remedy or None,
    )


def skipped_identity(reason: str) -> StepResult:
    return StepResult(*IDENTITY_STEP, (Check("whoami.context", "Client context", "SKIP", reason),))


def skipped_senders(reason: str) -> StepResult:
    return StepResult(*SENDERS_STEP, (Check("numbers.list", "Numbers listed", "SKIP", reason),))


def context_snapshot(
    context: ClientContext | None, numbers: NumberInventory | None
) -> dict[str, Any]:
    """The provider-side fields that matter for drift, in a stable shape (see reporting.snapshot)."""
    snap: dict[str, Any] = {
        "apiClientId": context.api_client_id if context else None,
        "environment": context.environment if context else None,
        "webhookStatus": context.webhook.status if context else None,
        "webhookUrl": context.webhook.url if context else None,
    }
    if numbers is not None:
        snap["numbers"] = {
            n.number_id: {
                "status": n.status,
                "sms": n.raw.get("smsEnabled"),
                "mms": n.raw.get("mmsEnabled"),
                "webhookOverride": n.webhook_override,
            }
            for n in numbers.numbers
        }
    return snap


def identity_step(client: Any, params: RunbookParameters) -> StepResult:
    """The active client context: who we are, which environment, numbers, webhook."""
    try:
        who = client.context()
    except RunbookError as exc:
        return StepResult(*IDENTITY_STEP, (fail_from("whoami.context", "Client context", exc),))
    p = params.provider
    rid = (who.request_id,) if who.request_id else ()
    problems = []
    if p.expected_environment and who.environment != p.expected_environment:
        problems.append(f"environment is {who.environment!r}, expected {p.expected_environment!r}")
    if p.expected_client_id and who.client_id != p.expected_client_id:
        problems.append(f"clientId is {who.client_id!r}, expected {p.expected_client_id!r}")
    checks = [
        Check(
            "whoami.context",
            "Active client context identified",
            "FAIL" if problems else "PASS",
            "; ".join(problems)
            or f"{who.client_name} ({who.client_id}), account {who.account_id}, {who.environment}",
            evidence=who.to_dict(),
            request_ids=rid,
            remedy="the credentials belong to another client or environment: check client_id "
            "and base_url."
            if problems
            else None,
        )
    ]
    total, active = who.numbers_total, who.numbers_active
    expected = len(params.numbers)
    count_ok = isinstance(active, int) and active >= 1 and isinstance(total, int)
    checks.append(
        Check(
            "whoami.numbers",
            "Assigned number counts",
            "PASS" if count_ok else "FAIL",
            f"{total} assigned, {active} active ({expected} expected by this runbook)",
            evidence={"total": total, "active": active, "expected": expected},
            request_ids=rid,
            remedy=None if count_ok else "no active number is assigned to this client.",
        )
    )
    hook = who.webhook
    if params.webhooks.expect_configured:
        ok = hook.status == "CONFIGURED" and hook.signing_secret_set is True
        summary = f"status {hook.status}, signing secret {'set' if hook.signing_secret_set else 'NOT set'}"
        checks.append(
            Check(
                "whoami.webhook",
                "Account webhook configured",
                "PASS" if ok else "FAIL",
                summary,
                evidence=hook.to_dict(),
                request_ids=rid,
                remedy=None
                if ok
                else "configure the webhook URL and signing secret in the console; FAILING means "
                "the provider cannot deliver to it.",
            )
        )
    return StepResult(
        *IDENTITY_STEP, tuple(checks), resource=who, snapshot=context_snapshot(who, None)
    )


def senders_step(client: Any, params: RunbookParameters, identity: Any) -> StepResult:
    """Every expected number: present, ACTIVE, SMS/MMS as expected, webhook override intended."""
    try:
        listing = client.inventory()
    except RunbookError as exc:
        return StepResult(*SENDERS_STEP, (fail_from("numbers.list", "Numbers listed", exc),))
    by_id = listing.by_id()
    rids = listing.request_ids
    checks = [
        Check(
            "numbers.list",
            "Numbers listed",
            "PASS",
            f"{len(listing.numbers)} number(s) over {listing.pages} page(s)",
            evidence={"count": len(listing.numbers), "pages": listing.pages},
            request_ids=rids,
        )
    ]
    for expected in params.numbers:
        checks.append(_number_check(expected, by_id.get(expected.number_id), rids))
    context: ClientContext | None = identity
    if context is not None:
        active = listing.active_count
        agree = context.numbers_total == len(listing.numbers) and context.numbers_active == active
        checks.append(
            Check(
                "numbers.counts_agree",
                "whoami counts match the listing",
                "PASS" if agree else "WARN",
                f"whoami {context.numbers_total}/{context.numbers_active} vs listing "
                f"{len(listing.numbers)}/{active} (total/active)",
                remedy=None if agree else "a number may have changed state during the run; re-run.",
            )
        )
    rows = [
        (
            n.number_id,
            n.phone_number,
            n.status,
            n.raw.get("smsEnabled"),
            n.raw.get("mmsEnabled"),
            n.webhook_override or "—",
        )
        for n in listing.numbers
    ]
    table = (
        "All numbers assigned to this client",
        ("numberId", "phone", "status", "SMS", "MMS", "webhook override"),
        rows,
    )
    return StepResult(
        *SENDERS_STEP,
        tuple(checks),
        resource=listing,
        tables=(table,),
        snapshot=context_snapshot(context, listing),
    )


def _number_check(expected: ExpectedNumber, actual: Number | None, rids: tuple[str, ...]) -> Check:
    cid = f"numbers.{expected.number_id}"
    title = f"Number {expected.number_id}"
    if actual is None:
        return Check(
            cid,
            title,
            "FAIL",
            "not assigned to this client",
            request_ids=rids,
            remedy="check the numberId in the parameter file against the console.",
        )
    problems = []
    if actual.status != "ACTIVE":
        problems.append(f"status {actual.status} (must be ACTIVE)")
    if actual.sms_enabled != expected.sms:
        problems.append(
            f"SMS {'enabled' if actual.sms_enabled else 'disabled'}, expected {'on' if expected.sms else 'off'}"
        )
    if actual.mms_enabled != expected.mms:
        problems.append(
            f"MMS {'enabled' if actual.mms_enabled else 'disabled'}, expected {'on' if expected.mms else 'off'}"
        )
    active_url = actual.webhook_override
    want = expected.webhook_override
    if want == "none" and active_url:
        problems.append(f"unexpected webhook override {active_url}")
    elif want == "any" and not active_url:
        problems.append("no enabled webhook override")
    elif want not in ("none", "any") and active_url != want:
        problems.append(f"webhook override {active_url or 'none'}, expected {want}")
    evidence = actual.to_dict()
    if problems:
        return Check(
            cid,
            title,
            "FAIL",
            "; ".join(problems),
            evidence=evidence,
            request_ids=rids,
            remedy="fix the number in the console, or correct the expectation in the parameter file.",
        )
    return Check(
        cid,
        title,
        "PASS",
        f"{actual.phone_number} ACTIVE, SMS {'on' if expected.sms else 'off'}, "
        f"MMS {'on' if expected.mms else 'off'}, override {active_url or 'none'}",
        evidence=evidence,
        request_ids=rids,
    )


def evidence_rules(
    request_log: list[Any], *, recorded_send: Any = None
) -> dict[str, Callable[[], tuple[Any, ...]]]:
    """The catalogue's evidence rules over this run's requests (``evidence:`` in readiness.yaml).

    ``recorded_send`` is the run's controlled send (a ``SentMessage``): one the ledger recorded as
    accepted earlier in the run counts as a keyed send although no request was made now.
    """
    log = request_log

    def every_send_has_a_key() -> tuple[Any, ...]:
        sends = [r for r in log if r.path.endswith(API["send"]) and not r.deliberate]
        missing = [r for r in sends if not r.idempotency_key]
        sent = recorded_send
        if not sends and sent is not None and sent.resumed and sent.message_id:
            return True, (
                f"the send was accepted earlier in this run under key "
                f"{sent.idempotency_key} (recorded in the ledger; not sent again)"
            )
        if not sends:  # because the send was BLOCKED (or FAILed): the gate names that root cause
            return False, "no send was made in this run", ("send.accepted*",)
        return (
            not missing,
            f"{len(sends) - len(missing)} of {len(sends)} send request(s) carried a key",
        )

    def request_ids_recorded() -> tuple[bool, str]:
        answered = [r for r in log if r.status is not None]
        missing = [r for r in answered if not r.request_id]
        return (bool(answered) and not missing,
                f"{len(answered) - len(missing)} of {len(answered)} answers carried X-Request-Id")  # fmt: skip

    return {
        "every_send_has_a_key": every_send_has_a_key,
        "request_ids_recorded": request_ids_recorded,
    }


def audit_context_step(client: Any, params: RunbookParameters) -> StepResult:
    """The incident audit's read-only context: whoami (several calls: API health) and numbers.

    ``details`` carries ``api`` (calls, errors, errorRate), ``apiErrors`` and ``webhookStatus``
    for the audit's failure-domain rules; ``snapshot`` the drift snapshot.
    """
    context: ClientContext | None = None
    inventory: NumberInventory | None = None
    errors: list[str] = []
    for _ in range(params.audit.api_probe_calls):
        try:
            context = client.context()
        except RunbookError as exc:
            errors.append(exc.message)
    try:
        inventory = client.inventory()
    except RunbookError as exc:
        errors.append(exc.message)
    api = [r for r in client.request_log if not r.path.endswith(API["token"])]
    bad = [r for r in api if r.status is None or r.status == 429 or r.status >= 500]
    rate = len(bad) / len(api) if api else 0.0
    checks = [Check(
        "audit.api", "Provider API health", "FAIL" if rate >= params.audit.api_error_rate_fail else "PASS",
        f"{len(bad)} of {len(api)} API answer(s) were 5xx/429 or failed to connect ({rate:.0%})",
        request_ids=tuple(r.request_id for r in bad if r.request_id)[:5],
    )]  # fmt: skip
    webhook = None
    if context is not None:
        webhook = context.webhook.status or "UNKNOWN"
        checks.append(Check(
            "audit.webhook_status", "Account webhook status", "PASS" if webhook == "CONFIGURED" else "FAIL",
            f"whoami reports the account webhook {webhook}",
        ))  # fmt: skip
    if inventory is not None:
        inactive = [n.number_id for n in inventory.numbers if n.status != "ACTIVE"]
        checks.append(Check(
            "audit.numbers", "Numbers", "WARN" if inactive else "PASS",
            f"{len(inventory.numbers)} number(s); not ACTIVE: {', '.join(map(str, inactive)) or 'none'}",
        ))  # fmt: skip
    return StepResult(
        "context",
        AUDIT_CONTEXT_TITLE,
        tuple(checks),
        resource=(context, inventory),
        details={
            "api": {"calls": len(api), "errors": len(bad), "errorRate": round(rate, 3)},
            "apiCalls": len(api),
            "apiErrors": errors,
            "identityRead": context is not None,
            "webhookStatus": context.webhook.status if context else None,
            "webhookSignal": (
                f"whoami shows the account webhook {context.webhook.status}"
                if context and context.webhook.status and context.webhook.status != "CONFIGURED"
                else None
            ),
        },
        snapshot=context_snapshot(context, inventory),
    )
