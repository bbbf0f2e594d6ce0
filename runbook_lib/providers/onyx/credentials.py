"""The Onyx partner credential: a Bearer secret whose prefix says its mode.

``onyx_sk_live_…`` keys work only on production, ``onyx_sk_test_…`` keys everywhere else
(sandbox, preview). A credential is held as :class:`~runbook_lib.security.secrets.Secret` and shown by its
prefix only. :func:`compare_secrets` proves two secrets differ (preview vs production) by keyed
digests under a random key that lives for one call, so neither value nor a stable fingerprint of
it ever leaves the process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ...core.errors import ParameterError
from ...core.rendering import badge, kv_table
from ...security.secrets import Secret

__all__ = [
    "LIVE_PREFIX",
    "TEST_PREFIX",
    "CredentialMode",
    "PartnerCredentialAuth",
    "SecretComparison",
    "check_credential_mode",
    "compare_secrets",
    "credential_mode",
    "expected_mode",
    "shown",
]

LIVE_PREFIX = "onyx_sk_live_"
TEST_PREFIX = "onyx_sk_test_"
CredentialMode = Literal["live", "test"]
_PREFIXES: dict[str, CredentialMode] = {LIVE_PREFIX: "live", TEST_PREFIX: "test"}


def credential_mode(credential: Secret) -> CredentialMode:
    """``live`` or ``test`` from the prefix.

    Raises:
        ParameterError: the value has neither prefix (it is not an Onyx partner credential).
    """
    value = credential.reveal()
    for prefix, mode in _PREFIXES.items():
        if value.startswith(prefix) and len(value) > len(prefix):
            return mode
    raise ParameterError(
        f"the Onyx credential in {credential.label} does not start with {LIVE_PREFIX} or "
        f"{TEST_PREFIX}.",
        remedy="copy the partner credential (server-side secret) from the Partner Portal, not a "
        "webhook secret or an SDK key.",
    )


def shown(credential: Secret) -> str:
    """What may be displayed about a credential: its prefix and an ellipsis."""
    return (LIVE_PREFIX if credential_mode(credential) == "live" else TEST_PREFIX) + "…"


def expected_mode(environment: str) -> CredentialMode:
    """The mode an environment needs: ``live`` for production, ``test`` elsewhere."""
    return "live" if environment.strip().lower() in ("production", "live") else "test"


def check_credential_mode(credential: Secret, environment: str) -> CredentialMode:
    """The credential's mode, if it matches ``environment``.

    Raises:
        ParameterError: a live key outside production or a test key on production, named by
            prefix only; raised before any request is sent.
    """
    mode = credential_mode(credential)
    wanted = expected_mode(environment)
    if mode != wanted:
        raise ParameterError(
            f"the credential in {credential.label} is a {shown(credential)} ({mode}) key but the "
            f"environment is {environment!r}, which needs a {wanted} key.",
            remedy=f"set {credential.label} to the {wanted}-mode credential of this environment; "
            "Onyx refuses a key on the other environment's host.",
        )
    return mode


class PartnerCredentialAuth(httpx.Auth):
    """``Authorization: Bearer <partner credential>``; the value is read only here.

    A partner credential cannot be refreshed (it is rotated in the Partner Portal), so unlike the
    OAuth flow there is no refetch: a 401 is final and the client reports it as ``AuthError``.
    """

    def __init__(self, credential: Secret) -> None:
        credential_mode(credential)  # refuse a value that is not an Onyx credential at all
        self._credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._credential.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"PartnerCredentialAuth({shown(self._credential)})"


@dataclass(frozen=True)
class SecretComparison:
    """Whether two secrets differ, shown as digests under a key that existed for one call."""

    first_label: str
    second_label: str
    differ: bool
    first_digest: str
    second_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first_label,
            "second": self.second_label,
            "differ": self.differ,
            "firstDigest": self.first_digest,
            "secondDigest": self.second_digest,
            "method": "HMAC-SHA256 under a random key discarded after the comparison",
        }

    def _repr_html_(self) -> str:
        status = "PASS" if self.differ else "FAIL"
        return badge(status, "secrets differ" if self.differ else "secrets are equal") + kv_table(
            {self.first_label: self.first_digest, self.second_label: self.second_digest}
        )


def compare_secrets(
    first: Secret, second: Secret, *, key: bytes | None = None, shown_chars: int = 12
) -> SecretComparison:
    """Prove ``first`` and ``second`` differ without showing either.

    Each value is digested with HMAC-SHA256 under ``key`` (a fresh random 32 bytes by default,
    never stored), so the digests shown cannot be matched against any other run's.
    """
    run_key = key if key is not None else _random.token_bytes(32)
    d1 = hmac.new(run_key, first.reveal().encode(), hashlib.sha256).hexdigest()
    d2 = hmac.new(run_key, second.reveal().encode(), hashlib.sha256).hexdigest()
    return SecretComparison(
        first_label=first.label,
        second_label=second.label,
        differ=not hmac.compare_digest(d1, d2),
        first_digest=d1[:shown_chars] + "…",
        second_digest=d2[:shown_chars] + "…",
    )
