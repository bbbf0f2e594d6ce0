"""The SendAPI client as the runbook's ``ProviderClient``: key probe, server clock, one ``send``.

:class:`RunbookClient` adds to :class:`~.client.SendApiClient` what the go-live steps call on
every provider's client: ``acquire_token`` (for an API key: the key probe, ``GET /account/usage``),
``server_clock`` (the ``Date`` header) and ``send(payload, idempotency_key=)`` routing the
controlled send by its ``channel`` and answering the common :class:`~runbook_lib.core.sends.Acceptance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from ...core.errors import ConfigurationError, RunbookError
from ...core.sends import Acceptance
from ...security.secrets import Secret
from .client import SendApiClient
from .keys import KeyModeCheck
from .resources import Usage

__all__ = ["KeyProbe", "RunbookClient", "SEND_PATHS", "channel_payload"]

SEND_PATHS = {"sms": "sms/send", "whatsapp": "whatsapp/send", "email": "email/send"}
#: what each channel's send answers when it is accepted (201 and this status)
ACCEPTED_STATUS = {"sms": "queued", "whatsapp": "accepted", "email": "queued"}


def channel_payload(
    settings: Any, channel: str, to: str, text: str, subject: str
) -> dict[str, Any]:
    """A send's body for ``channel`` (with the ``channel`` key :meth:`RunbookClient.send` routes by),
    from the sending identity the parameter file declares (``SendApiSettings``)."""
    if channel == "sms":
        return {"channel": "sms", "to": to, "message": text, "sender_id": settings.sender_id}
    if channel == "whatsapp":
        return {"channel": "whatsapp", "session_id": settings.whatsapp_session_id, "to": to,
                "type": "text", "text": {"body": text}}  # fmt: skip
    return {"channel": "email", "to": to, "from": settings.email_from, "subject": subject,
            "text": text}  # fmt: skip


@dataclass(frozen=True)
class KeyProbe:
    """The key probe's answer: an API key has no expiry or scopes to show, only its prefix."""

    summary: str
    request_id: str | None
    scope: str | None = None
    expires_in: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "requestId": self.request_id}


class RunbookClient(SendApiClient):
    """A :class:`SendApiClient` that also speaks the runbook's client protocol."""

    def __init__(self, *, key_check: KeyModeCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key_check = key_check
        self.last_usage: Usage | None = None
        self._options = kwargs

    def with_credential(self, secret: Secret) -> RunbookClient:
        """A client like this one with another API key (the key drills)."""
        options = {**self._options, "api_key": secret}
        return RunbookClient(key_check=self.key_check, **options)

    def acquire_token(self) -> KeyProbe:
        """The key probe: ``GET /account/usage`` answers 200 only for a valid key."""
        self.last_usage = self.usage()
        rid = next((r.request_id for r in reversed(self.request_log) if r.request_id), None)
        return KeyProbe(
            f"API key {self.key_prefix}… accepted by GET /account/usage (key shown by prefix only)",
            rid,
        )

    def server_clock(self) -> float | None:
        if self.last_date is None:
            try:
                self.last_usage = self.usage()
            except RunbookError:
                return None
        try:
            return parsedate_to_datetime(self.last_date).timestamp() if self.last_date else None
        except (TypeError, ValueError):
            return None

    def send(self, payload: dict[str, Any], *, idempotency_key: str) -> Acceptance:
        """POST the controlled send's body to its channel's endpoint (``payload["channel"]``)."""
        body = dict(payload)
        channel = body.pop("channel", None)
        if channel not in SEND_PATHS:
            raise ConfigurationError(
                f"the send payload names channel {channel!r}.",
                remedy="use one of: sms, whatsapp, email.",
            )
        got = self._send(channel, SEND_PATHS[channel], body, idempotency_key)
        return Acceptance(
            message_id=got.message_id or None,
            external_reference=None,
            status=got.status,
            accepted_at=None,
            http_status=got.http_status,
            request_id=got.request_id,
            request_ids=(got.request_id,) if got.request_id else (),
            attempts=got.attempts,
            replayed=got.replayed,
            expected_http_status=201,
            expected_status=ACCEPTED_STATUS[channel],
        )
