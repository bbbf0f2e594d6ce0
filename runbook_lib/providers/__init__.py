"""Messaging providers the runbook can take to production, one folder each."""
