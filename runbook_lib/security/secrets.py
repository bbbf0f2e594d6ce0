"""Secrets as a type: masked everywhere except where the value is sent.

A parameter file names the environment variable that holds a secret; :func:`secret_from_env`
reads it at run time. Every value resolved this way is remembered in :data:`REGISTRY` so the leak
guard can scan artifacts for it later.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

from ..core.errors import MissingSecretError

__all__ = ["CHANNEL_ENV", "REGISTRY", "Secret", "SecretRegistry", "secret_from_env"]

# Set by the CLI for the notebook kernel: a named pipe that carries registered values to the
# leak guard in the CLI process (see runbook_lib.leakguard).
CHANNEL_ENV = "RUNBOOK_SECRET_CHANNEL"


class Secret:
    """A string whose ``repr``/``str`` never show the value; read it with :meth:`reveal`."""

    __slots__ = ("_value", "label")

    def __init__(self, value: str, *, label: str = "secret") -> None:
        self._value = value
        self.label = label

    def reveal(self) -> str:
        """The value, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.label!r}, '**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pragma: no cover - refuse to pickle a secret by accident
        raise TypeError("Secret values are not picklable")


class SecretRegistry:
    """Every secret value resolved in this process, so artifacts can be scanned for them."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def register(self, value: str, label: str) -> None:
        if not value:
            return
        with self._lock:
            new = value not in self._values
            self._values[value] = label
        channel = os.environ.get(CHANNEL_ENV)
        if new and channel:
            from .leakguard import _write_fifo

            line = (
                base64.b64encode(label.encode()) + b" " + base64.b64encode(value.encode()) + b"\n"
            )
            _write_fifo(Path(channel), line)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._values.items())

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


REGISTRY = SecretRegistry()


def secret_from_env(
    env_name: str, *, purpose: str, environ: dict[str, str] | None = None
) -> Secret:
    """Read a secret from the environment variable ``env_name``.

    Raises:
        MissingSecretError: the variable is unset or empty; the message names it and the fix.
    """
    env = os.environ if environ is None else environ
    value = env.get(env_name, "")
    if not value:
        raise MissingSecretError(
            f"the {purpose} is read from the environment variable {env_name}, which is not set.",
            remedy=f"export {env_name}=... in the shell (or the scheduler's secret store) "
            "that runs the runbook; never put the value in a parameter file.",
        )
    REGISTRY.register(value, f"{purpose} ({env_name})")
    return Secret(value, label=env_name)
