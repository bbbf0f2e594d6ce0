"""HTML for result objects: the one place that knows how things look in Lab and in reports."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

__all__ = ["STATUS_COLOURS", "Note", "StatusBlock", "badge", "esc", "kv_table", "rows_table", "show"]

STATUS_COLOURS = {
    "PASS": "#1a7f37",
    "FAIL": "#cf222e",
    "BLOCKED": "#8250df",
    "WARN": "#9a6700",
    "SKIP": "#6e7781",
    "ERROR": "#a40e26",
    "GO": "#1a7f37",
    "NO-GO": "#cf222e",
}


def show(value: Any) -> str:
    """``value`` as a person reads it: never a Python repr of None, a bool, a tuple or a dict.

    None is a dash, booleans are yes/no, times are ISO-8601 UTC, collections are listed
    (``p50 0.4, p95 1.2``), floats lose their float noise.
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {show(item)}" for key, item in value.items()) or "—"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(show(item) for item in value) or "—"
    return str(value)


class Note:
    """A line of plain text a notebook cell shows as text, never as a quoted Python string."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:  # a cell's text/plain output
        return self.text

    def _repr_html_(self) -> str:
        return f"<p style='margin:4px 0;color:#57606a'>{esc(self.text)}</p>"


def esc(value: Any) -> str:
    """``value`` as HTML text, safe in element content and in quoted attributes alike.

    Every value that reaches HTML goes through here: webhook fields, provider responses and
    parameter values are data, never markup (``&<>"'`` all escaped). Values that are not text are
    formatted for people first (:func:`show`); None is empty.
    """
    text = "" if value is None else value if isinstance(value, str) else show(value)
    return html.escape(text, quote=True)


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
    """A plain table; columns whose index is in ``raw`` hold trusted HTML (badges).

    With no header text (``headers`` empty or all blank) the table has no header row, rather
    than an empty one.
    """
    raw_cols = set(raw)
    head = "".join(f"<th {_CELL}>{esc(h)}</th>" for h in headers)
    thead = f"<thead><tr>{head}</tr></thead>" if any(h.strip() for h in headers) else ""
    body = []
    for row in rows:
        cells = "".join(
            f"<td {_CELL}>{cell if i in raw_cols else esc(show(cell))}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table {_TABLE}>{thead}<tbody>{''.join(body)}</tbody></table>"


def kv_table(pairs: Mapping[str, Any]) -> str:
    """A two-column key/value table, without a header row (the keys say what each value is)."""
    return rows_table((), [(k, v) for k, v in pairs.items()])


@dataclass(frozen=True)
class StatusBlock:
    """The concise incident status: what broke, who is affected, delayed or lost, next update."""

    lines: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.lines.items())

    def to_dict(self) -> dict[str, str]:
        return dict(self.lines)

    def _repr_html_(self) -> str:
        return ("<h4 style='margin:6px 0'>Status (ready to paste)</h4>"
                f"<pre style='white-space:pre-wrap;border:1px solid #d0d7de;padding:8px'>{esc(self.text())}</pre>")  # fmt: skip
