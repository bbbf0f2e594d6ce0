"""The plot rules a person relies on, checked on the drawn figures: every state its own colour,
labelled axes with units, counts from zero in whole numbers, a latency axis that never goes
below zero, time ticks a person can read, and legends that never cover the data."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from runbook_lib.providers.base import get_provider, provider_names
from runbook_lib.providers.sendapi.contract import CHANNEL_EVENTS
from runbook_lib.reporting import plots
from runbook_lib.reporting.plots import (
    STATE_COLOURS,
    bar_chart,
    latency_histogram,
    series_styles,
    stacked_counts,
    state_of,
    timeline,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
#: finer states than the common model's (read is a delivered message; acceptance is its queued state)
COMMON_STATE_OF = {
    "ACCEPTED": "QUEUED",
    "READ": "DELIVERED",
    "CLICKED": "DELIVERED",
    "BOUNCED": "FAILED",
    "COMPLAINED": "DELIVERED",  # a complaint comes after delivery (SendAPI email)
}


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions render, kept for inspection after they were saved."""
    figures = []
    render = plots._render

    def keep(fig, title):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        plot = render(fig, title)  # lays out, saves and closes the figure as for a report
        FigureCanvasAgg(fig).draw()  # a closed figure's canvas no longer draws; lay it out again
        figures.append(fig)
        return plot

    monkeypatch.setattr(plots, "_render", keep)
    return figures


def _all_plots() -> dict[str, object]:
    minutes = [T0 + timedelta(minutes=m) for m in range(20)]
    return {
        "timeline": lambda: timeline(
            [
                (T0, "QUEUED", 1, True),
                (T0 + timedelta(seconds=0.4), "SENT", 2, True),
                (T0 + timedelta(seconds=1.1), "DELIVERED", 3, True),
                (T0 + timedelta(seconds=1.2), "DELIVERED", 3, False),
            ],
            title="t",
        ),  # fmt: skip
        "funnel": lambda: bar_chart(
            ["accepted (seen)", "queued", "sent", "delivered", "failed"],
            [10, 10, 9, 8, 1],
            title="f",
        ),  # fmt: skip
        "events": lambda: stacked_counts(
            minutes, {"queued": [5 + m % 3 for m in range(20)], "sent": [6] * 20}, title="e"
        ),
        "events over a day": lambda: stacked_counts(
            [T0 + timedelta(minutes=m) for m in range(1440)], {"sent": [3] * 1440}, title="d"
        ),
        "latency": lambda: latency_histogram(
            {"first event → sent": [0.1, 0.2, 0.3], "first event → delivered": [1.0, 2.0, 9.0]},
            title="l",
            unit="seconds",
        ),  # fmt: skip
    }


# -- colours ------------------------------------------------------------------------------------
def test_every_state_has_a_colour_of_its_own():
    colours = list(STATE_COLOURS.values())
    assert len(set(colours)) == len(colours)
    assert not set(plots._OTHER_COLOURS) & set(
        colours
    )  # an unnamed series never looks like a state


@pytest.mark.parametrize("provider", provider_names())
def test_every_event_type_of_every_provider_is_drawn_in_its_states_colour(provider):
    events = dict(get_provider(provider).lifecycle.state_by_event)
    for event_type, common in events.items():
        state = state_of(event_type)
        assert state is not None, f"{provider}: {event_type} has no state colour"
        assert COMMON_STATE_OF.get(state, state) == common, (provider, event_type, state)


def test_sendapi_and_onyx_states_get_their_own_colours():
    labels = ["message.accepted", "sms.queued", "sms.sent", "sms.delivered", "message.read",
              "email.clicked", "sms.failed", "email.bounced", "email.complained",
              "message.received"]  # fmt: skip
    assert {state_of(e) for e in CHANNEL_EVENTS["email"]} >= {"BOUNCED", "COMPLAINED"}
    colours = [colour for colour, _ in series_styles(labels)]
    assert len(set(colours)) == len(labels), dict(zip(labels, colours, strict=True))


def test_two_series_of_one_state_differ_in_line_style():
    (c1, s1), (c2, s2), (c3, s3) = series_styles(
        ["sms.delivered", "message.delivered", "delivery_updated.delivered"]
    )
    assert c1 == c2 == c3 == STATE_COLOURS["DELIVERED"]
    assert len({s1, s2, s3}) == 3


def test_the_funnel_draws_each_state_in_its_colour(drawn):
    from matplotlib.colors import to_hex

    _all_plots()["funnel"]()
    bars = drawn[0].axes[0].patches
    assert [to_hex(b.get_facecolor()) for b in bars] == [
        STATE_COLOURS[s] for s in ("ACCEPTED", "QUEUED", "SENT", "DELIVERED", "FAILED")
    ]


