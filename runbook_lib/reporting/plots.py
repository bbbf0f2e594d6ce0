"""Plots as result objects: a PNG embedded in HTML, so Lab and the exported report both show it.

matplotlib runs on the Agg backend (no screen needed); nothing here imports IPython. Titles,
labels and legends often hold outside data (a ``messageId``, an event type), so text is drawn
literally: no mathtext, a ``$`` is a dollar sign. The HTML escapes the title in ``alt``.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core.rendering import esc

__all__ = [
    "STATE_COLOURS",
    "Plot",
    "bar_chart",
    "latency_histogram",
    "series_styles",
    "stacked_counts",
    "state_of",
    "timeline",
]

STATE_LEVEL = {"QUEUED": 1, "SENT": 2, "DELIVERED": 3, "FAILED": 3}
#: one colour per state, in every provider's words: the same state reads the same in every plot
STATE_COLOURS = {
    "ACCEPTED": "#a8b1ba",  # light grey: the provider took the request
    "QUEUED": "#57606a",  # dark grey: waiting in the provider's queue
    "SENT": "#0969da",  # blue: handed to the carrier / the mail server
    "DELIVERED": "#1a7f37",  # green
    "READ": "#8250df",  # purple: read (WhatsApp), opened (email)
    "CLICKED": "#bf3989",  # pink: a link in the email was followed
    "FAILED": "#cf222e",  # red
    "BOUNCED": "#e16f24",  # orange: the mail server refused it
    "COMPLAINED": "#7d4e00",  # brown: the recipient marked it as spam
    "INBOUND": "#1b7c83",  # teal: a reply from the recipient
}
#: words of event types and labels → their state (the last known word of a label decides)
_STATE_WORDS = {
    "accepted": "ACCEPTED", "allowed": "QUEUED", "queued": "QUEUED", "sent": "SENT",
    "delivered": "DELIVERED", "delivery": "DELIVERED", "read": "READ", "opened": "READ",
    "clicked": "CLICKED", "failed": "FAILED", "undelivered": "FAILED", "bounced": "BOUNCED",
    "complained": "COMPLAINED", "inbound": "INBOUND", "received": "INBOUND",
}  # fmt: skip
#: for series that name no known state: colours far from every state colour
_OTHER_COLOURS = ("#24292f", "#b59a00", "#6c8ebf")
#: a second series of the same state in one plot is told apart by its line style
_LINE_STYLES = ("-", "--", ":", "-.")
_HATCHES = {"-": None, "--": "//", ":": "..", "-.": "xx"}  # the same, for bars
#: the events-per-minute plot draws bars up to this many minutes, lines beyond
BARS_UP_TO = 30


def state_of(label: str) -> str | None:
    """The state a series label or event type names (``"email.bounced"`` → ``"BOUNCED"``)."""
    words = re.findall(r"[a-z]+", label.lower())
    for word in reversed(
        words
    ):  # "delivery_updated.delivered" is a delivery, "first event → sent" a send
        if word in _STATE_WORDS:
            return _STATE_WORDS[word]
    return None


def _lifecycle_rank(label: str) -> int:
    """Where a series stands in a message's life (queued before sent before delivered); others last."""
    state = state_of(label)
    return list(STATE_COLOURS).index(state) if state else len(STATE_COLOURS)


def series_styles(labels: Sequence[str]) -> list[tuple[str, str]]:
    """(colour, line style) per label: the state's colour; repeats of a state change line style."""
    seen: dict[str, int] = {}
    others = 0
    styles = []
    for label in labels:
        state = state_of(label)
        if state is None:
            colour = _OTHER_COLOURS[others % len(_OTHER_COLOURS)]
            others += 1
        else:
            colour = STATE_COLOURS[state]
        repeat = seen.get(colour, 0)
        seen[colour] = repeat + 1
        styles.append((colour, _LINE_STYLES[repeat % len(_LINE_STYLES)]))
    return styles


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


