"""The reports as a person sees them: go-live, message trace, incident audit and the index, each
shot full-page by headless Chromium into ``reports/screenshots/`` of the test run.

The PNGs are the artefact to look at (set ``RUNBOOK_SCREENSHOT_DIR`` to get a copy somewhere
stable); the assertions say each is a real, non-blank page of plausible size, and that the plots
in the reports reached the screen as images.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook_lib.cli import run_read_only
from runbook_lib.reporting.index import build_index
from runbook_lib.reporting.plots import bar_chart, latency_histogram, stacked_counts, timeline
from tests.screenshots import WIDTH, Shot, chromium, full_page_screenshot

pytestmark = [
    pytest.mark.notebook,
    pytest.mark.skipif(
        chromium() is None, reason="Chromium not installed (make chromium-available)"
    ),
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGES = ("go-live", "trace", "audit", "index", "plots")


def _plot_gallery(folder: Path) -> Path:
    """Every plot kind on data with all the states the providers report, on one page."""
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    at = [t0 + timedelta(seconds=s) for s in (0, 0.4, 1.2, 1.3, 2.5)]
    points = [(at[0], "QUEUED", 1, True), (at[1], "SENT", 2, True),
              (at[2], "DELIVERED", 3, True), (at[3], "DELIVERED", 3, False),
              (at[4], "FAILED", 4, False)]  # fmt: skip
    short = [t0 + timedelta(minutes=m) for m in range(5)]
    every_state = {
        name: [(m * k) % 7 + k for m in range(5)]
        for k, name in enumerate(
            ["queued", "sent", "delivery", "failed", "read", "email.bounced",
             "email.complained", "allowed", "delivery_updated.delivered"], start=1,
        )
    }  # fmt: skip
    day = [t0 + timedelta(minutes=m) for m in range(180)]
    outage = {
        "sent": [8 if not 60 <= m < 75 else 0 for m in range(180)],
        "delivery": [7 if not 60 <= m < 80 else (0 if m < 75 else 20) for m in range(180)],
        "failed": [1 if m % 20 == 0 else 0 for m in range(180)],
    }
    latencies = {
        "first event → sent": [0.2 + (i % 13) * 0.05 for i in range(200)],
        "first event → delivered": [1.0 + (i % 29) * 0.3 for i in range(200)],
    }
    plots = [
        timeline(points, title="msg_0123: webhooks as they arrived"),
        bar_chart(["accepted (seen)", "queued", "sent", "delivered", "failed"],
                  [200, 198, 190, 170, 12], title="Funnel: each state counted separately"),
        stacked_counts(short, every_state, title="Webhook events per minute: every provider's states"),
        stacked_counts(day, outage, title="Webhook events per minute: three hours with an outage"),
        latency_histogram(latencies, title="Latency distribution", unit="seconds"),
    ]  # fmt: skip
    page = folder / "plots.html"
    body = "".join(f"<h2>{p.title}</h2>{p._repr_html_()}" for p in plots)
    page.write_text(f"<!doctype html><meta charset=utf-8><title>plots</title><body>{body}</body>")
    return page


@pytest.fixture(scope="module")
def shots(golive, tmp_path_factory) -> dict[str, Shot]:
    """A trace and an audit of the session's go-live, the index, and a screenshot of each."""
    stack, params, go = golive
    root = go.report_dir.parent.parent
    message = go.summary.messages[0]
    trace = run_read_only(
        "trace", params, reports_root=root, extra_env=stack.env,
        notebook_parameters={"message_id": message["messageId"], "external_reference": ""},
    )  # fmt: skip
    audit = run_read_only(
        "audit", params, reports_root=root, extra_env=stack.env,
        notebook_parameters={"since": "1h", "window_from": "", "window_to": ""},
    )  # fmt: skip
    assert trace.exit_code == 0, trace.summary.error
    assert audit.exit_code == 0, audit.summary.error
    pages = {
        "go-live": go.report_dir / "report.html",
        "trace": trace.report_dir / "report.html",
        "audit": audit.report_dir / "report.html",
        "index": build_index(root),
        "plots": _plot_gallery(tmp_path_factory.mktemp("gallery")),
    }
    out = root / "screenshots"
    taken = {name: full_page_screenshot(page, out / f"{name}.png") for name, page in pages.items()}
    copy_to = os.environ.get("RUNBOOK_SCREENSHOT_DIR")
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        for shot in taken.values():
            shutil.copy2(shot.path, Path(copy_to) / shot.path.name)
    return taken


@pytest.mark.parametrize("name", PAGES)
def test_each_report_is_shot_as_a_real_non_blank_page(shots, name):
    shot = shots[name]
    assert shot.path.parent.name == "screenshots" and shot.path.parent.parent.name == "reports"
    assert shot.path.read_bytes()[:8] == PNG_SIGNATURE
    assert shot.width == WIDTH
    # a page with a heading, a table or a plot: taller than a banner, not one or two colours
    assert 200 <= shot.height <= 32000, shot.height
    assert shot.colours > 16, f"{name}: {shot.colours} colour(s): a blank page"


@pytest.mark.parametrize("name", ["trace", "audit", "plots"])
def test_the_plots_reach_the_screen(shots, name):
    """Pages with plots are much richer in colour than text and tables alone (anti-aliased lines)."""
    assert shots[name].colours > 256, shots[name].colours
