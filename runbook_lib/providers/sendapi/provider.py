"""SendAPI behind the provider protocol: the one object the registry hands out as ``sendapi``."""

from __future__ import annotations

import secrets as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ...core.events import WebhookEvent
from ...core.parameters import RunbookParameters
from ...security.secrets import secret_from_env
from ..base import WEBHOOK_ENDPOINT_CHECK, ExportFormat, ExtraSend, SandboxKit, StepResult
from . import steps
from .client import RetrySettings
from .contract import LIFECYCLE, SENDAPI_SIGNATURE, event_from_envelope, probe_envelope
from .keys import check_key_mode
from .runbook_client import RunbookClient, channel_payload
from .settings import SendApiSettings
from .steps import SENDER_CHECKS

__all__ = ["PROVIDER", "SendApiProvider"]


@dataclass(frozen=True)
class ChannelSend:
    """The controlled send of one channel, in the shape the go-live's send steps read."""

    channel: str
    enabled: bool
    send_from: str
    to: str
    allowlist: list[str]
    max_sends: int
    expect: str
    lifecycle_timeout_seconds: float


class SendApiProvider:
    """SendAPI v1: API key, account usage, sender ids / WhatsApp sessions / email domains."""

    kind = "sendapi"
    title = "SendAPI"
    identity_name = "account"
    sender_label = "sender"
    audit_context_title = steps.AUDIT_CONTEXT_TITLE
    signature = SENDAPI_SIGNATURE
    lifecycle = LIFECYCLE
    credential_name = "API key"
    acceptance = (201, "queued")  # WhatsApp answers status "accepted"
    settings_model = SendApiSettings
    # its drills that post to the integration's endpoint wait for nothing when it is down
    preconditions = {
        "drill.endpoint_ack": (WEBHOOK_ENDPOINT_CHECK,),
        # it disconnects, then reconnects, the declared session: not one that is already down
        "drill.session_disconnected": (WEBHOOK_ENDPOINT_CHECK, SENDER_CHECKS["whatsapp"]),
    }
    drills = ("invalid_key", "revoked_key", "expired_key", "scope_limited_key", "rate_limited",
              "idempotency_mismatch", "missing_key", "webhook_signature", "endpoint_ack", "webhook_outage",
              "session_disconnected")  # fmt: skip
    support_note = (
        "Quote the message id (sms_/msg_/eml_) and the acceptance request id (req_) to SendAPI "
        "support; 201 proves acceptance only, the webhook states above prove the rest."
    )

    # -- credentials → client ------------------------------------------------------------------
    def build_client(
        self,
        params: RunbookParameters,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunbookClient:
        s: SendApiSettings = params.settings
        key = secret_from_env(s.api_key_env, purpose=self.credential_name, environ=environ)
        r = params.retry
        retry = RetrySettings(max_attempts=r.max_attempts, base_delay=r.base_delay_seconds,
                              max_delay=r.max_delay_seconds,
                              max_retry_after=r.max_retry_after_seconds)  # fmt: skip
        return RunbookClient(
            key_check=check_key_mode(key, params.environment), api_key=key,
            base_url=params.provider.base_url, timeout=params.provider.timeout_seconds,
            retry=retry, sleep=sleep,
        )  # fmt: skip

    def credential_env(self, params: RunbookParameters) -> str:
        return params.settings.api_key_env

    def required_scopes(self) -> tuple[str, ...]:
        return ()

    # -- go-live steps ---------------------------------------------------------------------------
    def identity_step(self, client: RunbookClient, params: RunbookParameters) -> StepResult:
        return steps.identity_step(client, params)

    def skipped_identity(self, reason: str) -> StepResult:
        return steps.skipped_identity(reason)

    def senders_step(
        self, client: RunbookClient, params: RunbookParameters, identity: Any
    ) -> StepResult:
        return steps.senders_step(client, params, identity)

    def skipped_senders(self, reason: str) -> StepResult:
        return steps.skipped_senders(reason)

    def golive_steps(self, run: Any) -> tuple[StepResult, ...]:
        return ()  # its per-channel checks are in the sender inventory, its sends are ExtraSends

    def audit_steps(self, run: Any) -> tuple[StepResult, ...]:
        from .audit import audit_step

        return (audit_step(run),)

    def send_settings(self, params: RunbookParameters) -> ChannelSend:
        s: SendApiSettings = params.settings
        channel = s.primary_channel()
        t = s.test_send
        sender = {"sms": s.sender_id, "whatsapp": s.whatsapp_session_id, "email": s.email_from}
        return ChannelSend(
            channel=channel, enabled=t.enabled, send_from=f"{channel} {sender[channel]}",
            to=getattr(t, channel) or "", allowlist=list(t.allowlist), max_sends=t.max_sends,
            expect=t.expect, lifecycle_timeout_seconds=t.lifecycle_timeout_seconds,
        )  # fmt: skip

    def send_payload(self, params: RunbookParameters, run_id: str) -> dict[str, Any]:
        s: SendApiSettings = params.settings
        channel = s.primary_channel()
        to = getattr(s.test_send, channel)
        text = s.test_send.body.replace("{run_id}", run_id)
        return channel_payload(s, channel, to, text, f"SendAPI go-live test {run_id}")

    def extra_sends(self, params: RunbookParameters, run_id: str) -> list[ExtraSend]:
        """One controlled send per declared channel after the first (which gets the send,
        replay, lifecycle and support steps)."""
        s: SendApiSettings = params.settings
        if not s.test_send.enabled:
            return []
        text = s.test_send.body.replace("{run_id}", run_id)
        return [
            ExtraSend(channel, channel_payload(s, channel, getattr(s.test_send, channel), text,
                                               f"SendAPI go-live test {run_id}"),
                      SENDER_CHECKS[channel])
            for channel in s.channels[1:]
        ]  # fmt: skip

    def sender_check_id(self, params: RunbookParameters) -> str:
        return SENDER_CHECKS[params.settings.primary_channel()]

    def context_snapshot(self, identity: Any, senders: Any) -> dict[str, Any]:
        return steps.context_snapshot(identity, senders)

    def audit_context_step(self, client: RunbookClient, params: RunbookParameters) -> StepResult:
        return steps.audit_context_step(client, params)

    def evidence_rules(
        self, request_log: list[Any], *, recorded_send: Any = None
    ) -> dict[str, Callable[[], tuple[Any, ...]]]:
        return steps.evidence_rules(request_log, recorded_send=recorded_send)

    # -- events ----------------------------------------------------------------------------------
    def event_from_envelope(
        self, envelope: Mapping[str, Any] | str | bytes, **fields: Any
    ) -> WebhookEvent:
        return event_from_envelope(envelope, **fields)

    def probe_envelope(self, event_type: str, **fields: Any) -> dict[str, Any]:
        return probe_envelope(event_type, **fields)

    def export_format(self) -> ExportFormat:
        import polars as pl

        schema = {"id": pl.String, "event": pl.String, "timestamp": pl.String,
                  "data": pl.Struct({"id": pl.String, "status": pl.String, "to": pl.String})}  # fmt: skip

        def columns(_: Any) -> dict[str, Any]:
            return {"event_id": pl.col("id"), "event_type": pl.col("event"),
                    "message_id": pl.col("data").struct.field("id"),
                    "status": pl.col("data").struct.field("status"),
                    "created_at": pl.col("timestamp")}  # fmt: skip

        return ExportFormat(schema=schema, required=("id", "event"), columns=columns)

    def public(self) -> dict[str, Any]:
        return {}

    # -- readiness, drills, sandbox --------------------------------------------------------------
    def readiness_catalog(self) -> str:
        return _catalog_text()

    def drill_functions(self) -> dict[str, Callable[..., Any]]:
        from .drills import DRILLS

        return DRILLS

    def sandbox(self) -> SandboxKit:
        from .sandbox import SandboxControl, SendApiFaultProfile, SendApiSandbox, run_sandbox
        from .sandbox.config import SandboxConfig

        def config(*, client_secret: str | None = None, **options: Any) -> SandboxConfig:
            """The kit's common ``client_secret`` is SendAPI's account key (``sk_test_…``)."""
            return SandboxConfig(**({"api_key": client_secret} if client_secret else {}), **options)

        return SandboxKit(
            config=config, run=run_sandbox, control=SandboxControl, fault_profile=SendApiFaultProfile,
            app=SendApiSandbox,
            new_credential=lambda prefix: "sk_test_" + prefix.replace("-", "_") + _random.token_hex(8),
        )  # fmt: skip


@cache
def _catalog_text() -> str:
    return resources.files(__package__).joinpath("readiness.yaml").read_text(encoding="utf-8")


PROVIDER = SendApiProvider()
