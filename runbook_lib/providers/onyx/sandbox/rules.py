"""What the Onyx sandbox's rules share: a refusal (a contract error) and random ids."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

__all__ = ["Refusal", "RefusalError", "new_id"]


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A random id: unique across processes and restarts, whatever the seed."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


@dataclass(frozen=True)
class Refusal:
    """A contract error the API layer turns into problem+json."""

    status: int
    code: str
    detail: str
    reason_code: str | None = None


class RefusalError(Exception):
    """Raised inside the state's rules; the API layer answers it as problem+json."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal
