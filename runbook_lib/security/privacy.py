"""Personal data and credentials in reports: numbers masked, token-like text in excerpts masked."""

from __future__ import annotations

import re

__all__ = ["mask_phone", "redact_excerpt"]

_SECRETISH = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+|(\"?(access_token|client_secret)\"?\s*[:=]\s*\"?)[^\",\s]+"
)


def redact_excerpt(text: str, limit: int = 300) -> str:
    """A short body excerpt with anything token-like masked (any provider's error bodies)."""
    text = _SECRETISH.sub(lambda m: (m.group(1) or m.group(2) or "") + "****", text)
    return text[:limit] + ("…" if len(text) > limit else "")


def mask_phone(number: str | None, *, keep_last: int = 2) -> str | None:
    """``+15005550001`` → ``+1•••••••••01``: enough for support to match, not to dial."""
    if not number or len(number) <= keep_last + 2:
        return number
    return number[:2] + "•" * (len(number) - 2 - keep_last) + number[-keep_last:]
