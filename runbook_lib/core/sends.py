"""Controlled sends: allowlisted, capped, and never twice for the same run step.

The idempotency key is derived from environment, run and step, and written to the ledger before
the request. A re-executed notebook finds the key in the ledger and sends the same request with
the same key: the provider replays its first answer instead of sending a second message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..security.privacy import mask_phone
from .checks import Check
from .errors import ProviderError, RunbookError, SendPolicyError
from .ledger import SendLedger
from .lifecycle import MessageLifecycle

__all__ = [
    "Acceptance",
    "SendOutcome",
    "Sender",
    "SentMessage",
    "controlled_send",
    "idempotency_key_for",
    "prove_replay",
]


@dataclass(frozen=True)
class Acceptance:
    """A provider's answer to a send: accepted into its queue (not delivered), and how."""

    message_id: str | None
    external_reference: str | None
    status: str | None
    accepted_at: str | None
    http_status: int
    request_id: str | None
    request_ids: tuple[str, ...] = ()
    attempts: int = 1
    replayed: bool = False
    #: what this provider answers a good send with (the check compares against it)
    expected_http_status: int = 202
    expected_status: str = "QUEUED"


class Sender(Protocol):
    """A provider client that can make the controlled send (the key goes in its header)."""

    def send(self, payload: dict[str, Any], *, idempotency_key: str) -> Acceptance: ...


def idempotency_key_for(environment: str, run_id: str, step: str) -> str:
    """The key of one send step: stable across re-runs of the same run id, printable ASCII."""
    return f"rb-{environment}-{run_id}-{step}"[:255]


@dataclass
class SentMessage:
    """The controlled test send, as support needs it."""

    step: str
    idempotency_key: str
    message_id: str | None = None
    external_reference: str | None = None
    accepted_request_id: str | None = None
    accepted_at: str | None = None
    status: str | None = None
    resumed: bool = False
    replay_request_id: str | None = None
    lifecycle: MessageLifecycle | None = None
    request_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "idempotencyKey": self.idempotency_key,
            "messageId": self.message_id,
            "externalReference": self.external_reference,
            "acceptedRequestId": self.accepted_request_id,
            "acceptedAt": self.accepted_at,
            "acceptedStatus": self.status,
            "resumedFromLedger": self.resumed,
            "replayRequestId": self.replay_request_id,
            "lifecycle": self.lifecycle.to_dict() if self.lifecycle else None,
        }


@dataclass(frozen=True)
class SendOutcome:
    """The send's check, what support needs, and the display details."""

    check: Check
    message: SentMessage
    details: dict[str, Any] = field(default_factory=dict)


