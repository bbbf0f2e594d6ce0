"""The audit engine's allocator settings: set before polars loads, never over the user's own."""

from __future__ import annotations

import subprocess
import sys

from runbook_lib.core.allocator import JEMALLOC_CONFIG, prefer_prompt_release


def test_a_setting_the_user_made_wins():
    environ = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:-1"}
    prefer_prompt_release(environ)
    assert environ == {"_RJEM_MALLOC_CONF": "dirty_decay_ms:-1"}
    empty: dict[str, str] = {}
    prefer_prompt_release(empty)
    assert empty == {"_RJEM_MALLOC_CONF": JEMALLOC_CONFIG}


def test_importing_the_library_sets_it_before_polars_is_loaded():
    code = (
        "import os, sys; os.environ.pop('_RJEM_MALLOC_CONF', None); import runbook_lib; "
        "print('polars' in sys.modules, os.environ['_RJEM_MALLOC_CONF'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", JEMALLOC_CONFIG]
