"""The front door: runbook_lib re-exports a deliberate, sorted __all__."""

from __future__ import annotations

import runbook_lib


def test_all_is_sorted_and_importable():
    assert runbook_lib.__all__ == sorted(runbook_lib.__all__)
    for name in runbook_lib.__all__:
        assert getattr(runbook_lib, name) is not None


def test_public_members_are_all_exported():
    public = {n for n in dir(runbook_lib) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(runbook_lib, n)).__name__ == "module"}
    assert public - modules == set(runbook_lib.__all__)