def controlled_send(
    client: Sender,
    ledger: SendLedger,
    *,
    run_id: str,
    step: str,
    environment: str,
    payload: dict[str, Any],
    allowlist: list[str],
    max_sends: int,
    show_phone: Callable[[str | None], str | None] = mask_phone,
) -> SendOutcome:
    """Send ``payload`` once for ``run_id``/``step``; refuse destinations off the allowlist."""
    title = "Send accepted (202 QUEUED)"
    key = idempotency_key_for(environment, run_id, step)
    message = SentMessage(step=step, idempotency_key=key)
    to = payload.get("to")
    try:
        if to not in allowlist:
            raise SendPolicyError(
                f"destination {show_phone(to)} is not in test_send.allowlist; nothing was sent.",
                code="destination_not_allowlisted",
                remedy="add the number to test_send.allowlist if it is a test handset you own.",
            )
        previous = ledger.entry(run_id, step)
        if previous is None and ledger.sends_in_run(run_id) >= max_sends:
            raise SendPolicyError(
                f"this run already made {max_sends} send(s), the cap set by test_send.max_sends.",
                code="send_cap_reached",
                remedy="raise test_send.max_sends deliberately, or start a new run.",
            )
        entry = ledger.reserve(run_id, step, key, payload)
        message.resumed = entry.answered or entry.attempts > 0
        ledger.record_attempt(run_id, step)
        result = client.send(entry.request, idempotency_key=entry.idempotency_key)
    except RunbookError as exc:
        if isinstance(exc, ProviderError) and exc.status is not None:
            ledger.record_response(
                run_id,
                step,
                status=exc.status,
                message_id=None,
                external_reference=None,
                request_id=exc.request_id,
            )
        return SendOutcome(
            Check(
                "send.accepted",
                title,
                "FAIL",
                exc.message,
                evidence={"idempotencyKey": key, "error": exc.to_dict()},
                request_ids=(exc.request_id,) if exc.request_id else (),
                remedy=exc.remedy or None,
            ),
            message,
        )
    message.message_id = result.message_id
    message.external_reference = result.external_reference or payload.get("externalReference")
    message.accepted_request_id = result.request_id
    message.accepted_at = result.accepted_at
    message.status = result.status
    message.request_ids = list(result.request_ids)
    ledger.record_response(
        run_id,
        step,
        status=result.http_status,
        message_id=message.message_id,
        external_reference=message.external_reference,
        request_id=result.request_id,
    )
    problems = []
    if result.http_status != result.expected_http_status:
        problems.append(f"status {result.http_status}, expected {result.expected_http_status}")
    if message.status != result.expected_status:
        problems.append(f"status field {message.status!r}, expected {result.expected_status!r}")
    if not message.message_id:
        problems.append("no messageId in the answer")
    if result.external_reference != payload.get("externalReference"):
        problems.append("externalReference not echoed")
    evidence = {
        "messageId": message.message_id,
        "externalReference": message.external_reference,
        "idempotencyKey": key,
        "attempts": result.attempts,
        "replayedByProvider": result.replayed,
        "resumedFromLedger": message.resumed,
    }
    summary = (
        f"accepted into the provider's queue as {message.message_id} "
        "(acceptance only — delivery is confirmed by webhooks below)"
    )
    if message.resumed:
        summary += "; key reused from the ledger, so no second message was sent"
    details = {
        "from": payload.get("sendFrom"),
        "to": show_phone(payload.get("to")),
        "messageId": message.message_id,
        "externalReference": message.external_reference,
        "Idempotency-Key": key,
        "requestId": result.request_id,
        "attempts": result.attempts,
    }
    return SendOutcome(
        Check(
            "send.accepted",
            title,
            "FAIL" if problems else "PASS",
            "; ".join(problems) if problems else summary,
            evidence=evidence,
            request_ids=result.request_ids,
            remedy="the provider did not answer as the contract says; quote the requestId."
            if problems
            else None,
        ),
        message,
        details,
    )


def prove_replay(client: Sender, ledger: SendLedger, *, run_id: str, message: SentMessage) -> Check:
    """Repeat the ledger's request with its key; the same messageId must come back."""
    title = "Same key replays, no second message"
    entry = ledger.entry(run_id, message.step)
    if entry is None:
        return Check("send.replay", title, "SKIP", "the send step is not in the ledger")
    try:
        result = client.send(entry.request, idempotency_key=entry.idempotency_key)
    except RunbookError as exc:
        return Check(
            "send.replay",
            title,
            "FAIL",
            exc.message,
            evidence={"error": exc.to_dict()},
            request_ids=(exc.request_id,) if exc.request_id else (),
            remedy=exc.remedy or None,
        )
    message.replay_request_id = result.request_id
    same = result.message_id == message.message_id
    evidence = {
        "firstMessageId": message.message_id,
        "replayMessageId": result.message_id,
        "status": result.http_status,
        "idempotentReplayedHeader": result.replayed,
    }
    if not same:
        return Check(
            "send.replay",
            title,
            "FAIL",
            f"the same key returned {result.message_id} instead of {message.message_id}: "
            "the provider may have sent a second message",
            evidence=evidence,
            request_ids=result.request_ids,
            remedy="raise with Red Cloud support quoting both requestIds: idempotency is not honoured.",
        )
    note = "" if result.replayed else " (no Idempotent-Replayed header)"
    return Check(
        "send.replay",
        title,
        "PASS" if result.replayed else "WARN",
        f"{result.http_status} with the same messageId {message.message_id}{note}",
        evidence=evidence,
        request_ids=result.request_ids,
        remedy=None
        if result.replayed
        else "the contract says replays carry Idempotent-Replayed: true.",
    )
