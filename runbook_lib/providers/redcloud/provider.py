"""Red Cloud behind the provider protocol: the one object the registry hands out as ``redcloud``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from ...core.events import WebhookEvent
from ...core.parameters import RunbookParameters
from ...core.signing import STANDARD_WEBHOOKS
from ..base import ExportFormat, SandboxKit, StepResult
from . import steps
from .client import RedCloudClient, build_client
from .contract import LIFECYCLE, REQUIRED_SCOPES, event_from_envelope, probe_envelope

__all__ = ["PROVIDER", "RedCloudProvider"]


class RedCloudProvider:
    """Red Cloud v1: OAuth client credentials, whoami, numbers, SMS/MMS sends, Standard Webhooks."""

    kind = "redcloud"
    title = "Red Cloud"
    identity_name = "whoami"  # what the identity step is called in this provider's API
    sender_label = "numberId"  # what a sending identity is called (report column headers)
    audit_context_title = steps.AUDIT_CONTEXT_TITLE
    signature = STANDARD_WEBHOOKS
    lifecycle = LIFECYCLE
    credential_name = "client secret"
    acceptance = (202, "QUEUED")
    settings_model = None  # its parameters are the common sections (provider, numbers, test_send)
    preconditions: dict[str, tuple[str, ...]] = {}  # the runbook's own cover Red Cloud's checks
    drills = (
        "invalid_credentials",
        "expired_token",
        "invalid_send_from",
        "missing_idempotency_key",
        "webhook_signature",
        "webhook_outage",
    )
    #: for the support handoff note
    support_note = (
        "Quote the messageId and the acceptance requestId to Red Cloud support; "
        "202 QUEUED proves acceptance only, the webhook states above prove the rest."
    )

    # -- credentials → client ------------------------------------------------------------------
    def build_client(
        self,
        params: RunbookParameters,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RedCloudClient:
        return build_client(params, environ=environ, sleep=sleep)

    def credential_env(self, params: RunbookParameters) -> str:
        """The environment variable that holds the credential (named, never shown)."""
        return params.provider.client_secret_env

    def required_scopes(self) -> tuple[str, ...]:
        return REQUIRED_SCOPES

    # -- go-live steps ---------------------------------------------------------------------------
    def identity_step(self, client: RedCloudClient, params: RunbookParameters) -> StepResult:
        return steps.identity_step(client, params)

    def skipped_identity(self, reason: str) -> StepResult:
        return steps.skipped_identity(reason)

    def senders_step(
        self, client: RedCloudClient, params: RunbookParameters, identity: Any
    ) -> StepResult:
        return steps.senders_step(client, params, identity)

    def skipped_senders(self, reason: str) -> StepResult:
        return steps.skipped_senders(reason)

    def golive_steps(self, run: Any) -> tuple[StepResult, ...]:
        return ()  # every Red Cloud check is one of the runbook's common steps

    def audit_steps(self, run: Any) -> tuple[StepResult, ...]:
        return ()

    def send_settings(self, params: RunbookParameters) -> Any:
        return params.test_send

    def extra_sends(self, params: RunbookParameters, run_id: str) -> list[Any]:
        return []  # one controlled send

    def send_payload(self, params: RunbookParameters, run_id: str) -> dict[str, Any]:
        t = params.test_send
        return {
            "sendFrom": t.send_from,
            "to": t.to,
            "body": t.body.replace("{run_id}", run_id),
            "externalReference": f"{t.external_reference_prefix}-{run_id}-1"[:128],
        }

    def sender_check_id(self, params: RunbookParameters) -> str:
        return f"numbers.{params.test_send.send_from}"

    def context_snapshot(self, identity: Any, senders: Any) -> dict[str, Any]:
        """The provider-side context in the stable shape drift is computed on."""
        return steps.context_snapshot(identity, senders)

    def audit_context_step(self, client: RedCloudClient, params: RunbookParameters) -> StepResult:
        return steps.audit_context_step(client, params)

    def evidence_rules(
        self, request_log: list[Any], *, recorded_send: Any = None
    ) -> dict[str, Callable[[], tuple[Any, ...]]]:
        """The readiness catalogue's ``evidence`` rules, computed from the run's request log."""
        return steps.evidence_rules(request_log, recorded_send=recorded_send)

    # -- events ----------------------------------------------------------------------------------
    def event_from_envelope(
        self, envelope: dict[str, Any] | str | bytes, **fields: Any
    ) -> WebhookEvent:
        return event_from_envelope(envelope, **fields)

    def probe_envelope(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """A test webhook envelope of ``event_type`` (for the probe and the signature drill)."""
        return probe_envelope(event_type, **fields)

    def public(self) -> dict[str, Any]:
        """The types ``runbook_lib`` re-exports from this provider (its front door)."""
        from .auth import ClientCredentialsAuth, TokenInfo
        from .client import ApiResult, NumbersListing, RequestRecord

        return {
            "ApiResult": ApiResult,
            "ClientCredentialsAuth": ClientCredentialsAuth,
            "NumbersListing": NumbersListing,
            "RedCloudClient": RedCloudClient,
            "RequestRecord": RequestRecord,
            "TokenInfo": TokenInfo,
            "event_from_envelope": event_from_envelope,
        }

    def export_format(self) -> ExportFormat:
        from .exports import ENVELOPE_SCHEMA, envelope_columns  # polars: only when exports are read

        return ExportFormat(
            schema=ENVELOPE_SCHEMA, required=("eventId", "eventType"), columns=envelope_columns
        )

    # -- readiness, drills, sandbox --------------------------------------------------------------
    def readiness_catalog(self) -> str:
        return _catalog_text()

    def drill_functions(self) -> dict[str, Callable[..., Any]]:
        from .drills import DRILLS

        return DRILLS

    def sandbox(self) -> SandboxKit:
        from .sandbox import FaultProfile, Sandbox, SandboxConfig, SandboxControl, run_sandbox

        return SandboxKit(
            config=SandboxConfig,
            run=run_sandbox,
            control=SandboxControl,
            fault_profile=FaultProfile,
            app=Sandbox,
        )


@cache
def _catalog_text() -> str:
    return resources.files(__package__).joinpath("readiness.yaml").read_text(encoding="utf-8")


PROVIDER = RedCloudProvider()
