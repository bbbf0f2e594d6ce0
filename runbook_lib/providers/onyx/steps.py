"""Onyx's go-live checks: credential, launch approval, messaging in Onyx's order, webhooks,
connectivity, support first checks. Each check is PASS/FAIL from a typed result; evidence is its
``to_dict()`` (identifiers masked there); request ids come from it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ...core.checks import Check
from ...core.errors import RunbookError
from ...core.lifecycle import STATES, reconstruct
from ...security.secrets import secret_from_env
from ..base import StepResult
from .client import OnyxClient
from .contract import LIFECYCLE, resource_key
from .credentials import SecretComparison, compare_secrets
from .messaging import MessagingAttempt, checked_send
from .problems import action_for
from .settings import OnyxSettings

__all__ = ["golive_steps", "identity_step", "launch_step", "skipped"]

IDENTITY_STEP, LAUNCH_STEP = "credential", "launch"


def _rids(*rids: str | None) -> tuple[str, ...]:
    return tuple(r for r in rids if r)


def _fail(check_id: str, title: str, exc: RunbookError) -> Check:
    return Check(check_id, title, "FAIL", str(exc.message), evidence={"error": exc.to_dict()},
                 request_ids=_rids(exc.request_id), remedy=exc.remedy or None)  # fmt: skip


def skipped(step: str, title: str, check_ids: tuple[str, ...], reason: str) -> StepResult:
    return StepResult(step, title, tuple(Check(c, c, "SKIP", reason) for c in check_ids))


# -- credential (GET /v1/partner/me) ------------------------------------------------------------
def identity_step(client: OnyxClient, params: Any) -> StepResult:
    s: OnyxSettings = params.settings
    title = "Partner credential (GET /v1/partner/me)"
    try:
        me = client.me()
    except RunbookError as exc:
        return StepResult(
            IDENTITY_STEP, title, (_fail("credential.state", "Credential active", exc),)
        )
    rid = _rids(me.request_id)
    expected = params.provider.expected_environment or params.environment
    missing, extra = me.missing_scopes(s.scopes), me.extra_scopes(s.scopes)
    checks = [
        Check("credential.state", "Credential active", "PASS" if me.credential_state == "active" else "FAIL",
              f"{me.credential_id} is {me.credential_state} ({client.credential_shown})",
              evidence=me.to_dict(), request_ids=rid,
              remedy=None if me.credential_state == "active"
              else "issue a new credential in the Partner Portal and store it in the secret store."),
        Check("credential.environment", "Credential for the expected environment",
              "PASS" if me.environment == expected else "FAIL",
              f"environment {me.environment} (expected {expected})", request_ids=rid,
              remedy=None if me.environment == expected
              else "use the credential issued for this environment (onyx_sk_live_ for production)."),
        Check("credential.scopes", "Granted scopes equal the declared needs",
              "PASS" if not (missing or extra) else "FAIL",
              "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                      f"extra {', '.join(extra)} (least privilege)" if extra else ""]))
              or f"granted = declared: {', '.join(sorted(s.scopes))}",
              evidence={"granted": list(me.scopes), "declared": list(s.scopes)}, request_ids=rid,
              remedy=None if not (missing or extra)
              else "grant exactly the declared scopes in the Partner Portal (remove extras)."),
    ]  # fmt: skip
    separate = _separate_check(client.credential_separation)
    if separate is not None:  # only when both are here to compare (else APP-4 is attested)
        checks.append(separate)
    snapshot = {"credential": me.credential_id, "environment": me.environment,
                "scopes": sorted(me.scopes)}  # fmt: skip
    return StepResult(IDENTITY_STEP, title, tuple(checks), resource=me, snapshot=snapshot)


def credential_separation(s: OnyxSettings, environ: Mapping[str, str]) -> SecretComparison | None:
    """Preview vs production as keyed digests, when both credentials are in ``environ`` (read
    when the client is built, from the environment the run was given; no secret is kept)."""
    names = (s.preview_credential_env, s.production_credential_env)
    if not all(n and environ.get(n) for n in names):
        return None
    env = dict(environ)
    preview = secret_from_env(
        s.preview_credential_env, purpose="Onyx preview credential", environ=env
    )
    production = secret_from_env(s.production_credential_env, purpose="Onyx production credential",
                                 environ=env)  # fmt: skip
    return compare_secrets(preview, production)


def _separate_check(result: SecretComparison | None) -> Check | None:
    if result is None:
        return None
    return Check("credential.separate", "Preview and production credentials differ",
                 "PASS" if result.differ else "FAIL",
                 "keyed digests differ" if result.differ else "the two credentials are the same value",
                 evidence=result.to_dict(),
                 remedy=None if result.differ else "issue separate preview and production credentials.")  # fmt: skip


# -- launch approval ------------------------------------------------------------------------------
def launch_step(client: OnyxClient, params: Any, me: Any) -> StepResult:
    s: OnyxSettings = params.settings
    title = "Onyx launch approval"
    if me is None:
        return skipped(LAUNCH_STEP, title, ("launch.approval",), "credential not readable")
    declared = [(d.market, d.capability, d.environment) for d in s.launch]
    pending = me.unapproved(declared)
    names = [f"{p.market} {p.capability} {p.environment}: {p.status}" for p in pending]
    check = Check("launch.approval", "Every declared market × capability × environment approved",
                  "FAIL" if pending else "PASS",
                  "pending: " + "; ".join(names) if pending else f"{len(declared)} approval(s) approved",
                  evidence={"declared": [list(d) for d in declared],
                            "pending": [p.to_dict() for p in pending]},
                  request_ids=_rids(me.request_id),
                  remedy="request launch approval in the Partner Portal for: " + "; ".join(names)
                  if pending else None)  # fmt: skip
    rows = [[a.market, a.capability, a.environment, a.status] for a in me.launch]
    snapshot = {"launch": sorted("/".join(r) for r in rows)}
    return StepResult(LAUNCH_STEP, title, (check,), resource=me,
                      tables=(("Launch approvals", ["market", "capability", "environment", "status"], rows),),
                      snapshot=snapshot)  # fmt: skip


# -- the provider's own go-live steps -------------------------------------------------------------
class _Wait:
    def __init__(self, run: Any, timeout: float) -> None:
        self.run, self.deadline = run, time.monotonic() + timeout

    def until(self, probe: Callable[[], Any], interval: float = 0.2) -> Any:
        while True:
            value = probe()
            if value or time.monotonic() >= self.deadline:
                return value
            self.run._sleep(interval)


def golive_steps(run: Any) -> Iterator[StepResult]:
    """Messaging (reachability → pre-send → send), its lifecycle, webhooks, connectivity, support."""
    s: OnyxSettings = run.params.settings
    client: OnyxClient | None = run.client if run.token_ok else None
    state: dict[str, Any] = {}
    yield _messaging(run, client, s, state)
    yield _lifecycle(run, s, state)
    yield _webhooks(run, client, s, state)
    yield _connectivity(run, client, s, state)
    yield _support(run, s, state)


def _messaging(run: Any, client: OnyxClient | None, s: OnyxSettings, state: dict) -> StepResult:
    step, title = "messaging", "Messaging in Onyx's order (reachability → pre-send → send)"
    ids = ("messaging.reachability", "messaging.pre_send", "messaging.send")
    if client is None:
        return skipped(step, title, ids, "no accepted credential")
    blocked = run.send_blocked_by_preflight()
    if blocked:  # the runbook's rule for every controlled send
        return skipped(step, title, ids, blocked)
    if any(c.check_id == "launch.approval" and c.failed for c in run.recorder.checks):
        pass  # the send itself is refused with FEATURE_GATED then: the checks below show it
    try:
        attempt = checked_send(
            client, app_id=s.app_id, subject=s.test_subject, thread_id=s.thread_id,
            intent=s.intent, body=s.message_body.replace("{run_id}", run.run_id),
            idempotency_key=f"rb-{run.run_id}-onyx-send-1",
        )  # fmt: skip
    except RunbookError as exc:
        return StepResult(step, title, (_fail("messaging.reachability", "Reachability", exc),))
    state["attempt"] = attempt
    return StepResult(step, title, tuple(_attempt_checks(attempt)), resource=attempt,
                      details={"order": " → ".join(attempt.steps)})  # fmt: skip


def _attempt_checks(a: MessagingAttempt) -> list[Check]:
    action = action_for(a.reason_code)
    r = a.reachability
    out = [Check("messaging.reachability", "Test subject reachable",
                 "FAIL" if a.blocked_at == "reachability" else "PASS",
                 f"consent {r.consent_state}, thread {r.thread_state}"
                 + (f", blocked: {a.reason_code}" if a.blocked_at == "reachability" else ""),
                 evidence=r.to_dict(), request_ids=_rids(r.request_id),
                 remedy=action if a.blocked_at == "reachability" else None)]  # fmt: skip
    if a.pre_send is None:
        out.append(Check("messaging.pre_send", "Pre-send check allows the intent", "SKIP",
                         f"not asked: reachability blocked ({a.reason_code})"))  # fmt: skip
    else:
        blocked = a.blocked_at == "pre-send"
        out.append(Check("messaging.pre_send", "Pre-send check allows the intent",
                         "FAIL" if blocked else "PASS",
                         f"outcome {a.pre_send.outcome}" + (f", reason {a.reason_code}" if blocked else ""),
                         evidence=a.pre_send.to_dict(), request_ids=_rids(a.pre_send.request_id),
                         remedy=action if blocked else None))  # fmt: skip
    if a.sent:
        acc = a.acceptance
        out.append(Check("messaging.send", "Controlled send accepted", "PASS",
                         f"{acc.message_id} {acc.status}", evidence=acc.to_dict(),
                         request_ids=_rids(acc.request_id)))  # fmt: skip
    elif a.blocked_at == "send":
        out.append(Check("messaging.send", "Controlled send accepted", "FAIL",
                         f"blocked at send: {a.reason_code}", request_ids=_rids(a.request_id),
                         remedy=action))  # fmt: skip
    else:
        out.append(Check("messaging.send", "Controlled send accepted", "SKIP",
                         f"not attempted: blocked at {a.blocked_at} ({a.reason_code})"))  # fmt: skip
    return out


def _lifecycle(run: Any, s: OnyxSettings, state: dict) -> StepResult:
    step, title = "message_lifecycle", "Message lifecycle (webhooks, by sequence)"
    attempt = state.get("attempt")
    if attempt is None or not attempt.sent:
        return skipped(step, title, ("messaging.lifecycle",), "no accepted send")
    message_id = attempt.acceptance.message_id

    def final() -> Any:
        lc = reconstruct(run.events.events_for(message_id=message_id), LIFECYCLE).messages.get(
            message_id
        )
        return lc if lc is not None and lc.is_terminal else None

    lifecycle = _Wait(run, s.lifecycle_timeout_seconds).until(final)
    if lifecycle is None:
        lifecycle = reconstruct(
            run.events.events_for(message_id=message_id), LIFECYCLE
        ).messages.get(message_id)
    states = [st for st in STATES if lifecycle and lifecycle.seen(st)]
    ok = lifecycle is not None and lifecycle.seen("QUEUED") and lifecycle.state == "DELIVERED"
    state["lifecycle"] = lifecycle
    check = Check("messaging.lifecycle", "message.allowed → message.delivery_updated (delivered)",
                  "PASS" if ok else "FAIL",
                  f"{message_id}: {' → '.join(states) or 'no events'}",
                  evidence={"messageId": message_id, "states": states},
                  remedy=None if ok else "the receiver must store Onyx's signed message events; "
                  "check the webhook endpoint and its event history.")  # fmt: skip
    return StepResult(step, title, (check,), resource=lifecycle)


def _webhooks(run: Any, client: OnyxClient | None, s: OnyxSettings, state: dict) -> StepResult:
    step, title = "webhooks", "Webhooks: endpoint, test event, replay, history"
    ids = ("webhooks.endpoint", "webhooks.test_event", "webhooks.replay", "webhooks.history")
    if client is None:
        return skipped(step, title, ids, "no accepted credential")
    checks: list[Check] = []
    try:
        hooks = client.webhooks()
    except RunbookError as exc:
        return StepResult(step, title, (_fail("webhooks.endpoint", "Endpoint registered", exc),))
    env = client.environment if client.environment != "sandbox" else "sandbox"
    mine = [h for h in hooks if h.url == s.webhook_url and h.status != "disabled"]
    hook = next((h for h in mine if h.environment in (None, env)), None)
    checks.append(Check("webhooks.endpoint", "Endpoint registered for this environment",
                        "PASS" if hook else "FAIL",
                        f"{hook.webhook_id} → {hook.url} ({hook.status})" if hook
                        else f"no enabled endpoint for {s.webhook_url} in {env}",
                        evidence={"webhooks": [h.to_dict() for h in hooks]},
                        remedy=None if hook else "register the endpoint (Partner Portal or "
                        "POST /v1/partner/webhooks) for this environment."))  # fmt: skip
    if hook is None:
        checks += [Check(c, c, "SKIP", "no endpoint") for c in ids[1:3]]
    else:
        checks.append(_test_event(run, client, hook.webhook_id, s))
        checks.append(_replay(run, client, state, s))
    try:
        history = client.events()
        failing = history.failing()
        checks.append(Check("webhooks.history", "Event history free of failing deliveries",
                            "FAIL" if failing else "PASS",
                            f"{len(failing)} failing of {len(history.events)}: "
                            + ", ".join(f"{e.event_id} {e.delivery_status}" for e in failing[:5])
                            if failing else f"{len(history.events)} event(s), none failing",
                            evidence={"failing": [e.to_dict() for e in failing]},
                            request_ids=history.request_ids[:3],
                            remedy="fix the endpoint, then replay the failed events." if failing else None))  # fmt: skip
    except RunbookError as exc:
        checks.append(_fail("webhooks.history", "Event history", exc))
    return StepResult(step, title, tuple(checks))


def _test_event(run: Any, client: OnyxClient, webhook_id: str, s: OnyxSettings) -> Check:
    title = "Test event delivered and found in the event store"
    blocked = run.unmet_requirement("webhooks.test_event")
    if blocked is not None:  # nothing could receive it: not sent, not waited for (BLOCKED)
        return Check(
            "webhooks.test_event", title, "SKIP", f"not sent: {blocked.check_id} is not met"
        )
    try:
        sent = client.test_webhook(webhook_id)
    except RunbookError as exc:
        return _fail("webhooks.test_event", title, exc)
    key = resource_key("webhook", webhook_id)
    found = _Wait(run, s.lifecycle_timeout_seconds).until(
        lambda: any(e.event_id == sent.event_id for e in run.events.events_for(conversation_id=key))
    )
    return Check("webhooks.test_event", title, "PASS" if found else "FAIL",
                 f"{sent.event_id} {'found' if found else 'not found'} in the event store "
                 "(stored only after its signature verified)",
                 evidence=sent.to_dict(), request_ids=_rids(sent.request_id),
                 remedy=None if found else "the endpoint must verify the Standard Webhooks "
                 "signature and store the event before answering 2xx.")  # fmt: skip


def _replay(run: Any, client: OnyxClient, state: dict, s: OnyxSettings) -> Check:
    title = "A past event replayed is deduplicated by the receiver"
    lifecycle = state.get("lifecycle")
    events = list(lifecycle.events) if lifecycle else []
    if not events:
        return Check("webhooks.replay", title, "SKIP", "no stored event of this run to replay")
    return replay_deduplicated(
        client, run.events, events[0].event_id, check_id="webhooks.replay", title=title,
        key=f"rb-{run.run_id}-replay-{uuid.uuid4().hex[:8]}",
        timeout=s.lifecycle_timeout_seconds, sleep=run._sleep,
    )  # fmt: skip


def stored_copies(source: Any, event_id: str) -> tuple[int, int]:
    """(rows, delivery count) of ``event_id`` in the event store (0, 0 when absent)."""
    import polars as pl

    rows = source.load().filter(pl.col("event_id") == event_id)
    return rows.height, int(rows["delivery_count"].sum() or 0) if rows.height else 0


def replay_deduplicated(
    client: OnyxClient,
    source: Any,
    event_id: str,
    *,
    check_id: str,
    title: str,
    key: str,
    timeout: float,
    sleep: Callable[[float], None],
) -> Check:
    """Replay an event the receiver has: PASS when it arrives again (delivery count rises) and is
    still stored once. The go-live's replay check and the replay drill are this one function."""
    before_rows, before = stored_copies(source, event_id)
    if before_rows == 0:
        return Check(check_id, title, "SKIP", f"{event_id} is not in the event store")
    try:
        replay = client.replay(event_id, idempotency_key=key)
    except RunbookError as exc:
        return _fail(check_id, title, exc)
    deadline = time.monotonic() + timeout
    rows, count = stored_copies(source, event_id)
    while count <= before and time.monotonic() < deadline:
        sleep(0.2)
        rows, count = stored_copies(source, event_id)
    ok = count > before and rows == 1
    summary = (f"{event_id} replayed ({replay.delivery_id}): stored {rows} time(s), "
               f"delivery count {before} → {count}")  # fmt: skip
    return Check(check_id, title, "PASS" if ok else "FAIL", summary,
                 evidence=replay.to_dict(), request_ids=_rids(replay.request_id),
                 remedy=None if ok else "the receiver must answer 2xx to a redelivery and "
                 "deduplicate it by webhook-id (one stored event).")  # fmt: skip


