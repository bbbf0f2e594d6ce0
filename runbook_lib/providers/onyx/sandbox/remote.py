"""Steer a running Onyx sandbox over HTTP (``/_sandbox/``): from a notebook, the CLI or a test."""

from __future__ import annotations

from typing import Any

import httpx

from ....core.errors import RunbookError

__all__ = ["OnyxSandboxControl"]


class OnyxSandboxControl:
    """A client for the control plane only; it never talks to the contract's routes."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OnyxSandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text) if response.content else ""
            raise RunbookError(
                f"Onyx sandbox control {method} {path} failed: {detail}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
        return response.json()

    def handshake(self) -> dict[str, Any]:
        return self._call("GET", "/")

    def set_faults(self, profile: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", "/faults", profile)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

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
