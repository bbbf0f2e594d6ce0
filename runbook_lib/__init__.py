"""Runbook library: the logic behind the go-live, drills, trace and audit notebooks.

Notebooks and users import from here. The layout says the architecture: ``core`` (checks, the
lifecycle model, ledger, sends, gate, errors, parameters), ``providers`` (the protocol and one
folder per provider; Red Cloud is the default), ``sources`` (the only way webhook events are
read), ``runbooks`` (go-live, drills, probe, trace, audit), ``reporting`` (papermill, the typed
summary, HTML, plots, index), ``security`` (secrets, leak guard, privacy) and ``receiver``.
A provider's own types (Red Cloud's client, its auth) come through the registry, not an import.

Every name loads on first use: ``runbook --help`` and the sandbox start without pydantic, httpx,
polars or papermill, and a notebook pays only for what it touches.
"""

from __future__ import annotations

import importlib as _importlib

from .core.allocator import prefer_prompt_release as _prefer_prompt_release

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

_ERRORS = ("AuthError", "ConfigurationError", "EventSourceError", "InvalidClientError",
           "MissingSecretError", "ParameterError", "ProviderError", "ProviderUnavailableError",
           "RunbookError", "SendPolicyError", "TokenEndpointError", "TokenRejectedError",
           "WebhookVerificationError")  # fmt: skip
# name → the module that defines it (relative to this package).
_LAZY = {
    **dict.fromkeys(("Check", "StepReport", "Verdict"), ".core.checks"),
    **dict.fromkeys(_ERRORS, ".core.errors"),
    "WebhookEvent": ".core.events",
    "SendLedger": ".core.ledger",
    **dict.fromkeys(("LifecycleSet", "MessageLifecycle", "reconstruct"), ".core.lifecycle"),
    **dict.fromkeys(("RunbookParameters", "load_parameters"), ".core.parameters"),
    "RetryPolicy": ".core.retry",
    **dict.fromkeys(("sign_webhook", "signed_headers", "verify_webhook"), ".core.signing"),
    "AuditRun": ".runbooks.audit",
    "GoLiveRun": ".runbooks.go_live",
    "DrillsRun": ".runbooks.provider_run",
    "TraceRun": ".runbooks.trace",
    **dict.fromkeys(("Secret", "secret_from_env"), ".security.secrets"),
}
# The default provider's public types, resolved through the registry (``Provider.public``).
_FROM_PROVIDER = frozenset(
    {"ApiResult", "ClientCredentialsAuth", "NumbersListing", "RedCloudClient", "RequestRecord",
     "TokenInfo", "event_from_envelope"}
)  # fmt: skip


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # resolved once
        return value
    if name in _FROM_PROVIDER:
        from .providers.base import get_provider

        return get_provider().public()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_FROM_PROVIDER})