def _connectivity(run: Any, client: OnyxClient | None, s: OnyxSettings, state: dict) -> StepResult:
    step, title = "connectivity", "Partner connectivity (catalogue, order, provisioning, usage)"
    ids = ("connectivity.catalogue", "connectivity.packages", "connectivity.order",
           "connectivity.idempotency", "connectivity.provisioning", "connectivity.usage")  # fmt: skip
    c = s.connectivity
    if not c.enabled:
        return skipped(step, title, ids, "onyx.connectivity.enabled is false")
    if client is None:
        return skipped(step, title, ids, "no accepted credential")
    checks: list[Check] = []
    try:
        cat = client.catalogue()
    except RunbookError as exc:
        return StepResult(step, title, (_fail("connectivity.catalogue", "Catalogue", exc),))
    same = cat.catalogue_version == c.approved_catalogue_version
    checks.append(Check("connectivity.catalogue", "Catalogue version equals the approved one",
                        "PASS" if same else "FAIL",
                        f"catalogue {cat.catalogue_version} (approved {c.approved_catalogue_version})",
                        request_ids=_rids(cat.request_id),
                        remedy=None if same else "review the new catalogue version and record it as "
                        "onyx.connectivity.approved_catalogue_version, or wait for Onyx to restore it."))  # fmt: skip
    gone = cat.unavailable()
    checks.append(Check("connectivity.packages", "Unavailable packages flagged (hidden from sale)",
                        "WARN" if gone else "PASS",
                        "unavailable: " + ", ".join(p.package_id for p in gone) if gone
                        else "every package is available",
                        evidence={"unavailable": [p.package_id for p in gone]}))  # fmt: skip
    if not c.test_package or not same:
        checks += [Check(i, i, "SKIP", "no test_package" if not c.test_package else "catalogue differs")
                   for i in ids[2:]]  # fmt: skip
        return StepResult(step, title, tuple(checks))
    key, ref = f"rb-{run.run_id}-order-1", f"golive-{run.run_id}"
    try:
        first = client.create_order(
            package_id=c.test_package, partner_order_id=ref, idempotency_key=key
        )
        again = client.create_order(
            package_id=c.test_package, partner_order_id=ref, idempotency_key=key
        )
    except RunbookError as exc:
        checks.append(_fail("connectivity.order", "Order created", exc))
        return StepResult(step, title, tuple(checks))
    state["order"] = first
    checks.append(Check("connectivity.order", "Order created with an idempotency-key", "PASS",
                        f"{first.order_id} {first.status}", evidence=first.to_dict(),
                        request_ids=_rids(first.request_id)))  # fmt: skip
    conflict: str | None = None
    try:
        client.create_order(
            package_id=c.test_package, partner_order_id=ref + "-other", idempotency_key=key
        )
    except RunbookError as exc:
        conflict = exc.code
    ok = (
        again.order_id == first.order_id
        and not again.created
        and conflict == "idempotency_conflict"
    )
    checks.append(Check("connectivity.idempotency", "Same key → same order; other body → idempotency_conflict",
                        "PASS" if ok else "FAIL",
                        f"replay → {again.order_id}{' (same)' if again.order_id == first.order_id else ''}; "
                        f"other body → {conflict or 'accepted'}"))  # fmt: skip
    settled = ("esim_ready", "installed", "failed", "manual_review")

    def settled_order() -> Any:
        now = client.order(first.order_id)
        return now if now.status in settled else None

    order = _Wait(run, c.provisioning_timeout_seconds).until(settled_order) or client.order(
        first.order_id
    )
    state["order"] = order
    ready = order.status in ("esim_ready", "installed")
    checks.append(Check("connectivity.provisioning", "Order followed to esim_ready (state verbatim)",
                        "PASS" if ready else "FAIL", f"{order.order_id}: {order.status}",
                        evidence=order.to_dict(), request_ids=_rids(order.request_id),
                        remedy=None if ready else "manual_review or a stuck order is Onyx's escalation "
                        "trigger: quote the order id to Onyx support."))  # fmt: skip
    usage_check = Check("connectivity.usage", "Usage visible with observedAt", "SKIP", "no eSIM")
    if ready:
        try:
            esim = next((e for e in client.esims() if e.order_id == order.order_id), None)
            if esim is not None:
                state["esim"] = esim
                usage = client.usage(esim.iccid)
                usage_check = Check("connectivity.usage", "Usage visible with observedAt",
                                    "PASS" if usage.observed_at else "FAIL",
                                    f"{usage.status}, observed at {usage.observed_at}",
                                    evidence=usage.to_dict(), request_ids=_rids(usage.request_id))  # fmt: skip
        except RunbookError as exc:
            usage_check = _fail("connectivity.usage", "Usage visible", exc)
    checks.append(usage_check)
    return StepResult(step, title, tuple(checks))


