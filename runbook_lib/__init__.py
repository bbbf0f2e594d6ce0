"""Red Cloud runbook library: the logic behind the go-live, trace and audit notebooks.

Notebooks and users import from here (and from ``runbook_lib.sandbox`` for the rehearsal
provider). Everything else is an implementation detail.
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
from .core.events import WebhookEvent, event_from_envelope
from .core.ledger import SendLedger
from .core.lifecycle import LifecycleSet, MessageLifecycle, reconstruct
from .core.parameters import RunbookParameters, load_parameters
from .core.retry import RetryPolicy
from .core.signing import sign_webhook, signed_headers, verify_webhook
from .providers.redcloud.auth import ClientCredentialsAuth, TokenInfo
from .providers.redcloud.client import ApiResult, NumbersListing, RedCloudClient, RequestRecord
from .runbooks.go_live import GoLiveRun
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


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
