"""The Red Cloud sandbox: a real HTTP server honouring the v1 contract, for demos, tests, rehearsal.

with run_sandbox(SandboxConfig(webhook_url=..., lifecycle_delay=0)) as running:
    running.url                      # http://127.0.0.1:<port>
    running.sandbox.message_count()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ....core.serving import BackgroundServer
from .app import create_app
from .config import (
    DEFAULT_CLIENT_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    DESTINATIONS,
    INVALID_DESTINATION,
    SEEDED_NUMBERS,
    SandboxConfig,
)
from .control import SandboxControl
from .faults import FaultProfile
from .state import SandboxState

__all__ = [
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_WEBHOOK_SECRET",
    "DESTINATIONS",
    "FaultProfile",
    "INVALID_DESTINATION",
    "SEEDED_NUMBERS",
    "RunningSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxControl",
    "run_sandbox",
]


class Sandbox:
    """One sandbox provider: its state, its ASGI app, and views for tests and notebooks."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.app, self.dispatcher = create_app(self.state)

    def message_count(self) -> int:
        with self.state.lock:
            return len(self.state.messages)

    def messages(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(m) for m in self.state.messages.values()]

    def webhook_attempts(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(a) for a in self.state.attempts]

    def pending_webhooks(self) -> int:
        with self.state.lock:
            return sum(1 for e in self.state.outbox if not e.acknowledged and not e.abandoned)

    def revoke_all_tokens(self) -> int:
        return self.state.revoke_all_tokens()

    def set_faults(self, profile: FaultProfile | dict[str, Any] | None) -> None:
        """Apply a fault profile (validated); None clears every fault."""
        if not isinstance(profile, FaultProfile):
            profile = FaultProfile.from_dict(profile)
        self.state.faults.apply(profile)

    def set_webhook_url(self, url: str | None) -> None:
        self.state.set_webhook_url(url)
        self.dispatcher.wake()


@dataclass
class RunningSandbox:
    """A sandbox serving on a loopback port."""

    url: str
    sandbox: Sandbox
    server: BackgroundServer


@contextlib.contextmanager
def run_sandbox(config: SandboxConfig | None = None, *, port: int = 0) -> Iterator[RunningSandbox]:
    """Serve a sandbox on 127.0.0.1 (a free port by default) until the block ends."""
    sandbox = Sandbox(config)
    server = BackgroundServer(sandbox.app, port=port, name="sandbox")
    server.start()
    try:
        yield RunningSandbox(server.url, sandbox, server)
    finally:
        server.stop()
