"""Onyx partner platform (contract ``onyx-v1``): client, signing, event mapping, sandbox."""

from __future__ import annotations

from .client import INTENTS, Exchange, OnyxClient, RateLimit, build_onyx_client
from .credentials import (
    PartnerCredentialAuth,
    SecretComparison,
    check_credential_mode,
    compare_secrets,
    credential_mode,
    expected_mode,
    shown,
)
from .messaging import MessagingAttempt, checked_send
from .problems import POLICY_REASON_CODES, REASON_ACTIONS, action_for, error_from_response
from .resources import (
    Acceptance,
    Catalogue,
    CataloguePackage,
    Esim,
    EventHistory,
    EventRecord,
    LaunchApproval,
    Order,
    PartnerIdentity,
    PreSendOutcome,
    Reachability,
    Replay,
    TestEvent,
    Usage,
    Webhook,
)

__all__ = [
    "Acceptance",
    "Catalogue",
    "CataloguePackage",
    "Esim",
    "EventHistory",
    "EventRecord",
    "Exchange",
    "INTENTS",
    "LaunchApproval",
    "MessagingAttempt",
    "OnyxClient",
    "Order",
    "POLICY_REASON_CODES",
    "PartnerCredentialAuth",
    "PartnerIdentity",
    "PreSendOutcome",
    "REASON_ACTIONS",
    "RateLimit",
    "Reachability",
    "Replay",
    "SecretComparison",
    "TestEvent",
    "Usage",
    "Webhook",
    "action_for",
    "build_onyx_client",
    "check_credential_mode",
    "checked_send",
    "compare_secrets",
    "credential_mode",
    "error_from_response",
    "expected_mode",
    "shown",
]
