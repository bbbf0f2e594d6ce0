"""The provider protocol, and the registry that finds a provider by name.

A provider is one folder under ``runbook_lib/providers/`` holding one object that implements
:class:`Provider`, plus one line in :data:`REGISTRY`. Nothing outside a provider's folder imports
its insides: runbooks, the receiver, the CLI and the reports reach it through :func:`get_provider`
and the types below (see ``docs/providers.md``).

What the protocol covers is what differs between the contracts the runbook serves:

- credentials → an authenticated client (OAuth client credentials, an API key, a partner
  credential): :meth:`Provider.build_client`;
- the identity step and the sender inventory, as typed results with their checks
  (:meth:`Provider.identity_step`, :meth:`Provider.senders_step`);
- the controlled send: request shape and acceptance (:meth:`Provider.send_payload`; the
  idempotency header and retries live in the client);
- the webhook signature scheme, to verify and to sign (:attr:`Provider.signature`);
- the mapping of its events to the common lifecycle model (:attr:`Provider.lifecycle`,
  :meth:`Provider.event_from_envelope`);
- its error shape → the common error tree (inside its client: :mod:`runbook_lib.core.errors`);
- the drills it supports, its readiness catalogue items, its sandbox.
"""

from __future__ import annotations

import importlib
import secrets as _random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..core.errors import ParameterError

if TYPE_CHECKING:
    from ..core.checks import Check
    from ..core.events import WebhookEvent
    from ..core.lifecycle import LifecycleModel
    from ..core.parameters import RunbookParameters
    from ..core.sends import Acceptance
    from ..security.secrets import Secret

__all__ = [
    "DEFAULT_PROVIDER",
    "REGISTRY",
    "WEBHOOK_ENDPOINT_CHECK",
    "ExportFormat",
    "ExtraSend",
    "ProviderClient",
    "Provider",
    "SandboxKit",
    "SignatureScheme",
    "StepResult",
    "as_provider",
    "get_provider",
    "provider_names",
]


