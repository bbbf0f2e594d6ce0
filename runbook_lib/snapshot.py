"""The provider-side context a run saw (whoami and numbers), and what changed since an earlier run.

Go-live stores its snapshot in ``summary.json``; the next go-live and every incident audit of the
same environment compare against it, so drift (a number suspended, MMS switched off, a webhook
override added, the account webhook FAILING) is named before anyone has to guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .rendering import rows_table

__all__ = ["Drift", "context_snapshot", "diff_snapshots", "load_snapshot"]


def context_snapshot(
    whoami: dict[str, Any] | None, numbers: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The fields that matter for drift, in a stable shape."""
    who = whoami or {}
    webhook = who.get("webhook") or {}
    snap: dict[str, Any] = {
        "apiClientId": who.get("apiClientId") or who.get("clientId"),
        "environment": who.get("environment"),
        "webhookStatus": webhook.get("status"),
        "webhookUrl": webhook.get("url"),
    }
    if numbers is not None:
        snap["numbers"] = {
            n.get("numberId"): {
                "status": n.get("status"),
                "sms": n.get("smsEnabled"),
                "mms": n.get("mmsEnabled"),
                "webhookOverride": (n.get("webhookOverride") or {}).get("url")
                if (n.get("webhookOverride") or {}).get("enabled")
                else None,
            }
            for n in numbers
        }
    return snap


class Drift(list):
    """Changes as (what, before, now) rows; renders as a table."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No change since the reference run.</p>"
        return rows_table(["what", "before", "now"], self)  # rows_table escapes each cell


def diff_snapshots(before: dict[str, Any] | None, now: dict[str, Any]) -> Drift:
    """What changed between two snapshots (empty when nothing did)."""
    drift = Drift()
    if not before:
        return drift
    for key in ("apiClientId", "environment", "webhookStatus", "webhookUrl"):
        if before.get(key) != now.get(key):
            drift.append((key, before.get(key), now.get(key)))
    if "numbers" in before and "numbers" in now:
        old, new = before["numbers"], now["numbers"]
        for number_id in sorted(set(old) | set(new), key=str):
            if number_id not in new:
                drift.append((f"number {number_id}", "assigned", "gone"))
            elif number_id not in old:
                drift.append((f"number {number_id}", "absent", f"new ({new[number_id]['status']})"))
            else:
                for field in ("status", "sms", "mms", "webhookOverride"):
                    if old[number_id].get(field) != new[number_id].get(field):
                        drift.append(
                            (
                                f"{number_id} {field}",
                                old[number_id].get(field),
                                new[number_id].get(field),
                            )
                        )
    return drift


def load_snapshot(report_dir: Path | None) -> dict[str, Any] | None:
    """The snapshot a report's summary.json carries, if any."""
    if report_dir is None:
        return None
    try:
        summary = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary.get("snapshot")
