"""The SendAPI v1 wire contract behind the seam: event types → common states, envelopes, signatures.

SendAPI events carry no ``sequence``: the common engine orders them by state rank
(:data:`LIFECYCLE`, ``ordered_by="rank"``), never moves a status backwards and counts a retried
delivery (same envelope ``id``) once. A send's acceptance (201 ``queued``/``accepted``) is its
queued state: the contract defines no queued webhook, so :data:`LIFECYCLE` says
``queued_on_acceptance`` (``sms.queued``, ``message.accepted`` and ``email.queued`` are still
read if a server sends them). The per-channel ranks above delivered (read, opened, clicked) stay
in :mod:`.mapping`, which the go-live's channel checks use; :data:`LIFECYCLE` takes its ranks from
there (``rank_by_event``), so the common engine (trace, audit) orders each channel as the go-live
does: ``message.read`` after ``message.delivered`` is progress, not an out-of-order event, and
``email.complained`` (a delivered mail the recipient complained about) outranks every email state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ...core.events import WebhookEvent
from ...core.lifecycle import LifecycleModel
from . import mapping
from .signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    MAX_AGE_SECONDS,
    SIGNATURE_HEADER,
    generate_secret,
    signed_headers,
    verify_webhook,
)

__all__ = [
    "CHANNEL_EVENTS",
    "EVENT_STATES",
    "LIFECYCLE",
    "SENDAPI_SIGNATURE",
    "SendApiSignature",
    "event_from_envelope",
    "probe_envelope",
]

#: outbound event type → lifecycle state of the common model
EVENT_STATES = {
    "sms.queued": "QUEUED",
    "sms.sent": "SENT",
    "sms.delivered": "DELIVERED",
    "sms.failed": "FAILED",
    "message.accepted": "QUEUED",
    "message.sent": "SENT",
    "message.delivered": "DELIVERED",
    "message.read": "DELIVERED",
    "message.failed": "FAILED",
    "email.queued": "QUEUED",
    "email.sent": "SENT",
    "email.delivered": "DELIVERED",
    "email.opened": "DELIVERED",
    "email.clicked": "DELIVERED",
    "email.bounced": "FAILED",
    "email.complained": "DELIVERED",
}
#: the webhook events go-live needs subscribed, per channel (plus session health for WhatsApp)
CHANNEL_EVENTS = {
    "sms": ("sms.sent", "sms.delivered", "sms.failed"),
    "whatsapp": ("message.sent", "message.delivered", "message.read", "message.failed",
                 "session.disconnected"),
    "email": ("email.sent", "email.delivered", "email.bounced", "email.complained"),
}  # fmt: skip


def _ranks() -> dict[str, int]:
    """Each outbound event type's rank in its channel (:data:`.mapping.RANKS`), from 1 (the
    common engine's 0 is "nothing applied yet")."""
    ranks = {}
    for event_type in EVENT_STATES:
        channel, state = mapping.EVENT_STATES[event_type]
        ranks[event_type] = mapping.RANKS[channel][state] + 1
    return ranks


LIFECYCLE = LifecycleModel(
    state_by_event=EVENT_STATES,
    rank_by_event=_ranks(),
    inbound_events=frozenset({"message.received"}),
    ordered_by="rank",
    first_event="",
    queued_on_acceptance=True,
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def event_from_envelope(
    envelope: Mapping[str, Any] | str | bytes,
    *,
    received_at: str | None = None,
    delivery_count: int = 1,
    arrival: int = 0,
) -> WebhookEvent:
    """One SendAPI envelope ``{"id", "event", "timestamp", "data"}`` → the common event model.

    Both field spellings the vendor's pages use are read (``message_id``/``messageId``,
    ``error_code``/``errorCode``).

    Raises:
        ValueError: not a JSON object with string ``id`` and ``event``.
    """
    if isinstance(envelope, (str, bytes)):
        envelope = json.loads(envelope)
    if not isinstance(envelope, Mapping):
        raise ValueError("a SendAPI webhook envelope must be a JSON object")
    event_id, event_type = _text(envelope.get("id")), _text(envelope.get("event"))
    if event_id is None or event_type is None:
        raise ValueError("a SendAPI webhook envelope needs string id and event fields")
    raw = envelope.get("data")
    data = dict(raw) if isinstance(raw, Mapping) else {}
    error = data.get("error") if isinstance(data.get("error"), Mapping) else {}
    session = event_type.startswith("session.")
    message_id = None if session else (
        _text(data.get("id")) or _text(data.get("message_id")) or _text(data.get("messageId"))
    )  # fmt: skip
    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        message_id=message_id,
        conversation_id=_text(data.get("session_id")) or _text(data.get("sessionId")),
        status=_text(data.get("status")),
        number_id=_text(data.get("sender_id")) or _text(data.get("from")),
        to=_text(data.get("to")) if not isinstance(data.get("to"), list) else None,
        from_=_text(data.get("from")),
        occurred_at=_text(envelope.get("timestamp")),
        created_at=_text(envelope.get("timestamp")),
        received_at=received_at,
        delivery_count=delivery_count,
        failure_code=_text(data.get("error_code")) or _text(data.get("errorCode"))
        or _text(error.get("code")) or _text(data.get("bounce_type")),
        failure_reason=_text(data.get("reason")) or _text(error.get("message")),
        arrival=arrival,
        data=data,
    )  # fmt: skip