def _figure(width: float = 9.0, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _legend_outside(ax: Any, **options: Any) -> None:
    """The legend right of the plot area, so it can never cover a bar, a line or a marker."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8,
              frameon=False, **options)  # fmt: skip


def _counts_axis(ax: Any, label: str) -> None:
    """A count axis: from zero, whole numbers only, room above the highest value for its label."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    top = ax.get_ylim()[1]
    ax.set_ylim(0, max(top * 1.12, 1))
    ax.set_ylabel(label)


@_literal_text
def timeline(
    points: Sequence[tuple[datetime, str, int | None, bool]], *, title: str = "Lifecycle timeline"
) -> Plot:
    """Webhooks of one message: (received at, state, sequence, applied) per arrival.

    The x axis counts seconds from the first arrival (its UTC time is in the axis label): a
    message's webhooks arrive within seconds, where clock times would all read alike.
    """
    from matplotlib.lines import Line2D

    fig, ax = _figure()
    if not points:
        ax.set_title(title, fontsize=10)
        return _render(fig, title)
    first = min(t for t, *_ in points)
    at = {id(p): (p[0] - first).total_seconds() for p in points}
    applied = [(at[id(p)], STATE_LEVEL[p[1]]) for p in points if p[3]]
    if applied:
        ax.step([x for x, _ in applied], [lvl for _, lvl in applied], where="post",
                color="#57606a", lw=1, zorder=2)  # fmt: skip
    for point in points:
        _t, state, seq, ok = point
        colour = STATE_COLOURS[state]
        ax.scatter([at[id(point)]], [STATE_LEVEL[state]], s=60, color=colour if ok else "white",
                   edgecolors=colour, linewidths=1.5, zorder=3, clip_on=False)  # fmt: skip
        ax.annotate(f"#{seq}" if seq is not None else "", (at[id(point)], STATE_LEVEL[state]),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)  # fmt: skip
    span = max(at.values())
    ax.set_xlim(0, span * 1.08 if span > 0 else 1.0)  # starts at the first arrival, never before
    ax.set_yticks([1, 2, 3], ["queued", "sent", "delivered / failed"])
    ax.set_ylim(0.5, 3.5)
    ax.set_ylabel("state after the webhook")
    ax.set_xlabel(f"seconds after the first webhook ({first:%Y-%m-%d %H:%M:%S} UTC)")
    marker = {"marker": "o", "linestyle": "", "markersize": 7, "markeredgewidth": 1.5}
    _legend_outside(ax, handles=[
        *(Line2D([], [], color=STATE_COLOURS[s], markeredgecolor=STATE_COLOURS[s], label=s.lower(),
                 **marker) for s in STATE_LEVEL if any(p[1] == s for p in points)),
        Line2D([], [], color="white", markeredgecolor="#57606a", label="not applied\n(duplicate or late)",
               **marker),
    ])  # fmt: skip
    ax.set_title(title, fontsize=10)
    return _render(fig, title)


@_literal_text
def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    colours: Sequence[str] | None = None,
    ylabel: str = "messages",
) -> Plot:
    """One bar per label; a label naming a state is drawn in that state's colour."""
    fig, ax = _figure(7, 3)
    colours = colours or [colour for colour, _ in series_styles(labels)]
    bars = ax.bar(labels, values, color=colours)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8, padding=2)
    _counts_axis(ax, ylabel)
    ax.set_title(title, fontsize=10)
    return _render(fig, title)


@_literal_text
def stacked_counts(
    index: Sequence[datetime], series: dict[str, Sequence[float]], *, title: str
) -> Plot:
    """Counts per minute by series (e.g. webhook events per minute by event type).

    Up to :data:`BARS_UP_TO` minutes, a group of bars per minute: series with equal counts stand
    side by side instead of one hiding the others. Over longer windows, one line per series with a
    marker at every count, so a single busy minute still shows.
    """
    import matplotlib.dates as mdates

    fig, ax = _figure()
    series = dict(sorted(series.items(), key=lambda item: _lifecycle_rank(item[0])))
    styles = series_styles(list(series))
    if len(index) <= BARS_UP_TO:
        slot = 0.8 / max(len(series), 1)  # of a minute, per series
        for n, ((name, values), (colour, style)) in enumerate(
            zip(series.items(), styles, strict=True)
        ):
            # the group fills its minute (09:00 counts 09:00:00–09:00:59): centred on its middle
            shift = timedelta(minutes=0.5 + (n - (len(series) - 1) / 2) * slot)
            ax.bar([t + shift for t in index], values, width=slot / (24 * 60), label=name,
                   color=colour, hatch=_HATCHES[style], edgecolor="white", linewidth=0.5)  # fmt: skip
    else:
        markers = "osD^v<>P"
        for n, ((name, values), (colour, style)) in enumerate(
            zip(series.items(), styles, strict=True)
        ):
            ax.plot(index, values, label=name, lw=1.2, color=colour, linestyle=style,
                    marker=markers[n % len(markers)], markersize=3)  # fmt: skip
    if index:
        first, last = min(index), max(index)
        pad = max((last - first) * 0.03, timedelta(minutes=1))
        end = last + timedelta(minutes=1) if len(index) <= BARS_UP_TO else last
        # the data's own window, not matplotlib's default years
        ax.set_xlim(first - pad, end + pad)
        short = (end - first) + 2 * pad <= timedelta(minutes=10)
    else:
        short = False
    # whole minutes on a short axis (the counts are per minute; seconds ticks would mislead)
    locator = mdates.MinuteLocator() if short else mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    ax.set_xlabel("minute (UTC)")
    _counts_axis(ax, "events per minute")
    if series:
        _legend_outside(ax)
    ax.set_title(title, fontsize=10)
    return _render(fig, title)


@_literal_text
def latency_histogram(series: dict[str, Sequence[float]], *, title: str, unit: str = "s") -> Plot:
    """Latencies per series on shared bins; the axis starts at zero and a negative value is left
    out (said in the axis label): a latency below zero is a clock or ordering error, not a time."""
    import numpy as np

    fig, ax = _figure()
    kept = {
        name: [v for v in values if v is not None and v >= 0] for name, values in series.items()
    }
    dropped = sum(len(values) for values in series.values()) - sum(map(len, kept.values()))
    everything = [v for values in kept.values() for v in values]
    top = max(everything, default=0.0) or 1.0
    edges = np.histogram_bin_edges(everything or [0.0], bins=min(40, max(10, len(everything))),
                                   range=(0.0, top))  # fmt: skip
    styles = series_styles(list(kept))
    for (name, values), (colour, _style) in zip(kept.items(), styles, strict=True):
        if values:
            ax.hist(values, bins=edges, alpha=0.6, label=f"{name} ({len(values):,})", color=colour,
                    edgecolor=colour, linewidth=0.8)  # fmt: skip
    ax.set_xlim(0, top * 1.04)
    note = f"; {dropped:,} negative value(s) left out" if dropped else ""
    ax.set_xlabel(f"latency ({unit}){note}")
    _counts_axis(ax, "messages")
    if everything:
        _legend_outside(ax)
    ax.set_title(title, fontsize=10)
    return _render(fig, title)
