"""Secrets as a type: masked everywhere except where the value is sent.

A parameter file names the environment variable that holds a secret; :func:`secret_from_env`
reads it at run time. Every value resolved this way is remembered in :data:`REGISTRY` so the leak
guard can scan artifacts for it later. :func:`register_env_secrets` registers the variables a
parameter file names before anything runs, whether or not the step that reads them is enabled.
A value holding several whitespace-separated secrets (a rotation list, ``"whsec_old whsec_new"``)
is registered as a whole and element by element.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping

from ..core.errors import MissingSecretError, ParameterError
from . import secret_channel

__all__ = [
    "CHANNEL_ENV",
    "ENV_NAME",
    "NOT_AN_ENV_NAME",
    "REGISTRY",
    "Secret",
    "SecretRegistry",
    "is_env_name",
    "register_env_secrets",
    "secret_from_env",
]

CHANNEL_ENV = secret_channel.CHANNEL_ENV  # kept here for existing importers

_WEBHOOK_PREFIX = "whsec_"  # runbook_lib.signing: the rest is the base64 key
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Never quote the value: a value that is not a variable name is most likely the secret itself.
NOT_AN_ENV_NAME = (
    "is not an environment variable name (the value is not shown: it may be the secret itself)"
)


def is_env_name(name: object) -> bool:
    """Whether ``name`` can name an environment variable (letters, digits, underscores)."""
    return isinstance(name, str) and ENV_NAME.fullmatch(name) is not None


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

    def register(self, value: str, label: str, *, forward: bool = True) -> None:
        """Remember ``value``; in a kernel, also hand it to the CLI (unless ``forward`` is off,
        for values that came from the CLI's own channel)."""
        if not value:
            return
        with self._lock:
            new = value not in self._values
            self._values[value] = label
        if new and forward:
            secret_channel.send(value, label)

    def register_env_value(self, value: str, purpose: str, env_name: str) -> None:
        """A value read from ``env_name``: the whole, and each element of a rotation list.

        The key part of a ``whsec_`` secret (what signatures are made with) is a secret of its
        own and is registered as well.
        """
        label = f"{purpose} ({env_name})"
        self.register(value, label)
        elements = value.split()
        for index, element in enumerate(elements, 1):
            element_label = (
                f"{label}, element {index} of {len(elements)}" if len(elements) > 1 else label
            )
            if len(elements) > 1:
                self.register(element, element_label)
            if element.startswith(_WEBHOOK_PREFIX):
                self.register(element.removeprefix(_WEBHOOK_PREFIX), f"{element_label}, key")

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._values.items())

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


REGISTRY = SecretRegistry()


def register_env_secrets(
    fields: Iterable[tuple[str, str]], *, environ: Mapping[str, str] | None = None
) -> int:
    """Register the value of every set variable in ``fields`` (``(purpose, env_name)`` pairs).

    Returns:
        How many variables were set (unset ones are the business of the step that reads them).
    """
    env = os.environ if environ is None else environ
    found = 0
    for purpose, env_name in fields:
        value = env.get(env_name, "") if is_env_name(env_name) else ""
        if value:
            REGISTRY.register_env_value(value, purpose, env_name)
            found += 1
    return found


def secret_from_env(
    env_name: str, *, purpose: str, environ: Mapping[str, str] | None = None
) -> Secret:
    """Read a secret from the environment variable ``env_name``.

    Raises:
        ParameterError: ``env_name`` is not a variable name (it is not echoed: it may be the
            secret itself).
        MissingSecretError: the variable is unset or empty; the message names it and the fix.
    """
    if not is_env_name(env_name):
        raise ParameterError(
            f"the name given for the {purpose}'s environment variable {NOT_AN_ENV_NAME}.",
            remedy="give the name of the variable that holds it (letters, digits, underscores), "
            "e.g. REDCLOUD_CLIENT_SECRET, and export the value in that variable.",
        )
    env = os.environ if environ is None else environ
    value = env.get(env_name, "")
    if not value:
        raise MissingSecretError(
            f"the {purpose} is read from the environment variable {env_name}, which is not set.",
            remedy=f"export {env_name}=... in the shell (or the scheduler's secret store) "
            "that runs the runbook; never put the value in a parameter file.",
        )
    REGISTRY.register_env_value(value, purpose, env_name)
    return Secret(value, label=env_name)
