"""A controlled Onyx message in the order Onyx requires: reachability → pre-send → send.

The send is attempted only when both checks allow it. A check that refuses ends the attempt
with its reason code and the action a person must take; a send that Onyx itself blocks (the
state changed between the checks and the send) ends the same way — nothing was sent either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ...core.errors import BlockedByPolicyError
from ...core.rendering import badge, kv_table
from .client import OnyxClient
from .problems import action_for
from .resources import Acceptance, PreSendOutcome, Reachability, mask_reference

__all__ = ["BlockedAt", "MessagingAttempt", "checked_send"]

BlockedAt = Literal["reachability", "pre-send", "send"]


@dataclass(frozen=True)
class MessagingAttempt:
    """What each step said; ``acceptance`` is set only when the message was accepted."""

    subject: str
    intent: str
    reachability: Reachability
    pre_send: PreSendOutcome | None = None
    acceptance: Acceptance | None = None
    blocked_at: BlockedAt | None = None
    reason_code: str | None = None
    request_id: str | None = None  # of the refusing answer, when one refused

    @property
    def sent(self) -> bool:
        return self.acceptance is not None

    @property
    def action(self) -> str | None:
        """What a person must do before this send can succeed (None when it was sent)."""
        if self.sent:
            return None
        return (
            action_for(self.reason_code)
            or "the check refused without a reason code; quote the requestId to Onyx support."
        )

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps actually taken, in order (proves the order Onyx requires)."""
        taken = ["reachability"]
        if self.pre_send is not None:
            taken.append("pre-send")
        if self.acceptance is not None or self.blocked_at == "send":
            taken.append("send")
        return tuple(taken)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": mask_reference(self.subject),
            "intent": self.intent,
            "steps": list(self.steps),
            "reachability": self.reachability.to_dict(),
            "preSend": self.pre_send.to_dict() if self.pre_send else None,
            "acceptance": self.acceptance.to_dict() if self.acceptance else None,
            "sent": self.sent,
            "blockedAt": self.blocked_at,
            "reasonCode": self.reason_code,
            "action": self.action,
            "requestId": self.request_id,
        }

    def _repr_html_(self) -> str:
        head = (
            badge("PASS", "sent") if self.sent else badge("WARN", f"blocked at {self.blocked_at}")
        )
        return head + kv_table(
            {
                "subject": mask_reference(self.subject),
                "steps": " → ".join(self.steps),
                "reason code": self.reason_code or "",
                "action": self.action or "",
                "messageId": self.acceptance.message_id if self.acceptance else "",
            }
        )


def checked_send(
    client: OnyxClient,
    *,
    app_id: str,
    subject: str,
    thread_id: str,
    intent: str,
    body: str,
    idempotency_key: str,
) -> MessagingAttempt:
    """Reachability, then pre-send, then the send — each only if the one before allowed it.

    Raises:
        ProviderError, AuthError: anything other than a policy refusal (those are results).
    """
    common = {"subject": subject, "intent": intent}
    reach = client.reachability(app_id=app_id, subject=subject)
    if not reach.allows:
        return MessagingAttempt(
            **common,
            reachability=reach,
            blocked_at="reachability",
            reason_code=reach.reason_code,
            request_id=reach.request_id,
        )
    pre = client.pre_send(app_id=app_id, subject=subject, intent=intent, thread_id=thread_id)
    if not pre.allows:
        return MessagingAttempt(
            **common,
            reachability=reach,
            pre_send=pre,
            blocked_at="pre-send",
            reason_code=pre.reason_code,
            request_id=pre.request_id,
        )
    try:
        accepted = client.send_message(
            app_id=app_id,
            subject=subject,
            thread_id=thread_id,
            intent=intent,
            body=body,
            idempotency_key=idempotency_key,
        )
    except BlockedByPolicyError as exc:
        return MessagingAttempt(
            **common,
            reachability=reach,
            pre_send=pre,
            blocked_at="send",
            reason_code=exc.reason_code,
            request_id=exc.request_id,
        )
    return MessagingAttempt(**common, reachability=reach, pre_send=pre, acceptance=accepted)
