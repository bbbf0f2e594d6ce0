"""Red Cloud runbook library: the logic behind the go-live, trace and audit notebooks.

Notebooks and users import from here (and from ``runbook_lib.sandbox`` for the rehearsal
provider). Everything else is an implementation detail.
"""

from __future__ import annotations

from .allocator import prefer_prompt_release as _prefer_prompt_release
from .auth import ClientCredentialsAuth, TokenInfo
from .checks import Check, StepReport, Verdict
from .client import ApiResult, NumbersListing, RedCloudClient, RequestRecord
from .errors import (
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
from .events import WebhookEvent, event_from_envelope
from .golive import GoLiveRun
from .ledger import SendLedger
from .lifecycle import LifecycleSet, MessageLifecycle, reconstruct
from .parameters import RunbookParameters, load_parameters
from .retry import RetryPolicy
from .secrets import Secret, secret_from_env
from .signing import sign_webhook, signed_headers, verify_webhook

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
_LAZY = {"AuditRun": ".audit", "TraceRun": ".trace"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
