"""Every page fits a 1280 px and a 1920 px wide window: nothing spills past the right edge of
the main area (a table, a column of text, a chart), as a projector in a meeting shows it."""

from __future__ import annotations

import pytest
from browser_helpers import wait_until_idle

pytestmark = pytest.mark.e2e

PAGES = ("", "predict", "worklist", "evaluate", "train", "runs", "audit")
WIDTHS = (1280, 1920)
# How far the element reaching furthest right sticks out of the main area, in CSS pixels.
# Content inside its own scrolling box (a table's grid, a code block) stays inside that box.
OVERFLOW_SCRIPT = """() => {
  const main = [...document.querySelectorAll('[data-testid="stMain"]')]
    .find((candidate) => candidate.getBoundingClientRect().width > 0);
  const right = main.getBoundingClientRect().right;
  const clipped = (element) => {
    for (let node = element.parentElement; node && node !== main; node = node.parentElement) {
      const overflow = getComputedStyle(node).overflowX;
      if (overflow !== 'visible' && node.getBoundingClientRect().right <= right + 1) return true;
    }
    return false;
  };
  let worst = 0, what = "";
  for (const element of main.querySelectorAll('*')) {
    const box = element.getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && box.right - right > worst && !clipped(element)) {
      worst = box.right - right;
      what = (element.getAttribute('data-testid') || element.tagName) + ' ' +
        (element.innerText || '').slice(0, 60);
    }
  }
  return [worst, what];
}"""


WITH_A_WIDE_BLOCK = f"""() => {{
  const block = document.createElement('div');
  block.style.cssText = 'width: 5000px; height: 10px';
  [...document.querySelectorAll('[data-testid="stMain"]')]
    .find((candidate) => candidate.getBoundingClientRect().width > 0).appendChild(block);
  const measured = ({OVERFLOW_SCRIPT})();
  block.remove();
  return measured;
}}"""


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
            overflow, element = page.evaluate(OVERFLOW_SCRIPT)
            if overflow > 1:
                spilled[path or "home"] = f"{round(overflow)} px: {element}"
        # The check sees a real spill: a wide block added to the page (and measured in the
        # same step, before a rerun can redraw the page) sticks out.
        assert page.evaluate(WITH_A_WIDE_BLOCK)[0] > 1000
    finally:
        context.close()
    assert not spilled, f"past the right edge at {width} px (CSS px): {spilled}"
