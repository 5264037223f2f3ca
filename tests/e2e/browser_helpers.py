"""Helpers for the browser tests: screenshots and waiting for Streamlit to settle."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# `./run screenshots` sets PNEUMONET_SCREENSHOTS=1: only then are docs/screenshots/ rewritten
# (with the real dataset and a realistic run); ordinary test runs write to a temporary folder.
SCREENSHOT_MODE = os.environ.get("PNEUMONET_SCREENSHOTS") == "1"
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if SCREENSHOT_MODE
    else Path(tempfile.gettempdir()) / "pneumonet-test-screenshots"
)


def save_screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as `<name>.png` in `SCREENSHOTS` (overwriting).

    Streamlit scrolls inside its main container, so the viewport is first stretched to the
    container's full height.

    Args:
        page: The Playwright page.
        name: File name without extension.

    Returns:
        The PNG written.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]')
                || document.querySelector('section.main');
            const inner = main ? main.scrollHeight : 0;
            return Math.max(inner, document.body.scrollHeight, window.innerHeight);
        }"""
    )
    page.mouse.move(0, 0)  # no hover toolbars in the picture
    original = page.viewport_size
    page.set_viewport_size({"width": original["width"], "height": min(int(height) + 40, 12000)})
    page.wait_for_timeout(600)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(original)
    return path


def wait_until_idle(page, timeout_ms: int = 90_000) -> None:
    """Wait until Streamlit has finished running the page script (and let the page paint).

    Args:
        page: The Playwright page.
        timeout_ms: How long to wait at most.
    """
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms
    )
    page.wait_for_timeout(400)
