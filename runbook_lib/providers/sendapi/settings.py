"""SendAPI's own parameter section: the top-level ``sendapi:`` key of a parameter file.

Validated at load into ``RunbookParameters.settings`` (``core.parameters.SettingsSection``:
strict, frozen, ``*_env`` fields refused as values and registered with the leak guard).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...core.parameters import SettingsSection

__all__ = ["DnsSettings", "SendApiSettings", "SendApiTestSend"]

Channel = Literal["sms", "whatsapp", "email"]
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$")


class DnsSettings(SettingsSection):
    """Which DNS the email checks ask: the system's resolver, or ``nameserver`` on ``port``."""

    nameserver: str | None = None
    port: int = Field(default=53, gt=0, lt=65536)
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)


class SendApiTestSend(SettingsSection):
    """The controlled sends: one per declared channel, each to an allowlisted destination."""

    __test__ = False

    enabled: bool = True
    sms: str | None = None  # an E.164 handset
    whatsapp: str | None = None  # an E.164 handset on WhatsApp
    email: str | None = None  # an address
    allowlist: list[str] = Field(min_length=1)
    body: str = Field(default="SendAPI go-live test (run {run_id})", min_length=1, max_length=1600)
    max_sends: int = Field(default=3, ge=1, le=10)
    expect: Literal["delivered", "failed", "sent", "queued"] = "delivered"
    lifecycle_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _allowlisted(self) -> SendApiTestSend:
        for channel in ("sms", "whatsapp", "email"):
            to = getattr(self, channel)
            if to is None:
                continue
            if channel != "email" and not _E164.match(to):
                raise ValueError(f"test_send.{channel} {to!r} is not an E.164 number")
            if channel == "email" and not _EMAIL.match(to):
                raise ValueError(f"test_send.email {to!r} is not an email address")
            if to not in self.allowlist:
                raise ValueError(f"test_send.{channel} destination {to} is not in allowlist")
        return self


class SendApiSettings(SettingsSection):
    """Key, channels, the sending identity per channel, test destinations, thresholds."""

    api_key_env: str
    channels: list[Channel] = Field(min_length=1)
    sender_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,11}$")
    whatsapp_session_id: str | None = None
    whatsapp_number: str | None = None  # the session's dedicated number, E.164
    session_seen_within_minutes: float = Field(default=15.0, gt=0)
    email_domain: str | None = None
    email_from: str | None = None
    test_send: SendApiTestSend
    quota_warn_share: float = Field(default=0.8, gt=0, le=1)
    rate_limit_warn_share: float = Field(default=0.2, ge=0, le=1)  # WARN below this headroom
    # the audit's email rates (share of the window's emails): WARN at the first, FAIL at the second
    bounce_rate_warn: float = Field(default=0.02, gt=0, le=1)
    bounce_rate_fail: float = Field(default=0.05, gt=0, le=1)
    complaint_rate_warn: float = Field(default=0.001, gt=0, le=1)
    complaint_rate_fail: float = Field(default=0.003, gt=0, le=1)
    dns: DnsSettings = DnsSettings()
    webhook_url: str | None = None  # the production webhook URL; webhooks.endpoint_url if unset

    @field_validator("channels")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("channels lists a channel twice")
        return values

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("the value is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _each_channel_is_complete(self) -> SendApiSettings:
        needs = {
            "sms": ("sender_id",),
            "whatsapp": ("whatsapp_session_id", "whatsapp_number"),
            "email": ("email_domain", "email_from"),
        }
        missing = [f for c in self.channels for f in needs[c] if getattr(self, f) is None]
        missing += [f"test_send.{c}" for c in self.channels
                    if self.test_send.enabled and getattr(self.test_send, c) is None]  # fmt: skip
        if missing:
            raise ValueError(
                f"the declared channels ({', '.join(self.channels)}) need {', '.join(missing)}"
            )
        if self.whatsapp_number is not None and not _E164.match(self.whatsapp_number):
            raise ValueError(f"whatsapp_number {self.whatsapp_number!r} is not an E.164 number")
        on = (self.email_from or "").rpartition("@")[2].lower()
        if self.email_from and self.email_domain and on != self.email_domain.lower():
            raise ValueError(
                f"email_from {self.email_from!r} is not on email_domain {self.email_domain!r}"
            )
        return self

    def primary_channel(self) -> str:
        """The channel the runbook's controlled send, replay proof and lifecycle steps use."""
        return self.channels[0]
