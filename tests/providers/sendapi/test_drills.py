"""SendAPI's sending drills send on a usable channel, or are BLOCKED by the channels' senders."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from runbook_lib.core.checks import Check, resolve_blocked
from runbook_lib.providers.sendapi.drills import _sending_channel
from runbook_lib.runbooks.drills import DrillContext


def context(channels: list[str], failed: set[str]) -> DrillContext:
    """A drill context whose run recorded a FAIL for each sender check in ``failed``."""

    def unmet(check_id: str, *extra: str) -> Check | None:
        return next((Check(c, c, "FAIL", "down") for c in extra if c in failed), None)

    return DrillContext(
        client=None, make_client=lambda secret: None, send_from="", to="", endpoint_url=None,
        event_store=Path("unused.sqlite"), sandbox_url=None,
        params=SimpleNamespace(settings=SimpleNamespace(channels=channels)), unmet=unmet,
    )  # fmt: skip


def test_a_sending_drill_uses_the_first_declared_channel_whose_sender_is_usable():
    ctx = context(["whatsapp", "sms"], failed={"whatsapp.session"})
    assert _sending_channel(ctx, "drill.webhook_outage", "outage") == ("sms", None)
    assert _sending_channel(context(["whatsapp", "sms"], set()), "drill.x", "x") == (
        "whatsapp",
        None,
    )


def test_with_no_usable_channel_the_drill_is_blocked_by_the_sender_not_failed():
    ctx = context(["whatsapp"], failed={"whatsapp.session"})
    _, check = _sending_channel(ctx, "drill.idempotency_mismatch", "409")
    assert check is not None and check.status == "SKIP"
    assert check.requires == ("whatsapp.session",)
    session = Check("whatsapp.session", "session", "FAIL", "disconnected")
    _, blocked = resolve_blocked([session, check])
    assert blocked.status == "BLOCKED" and blocked.blocked_by == "whatsapp.session"
