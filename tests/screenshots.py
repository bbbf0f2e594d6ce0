"""Test helper: a full-page screenshot of an HTML file with headless Chromium, and a blank check.

Chromium's ``--screenshot`` captures the window, not the page, so the page is shot in a window
taller than needed (doubled until the bottom band is empty) and the empty rows below the content
are cut off. ``make chromium-available`` installs Chromium; without it the tests that need it skip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WIDTH = 1280
MARGIN = 24  # empty pixels kept below the last content row

#: flags for a quiet, offline, throwaway browser (no sync, updates, first-run or network chatter)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class Shot:
    path: Path
    width: int
    height: int
    colours: int  # distinct colours in the image (capped at 4096): 1 is a blank page


def _shoot(browser: str, page: Path, png: Path, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
             f"--window-size={WIDTH},{height}", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def _last_content_row(image) -> int:
    """Index of the last row that differs from the bottom row's background colour."""
    background = image.getpixel((0, image.height - 1))
    rows = image.height
    for y in range(rows - 1, -1, -1):
        band = image.crop((0, y, image.width, y + 1))
        if band.getcolors(1) is None or band.getpixel((0, 0)) != background:
            return y
    return -1


def full_page_screenshot(page: Path, png: Path, *, max_height: int = 32000) -> Shot:
    """Shoot ``page`` into ``png``, cut to the content's height; returns what the image holds."""
    from PIL import Image  # matplotlib's own image library

    browser = chromium()
    if browser is None:
        raise RuntimeError("Chromium is not installed: run `make chromium-available`")
    png.parent.mkdir(parents=True, exist_ok=True)
    height = 2400
    while True:
        _shoot(browser, page, png, height)
        with Image.open(png) as shot:
            image = shot.convert("RGB")
        last = _last_content_row(image)
        if last < image.height * 0.9 or height >= max_height:
            break
        height = min(height * 2, max_height)
    image = image.crop((0, 0, image.width, min(image.height, last + 1 + MARGIN)))
    image.save(png)
    colours = image.getcolors(4096)
    return Shot(png, image.width, image.height, 4097 if colours is None else len(colours))