@runtime_checkable
class SignatureScheme(Protocol):
    """How a provider signs its webhooks: the receiver and the probe verify, drills and sandboxes sign.

    Standard Webhooks (Red Cloud, Onyx): :class:`runbook_lib.core.signing.StandardWebhooks`;
    SendAPI signs the body only (``X-SendAPI-Signature``) and brings its own scheme.
    """

    name: str
    headers: tuple[str, ...]  # the header names a signed delivery carries
    id_header: str  # the header naming the delivery (the receiver stores and dedupes by it)
    header_limits: Mapping[str, int]  # the longest value the receiver accepts per header
    tolerance: int  # seconds of clock difference accepted on a timestamp
    signature_header: str  # the header holding the signature (the probe strips and garbles it)

    def sign(
        self,
        secrets: str | Sequence[str],
        msg_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """The headers of one delivery of ``body`` (several secrets: a rotation-style list)."""
        ...

    def verify(
        self,
        secrets: str | Sequence[str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        tolerance: int = ...,
    ) -> str:
        """The delivery's id when ``body`` is signed by one of ``secrets``.

        Raises:
            WebhookVerificationError: with a ``code`` saying what is wrong.
        """
        ...

    def generate_secret(self) -> str:
        """A fresh signing secret in the provider's format."""
        ...

    def unknown_version(self, value: str) -> str:
        """A valid signature header ``value`` rewritten under a version/algorithm the scheme
        does not define (the probe's must-reject case)."""
        ...

    def malformed_signatures(self) -> tuple[tuple[str, str], ...]:
        """(label, header value) pairs that cannot be parsed; a receiver answers each with 4xx."""
        ...

    def valid_secret(self, secret: str) -> bool:
        """True when ``secret`` has the provider's format (checked before a receiver starts)."""
        ...


class ProviderClient(Protocol):
    """What every provider's client offers the runbooks (the rest is the provider's own)."""

    request_log: list[Any]  # one record per HTTP exchange (status, request id, idempotency key)

    def acquire_token(self) -> Any:
        """Authenticate now (the go-live's token step); returns what the report may show."""
        ...

    def server_clock(self) -> float | None:
        """The provider's clock (epoch seconds), for the preflight's skew check."""
        ...

    def send(self, payload: dict[str, Any], *, idempotency_key: str) -> Acceptance:
        """The controlled send (every retry reuses ``idempotency_key``)."""
        ...

    def with_credential(self, secret: Secret) -> ProviderClient:
        """The same client with another credential (the invalid-credentials drill)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StepResult:
    """A provider step's checks, the typed resource it read, and what the report shows with them."""

    step: str  # the step's id in the report (and the previous report's)
    title: str
    checks: tuple[Check, ...]
    resource: Any = None
    tables: tuple[Any, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    snapshot: Mapping[str, Any] | None = None
    # an audit step's evidence per failure domain (runbooks.audit.DOMAINS), e.g.
    # {"WhatsApp session": ("sess_1 is disconnected",)}; the audit weighs it with its own
    signals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtraSend:
    """One more controlled send of a go-live (SendAPI: one per declared channel after the first).

    Its checks are ``send.accepted.<label>`` and ``lifecycle.<label>.final``; it is SKIPped
    when ``sender_check`` failed.
    """

    label: str
    payload: dict[str, Any]
    sender_check: str


@dataclass(frozen=True)
class ExportFormat:
    """How a provider's envelopes look in an export (JSONL lines, Parquet rows)."""

    schema: Mapping[str, Any]  # the polars schema of one envelope (the JSONL fast path)
    required: tuple[str, ...]  # envelope fields every line must carry
    columns: Callable[[Any], dict[str, Any]]  # envelope column names → the model's expressions
    #: a frame already in model columns (an integration's SQL table, a Parquet file of model
    #: columns) whose values may be the provider's wire names → the model's (Onyx: the delivery
    #: status joins its type); identity for providers whose wire names are the model's
    model: Callable[[Any], Any] = lambda frame: frame


@dataclass(frozen=True)
class SandboxKit:
    """A provider's rehearsal server and its control plane (for the CLI, drills and tests)."""

    config: Callable[..., Any]  # the sandbox's config class
    run: Callable[..., Any]  # context manager: a running sandbox on a loopback port
    control: Callable[..., Any]  # client for the sandbox's control plane, given its URL
    fault_profile: Any  # the fault profile type (from_dict validates a parameter file's section)
    app: Callable[..., Any]  # build the ASGI app (for `runbook sandbox`)
    #: a fresh rehearsal credential for a demo or a test stack (``prefix`` marks where it is from),
    #: in the format the sandbox accepts (Red Cloud: any string; SendAPI: ``sk_test_…``;
    #: Onyx: ``onyx_sk_test_…``)
    new_credential: Callable[[str], str] = lambda prefix: prefix + _random.token_hex(12)


# The preflight check that the integration's webhook endpoint answers: what waits for a webhook
# needs it (a provider names it in its ``preconditions``).
WEBHOOK_ENDPOINT_CHECK = "preflight.webhook_endpoint"


@runtime_checkable
class Provider(Protocol):
    """One messaging provider behind the runbook (Red Cloud: ``providers/redcloud/provider.py``).

    ``identity_name`` is Red Cloud's ``whoami`` (SendAPI: ``account``, Onyx: ``me``);
    ``sender_label`` is Red Cloud's ``numberId`` (SendAPI: sender id, Onyx: messaging app).
    """

    kind: str  # the registry name, ``provider.kind`` in a parameter file
    title: str  # for people: "Red Cloud"
    identity_name: str  # what its identity call is called (see the class docstring)
    sender_label: str  # what a sending identity is called in report headers
    support_note: str  # what to quote to its support (the go-live's handoff step)
    credential_name: str  # what its credential is called in messages ("client secret", "API key")
    acceptance: tuple[int, str]  # how it answers an accepted send: (202, "QUEUED"), (201, "queued")
    audit_context_title: str  # the incident audit's context step
    signature: SignatureScheme  # how its webhooks are signed
    lifecycle: LifecycleModel  # its event types → the common states; ordered by sequence or rank
    drills: tuple[str, ...]  # the drills it supports, in order (its own or runbooks.drills')
    # What its own checks need beyond the runbook's (check-id pattern → required check ids):
    # a check whose requirement failed is BLOCKED by it (runbooks.provider_run.PRECONDITIONS)
    preconditions: Mapping[str, tuple[str, ...]]
    # Its own parameter section (the top-level key named after ``kind``): a strict, frozen model
    # class (``core.parameters.SettingsSection``), validated at load into
    # ``RunbookParameters.settings``; None when it has none.
    settings_model: type[Any] | None

    # -- credentials → an authenticated client ---------------------------------------------------
    def build_client(
        self,
        params: RunbookParameters,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = ...,
    ) -> ProviderClient:
        """The credential named in the parameter file, read from the environment → a client.

        Raises:
            MissingSecretError: the credential's environment variable is unset.
        """
        ...

    def credential_env(self, params: RunbookParameters) -> str:
        """The environment variable that holds the credential (named in reports, never shown)."""
        ...

    def required_scopes(self) -> tuple[str, ...]:
        """Scopes the runbook needs on its token (empty when the provider has none)."""
        ...

    # -- the go-live steps that speak the provider's API -----------------------------------------
    def identity_step(self, client: Any, params: RunbookParameters) -> StepResult:
        """Who the credentials are (whoami / account / me): a typed resource and its checks."""
        ...

    def skipped_identity(self, reason: str) -> StepResult: ...

    def senders_step(self, client: Any, params: RunbookParameters, identity: Any) -> StepResult:
        """The sender inventory (numbers, sender ids, sessions, domains) and its checks."""
        ...

    def skipped_senders(self, reason: str) -> StepResult: ...

    def golive_steps(self, run: Any) -> Iterable[StepResult]:
        """The provider's own go-live steps after the sender inventory, in order (one notebook
        cell shows them: Onyx's messaging in its order, webhooks, connectivity); none for Red
        Cloud. ``run`` is the :class:`~runbook_lib.runbooks.go_live.GoLiveRun` (client, params,
        event store, ledger)."""
        ...

    def sender_check_id(self, params: RunbookParameters) -> str:
        """The check whose failure blocks the controlled send (the sending identity's)."""
        ...

    def send_settings(self, params: RunbookParameters) -> Any:
        """The controlled send's settings: ``enabled``, ``send_from`` (shown), ``to``,
        ``allowlist``, ``max_sends``, ``expect``, ``lifecycle_timeout_seconds`` (Red Cloud: its
        ``test_send`` section; SendAPI: its first declared channel's). None when the provider's
        controlled send is one of its own :meth:`golive_steps` (Onyx: messaging in its order), so
        the runbook's common send, replay and lifecycle steps SKIP and say so."""
        ...

    def extra_sends(self, params: RunbookParameters, run_id: str) -> list[ExtraSend]:
        """Controlled sends after the first, each with its own checks (Red Cloud, Onyx: none)."""
        ...

    def audit_steps(self, run: Any) -> Iterable[StepResult]:
        """The provider's own incident-audit steps over the run's window (Onyx: blocks by reason
        code, consent changes, orders to escalate); none for Red Cloud and SendAPI."""
        ...

    def send_payload(self, params: RunbookParameters, run_id: str) -> dict[str, Any]:
        """The controlled send's request body (the client adds the idempotency header)."""
        ...

    def evidence_rules(
        self, request_log: list[Any], *, recorded_send: Any = None
    ) -> dict[str, Callable[[], tuple[Any, ...]]]:
        """The readiness catalogue's ``evidence`` rules over this run's requests (and the run's
        controlled send, which the ledger may have recorded as accepted earlier). A rule answers
        ``(ok, text)``, or ``(ok, text, needs)`` naming the check ids (patterns allowed) its
        evidence comes from: missing evidence because one of them failed is BLOCKED by it."""
        ...

    def context_snapshot(self, identity: Any, senders: Any) -> dict[str, Any]:
        """The provider-side context drift is computed on (stored in ``summary.json``)."""
        ...

    def audit_context_step(self, client: Any, params: RunbookParameters) -> StepResult:
        """The incident audit's read-only context (API health, webhook state, senders)."""
        ...

    # -- events -----------------------------------------------------------------------------------
    def event_from_envelope(
        self, envelope: Mapping[str, Any] | str | bytes, **fields: Any
    ) -> WebhookEvent:
        """One raw webhook envelope → the common event model.

        Raises:
            ValueError: not an envelope of this provider.
        """
        ...

    def probe_envelope(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """A marked test envelope (the probe and the signature drill send these)."""
        ...

    def export_format(self) -> ExportFormat:
        """Its envelopes in JSONL and Parquet exports (the file event sources read these)."""
        ...

    # -- drills, readiness, sandbox, front door ----------------------------------------------------
    def drill_functions(self) -> Mapping[str, Callable[[Any], Check]]:
        """The provider's own drills by name (the rest of ``drills`` are common ones)."""
        ...

    def readiness_catalog(self) -> str:
        """The readiness catalogue (YAML text) its go-live is gated on."""
        ...

    def sandbox(self) -> SandboxKit:
        """Its contract sandbox."""
        ...

    def public(self) -> Mapping[str, Any]:
        """Types ``runbook_lib`` re-exports for this provider (the default provider's only)."""
        ...


DEFAULT_PROVIDER = "redcloud"

#: name → "module:attribute" of the provider object; imported on first use only.
REGISTRY: dict[str, str] = {
    "redcloud": "runbook_lib.providers.redcloud.provider:PROVIDER",
    "onyx": "runbook_lib.providers.onyx.provider:PROVIDER",
    "sendapi": "runbook_lib.providers.sendapi.provider:PROVIDER",
}

_LOADED: dict[str, Provider] = {}


def provider_names() -> list[str]:
    """Every registered provider, sorted."""
    return sorted(REGISTRY)


def as_provider(provider: Provider | str | None) -> Provider:
    """A provider given as itself, by its registry name, or None (the default provider).

    Raises:
        ParameterError: no provider of that name is registered.
    """
    return get_provider(provider) if provider is None or isinstance(provider, str) else provider


def get_provider(kind: str | None = None) -> Provider:
    """The provider registered as ``kind`` (``redcloud`` when None).

    Raises:
        ParameterError: no provider of that name is registered.
    """
    kind = kind or DEFAULT_PROVIDER
    if kind not in _LOADED:
        target = REGISTRY.get(kind)
        if target is None:
            raise ParameterError(
                f"provider.kind {kind!r} is not a registered provider.",
                remedy=f"use one of: {', '.join(provider_names())}.",
            )
        module, _, attribute = target.partition(":")
        _LOADED[kind] = getattr(importlib.import_module(module), attribute)
    return _LOADED[kind]
