"""Onyx partner platform (contract ``onyx-v1``): client, signing, event mapping, sandbox.

What exists (self-contained; nothing outside this folder imports it yet):

=================  ===========================================================================
module             what it gives
=================  ===========================================================================
``credentials``    ``PartnerCredentialAuth`` (Bearer from a ``Secret``), ``credential_mode`` /
                   ``check_credential_mode`` (live for production, test elsewhere; refused
                   before any request), ``shown`` (prefix only), ``compare_secrets`` (HMAC
                   digests under a random per-call key → ``SecretComparison``)
``resources``      frozen typed results built from the wire in one place: ``PartnerIdentity``
                   (+ ``LaunchApproval``), ``Reachability``, ``PreSendOutcome``,
                   ``Acceptance``, ``Catalogue`` / ``CataloguePackage``, ``Order``, ``Esim``,
                   ``Usage``, ``Webhook`` (secret as a ``Secret``), ``EventRecord`` /
                   ``EventHistory``, ``Replay``, ``TestEvent`` — each with ``to_dict()``
                   (identifiers masked: ICCID, customer reference, subject)
``problems``       problem+json → ``AuthError`` / ``BlockedByPolicyError`` / ``ProviderError``
                   with requestId, code, remedy; ``REASON_ACTIONS`` (reason code → action)
``client``         ``OnyxClient``: retries only 429/5xx/timeouts with the same idempotency-key,
                   never a policy reasonCode; ``request_log`` of ``Exchange`` (requestId,
                   ``RateLimit``, Retry-After); ``build_onyx_client`` (credential from env)
``messaging``      ``checked_send``: reachability → pre-send → send → ``MessagingAttempt``
``events``         ``OnyxEvent`` (envelope, ``resource``, ``state``, ``sequence``)
``signing``        ``verify_delivery`` / ``sign_delivery`` over :mod:`runbook_lib.core.signing`
``mapping``        ``LifecycleTracker`` / ``reconstruct`` → ``LifecycleBook`` of
                   ``ResourceLifecycle`` (final state, states, first_seen, duplicates, late,
                   anomalies) per message, consent subject, order, eSIM, thread, app
``sandbox``        the Onyx sandbox and its control client (see its docstring for the world)
=================  ===========================================================================

What the go-live integration needs (the seam's provider class wraps these; each row is one
check, PASS/FAIL from the typed result, evidence = its ``to_dict()``, request ids from it):

==========================  ==================================================================
check                       from
==========================  ==================================================================
credential active           ``client.me().credential_state == "active"``
environment as expected     ``me.environment`` and ``check_credential_mode`` (before network)
scopes = declared needs     ``me.missing_scopes(needs)`` FAIL; ``me.extra_scopes(needs)``
                            FAIL as least privilege
preview ≠ production        ``compare_secrets(preview, production).differ`` (both from env)
launch approval             ``me.unapproved(declared)`` empty; else NO-GO naming each
                            (market, capability, environment, status)
messaging in order          ``checked_send(...)``: ``sent`` PASS; ``blocked_at`` +
                            ``reason_code`` + ``action`` FAIL (``steps`` proves the order)
message lifecycle           ``reconstruct(events).get("message", id).states`` reaches
                            ``allowed`` then a delivery state, ``anomalies`` empty
webhook endpoint            ``client.webhooks()`` has one for this environment
test event delivered        ``client.test_webhook(id).event_id`` found in the event store
signature verified          the receiver's ``verify_delivery`` (the probe signs with
                            ``sign_delivery`` and a wrong secret must be refused)
replay deduplicated         ``client.replay(past_id, idempotency_key=…)`` then the tracker
                            says ``duplicate`` for it
history clean               ``client.events().failing()`` empty
catalogue version           ``client.catalogue().catalogue_version == approved``;
                            ``catalogue.unavailable()`` flagged (WARN)
order + idempotency         ``create_order`` twice with one key (``created`` True then False,
                            same ``order_id``), a third with another body → ``ProviderError``
                            code ``idempotency_conflict``
provisioning visible        ``client.order(id).status`` polled to ``esim_ready`` (verbatim;
                            ``manual_review`` is the escalation trigger)
usage visible               ``client.usage(iccid).observed_at`` present
support first checks        masked fields of the results above (no activation material is
                            ever read: ``installPayloadAvailable`` only)
==========================  ==================================================================

Drills the sandbox supports (control plane ``/_sandbox``, :class:`~.sandbox.OnyxSandboxControl`):
revoked credential (``revoke_credential`` or the revoked key → 401 ``AuthError``),
wrong-environment key (any ``onyx_sk_live_`` key → 401; the client refuses it first), missing
scope (the limited key → 403 ``insufficient_scope``), blocked send by reason code (a subject or app
per code), consent revoked mid-run (``set_consent(subject, "revoked")`` → ``NO_CONSENT``), expired
(``"expired"`` → ``CONSENT_EXPIRED``) or only requested (signed in, ``"requested"`` →
``NO_CONSENT``), replay
of an event the receiver has (``client.replay``), bad signature (``webhooks.bad_signature_rate``),
endpoint outage (``webhooks.outages`` or a failing receiver: retries, then ``failed`` /
``exhausted`` in history), pending market (``set_launch``), catalogue drift
(``set_catalogue_version``), API faults per route (429 with Retry-After, 5xx, latency, resets).

Behind the seam (``provider.py``, registered as ``onyx``): ``settings`` (the parameter file's
``onyx:`` section), ``contract`` (events → the common model, probe envelopes), ``steps`` (the
go-live checks above, run by the one notebook), ``drills``, ``audit`` (blocks by reason code,
consent changes, orders to escalate), ``exports`` (its envelopes in JSONL / Parquet exports and its
wire names in an integration's table, for the file and SQL sources), ``readiness.yaml`` (Onyx's
launch checklist).
"""

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
from .events import OnyxEvent
from .mapping import LifecycleBook, LifecycleTracker, ResourceLifecycle, reconstruct
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
from .signing import sign_delivery, verify_delivery

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
    "LifecycleBook",
    "LifecycleTracker",
    "MessagingAttempt",
    "OnyxClient",
    "OnyxEvent",
    "Order",
    "POLICY_REASON_CODES",
    "PartnerCredentialAuth",
    "PartnerIdentity",
    "PreSendOutcome",
    "REASON_ACTIONS",
    "RateLimit",
    "Reachability",
    "Replay",
    "ResourceLifecycle",
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
    "reconstruct",
    "shown",
    "sign_delivery",
    "verify_delivery",
]
