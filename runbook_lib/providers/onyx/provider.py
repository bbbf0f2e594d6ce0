"""Onyx behind the provider protocol: the one object the registry hands out as ``onyx``."""

from __future__ import annotations

import contextlib
import os
import secrets as _random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ...core.events import WebhookEvent
from ...core.parameters import RunbookParameters
from ...core.signing import STANDARD_WEBHOOKS
from ..base import WEBHOOK_ENDPOINT_CHECK, ExportFormat, ExtraSend, SandboxKit, StepResult
from . import steps
from .client import OnyxClient, build_onyx_client
from .contract import LIFECYCLE, event_from_envelope, probe_envelope
from .settings import OnyxSettings

__all__ = ["PROVIDER", "OnyxProvider"]


class OnyxProvider:
    """Onyx partner platform v1: partner credential, launch approval, consent-aware messaging,
    Standard Webhooks with replay, partner connectivity orders."""

    kind = "onyx"
    title = "Onyx"
    identity_name = "me"
    sender_label = "appId"
    audit_context_title = "Onyx partner context"
    signature = STANDARD_WEBHOOKS
    lifecycle = LIFECYCLE
    settings_model = OnyxSettings
    credential_name = "partner credential"
    acceptance = (202, "accepted")
    # messaging is Onyx's controlled send (the runbook's rule: never after a failed preflight);
    # what waits for its webhooks waits for nothing when the endpoint is down
    preconditions = {
        "messaging.*": ("preflight.*",),
        "messaging.lifecycle": ("messaging.send", WEBHOOK_ENDPOINT_CHECK),
        "webhooks.test_event": (WEBHOOK_ENDPOINT_CHECK,),
        "webhooks.replay": (WEBHOOK_ENDPOINT_CHECK,),
        "webhooks.history": (WEBHOOK_ENDPOINT_CHECK,),
        "drill.replay_known_event": (WEBHOOK_ENDPOINT_CHECK,),
        "drill.endpoint_outage": (WEBHOOK_ENDPOINT_CHECK,),
    }
    drills = (
        "revoked_credential",
        "wrong_environment_key",
        "missing_scope",
        "blocked_send",
        "consent_revoked",
        "consent_expired",
        "signed_in_without_consent",
        "replay_known_event",
        "webhook_signature",
        "endpoint_outage",
    )
    support_note = (
        "Quote the app id, the masked user reference, the order and package ids, the reason code "
        "and the last successful event id to Onyx support; never activation material."
    )

    # -- credentials → client ------------------------------------------------------------------
    def build_client(
        self,
        params: RunbookParameters,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> OnyxClient:
        from ...core.retry import RetryPolicy

        r = params.retry
        client = build_onyx_client(
            base_url=params.provider.base_url,
            credential_env=self.credential_env(params),
            environment=params.environment,
            environ=environ,
            retry=RetryPolicy(max_attempts=r.max_attempts, base_delay=r.base_delay_seconds,
                              max_delay=r.max_delay_seconds),
            timeout=params.provider.timeout_seconds,
            sleep=sleep,
        )  # fmt: skip
        client.credential_separation = steps.credential_separation(
            params.settings, os.environ if environ is None else environ
        )
        return client

    def credential_env(self, params: RunbookParameters) -> str:
        return params.settings.credential_env

    def required_scopes(self) -> tuple[str, ...]:
        return ()  # the declared needs are checked exactly in the credential step

    # -- go-live steps ---------------------------------------------------------------------------
    def identity_step(self, client: OnyxClient, params: RunbookParameters) -> StepResult:
        return steps.identity_step(client, params)

    def skipped_identity(self, reason: str) -> StepResult:
        ids = ("credential.state", "credential.environment", "credential.scopes")
        return steps.skipped(steps.IDENTITY_STEP, "Partner credential", ids, reason)

    def senders_step(
        self, client: OnyxClient, params: RunbookParameters, identity: Any
    ) -> StepResult:
        return steps.launch_step(client, params, identity)

    def skipped_senders(self, reason: str) -> StepResult:
        return steps.skipped(
            steps.LAUNCH_STEP, "Onyx launch approval", ("launch.approval",), reason
        )

    def golive_steps(self, run: Any) -> Iterator[StepResult]:
        """Onyx's own steps after the launch approval (see :mod:`.steps`)."""
        return steps.golive_steps(run)

    def audit_steps(self, run: Any) -> tuple[StepResult, ...]:
        from .audit import audit_step

        return (audit_step(run),)

    def send_settings(self, params: RunbookParameters) -> None:
        return None  # the controlled send is golive_steps' messaging step (Onyx's order)

    def extra_sends(self, params: RunbookParameters, run_id: str) -> list[ExtraSend]:
        return []

    def send_payload(self, params: RunbookParameters, run_id: str) -> dict[str, Any]:
        s: OnyxSettings = params.settings
        return {"appId": s.app_id, "subject": s.test_subject, "threadId": s.thread_id,
                "intent": s.intent, "body": s.message_body.replace("{run_id}", run_id)}  # fmt: skip

    def sender_check_id(self, params: RunbookParameters) -> str:
        return "messaging.pre_send"

    def context_snapshot(self, identity: Any, senders: Any) -> dict[str, Any]:
        return {"credential": getattr(identity, "credential_id", None)}

    def audit_context_step(self, client: OnyxClient, params: RunbookParameters) -> StepResult:
        return steps.identity_step(client, params)

    def evidence_rules(
        self, request_log: list[Any], *, recorded_send: Any = None
    ) -> dict[str, Callable[[], tuple[Any, ...]]]:
        def orders_keyed() -> tuple[bool, str]:
            posts = [e for e in request_log if e.method == "POST" and e.path.endswith("/orders")]
            unkeyed = [e for e in posts if not e.idempotency_key]
            return (bool(posts) and not unkeyed,
                    f"{len(posts)} order request(s), {len(unkeyed)} without an idempotency-key")  # fmt: skip

        def answers_have_ids() -> tuple[bool, str]:
            answered = [e for e in request_log if e.status is not None]
            missing = [e for e in answered if not e.request_id]
            return (bool(answered) and not missing,
                    f"{len(answered)} answer(s), {len(missing)} without a requestId")  # fmt: skip

        return {
            "every_order_has_a_key": orders_keyed,
            "every_answer_has_a_request_id": answers_have_ids,
        }

    # -- events ----------------------------------------------------------------------------------
    def event_from_envelope(self, envelope: Any, **fields: Any) -> WebhookEvent:
        return event_from_envelope(envelope, **fields)

    def probe_envelope(self, event_type: str, **fields: Any) -> dict[str, Any]:
        return probe_envelope(event_type, **fields)

    def export_format(self) -> ExportFormat:
        from .exports import ENVELOPE_SCHEMA, REQUIRED, envelope_columns, model_columns

        return ExportFormat(schema=ENVELOPE_SCHEMA, required=REQUIRED, columns=envelope_columns,
                            model=model_columns)  # fmt: skip

    def public(self) -> dict[str, Any]:
        return {}

    # -- readiness, drills, sandbox --------------------------------------------------------------
    def readiness_catalog(self) -> str:
        return _catalog_text()

    def drill_functions(self) -> dict[str, Callable[..., Any]]:
        from .drills import DRILLS

        return DRILLS

    def sandbox(self) -> SandboxKit:
        from .sandbox import OnyxSandboxControl
        from .sandbox.faults import OnyxFaultProfile

        return SandboxKit(
            config=sandbox_config, run=run_sandbox, control=OnyxSandboxControl,
            fault_profile=OnyxFaultProfile, app=sandbox_app,
            new_credential=lambda prefix: "onyx_sk_test_" + prefix.replace("-", "_") + _random.token_hex(12),
        )  # fmt: skip


@dataclass(frozen=True)
class StackConfig:
    """An Onyx sandbox config plus the endpoint to register at start (as the Partner Portal
    would), built from the names every provider's kit takes."""

    sandbox: Any  # OnyxSandboxConfig
    register_url: str | None = None

    @property
    def credential(self) -> str:
        return self.sandbox.credential

    @property
    def client_id(self) -> str:  # what `runbook sandbox` prints as who the sandbox accepts
        return self.sandbox.credential_id


def sandbox_app(config: Any = None) -> Any:
    """The Onyx sandbox (its ``.app`` is the ASGI app) with a StackConfig's endpoint registered."""
    from .sandbox import OnyxSandbox

    stack = config if isinstance(config, StackConfig) else StackConfig(config)
    sandbox = OnyxSandbox(stack.sandbox)
    _register(sandbox, stack.register_url)
    return sandbox


def _register(sandbox: Any, url: str | None) -> None:
    """Register ``url`` for every event type Onyx sends (test events go to their endpoint)."""
    from .events import EVENT_TYPES

    if url:
        sandbox.state.outbox.register_webhook(url, [t for t in EVENT_TYPES if t != "webhook.test"])


def sandbox_config(
    *,
    client_secret: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    lifecycle_delay: float | None = None,
    **options: Any,
) -> StackConfig:
    """``client_secret`` is the partner credential; ``lifecycle_delay`` paces deliveries and
    order states; the rest are :class:`OnyxSandboxConfig` fields."""
    from .sandbox import OnyxSandboxConfig

    if lifecycle_delay is not None:
        options.setdefault("delivery_seconds", lifecycle_delay)
        options.setdefault("order_step_seconds", max(lifecycle_delay, 0.05))
    if client_secret is not None:
        options["credential"] = client_secret
    return StackConfig(OnyxSandboxConfig(webhook_secret=webhook_secret, **options), webhook_url)


@contextlib.contextmanager
def run_sandbox(config: Any = None, *, port: int = 0) -> Iterator[Any]:
    """A running Onyx sandbox (``config``: a :class:`StackConfig` or an ``OnyxSandboxConfig``);
    a StackConfig's endpoint is registered for every event type before the block starts."""
    from .sandbox import run_onyx_sandbox

    stack = config if isinstance(config, StackConfig) else StackConfig(config)
    with run_onyx_sandbox(stack.sandbox, port=port) as running:
        _register(running.sandbox, stack.register_url)
        yield running


@cache
def _catalog_text() -> str:
    return resources.files(__package__).joinpath("readiness.yaml").read_text(encoding="utf-8")


PROVIDER = OnyxProvider()
