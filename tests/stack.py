"""Test helpers: a provider's real sandbox and the receiver on loopback ports, and parameter files.

``running_stack(folder, provider="redcloud")`` works for any registered provider: its sandbox kit,
its signature scheme, and its sample parameter file (``parameters/sandbox.yaml`` for the default
provider, ``parameters/<kind>-sandbox.yaml`` for the others).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runbook_lib.core.parameters import parameters_from_dict
from runbook_lib.core.sandbox_kit import REHEARSAL_RETRY_SCHEDULE
from runbook_lib.providers.base import DEFAULT_PROVIDER, get_provider
from runbook_lib.receiver import run_receiver

ROOT = Path(__file__).resolve().parent.parent


def sample_parameters(provider: str = DEFAULT_PROVIDER) -> Path:
    """The provider's sandbox parameter file shipped in parameters/."""
    name = "sandbox.yaml" if provider == DEFAULT_PROVIDER else f"{provider}-sandbox.yaml"
    return ROOT / "parameters" / name


@dataclass
class Stack:
    sandbox: Any
    receiver: Any
    client_secret: str
    webhook_secret: str
    folder: Path
    provider: str = DEFAULT_PROVIDER

    @property
    def env(self) -> dict[str, str]:
        params = parameters_from_dict(yaml.safe_load(sample_parameters(self.provider).read_text()))
        return {
            get_provider(self.provider).credential_env(params): self.client_secret,
            params.webhooks.signing_secret_env: self.webhook_secret,
        }

    def params(self, name: str = "params.yaml", **overrides: Any) -> Path:
        """The provider's sample parameters pointed at this stack; ``overrides`` replace top-level keys."""
        data = yaml.safe_load(sample_parameters(self.provider).read_text())
        data["provider"]["base_url"] = getattr(self.sandbox, "base_url", self.sandbox.url)
        data["event_source"]["path"] = str(self.receiver.store_path)
        data["ledger_path"] = str(self.folder / "ledger.sqlite")
        # Red Cloud's test_send, a provider's own section (``onyx:``) or its test_send
        # (``sendapi: test_send:``), with the same knobs
        own = data.get(self.provider)
        nested = own.get("test_send") if isinstance(own, dict) else None
        for section in (data.get("test_send"), own, nested):
            if isinstance(section, dict):
                if "lifecycle_timeout_seconds" in section:
                    section["lifecycle_timeout_seconds"] = 20
                if "webhook_url" in section:
                    section["webhook_url"] = self.receiver.webhook_url
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
    folder: Path,
    *,
    receiver_secret: str | None = None,
    provider: str = DEFAULT_PROVIDER,
    **sandbox_options: Any,
) -> Iterator[Stack]:
    """Sandbox + receiver; ``receiver_secret`` gives the receiver another secret (it rejects all)."""
    chosen = get_provider(provider)
    kit = chosen.sandbox()
    client_secret = kit.new_credential("canary-client-")
    webhook_secret = chosen.signature.generate_secret()
    db = folder / "receiver-events.sqlite"
    with run_receiver(
        db_path=db, secrets=[receiver_secret or webhook_secret], provider=chosen
    ) as receiver:
        receiver.store_path = db
        config = kit.config(
            client_secret=client_secret,
            webhook_url=receiver.webhook_url,
            webhook_secret=webhook_secret,
            lifecycle_delay=0,
            webhook_retry_schedule=REHEARSAL_RETRY_SCHEDULE,
            **sandbox_options,
        )
        with kit.run(config) as sandbox:
            yield Stack(sandbox, receiver, client_secret, webhook_secret, folder, provider)
