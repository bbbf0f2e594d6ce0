"""The runbook's exceptions: one tree, one base class a notebook can catch.

    RunbookError
    ├── ConfigurationError          bad input found before any network call (exit code 3)
    │   ├── ParameterError          a parameter file or value is invalid
    │   └── MissingSecretError      the environment variable that should hold a secret is unset
    ├── AuthError                   no usable access token
    │   ├── InvalidClientError      the token endpoint refused the client credentials
    │   ├── TokenEndpointError      the token endpoint is unreachable or answered nonsense
    │   └── TokenRejectedError      an API call got 401 again with a freshly fetched token
    ├── ProviderError               the API answered with an error (problem+json)
    │   └── BlockedByPolicyError    a policy outcome (consent, trust, thread, gate): never retried
    ├── ProviderUnavailableError    retries exhausted on timeouts / connection errors
    ├── SendPolicyError             a controlled send was refused locally (allowlist, cap)
    ├── EventSourceError            webhook events could not be read (store, export, database)
    └── WebhookVerificationError    a webhook failed signature / timestamp verification

Every error carries what an operator pastes into a ticket: the provider ``requestId`` (first in
``str()``), the HTTP status, the provider ``code``, a redacted body excerpt and one line of remedy.
No error message ever contains a secret value: messages are built from codes and public fields.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BlockedByPolicyError",
    "ConfigurationError",
    "EventSourceError",
    "InvalidClientError",
    "MissingSecretError",
    "ParameterError",
    "ProviderError",
    "ProviderUnavailableError",
    "RunbookError",
    "SendPolicyError",
    "TokenEndpointError",
    "TokenRejectedError",
    "WebhookVerificationError",
]


class RunbookError(Exception):
    """Base class of every error the runbook raises on purpose."""

    default_remedy = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        remedy: str | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.remedy = remedy if remedy is not None else self.default_remedy
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        head = []
        if self.request_id:
            head.append(f"[{self.request_id}]")
        if self.status is not None:
            head.append(str(self.status))
        if self.code:
            head.append(self.code)
        text = " ".join(head)
        text = f"{text}: {self.message}" if text else self.message
        if self.remedy:
            text += f" Fix: {self.remedy}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain fields for the summary JSON."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "status": self.status,
            "code": self.code,
            "requestId": self.request_id,
            "remedy": self.remedy,
            "bodyExcerpt": self.body_excerpt,
        }


class ConfigurationError(RunbookError):
    """Bad input detected before any network call."""


class ParameterError(ConfigurationError):
    """A parameter file or value is invalid; the message names each problem and its fix."""

    def __init__(self, message: str, *, problems: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.problems = list(problems or [])

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class MissingSecretError(ConfigurationError):
    """The environment variable named for a secret is not set (its value is never shown)."""


class AuthError(RunbookError):
    """No usable access token could be obtained or kept."""


class InvalidClientError(AuthError):
    default_remedy = (
        "check the client id and the secret in the environment variable named by "
        "client_secret_env; rotate the secret in the Red Cloud console if it was revoked."
    )


class TokenEndpointError(AuthError):
    default_remedy = "check token_url (or base_url) and that this host can reach it."


class TokenRejectedError(AuthError):
    default_remedy = (
        "a freshly issued token was refused: check the client's scopes and that token_url "
        "and base_url point at the same environment."
    )


class ProviderError(RunbookError):
    """The provider answered an API call with an error status."""

    def __init__(self, message: str, *, retryable: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retryable = retryable


class BlockedByPolicyError(ProviderError):
    """The provider refused on policy (``reasonCode``); retrying cannot help until a person acts.

    ``reason_code`` is the provider's reason (e.g. ``NO_CONSENT``); ``remedy`` is the action a
    person must take before the same request can succeed.
    """

    def __init__(self, message: str, *, reason_code: str, **kwargs: Any) -> None:
        kwargs["retryable"] = False
        super().__init__(message, **kwargs)
        self.reason_code = reason_code

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reasonCode": self.reason_code}


class ProviderUnavailableError(RunbookError):
    default_remedy = "the provider could not be reached; check connectivity and its status page."


class SendPolicyError(RunbookError):
    """A controlled send was refused before any request (destination not allowlisted, cap hit)."""


class EventSourceError(RunbookError):
    """Webhook events could not be read: a missing store or export, a database that refuses."""

    default_remedy = "check the event_source section of the parameter file."


class WebhookVerificationError(RunbookError):
    """A webhook failed verification. ``code`` names the reason (e.g. ``invalid_signature``)."""
