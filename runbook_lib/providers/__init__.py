"""Messaging providers, one folder each (see issue 12 for the seam that registers them)."""
