"""Give freed memory back to the operating system during bulk audits.

The lifecycle engine's peak is what decides whether an incident audit of millions of events fits
the machine it runs on. Two allocators hold on to memory nobody uses any more: polars allocates
with its own jemalloc, which by default keeps freed pages for ten seconds for reuse, and numpy's
arrays come from glibc's malloc, whose freed heap pages stay with the process until trimmed.
Over an audit of 5 M events the two held ~250 MB beyond what was alive (measured; see
``benchmarks/lifecycle_audit.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, MutableMapping

__all__ = ["JEMALLOC_CONFIG", "prefer_prompt_release", "release_free_heap"]

JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
JEMALLOC_CONFIG = "dirty_decay_ms:500,muzzy_decay_ms:0"
"""Freed pages go back after half a second (polars' own remedy for memory not being released)."""


def prefer_prompt_release(environ: MutableMapping[str, str] = os.environ) -> None:
    """Ask polars' jemalloc to return freed pages promptly.

    jemalloc reads this when polars is first imported, so it takes effect only if polars is not
    loaded yet; a value the user already set wins.
    """
    environ.setdefault(JEMALLOC_ENV, JEMALLOC_CONFIG)


@functools.cache
def _glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` from the running process (None elsewhere); looked up on first use."""
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    return None


def release_free_heap() -> None:
    """Return glibc's free heap pages to the OS (a no-op where malloc is not glibc's)."""
    if (malloc_trim := _glibc_malloc_trim()) is not None:
        malloc_trim(0)
