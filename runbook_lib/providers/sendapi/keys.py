"""SendAPI API keys: the ``httpx.Auth`` flow, the key's mode, and the mode-matches-environment check.

A key is a :class:`~runbook_lib.secrets.Secret`; only its prefix (``sk_live_`` or ``sk_test_``) is
ever shown. ``sk_live_`` keys deliver for real and are billed, ``sk_test_`` keys are simulated, so
production must run on a live key and every other environment on a test key.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ...core.errors import ConfigurationError
from ...security.secrets import Secret

__all__ = [
    "ApiKeyAuth",
    "KeyMode",
    "KeyModeCheck",
    "LIVE_PREFIX",
    "TEST_PREFIX",
    "check_key_mode",
    "key_mode",
    "key_prefix",
]

LIVE_PREFIX = "sk_live_"
TEST_PREFIX = "sk_test_"
KeyMode = Literal["live", "test"]


def key_mode(key: Secret) -> KeyMode:
    """``live`` or ``test`` from the key's prefix.

    Raises:
        ConfigurationError: the value has neither prefix (the message never shows the value).
    """
    value = key.reveal()
    if value.startswith(LIVE_PREFIX):
        return "live"
    if value.startswith(TEST_PREFIX):
        return "test"
    raise ConfigurationError(
        f"the SendAPI key in {key.label} starts with neither {LIVE_PREFIX} nor {TEST_PREFIX}.",
        code="malformed_api_key",
        remedy="copy the API key exactly as the SendAPI dashboard shows it (sk_live_… or sk_test_…).",
    )


def key_prefix(key: Secret) -> str:
    """What may be shown of a key: its mode prefix, never more."""
    return LIVE_PREFIX if key_mode(key) == "live" else TEST_PREFIX


@dataclass(frozen=True)
class KeyModeCheck:
    """Whether the key's mode fits the environment: ``sk_live_`` in production, ``sk_test_`` elsewhere."""

    environment: str
    expected: KeyMode
    actual: KeyMode | None
    key_env: str

    @property
    def status(self) -> Literal["PASS", "FAIL"]:
        return "PASS" if self.actual == self.expected else "FAIL"

    @property
    def summary(self) -> str:
        shown = {"live": LIVE_PREFIX, "test": TEST_PREFIX, None: "an unrecognised prefix"}
        return (
            f"{self.key_env} holds a {shown[self.actual]}… key; the {self.environment} "
            f"environment needs {shown[self.expected]}…"
        )

    @property
    def remedy(self) -> str | None:
        if self.status == "PASS":
            return None
        if self.expected == "live":
            return f"production sends for real: put the sk_live_ key in {self.key_env}."
        return (
            f"{self.environment} must not bill or deliver: put an sk_test_ key in {self.key_env}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": "sendapi.key_mode",
            "status": self.status,
            "environment": self.environment,
            "expected": self.expected,
            "actual": self.actual,
            "keyEnv": self.key_env,
            "summary": self.summary,
            "remedy": self.remedy,
        }


def check_key_mode(key: Secret, environment: str) -> KeyModeCheck:
    """Compare the key's mode with what ``environment`` needs (live for ``production`` only)."""
    expected: KeyMode = "live" if environment.strip().lower() == "production" else "test"
    try:
        actual: KeyMode | None = key_mode(key)
    except ConfigurationError:
        actual = None
    return KeyModeCheck(
        environment=environment, expected=expected, actual=actual, key_env=key.label
    )


class ApiKeyAuth(httpx.Auth):
    """``Authorization: Bearer <key>`` on every request; the key is read only here."""

    def __init__(self, key: Secret) -> None:
        if not isinstance(key, Secret):
            raise TypeError("ApiKeyAuth needs the key as a runbook_lib.secrets.Secret")
        key_mode(key)  # a malformed key fails here, before any request
        self._key = key

    @property
    def mode(self) -> KeyMode:
        return key_mode(self._key)

    def __repr__(self) -> str:
        return f"ApiKeyAuth({key_prefix(self._key)}…)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request
