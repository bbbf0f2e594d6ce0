"""Messaging providers behind one protocol; see :mod:`runbook_lib.providers.base` and docs/providers.md."""
