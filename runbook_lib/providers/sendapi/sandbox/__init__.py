"""The SendAPI sandbox: a real HTTP server honouring the SendAPI v1 contract, on loopback.

    with run_sandbox(SandboxConfig(webhook_url=receiver_url, lifecycle_delay=0.05)) as running:
        running.base_url          # http://127.0.0.1:<port>/v1 — give it to SendApiClient
        running.control           # SandboxControl: faults, sessions, domains, deliveries

Modules: :mod:`.api` (the contract's routes), :mod:`.control` (``/_sandbox`` control plane and its
client), :mod:`.state` (rules and memory), :mod:`.webhooks` (signed deliveries with retries),
:mod:`.faults` (seeded fault injection), :mod:`.config` (keys, inventory and the destination →
outcome table).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ....core.serving import BackgroundServer
from .app import create_app
from .config import (
    DEFAULT_WEBHOOK_SECRET,
    EXPIRED_KEY,
    INVALID_DESTINATION,
    NOT_ON_WHATSAPP,
    REVOKED_KEY,
    SANDBOX_KEY,
    SMS_ONLY_KEY,
    UNVERIFIED_DOMAIN,
    VERIFIED_DOMAIN,
    SandboxConfig,
    SandboxKey,
)
from .control import SandboxControl
from .faults import SendApiFaultProfile
from .state import SandboxState

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "EXPIRED_KEY",
    "INVALID_DESTINATION",
    "NOT_ON_WHATSAPP",
    "REVOKED_KEY",
    "RunningSandbox",
    "SANDBOX_KEY",
    "SMS_ONLY_KEY",
    "SandboxConfig",
    "SandboxControl",
    "SandboxKey",
    "SendApiFaultProfile",
    "SendApiSandbox",
    "UNVERIFIED_DOMAIN",
    "VERIFIED_DOMAIN",
    "run_sandbox",
]


class SendApiSandbox:
    """One sandbox provider: its state, its ASGI app and dispatcher, and views for tests."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.app, self.dispatcher = create_app(self.state)

    def deliveries(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(a) for a in self.state.attempts]

    def pending_deliveries(self) -> int:
        with self.state.lock:
            return sum(1 for d in self.state.outbox if not d.acknowledged and not d.abandoned)

    def set_faults(self, profile: SendApiFaultProfile | dict[str, Any] | None) -> None:
        """Apply a fault profile (validated); None clears every fault."""
        if not isinstance(profile, SendApiFaultProfile):
            profile = SendApiFaultProfile.from_dict(profile)
        self.state.faults.apply(profile)  # type: ignore[arg-type]


@dataclass
class RunningSandbox:
    """A sandbox serving on a loopback port."""

    url: str
    sandbox: SendApiSandbox
    server: BackgroundServer
    control: SandboxControl

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@contextlib.contextmanager
def run_sandbox(config: SandboxConfig | None = None, *, port: int = 0) -> Iterator[RunningSandbox]:
    """Serve a SendAPI sandbox on 127.0.0.1 (a free port by default) until the block ends."""
    sandbox = SendApiSandbox(config)
    server = BackgroundServer(sandbox.app, host="127.0.0.1", port=port, name="sendapi-sandbox")
    server.start()
    control = SandboxControl(server.url)
    try:
        yield RunningSandbox(server.url, sandbox, server, control)
    finally:
        control.close()
        server.stop()
