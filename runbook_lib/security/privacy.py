"""Personal data in reports: destination numbers are masked unless a run says otherwise."""

from __future__ import annotations

__all__ = ["mask_phone"]


def mask_phone(number: str | None, *, keep_last: int = 2) -> str | None:
    """``+15005550001`` → ``+1•••••••••01``: enough for support to match, not to dial."""
    if not number or len(number) <= keep_last + 2:
        return number
    return number[:2] + "•" * (len(number) - 2 - keep_last) + number[-keep_last:]
