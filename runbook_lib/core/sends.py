"""Controlled sends: allowlisted, capped, and never twice for the same run step.

The idempotency key is derived from environment, run and step, and written to the ledger before
the request. A recorded acceptance (the provider's accepted answer, Red Cloud's 202 ``QUEUED``,
and a messageId in the ledger) is final: a re-executed
cell, a resumed run or ``--run-id`` reports it and never POSTs that send again. A key the ledger
holds without an acceptance is re-sent only while the provider still remembers it (its
idempotency window); a run older than that window sends nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..security.privacy import mask_phone
from .checks import Check
from .errors import ProviderError, RunbookError, SendPolicyError
from .invocation import new_run, other_runbook
from .ledger import LedgerEntry, SendLedger
from .lifecycle import MessageLifecycle

__all__ = [
    "Acceptance",
    "ReplayWindow",
    "SendOutcome",
    "Sender",
    "SentMessage",
    "acceptance_title",
    "controlled_send",
    "idempotency_key_for",
    "ledgered_send",
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


@dataclass(frozen=True, kw_only=True)
class ReplayWindow:
    """How long the provider remembers an Idempotency-Key, minus a margin kept from its edge.

    ``margin_seconds`` covers clock skew and the request's own time in flight: a key this close
    to expiring is treated as expired.
    """

    seconds: float = 24 * 3600.0
    margin_seconds: float = 300.0

    def holds(self, age_seconds: float | None) -> bool:
        """True when a key first used ``age_seconds`` ago is still replayed by the provider."""
        return age_seconds is not None and age_seconds < self.seconds - self.margin_seconds

    def describe(self) -> str:
        return f"{self.seconds / 3600:g} h"


def _hours_ago(age_seconds: float | None) -> str:
    return "at an unreadable time" if age_seconds is None else f"{age_seconds / 3600:.1f} h ago"


def acceptance_title(acceptance: tuple[int, str]) -> str:
    """The send check's title, naming how the provider answers an accepted send
    (``acceptance``: the provider's, e.g. Red Cloud's ``(202, "QUEUED")``)."""
    http_status, status = acceptance
    return f"Send accepted ({http_status} {status})"


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
    acceptance: tuple[int, str],
    show_phone: Callable[[str | None], str | None] = mask_phone,
    window: ReplayWindow = ReplayWindow(),
    run_started_at: str | None = None,
) -> SendOutcome:
    """Send ``payload`` once for ``run_id``/``step``; refuse destinations off the allowlist.

    ``acceptance`` is how the provider answers an accepted send (``Provider.acceptance``), named
    in the check's title; once it answered, the title names what the client expected of this
    send (a SendAPI WhatsApp send: 201 ``accepted``).
    A step the ledger already holds as accepted is reported from the ledger without a request.
    Nothing is POSTed when ``run_started_at`` (or an earlier attempt of this key) lies outside
    ``window``: the provider would no longer recognise the key and could send a second message.
    """
    title = acceptance_title(acceptance)
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
        if entry.accepted:
            return _recorded_acceptance(entry, title, show_phone)
        _refuse_outside_window(ledger, entry, window, run_started_at)
        message.resumed = entry.answered or entry.attempts > 0
        result = _send_recorded(client, ledger, entry)
    except RunbookError as exc:
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
    title = acceptance_title((result.expected_http_status, result.expected_status))
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
        f"accepted ({result.http_status} {message.status}) as {message.message_id} "
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


def _send_recorded(client: Sender, ledger: SendLedger, entry: LedgerEntry) -> Acceptance:
    """POST the reserved ``entry`` under its key; the attempt, then the answer (or the refusal's
    status), go into the ledger.

    Raises:
        RunbookError: the client's, once the ledger holds what the provider said.
    """
    ledger.record_attempt(entry.run_id, entry.step)
    try:
        result = client.send(entry.request, idempotency_key=entry.idempotency_key)
    except ProviderError as exc:
        if exc.status is not None:
            ledger.record_response(
                entry.run_id,
                entry.step,
                status=exc.status,
                message_id=None,
                external_reference=None,
                request_id=exc.request_id,
            )
        raise
    ledger.record_response(
        entry.run_id,
        entry.step,
        status=result.http_status,
        message_id=result.message_id,
        external_reference=result.external_reference or entry.request.get("externalReference"),
        request_id=result.request_id,
        accepted_at=result.accepted_at if isinstance(result.accepted_at, str) else None,
        provider_status=result.status if isinstance(result.status, str) else None,
    )
    return result


def ledgered_send(
    client: Sender,
    ledger: SendLedger,
    *,
    run_id: str,
    step: str,
    idempotency_key: str,
    payload: dict[str, Any],
) -> Acceptance:
    """A send other than the controlled one (a drill's), made through the ledger like it.

    The key is written before the request and the answer after it, so a re-run of the run
    replays the same key (never a second message) and support finds the send by its messageId
    or externalReference. A step the ledger holds as accepted is answered from the ledger,
    without a request.

    Raises:
        SendPolicyError: the step was reserved with another body (``ledger_body_changed``).
        RunbookError: the provider's refusal, recorded first.
    """
    entry = ledger.reserve(run_id, step, idempotency_key, payload)
    if entry.accepted:
        return Acceptance(
            message_id=entry.message_id,
            external_reference=entry.external_reference,
            status=entry.provider_status,
            accepted_at=entry.accepted_at or entry.responded_at,
            http_status=entry.status or 0,
            request_id=entry.request_id,
            request_ids=(entry.request_id,) if entry.request_id else (),
            attempts=0,
            replayed=True,
        )
    return _send_recorded(client, ledger, entry)


def _refuse_outside_window(
    ledger: SendLedger, entry: LedgerEntry, window: ReplayWindow, run_started_at: str | None
) -> None:
    """Raise when POSTing ``entry`` now could create a message the provider cannot deduplicate."""
    if run_started_at is not None:
        age = ledger.age_seconds(run_started_at)
        if not window.holds(age):
            raise SendPolicyError(
                f"run {entry.run_id} started {_hours_ago(age)}, beyond the provider's "
                f"{window.describe()} idempotency window: a run resumed this late sends nothing, "
                "so nothing was sent.",
                code="run_outside_idempotency_window",
                remedy=f"{new_run()}; it sends one new test message.",
            )
    if entry.attempts > 0:
        age = ledger.age_seconds(entry.reserved_at)
        if not window.holds(age):
            raise SendPolicyError(
                f"key {entry.idempotency_key} was first sent {_hours_ago(age)} with no acceptance "
                f"on record, and the provider's {window.describe()} idempotency window has passed: "
                "sending it again could create a second message, so nothing was sent.",
                code="key_outside_idempotency_window",
                remedy="trace the earlier attempt by its externalReference "
                f"({other_runbook('trace', ('external_reference', '...'))}), then {new_run()} "
                "if it never went out.",
            )


def _recorded_acceptance(
    entry: LedgerEntry, title: str, show_phone: Callable[[str | None], str | None]
) -> SendOutcome:
    """The send as the ledger recorded its acceptance: reported, not sent again."""
    message = SentMessage(
        step=entry.step,
        idempotency_key=entry.idempotency_key,
        message_id=entry.message_id,
        external_reference=entry.external_reference,
        accepted_request_id=entry.request_id,
        accepted_at=entry.accepted_at or entry.responded_at,
        status=entry.provider_status,
        resumed=True,
        request_ids=[entry.request_id] if entry.request_id else [],
    )
    summary = (
        f"accepted earlier in this run as {entry.message_id} (requestId {entry.request_id}, "
        f"at {message.accepted_at}); the ledger's record of that acceptance is final, so nothing "
        "was sent again"
    )
    details = {
        "from": entry.request.get("sendFrom"),
        "to": show_phone(entry.request.get("to")),
        "messageId": entry.message_id,
        "externalReference": entry.external_reference,
        "Idempotency-Key": entry.idempotency_key,
        "requestId": entry.request_id,
        "acceptedAt": message.accepted_at,
        "source": "send ledger (no request made)",
    }
    evidence = {
        "messageId": entry.message_id,
        "externalReference": entry.external_reference,
        "idempotencyKey": entry.idempotency_key,
        "acceptedAt": message.accepted_at,
        "attempts": 0,
        "resumedFromLedger": True,
        "recordedAcceptance": True,
    }
    check = Check(
        "send.accepted",
        title,
        "PASS",
        summary,
        evidence=evidence,
        request_ids=tuple(message.request_ids),
    )
    return SendOutcome(check, message, details)


def prove_replay(
    client: Sender,
    ledger: SendLedger,
    *,
    run_id: str,
    message: SentMessage,
    window: ReplayWindow = ReplayWindow(),
    provider_title: str = "the provider's",
) -> Check:
    """Repeat the ledger's request with its key; the same messageId must come back.

    Only while the key is inside the provider's idempotency window: past it the provider would
    treat the repeat as a new message, so the check is SKIPped with that reason.
    """
    title = "Same key replays, no second message"
    entry = ledger.entry(run_id, message.step)
    if entry is None:
        return Check("send.replay", title, "SKIP", "the send step is not in the ledger")
    age = ledger.age_seconds(entry.reserved_at)
    if not window.holds(age):
        return Check(
            "send.replay",
            title,
            "SKIP",
            f"key {entry.idempotency_key} was first used {_hours_ago(age)}, beyond the provider's "
            f"{window.describe()} idempotency window (provider.idempotency_window_hours): a "
            "replay now could create a second message, so none was sent",
            evidence={"keyAgeSeconds": None if age is None else round(age),
                      "windowSeconds": window.seconds},
        )  # fmt: skip
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
            remedy=f"raise with {provider_title} support quoting both requestIds: idempotency is not "
            "honoured.",
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
