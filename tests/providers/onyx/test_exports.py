"""The Onyx provider's front door: a sorted __all__ of everything public, all importable."""

from __future__ import annotations

import runbook_lib.providers.onyx as onyx


def test_all_is_sorted_and_importable():
    assert onyx.__all__ == sorted(onyx.__all__)
    for name in onyx.__all__:
        assert getattr(onyx, name) is not None


def test_public_members_are_all_exported():
    public = {n for n in dir(onyx) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(onyx, n)).__name__ == "module"}
    assert public - modules == set(onyx.__all__)
