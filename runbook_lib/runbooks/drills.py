"""Failure drills: provoke each failure path on purpose and assert the safe behaviour.

The provider names the drills it supports, in order (``Provider.drills``) and implements those
that speak its API (``Provider.drill_functions``; Red Cloud's: invalid credentials, revoked token,
invalid sendFrom, missing Idempotency-Key, webhook endpoint outage). The drills common to every
provider live here:

| drill             | provoked by                                                     | safe behaviour asserted |
|-------------------|-----------------------------------------------------------------|-------------------------|
| webhook_signature | an event signed with a wrong secret, POSTed to the integration's endpoint | 4xx, and nothing stored |

A drill that sends makes it with :meth:`DrillContext.send`: through the run's send ledger, under a
key of the run, like the controlled send — a re-run replays it, and support can trace it.

Drills that need provider-side control are SKIPped with the reason against a target the parameter
file does not declare a sandbox (``provider.sandbox``) — never reported as passed.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..core.checks import Check
from ..core.errors import RunbookError
from ..core.events import WebhookEvent
from ..core.ledger import SendLedger
from ..core.parameters import EventSourceParameters
from ..core.sends import Acceptance, ledgered_send
from ..providers.base import Provider, get_provider
from ..security.secrets import Secret
from ..sources import EventSource, PollingSource

__all__ = ["DrillContext", "client_factory", "run_drills"]


@dataclass
class DrillContext:
    """What the drills need: a working client, how to build others, and where events land.

    ``event_store`` is where the integration's events are read from: an
    :class:`~runbook_lib.sources.EventSource` (a go-live passes a ``PollingSource``), or the path
    of a receiver store. ``ledger`` and ``run_id`` are the run's send ledger (a go-live passes
    its own): every drill send goes in it (:meth:`send`).
    """

    client: Any
    make_client: Callable[[Secret], Any]
    send_from: str
    to: str
    endpoint_url: str | None
    event_store: EventSource | Path
    sandbox_url: str | None
    key_prefix: str = "drill"
    outage_seconds: float = 2.0
    timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] = lambda line: None
    provider: Provider = field(default_factory=get_provider)
    params: Any = None  # the run's parameters (a provider's drills read its own section)
    webhook_secret: str | None = None  # the endpoint's signing secret (drills that sign events)
    # the failed check a drill's check id requires, if any (the run's preconditions, plus the
    # check ids given after it: a sending drill names its sender's check): not run then
    unmet: Callable[..., Check | None] = lambda check_id, *extra: None
    # the check of the controlled send's sender (``Provider.sender_check_id``): a drill that
    # sends from it needs it (None: the run checked no sender)
    sender_check: str | None = None
    ledger: SendLedger | None = None
    run_id: str | None = None

    def sender_unusable(self, check_id: str, title: str, *sender_checks: str) -> Check | None:
        """None when the drill ``check_id`` may send from a sender whose check is
        ``sender_checks`` (default: the controlled send's); else its SKIP requiring those checks,
        which the run shows BLOCKED by the failed one (a send from a failed sender proves
        nothing, and must not be made)."""
        needs = sender_checks or ((self.sender_check,) if self.sender_check else ())
        if not needs or all(self.unmet(check_id, need) is None for need in needs):
            return None
        return Check(check_id, title, "SKIP", f"not sent: {', '.join(needs)} not met",
                     requires=needs)  # fmt: skip

    def send_key(self, name: str) -> str:
        """The idempotency key of the drill send ``name``: the same on every re-run of the run."""
        return f"{self.key_prefix}-{name}"

    def send(self, name: str, payload: dict[str, Any]) -> Acceptance:
        """A drill's send (``name``: which, e.g. ``outage``) with the client's ``send``, recorded
        in the run's ledger as step ``drill-<name>`` under :meth:`send_key` before the request.

        Without a ledger (a drill run on its own) the send is made under the same key.
        """
        key = self.send_key(name)
        if self.ledger is None or self.run_id is None:
            return self.client.send(payload, idempotency_key=key)
        return ledgered_send(self.client, self.ledger, run_id=self.run_id, step=f"drill-{name}",
                             idempotency_key=key, payload=payload)  # fmt: skip

    @property
    def source(self) -> EventSource:
        if isinstance(self.event_store, (str, Path)):
            params = EventSourceParameters(kind="receiver_sqlite", path=Path(self.event_store))
            return PollingSource(params)
        return self.event_store

    def events_for(self, message_id: str) -> list[WebhookEvent]:
        """The message's events so far."""
        return self.source.events_for(message_id=message_id)


def _now() -> str:
    """Now in ISO-8601 UTC: a scheme that signs no timestamp judges the envelope's (SendAPI)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _drill_webhook_signature(ctx: DrillContext) -> Check:
    title = "Badly signed webhook rejected and not stored"
    if not ctx.endpoint_url:
        return Check("drill.webhook_signature", title, "SKIP", "webhooks.endpoint_url is not set")
    scheme = ctx.provider.signature
    message_id = "msg_drill_" + secrets.token_hex(6)
    event_id = "evt_drill_" + secrets.token_hex(6)
    envelope = ctx.provider.probe_envelope(
        ctx.provider.lifecycle.outbound_events[0], event_id=event_id, message_id=message_id,
        sequence=1, conversation_id="conv_drill", now=_now(),
    )  # fmt: skip
    body = json.dumps(envelope).encode()
    headers = scheme.sign(scheme.generate_secret(), event_id, body)
    try:
        status = httpx.post(ctx.endpoint_url, content=body, headers=headers, timeout=10).status_code
    except httpx.HTTPError as exc:
        return Check("drill.webhook_signature", title, "FAIL", f"endpoint unreachable: {type(exc).__name__}",
                     remedy="check webhooks.endpoint_url and that the receiver runs.")  # fmt: skip
    stored = any(e.event_id == event_id for e in ctx.events_for(message_id))
    ok = 400 <= status < 500 and not stored
    return Check("drill.webhook_signature", title, "PASS" if ok else "FAIL",
                 f"endpoint answered {status}; event {'STORED' if stored else 'not stored'}",
                 {"status": status, "stored": stored},
                 remedy=None if ok else "verify signatures against the raw body before storing; answer 4xx.")  # fmt: skip


COMMON_DRILLS: dict[str, Callable[[DrillContext], Check]] = {
    "webhook_signature": _drill_webhook_signature,
}


def run_drills(ctx: DrillContext) -> list[Check]:
    """Run the provider's drills in order; an unexpected error in one is that drill's FAIL."""
    own = ctx.provider.drill_functions()
    checks = []
    for name in ctx.provider.drills:
        drill = own.get(name) or COMMON_DRILLS[name]
        blocked = ctx.unmet(f"drill.{name}")
        if blocked is not None:  # e.g. the webhook endpoint is down: the drill would only wait
            reason = f"not run: {blocked.check_id} is not met"
            checks.append(Check(f"drill.{name}", name.replace("_", " "), "SKIP", reason))
            continue
        ctx.progress(f"drill {name} …")
        try:
            checks.append(drill(ctx))
        except (RunbookError, httpx.HTTPError) as exc:
            checks.append(
                Check(
                    f"drill.{name}",
                    name.replace("_", " "),
                    "FAIL",
                    f"the drill could not run: {exc}",
                )
            )
    return checks


def client_factory(template: Any) -> Callable[[Secret], Any]:
    """Build clients like ``template`` but with another credential (the invalid-credentials drill)."""
    return template.with_credential