def _support(run: Any, s: OnyxSettings, state: dict) -> StepResult:
    step, title = "support_first_checks", "Support handoff: first checks"
    attempt: MessagingAttempt | None = state.get("attempt")
    lifecycle = state.get("lifecycle")
    order, esim = state.get("order"), state.get("esim")
    reach = attempt.reachability.to_dict() if attempt else {}
    block = {
        "appId": s.app_id,
        "user": _mask(s.test_subject),
        "orderId": getattr(order, "order_id", None),
        "packageId": getattr(order, "package_id", None),
        "consent": reach.get("consentState"),
        "permission": attempt.pre_send.outcome if attempt and attempt.pre_send else None,
        "serviceState": getattr(esim, "status", None),
        "reasonCode": attempt.reason_code if attempt else None,
        "lastSuccessfulEvent": lifecycle.events[-1].event_id
        if lifecycle and lifecycle.events
        else None,
    }
    text = repr(block)
    leaked = [v for v in (s.test_subject, getattr(esim, "iccid", None)) if v and v in text]
    check = Check("support.first_checks", "First-checks block free of sensitive material",
                  "FAIL" if leaked else "PASS",
                  "identifiers masked, no activation material" if not leaked
                  else f"{len(leaked)} unmasked identifier(s) in the block",
                  evidence={"fields": sorted(block)})  # fmt: skip
    return StepResult(step, title, (check,), details=block)


def _mask(value: str) -> str:
    return value[:4] + "•" * max(len(value) - 6, 1) + value[-2:] if len(value) > 6 else "••••"
