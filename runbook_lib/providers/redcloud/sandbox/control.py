"""A client for the sandbox's ``/_sandbox/`` control plane (faults, tokens, events, reset).

The HTTP call, its error and the faults calls are the shared
:class:`~runbook_lib.core.sandbox_kit.SandboxControlClient`; Red Cloud's drills' calls are here.
"""

from __future__ import annotations

from typing import Any

from ....core.sandbox_kit import SandboxControlClient

__all__ = ["SandboxControl"]

# Whether a target is the sandbox is said by the parameter file (``provider.sandbox: true``); the
# runbook never sends a control-plane request to find out (that would reach production too).


class SandboxControl(SandboxControlClient):
    """Steer a running sandbox over HTTP: from a notebook kernel, the CLI or a test."""

    CONTROL_PREFIX = "/_sandbox"

    def revoke_tokens(self) -> int:
        return int(self._call("POST", "/tokens/revoke")["revoked"])

    def set_token_ttl(self, ttl: int) -> None:
        self._call("POST", "/tokens/ttl", {"ttl": ttl})

    def trigger(self, event_type: str, data: dict[str, Any] | None = None) -> str:
        return str(
            self._call("POST", "/events", {"eventType": event_type, "data": data or {}})["eventId"]
        )

    def inbound(self, *, sender: str, number_id: str = "num_sbx_primary", body: str = "",
                media: list[dict[str, str]] | None = None, conversation_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        return self._call(
            "POST", "/inbound",
            {"from": sender, "numberId": number_id, "body": body, "media": media or [],
             "conversationId": conversation_id},
        )  # fmt: skip

    def webhook_attempts(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhooks")["data"])

    def messages(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/messages")["data"])

    def resend(self, event_id: str) -> None:
        self._call("POST", "/webhooks/resend", {"eventId": event_id})

    def reset(self) -> None:
        self._call("POST", "/reset")
