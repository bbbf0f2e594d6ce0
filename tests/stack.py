"""Test helpers: the real sandbox and receiver on loopback ports, and parameter files for them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runbook_lib.core.signing import generate_webhook_secret
from runbook_lib.providers.redcloud.sandbox import SandboxConfig, run_sandbox
from runbook_lib.receiver import run_receiver

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    sandbox: Any
    receiver: Any
    client_secret: str
    webhook_secret: str
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "REDCLOUD_CLIENT_SECRET": self.client_secret,
            "REDCLOUD_WEBHOOK_SECRET": self.webhook_secret,
        }

    def params(self, name: str = "params.yaml", **overrides: Any) -> Path:
        """parameters/sandbox.yaml pointed at this stack; ``overrides`` replace top-level keys."""
        data = yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())
        data["provider"]["base_url"] = self.sandbox.url
        data["event_source"]["path"] = str(self.receiver.store_path)
        data["ledger_path"] = str(self.folder / "ledger.sqlite")
        data["test_send"]["lifecycle_timeout_seconds"] = 20
        data["webhooks"]["endpoint_url"] = self.receiver.webhook_url
        data["drills"]["outage_seconds"] = 0.3
        data["probe"]["burst"] = 5
        for key, value in overrides.items():
            data[key] = value
        path = self.folder / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@contextlib.contextmanager
def running_stack(
    folder: Path, *, receiver_secret: str | None = None, **sandbox_options: Any
) -> Iterator[Stack]:
    """Sandbox + receiver; ``receiver_secret`` gives the receiver another secret (it rejects all)."""
    client_secret = "canary-client-" + secrets.token_hex(8)
    webhook_secret = generate_webhook_secret()
    db = folder / "receiver-events.sqlite"
    with run_receiver(db_path=db, secrets=[receiver_secret or webhook_secret]) as receiver:
        receiver.store_path = db
        config = SandboxConfig(
            client_secret=client_secret,
            webhook_url=receiver.webhook_url,
            webhook_secret=webhook_secret,
            lifecycle_delay=0,
            webhook_retry_schedule=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            **sandbox_options,
        )
        with run_sandbox(config) as sandbox:
            yield Stack(sandbox, receiver, client_secret, webhook_secret, folder)
