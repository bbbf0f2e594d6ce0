"""Steer a running Onyx sandbox over HTTP (``/_sandbox/``): from a notebook, the CLI or a test."""

from __future__ import annotations

from typing import Any

from ....core.sandbox_kit import SandboxControlClient

__all__ = ["OnyxSandboxControl"]


class OnyxSandboxControl(SandboxControlClient):
    """A client for the control plane only; it never talks to the contract's routes."""

    CONTROL_PREFIX = "/_sandbox"

    LABEL = "Onyx sandbox"

    def handshake(self) -> dict[str, Any]:
        return self._call("GET", "/")

    def set_consent(self, subject: str, state: str) -> str | None:
        """Change a subject's consent mid-run; returns the consent event's id (if one is sent)."""
        return self._call("PUT", f"/subjects/{subject}/consent", {"state": state})["eventId"]

    def set_thread(self, thread_id: str, state: str) -> str:
        return self._call("PUT", f"/threads/{thread_id}", {"state": state})["eventId"]

    def revoke_credential(self, credential_id: str | None = None) -> str:
        body = {"credentialId": credential_id} if credential_id else {}
        return self._call("POST", "/credentials/revoke", body)["revoked"]

    def set_launch(self, market: str, capability: str, environment: str, status: str) -> None:
        self._call(
            "PUT",
            "/launch",
            {
                "market": market,
                "capability": capability,
                "environment": environment,
                "status": status,
            },
        )

    def set_catalogue_version(self, version: str) -> None:
        self._call("PUT", "/catalogue", {"catalogueVersion": version})

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/deliveries")["data"])
