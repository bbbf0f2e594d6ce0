"""What changed in the provider-side context between two runs.

The provider builds the snapshot (Red Cloud: whoami and numbers, ``Provider.context_snapshot``);
go-live stores it in ``summary.json``; the next go-live and every incident audit of the same
environment compare against it (read with ``Summary.load``), so drift (a number suspended, MMS
switched off, a webhook override added, the account webhook FAILING) is named before anyone has
to guess.
"""

from __future__ import annotations

from typing import Any

from ..core.rendering import rows_table

__all__ = ["Drift", "diff_snapshots"]


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
