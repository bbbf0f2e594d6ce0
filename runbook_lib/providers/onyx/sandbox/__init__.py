"""The Onyx sandbox: a real HTTP server honouring ``onyx-v1``, for tests, drills and rehearsal.

    with run_onyx_sandbox(OnyxSandboxConfig(order_step_seconds=0.05)) as running:
        running.url                                   # http://127.0.0.1:<port>
        OnyxSandboxControl(running.url).set_consent("sub_granted", "revoked")

It binds 127.0.0.1 only. Every id is random per process (event ids never repeat across
restarts); ``sequence`` rises per resource. Its rehearsal values protect nothing:

Credentials (Bearer):

=====================================  ===================  ===================================
key                                    credential id        behaviour
=====================================  ===================  ===================================
``onyx_sk_test_sbx_rehearsal_default`` ``cred_sbx_default`` active; scopes from the config
                                                            (all eight by default); revocable
``onyx_sk_test_sbx_rehearsal_limited`` ``cred_sbx_limited`` active, ``catalogue:read
                                                            orders:read`` only → 403
                                                            ``insufficient_scope`` elsewhere
``onyx_sk_test_sbx_rehearsal_revoked`` ``cred_sbx_revoked`` revoked → 401 ``unauthenticated``
any ``onyx_sk_live_…``                 —                    wrong environment → 401
=====================================  ===================  ===================================

Apps: ``app_sbx_rehearsal`` (US, verified), ``app_sbx_unverified`` (US → ``APP_NOT_VERIFIED``),
``app_sbx_gated`` (DE, messaging not approved → ``FEATURE_GATED``).

Subjects (with ``app_sbx_rehearsal``):

======================  =======  ================  ====================  ======================
subject                 consent  thread            reachability          pre-send / send
======================  =======  ================  ====================  ======================
``sub_granted``         granted  ``thr_granted``   reachable             allowed / 202
                                 active
``sub_denied``          denied   ``thr_denied``    ``NO_CONSENT``        consent_required / 422
``sub_revoked``         revoked  ``thr_revoked``   ``NO_CONSENT``        consent_required / 422
``sub_expired``         expired  ``thr_expired``   ``CONSENT_EXPIRED``   consent_required / 422
``sub_thread_blocked``  granted  ``thr_blocked``   ``THREAD_BLOCKED``    blocked / 422
                                 blocked
``sub_thread_closed``   granted  ``thr_closed``    ``THREAD_CLOSED``     blocked / 422
                                 closed
``sub_low_trust``       granted  ``thr_low_trust`` reachable             ``INSUFFICIENT_TRUST``
                                 active                                  unless informational
======================  =======  ================  ====================  ======================

An accepted message sends ``message.allowed`` then, after ``delivery_seconds``,
``message.delivery_updated`` (``delivered``); a blocked one sends ``message.blocked`` with its
``reasonCode`` (422 ``send_blocked``; 403 ``feature_gated`` for ``FEATURE_GATED``).

Catalogue (``catalogueVersion`` from the config, ``2026.11`` by default):

===================  ======  ===========  =================================================
package              market  status       an order of it
===================  ======  ===========  =================================================
``pkg_us_5gb_30d``   US      active       created → reserved → provisioning → esim_ready
``pkg_gb_3gb_15d``   GB      limited      created → reserved → provisioning → esim_ready
``pkg_fr_1gb_7d``    FR      unavailable  422 ``unknown_package``
``pkg_mx_10gb_30d``  MX      active       created → reserved → provisioning → manual_review
===================  ======  ===========  =================================================

One state per ``order_step_seconds``; ``esim_ready`` creates an eSIM (``ready``) with usage
``not_started`` and ``observedAt``. Orders need ``idempotency-key``: 201 first, 200 same-body
replay, 409 ``idempotency_conflict`` for another body, 400 without a key.

Launch approvals (``GET /v1/partner/me``; ``environment`` is this sandbox's, ``sandbox``):

======  ============  ==========  =============
market  capability    sandbox     production
======  ============  ==========  =============
US      messaging     approved    approved
US      connectivity  approved    approved
GB      connectivity  approved    in_review
MX      connectivity  approved    approved
DE      messaging     not_req.    —
======  ============  ==========  =============

An order or a send in a market whose sandbox approval is not ``approved`` is 403
``feature_gated`` / ``FEATURE_GATED``.

Webhooks: ``POST /v1/partner/webhooks`` returns a ``whsec_`` secret once (or the config's
``webhook_secret``); deliveries are Standard-Webhooks signed and retried on
``webhook_retry_schedule`` (the contract's by default) until a 2xx, then ``failed``. ``…/test``
sends ``webhook.test`` to that endpoint only. Replay: events under ``replay_window_seconds`` of a
type still subscribed; else 409 ``event_not_replayable`` (a test event never is).

Control plane (``/_sandbox/``, see :mod:`.control`): consent and thread changes mid-run, revoke the
credential, set a launch approval, set the catalogue version, fault injection (per route ``me
catalogue orders esims messaging webhooks events``: 429/5xx/latency/resets, seeded; webhooks:
drop, duplicate, outage, bad signature, stale timestamp, delay, reorder).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ....core.serving import BackgroundServer
from .app import create_app
from .config import (
    DEFAULT_CREDENTIAL,
    LIMITED_CREDENTIAL,
    PACKAGES,
    REVOKED_CREDENTIAL,
    SUBJECTS,
    OnyxSandboxConfig,
)
from .faults import onyx_fault_profile
from .remote import OnyxSandboxControl
from .state import OnyxSandboxState

__all__ = [
    "DEFAULT_CREDENTIAL",
    "LIMITED_CREDENTIAL",
    "PACKAGES",
    "REVOKED_CREDENTIAL",
    "SUBJECTS",
    "OnyxSandbox",
    "OnyxSandboxConfig",
    "OnyxSandboxControl",
    "RunningOnyxSandbox",
    "run_onyx_sandbox",
]


class OnyxSandbox:
    """One Onyx sandbox: its state and ASGI app, and views for tests and notebooks."""

    def __init__(self, config: OnyxSandboxConfig | None = None) -> None:
        self.config = config or OnyxSandboxConfig()
        self.state = OnyxSandboxState(self.config)
        self.app = create_app(self.state)

    def set_faults(self, profile: dict[str, Any] | None) -> None:
        """Apply a fault profile (validated against Onyx's routes); None clears every fault."""
        self.state.faults.apply(onyx_fault_profile(profile))

    def deliveries(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(a) for a in self.state.outbox.attempts]

    def event_ids(self) -> list[str]:
        with self.state.lock:
            return list(self.state.outbox.events)


@dataclass
class RunningOnyxSandbox:
    """An Onyx sandbox serving on a loopback port."""

    url: str
    sandbox: OnyxSandbox
    server: BackgroundServer


@contextlib.contextmanager
def run_onyx_sandbox(
    config: OnyxSandboxConfig | None = None, *, port: int = 0
) -> Iterator[RunningOnyxSandbox]:
    """Serve an Onyx sandbox on 127.0.0.1 (a free port by default) until the block ends."""
    sandbox = OnyxSandbox(config)
    server = BackgroundServer(sandbox.app, host="127.0.0.1", port=port, name="onyx-sandbox")
    server.start()
    try:
        yield RunningOnyxSandbox(server.url, sandbox, server)
    finally:
        server.stop()
