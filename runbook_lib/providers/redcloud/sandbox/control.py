"""A client for the sandbox's ``/_sandbox/`` control plane (faults, tokens, events, reset)."""

from __future__ import annotations

from typing import Any

import httpx

from ....core.errors import RunbookError

__all__ = ["SandboxControl"]

# Whether a target is the sandbox is said by the parameter file (``provider.sandbox: true``); the
# runbook never sends a control-plane request to find out (that would reach production too).


class SandboxControl:
    """Steer a running sandbox over HTTP: from a notebook kernel, the CLI or a test."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text) if response.content else ""
            raise RunbookError(
                f"sandbox control {method} {path} failed: {detail}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
        return response.json()

    def set_faults(self, profile: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", "/faults", profile)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

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
