"""The runbooks: go-live, drills, the webhook probe, message trace and incident audit.

Each is orchestration over the provider protocol (:mod:`runbook_lib.providers.base`): one method
per notebook cell, recording checks for the report.
"""