# -- axes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["timeline", "funnel", "events", "latency"])
def test_every_plot_labels_its_value_axis_and_its_time_axis(drawn, name):
    _all_plots()[name]()
    ax = drawn[0].axes[0]
    assert ax.get_ylabel(), f"{name}: no y axis label"
    if name != "funnel":  # the funnel's x axis is its categories
        assert ax.get_xlabel(), f"{name}: no x axis label"


@pytest.mark.parametrize("name", ["funnel", "events", "latency"])
def test_counts_start_at_zero_in_whole_numbers(drawn, name):
    _all_plots()[name]()
    ax = drawn[0].axes[0]
    assert ax.get_ylim()[0] == 0
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert all(float(t).is_integer() for t in ticks), ticks


def test_a_latency_axis_never_goes_below_zero_and_drops_negative_values_visibly(drawn):
    latency_histogram(
        {"to sent": [-3.0, -0.5, 0.2, 0.4], "to delivered": [-0.52, 1.0, 2.5]}, title="l"
    )
    ax = drawn[0].axes[0]
    assert ax.get_xlim()[0] >= 0
    assert min(bar.get_x() for bar in ax.patches) >= 0
    assert "3 negative" in ax.get_xlabel()
    assert sum(bar.get_height() for bar in ax.patches) == 4  # only the non-negative values


def test_latency_series_share_their_bins(drawn):
    _all_plots()["latency"]()
    widths = {round(bar.get_width(), 9) for bar in drawn[0].axes[0].patches}
    assert len(widths) == 1, widths


def test_the_timeline_starts_at_the_first_webhook(drawn):
    _all_plots()["timeline"]()
    ax = drawn[0].axes[0]
    assert ax.get_xlim()[0] == 0
    assert "seconds after the first webhook (2026-11-24 09:00:00 UTC)" in ax.get_xlabel()


# -- time ticks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["timeline", "events", "events over a day"])
def test_time_ticks_are_short_enough_to_read(drawn, name):
    _all_plots()[name]()
    labels = [t.get_text() for t in drawn[0].axes[0].get_xticklabels() if t.get_text()]
    assert len(labels) >= 3
    assert all(len(label) <= 8 for label in labels), labels


def test_events_of_a_single_minute_show_side_by_side_on_an_axis_of_minutes(drawn):
    """One busy minute with equal counts: three bars next to each other, ticks on whole minutes."""
    stacked_counts([T0], {"sent": [2], "delivery": [2], "queued": [2]}, title="e")
    ax = drawn[0].axes[0]
    left, right = ax.get_xlim()  # matplotlib dates: days
    assert 0 < (right - left) * 24 * 60 <= 10  # minutes, not matplotlib's default years
    bars = sorted(ax.patches, key=lambda b: b.get_x())
    assert len(bars) == 3 and all(b.get_height() == 2 for b in bars)
    assert all(a.get_x() + a.get_width() <= b.get_x() + 1e-12 for a, b in itertools.pairwise(bars))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and all(len(label) == 5 and label[2] == ":" for label in labels), labels


def test_series_are_drawn_in_lifecycle_order_whatever_order_they_come_in(drawn):
    stacked_counts([T0], {"delivery": [1], "other": [1], "failed": [1], "queued": [1], "sent": [1]},
                   title="e")  # fmt: skip
    legend = [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()]
    assert legend == ["queued", "sent", "delivery", "failed", "other"]


def test_a_long_window_draws_lines_with_a_marker_at_every_count(drawn):
    minutes = [T0 + timedelta(minutes=m) for m in range(plots.BARS_UP_TO + 30)]
    stacked_counts(minutes, {"sent": [1] * len(minutes), "failed": [0] * len(minutes)}, title="e")
    lines = drawn[0].axes[0].get_lines()
    assert len(lines) == 2
    assert all(line.get_marker() not in (None, "", "None") for line in lines)
    assert len({line.get_marker() for line in lines}) == 2


# -- legends ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["timeline", "events", "events over a day", "latency"])
def test_a_legend_never_covers_the_plotted_area(drawn, name):
    _all_plots()[name]()
    fig = drawn[0]
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None, f"{name}: no legend"
    renderer = fig.canvas.get_renderer()  # the Agg canvas the fixture attached
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    # and it is inside the saved image, not cut off at its edge
    assert legend.get_window_extent(renderer).x1 <= fig.bbox.x1
