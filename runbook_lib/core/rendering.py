"""HTML for result objects: the one place that knows how things look in Lab and in reports."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["STATUS_COLOURS", "badge", "esc", "kv_table", "rows_table"]

STATUS_COLOURS = {
    "PASS": "#1a7f37",
    "FAIL": "#cf222e",
    "WARN": "#9a6700",
    "SKIP": "#6e7781",
    "ERROR": "#a40e26",
    "GO": "#1a7f37",
    "NO-GO": "#cf222e",
}


def esc(value: Any) -> str:
    """``value`` as HTML text, safe in element content and in quoted attributes alike.

    Every value that reaches HTML goes through here: webhook fields, provider responses and
    parameter values are data, never markup (``&<>"'`` all escaped).
    """
    return html.escape("" if value is None else str(value), quote=True)


def badge(status: str, label: str | None = None) -> str:
    """A coloured status label; ``label`` shows other text in ``status``'s colour."""
    colour = STATUS_COLOURS.get(status, "#57606a")
    return (
        f'<span style="background:{colour};color:#fff;border-radius:4px;padding:1px 7px;'
        f'font-weight:600;font-family:monospace">{esc(label or status)}</span>'
    )


_TABLE = 'style="border-collapse:collapse;margin:4px 0 10px 0;font-size:13px"'
_CELL = 'style="border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top"'


def rows_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: Iterable[int] = ()
) -> str:
    """A plain table; columns whose index is in ``raw`` hold trusted HTML (badges)."""
    raw_cols = set(raw)
    head = "".join(f"<th {_CELL}>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f"<td {_CELL}>{cell if i in raw_cols else esc(cell)}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(pairs: Mapping[str, Any]) -> str:
    return rows_table(["", ""], [(k, v) for k, v in pairs.items()])
