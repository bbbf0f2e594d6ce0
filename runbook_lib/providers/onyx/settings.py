"""The ``onyx:`` section of a parameter file: what this integration declares to Onyx.

onyx:
  credential_env: ONYX_CREDENTIAL            # this environment's partner credential
  preview_credential_env: ONYX_PREVIEW_CREDENTIAL        # optional: both set → prove they
  production_credential_env: ONYX_PRODUCTION_CREDENTIAL  # differ (keyed digests)
  scopes: [catalogue:read, orders:write, …]  # the declared needs (granted must equal them)
  launch: [{market: US, capability: messaging, environment: sandbox}, …]
  app_id: app_sbx_rehearsal
  test_subject: sub_granted
  thread_id: thr_granted
  intent: transactional
  webhook_url: http://127.0.0.1:8766/webhooks/onyx
  connectivity: {enabled: true, approved_catalogue_version: "2026.11", test_package: pkg_us_5gb_30d}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ...core.parameters import SettingsSection
from ...security.secrets import NOT_AN_ENV_NAME

__all__ = ["ConnectivitySettings", "LaunchDeclaration", "OnyxSettings"]


class LaunchDeclaration(SettingsSection):
    """One market × capability × environment this integration needs approved."""

    market: str = Field(pattern=r"^[A-Z]{2}$")
    capability: Literal["messaging", "connectivity"]
    environment: str = Field(min_length=1)


class ConnectivitySettings(SettingsSection):
    """Partner connectivity (eSIM orders), checked only when enabled."""

    enabled: bool = False
    approved_catalogue_version: str | None = None
    test_package: str | None = None
    provisioning_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)


class OnyxSettings(SettingsSection):
    """What go-live checks against Onyx (see the module docstring for a sample)."""

    credential_env: str = "ONYX_CREDENTIAL"
    preview_credential_env: str | None = None
    production_credential_env: str | None = None
    scopes: list[str] = Field(min_length=1)
    launch: list[LaunchDeclaration] = Field(min_length=1)
    app_id: str = Field(min_length=1)
    test_subject: str = Field(min_length=1)
    thread_id: str = Field(min_length=1)
    intent: Literal["informational", "transactional", "sensitive"] = "transactional"
    message_body: str = Field(default="Onyx go-live test (run {run_id})", min_length=1)
    webhook_url: str = Field(pattern=r"^https?://[^\s/]+")
    lifecycle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    connectivity: ConnectivitySettings = ConnectivitySettings()

    @field_validator("credential_env", "preview_credential_env", "production_credential_env")
    @classmethod
    def _not_a_key(cls, value: str | None) -> str | None:
        """An Onyx key is letters, digits and underscores, so it passes as a variable *name*:
        refuse one by its prefix (a lookup of it would print the key as the missing name)."""
        if value is not None and value.lower().startswith(("onyx_sk_", "whsec_")):
            raise ValueError(
                f"the value {NOT_AN_ENV_NAME}; give the name of the variable that holds the "
                "credential (e.g. ONYX_CREDENTIAL) and export the key in it"
            )
        return value
