"""Every page fits a 1280 px and a 1920 px wide window: nothing spills past the right edge of
the main area (a table, a column of text, a chart), as a projector in a meeting shows it."""

from __future__ import annotations

import pytest
from browser_helpers import wait_until_idle

pytestmark = pytest.mark.e2e

PAGES = ("", "predict", "worklist", "evaluate", "train", "runs", "audit")
WIDTHS = (1280, 1920)
# The widest element inside the main area, minus the area's own width, in CSS pixels.
OVERFLOW_SCRIPT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const right = main.getBoundingClientRect().right;
  let worst = 0;
  for (const element of main.querySelectorAll('*')) {
    const box = element.getBoundingClientRect();
    if (box.width > 0 && box.height > 0) worst = Math.max(worst, box.right - right);
  }
  return worst;
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_window(browser, dashboard_server, width):
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    spilled = {}
    try:
        for path in PAGES:
            page.goto(f"{dashboard_server['url']}/{path}")
            wait_until_idle(page)
            overflow = page.evaluate(OVERFLOW_SCRIPT)
            if overflow > 1:
                spilled[path or "home"] = round(overflow)
    finally:
        context.close()
    assert not spilled, f"past the right edge at {width} px (CSS px): {spilled}"
