"""Runbook library: the logic behind the go-live, drills, trace and audit notebooks.

Notebooks and users import from here. The layout says the architecture: ``core`` (checks, the
lifecycle model, ledger, sends, gate, errors, parameters), ``providers`` (the protocol and one
folder per provider; Red Cloud is the default), ``sources`` (the only way webhook events are
read), ``runbooks`` (go-live, drills, probe, trace, audit), ``reporting`` (papermill, the typed
summary, HTML, plots, index), ``security`` (secrets, leak guard, privacy) and ``receiver``.
A provider's own types (Red Cloud's client, its auth) come through the registry, not an import.
"""

from __future__ import annotations

from .core.allocator import prefer_prompt_release as _prefer_prompt_release
from .core.checks import Check, StepReport, Verdict
from .core.errors import (
    AuthError,
    ConfigurationError,
    EventSourceError,
    InvalidClientError,
    MissingSecretError,
    ParameterError,
    ProviderError,
    ProviderUnavailableError,
    RunbookError,
    SendPolicyError,
    TokenEndpointError,
    TokenRejectedError,
    WebhookVerificationError,
)
from .core.events import WebhookEvent
from .core.ledger import SendLedger
from .core.lifecycle import LifecycleSet, MessageLifecycle, reconstruct
from .core.parameters import RunbookParameters, load_parameters
from .core.retry import RetryPolicy
from .core.signing import sign_webhook, signed_headers, verify_webhook
from .runbooks.go_live import GoLiveRun
from .runbooks.provider_run import DrillsRun
from .security.secrets import Secret, secret_from_env

# Nothing above loads polars (the audit and the sources load it on first use), so its allocator
# still reads this setting when they do.
_prefer_prompt_release()

__all__ = [
    "ApiResult",
    "AuditRun",
    "AuthError",
    "Check",
    "ClientCredentialsAuth",
    "ConfigurationError",
    "DrillsRun",
    "EventSourceError",
    "GoLiveRun",
    "InvalidClientError",
    "LifecycleSet",
    "MessageLifecycle",
    "MissingSecretError",
    "NumbersListing",
    "ParameterError",
    "ProviderError",
    "ProviderUnavailableError",
    "RedCloudClient",
    "RequestRecord",
    "RetryPolicy",
    "RunbookError",
    "RunbookParameters",
    "Secret",
    "SendLedger",
    "SendPolicyError",
    "StepReport",
    "TokenEndpointError",
    "TokenInfo",
    "TokenRejectedError",
    "TraceRun",
    "Verdict",
    "WebhookEvent",
    "WebhookVerificationError",
    "event_from_envelope",
    "load_parameters",
    "reconstruct",
    "secret_from_env",
    "sign_webhook",
    "signed_headers",
    "verify_webhook",
]

# The trace and the audit bring polars and numpy; they load on first use, so `runbook go-live`
# and the sandbox start without them.
_LAZY = {"AuditRun": ".runbooks.audit", "TraceRun": ".runbooks.trace"}
# The default provider's public types, resolved through the registry (``Provider.public``).
_FROM_PROVIDER = frozenset(
    {"ApiResult", "ClientCredentialsAuth", "NumbersListing", "RedCloudClient", "RequestRecord",
     "TokenInfo", "event_from_envelope"}
)  # fmt: skip


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name in _FROM_PROVIDER:
        from .providers.base import get_provider

        return get_provider().public()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_FROM_PROVIDER})