def probe_envelope(
    event_type: str,
    *,
    event_id: str,
    message_id: str,
    sequence: int = 0,
    conversation_id: str = "",
    now: str,
) -> dict[str, Any]:
    """A marked test envelope (``data.id`` starts ``msg_probe_``, ``data.probe`` is true and
    ``data.reference`` is ``runbook-probe``, the marker the probe alters).

    ``sequence`` and ``conversation_id`` are accepted for the common probe and unused: SendAPI
    envelopes carry neither.
    """
    data: dict[str, Any] = {"id": message_id, "status": event_type.split(".")[-1],
                            "to": "+15005550199", "probe": True,
                            "reference": "runbook-probe"}  # fmt: skip
    if event_type.startswith("email."):
        data["to"] = "probe@example.invalid"
    if event_type in ("sms.failed", "message.failed"):
        data["error_code"] = "probe"
    return {"id": event_id, "event": event_type, "timestamp": now, "data": data}


class SendApiSignature:
    """``X-SendAPI-Signature: sha256=<hex>`` over the raw body, as a ``SignatureScheme``.

    Nothing but the body is signed, so :meth:`verify` also rejects an envelope ``timestamp``
    older than ``tolerance`` seconds and returns the envelope ``id`` (stable across retries,
    the dedupe key), not the per-attempt ``X-SendAPI-Delivery``.
    """

    name = "sendapi"
    headers = (SIGNATURE_HEADER, EVENT_HEADER, DELIVERY_HEADER)
    id_header = DELIVERY_HEADER
    header_limits: Mapping[str, int] = MappingProxyType(
        {SIGNATURE_HEADER.lower(): 2048, EVENT_HEADER.lower(): 128, DELIVERY_HEADER.lower(): 256}
    )
    tolerance = MAX_AGE_SECONDS
    signature_header = SIGNATURE_HEADER

    def unknown_version(self, value: str) -> str:
        """``value``'s hex under another algorithm's prefix (``sha1=…``): must be refused."""
        return "sha1=" + value.split()[0].removeprefix("sha256=")

    def malformed_signatures(self) -> tuple[tuple[str, str], ...]:
        """Unparseable ``X-SendAPI-Signature`` values (label, value): each must get a 4xx."""
        return (("garbage", "garbage"), ("'sha256=' empty", "sha256="),
                ("'sha256=' not hex", "sha256=zz"), ("'=abc'", "=abc"))  # fmt: skip

    def sign(
        self,
        secrets: str | Sequence[str],
        msg_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        try:
            event_type = str(json.loads(body).get("event") or "")
        except (ValueError, AttributeError):
            event_type = ""
        return signed_headers(secrets, body, event_type=event_type, delivery_id=msg_id)

    def verify(
        self,
        secrets: str | Sequence[str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        tolerance: int = MAX_AGE_SECONDS,
    ) -> str:
        return verify_webhook(secrets, headers, body, now=now, max_age=tolerance).id

    def generate_secret(self) -> str:
        return generate_secret()

    def valid_secret(self, secret: str) -> bool:
        """``whsec_`` and at least 16 more characters, no whitespace."""
        return (
            secret.startswith("whsec_")
            and len(secret) >= 22
            and not any(c.isspace() for c in secret)
        )


SENDAPI_SIGNATURE = SendApiSignature()
