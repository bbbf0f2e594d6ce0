"""Plots as result objects: a PNG embedded in HTML, so Lab and the exported report both show it.

matplotlib runs on the Agg backend (no screen needed); nothing here imports IPython. Titles,
labels and legends often hold outside data (a ``messageId``, an event type), so text is drawn
literally: no mathtext, a ``$`` is a dollar sign. The HTML escapes the title in ``alt``.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.rendering import esc

__all__ = ["Plot", "bar_chart", "latency_histogram", "stacked_counts", "timeline"]

STATE_LEVEL = {"QUEUED": 1, "SENT": 2, "DELIVERED": 3, "FAILED": 3}
COLOURS = {"QUEUED": "#6e7781", "SENT": "#0969da", "DELIVERED": "#1a7f37", "FAILED": "#cf222e"}


@dataclass(frozen=True)
class Plot:
    """A rendered figure: ``_repr_html_`` embeds it; ``png`` is the raw image."""

    title: str
    png: bytes

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode()
        return (
            f'<img alt="{esc(self.title)}" style="max-width:100%" '
            f'src="data:image/png;base64,{data}">'
        )

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "pngBytes": len(self.png)}


def _literal_text(draw: Callable[..., Plot]) -> Callable[..., Plot]:
    """Build and save the figure with mathtext off, so outside text can neither crash nor restyle."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Plot:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def _render(fig: Any, title: str) -> Plot:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=96)
    plt.close(fig)
    return Plot(title, buffer.getvalue())


def _figure(width: float = 8.0, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


@_literal_text
def timeline(
    points: Sequence[tuple[datetime, str, int | None, bool]], *, title: str = "Lifecycle timeline"
) -> Plot:
    """Webhooks of one message: (received at, state, sequence, applied) per arrival."""
    fig, ax = _figure()
    applied = [(t, STATE_LEVEL[s]) for t, s, _, ok in points if ok]
    if applied:
        ax.step(
            [t for t, _ in applied],
            [lvl for _, lvl in applied],
            where="post",
            color="#57606a",
            lw=1,
        )
    for t, state, seq, ok in points:
        ax.scatter([t], [STATE_LEVEL[state]], s=60, color=COLOURS[state] if ok else "white",
                   edgecolors=COLOURS[state], linewidths=1.5, zorder=3)  # fmt: skip
        ax.annotate(f"#{seq}" if seq is not None else "", (t, STATE_LEVEL[state]),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)  # fmt: skip
    ax.set_yticks([1, 2, 3], ["queued", "sent", "delivered / failed"])
    ax.set_ylim(0.5, 3.5)
    ax.set_xlabel("received at (UTC); hollow = not applied (duplicate or late)")
    ax.set_title(title, fontsize=10)
    fig.autofmt_xdate()
    return _render(fig, title)


@_literal_text
def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    colours: Sequence[str] | None = None,
) -> Plot:
    fig, ax = _figure(7, 3)
    bars = ax.bar(labels, values, color=colours or "#0969da")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    ax.set_title(title, fontsize=10)
    return _render(fig, title)


@_literal_text
def stacked_counts(
    index: Sequence[datetime], series: dict[str, Sequence[float]], *, title: str
) -> Plot:
    """Counts per time bucket, one line per series (e.g. events per minute by type)."""
    fig, ax = _figure()
    for name, values in series.items():
        ax.plot(index, values, label=name, lw=1.2, color=COLOURS.get(name.upper()))
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.autofmt_xdate()
    return _render(fig, title)


@_literal_text
def latency_histogram(series: dict[str, Sequence[float]], *, title: str, unit: str = "s") -> Plot:
    fig, ax = _figure()
    for name, values in series.items():
        if len(values):
            ax.hist(values, bins=40, alpha=0.6, label=name)
    ax.set_xlabel(unit)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _render(fig, title)
