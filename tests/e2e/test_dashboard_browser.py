"""End-to-end: the dashboard in headless Chromium, driven like a user would.

Flow (a): Home -> Predict (upload a real X-ray, see a probability and a heatmap) -> Evaluate
(move the threshold, see the confusion matrix change). Flow (b): start training on a tiny
subset, see a live curve point, stop it. Full-page screenshots of every page are written to
docs/screenshots/ along the way.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import SCREENSHOT_MODE, save_screenshot, wait_until_idle
from dashboard_fixtures import DATA_ROOT, make_tiny_dataset, require_data, sample_image_path

pytestmark = pytest.mark.e2e

TRAINING_TIMEOUT_MS = 180_000


def open_page(page, base_url: str, path: str = "") -> None:
    """Load a dashboard page and wait until its script has finished."""
    page.goto(f"{base_url}/{path}")
    wait_until_idle(page)


def go_to(page, title: str) -> None:
    """Click a page in the sidebar navigation and wait for it to render."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title, level=1).wait_for()
    wait_until_idle(page)


def choose_option(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox by its label."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option).click()
    wait_until_idle(page)


def stop_training(page) -> None:
    """Press Stop once; the job must report that it is stopping (or has stopped)."""
    page.get_by_role("button", name="Stop training").click()
    page.get_by_text("Stopping").or_(page.get_by_text("was stopped")).first.wait_for(timeout=30_000)


def confusion_matrix_text(page) -> str:
    """The numbers drawn in the confusion matrix chart."""
    chart = page.locator(".st-key-confusion_matrix .js-plotly-plot").last
    chart.wait_for()
    return " ".join(chart.locator("text").all_text_contents())


def test_home_renders_with_the_active_model(page, dashboard_server):
    """Home shows its title and the active model (its speed is measured in bench/)."""
    page.goto(dashboard_server["url"])
    page.get_by_role("heading", name="PneumoNet", level=1).wait_for(timeout=60_000)
    wait_until_idle(page)
    assert page.get_by_role("heading", name="Active model").is_visible()
    save_screenshot(page, "home")


def test_predict_then_evaluate(page, dashboard_server):
    """Flow (a): upload an X-ray, get a probability and heatmap; threshold changes the matrix."""
    require_data()
    image = sample_image_path("PNEUMONIA")
    open_page(page, dashboard_server["url"])

    go_to(page, "Predict")
    page.locator("input[type='file']").set_input_files(str(image))
    page.get_by_text("Probability of pneumonia").wait_for(timeout=90_000)
    wait_until_idle(page)
    probability = page.get_by_test_id("stMetricValue").first.inner_text()
    assert re.fullmatch(r"\d{1,3}\.\d%", probability.strip()), probability
    assert page.get_by_text("Grad-CAM").first.is_visible()
    assert page.locator("[data-testid='stImage'] img").count() >= 2
    assert page.get_by_text("Not a diagnosis").first.is_visible()
    save_screenshot(page, "predict")

    go_to(page, "Evaluate")
    choose_option(page, "Evaluate on", "val/ folder")
    before = confusion_matrix_text(page)
    slider = page.get_by_role("slider", name="Decision threshold")
    slider.focus()
    slider.press("End")
    wait_until_idle(page)
    page.get_by_text("Confusion matrix at threshold 1.00").wait_for()
    after = confusion_matrix_text(page)
    assert before != after, "the confusion matrix did not change with the threshold"
    slider.focus()
    for _ in range(45):
        slider.press("ArrowLeft")
    wait_until_idle(page)
    page.get_by_text("Confusion matrix at threshold 0.55").wait_for()
    save_screenshot(page, "evaluate")


def test_training_live_and_stop(page, dashboard_server, tmp_path):
    """Flow (b): start training, see a live curve point, stop it.

    Tests train a tiny synthetic set; for the documentation's screenshots the run is what a
    user starts: the real dataset with the default settings.
    """
    dataset = DATA_ROOT if SCREENSHOT_MODE else make_tiny_dataset(tmp_path / "tiny")
    open_page(page, dashboard_server["url"], "train")

    folder = page.get_by_role("textbox", name="Dataset folder")
    folder.fill(str(dataset))
    folder.press("Enter")
    wait_until_idle(page)
    page.get_by_text(str(dataset), exact=True).wait_for()
    if not SCREENSHOT_MODE:
        page.get_by_role("spinbutton", name="Epochs").fill("300")
        choose_option(page, "Image size (px)", "64")
        choose_option(page, "Batch size", "8")
    epochs = page.get_by_role("spinbutton", name="Epochs").input_value()
    page.get_by_role("button", name="Start training").click()

    page.get_by_text("Running:").wait_for(timeout=60_000)
    curve = page.locator(".st-key-curve_accuracy .js-plotly-plot .scatterlayer .trace")
    curve.first.wait_for(timeout=TRAINING_TIMEOUT_MS)
    assert page.get_by_text(re.compile(rf"Epoch \d+ of {epochs}")).first.is_visible()
    save_screenshot(page, "train")

    second_tab = page.context.new_page()  # the job lives in its status file, not the session
    open_page(second_tab, dashboard_server["url"], "train")
    second_tab.get_by_text("Running:").wait_for()
    assert second_tab.get_by_role("button", name="Start training").is_disabled()
    second_tab.close()

    stop_training(page)
    page.get_by_text("was stopped").wait_for(timeout=TRAINING_TIMEOUT_MS)
    wait_until_idle(page)
    assert page.get_by_role("button", name="Start training").is_enabled()
    save_screenshot(page, "train_stopped")

    go_to(page, "Runs")
    page.get_by_test_id("stDataFrame").first.wait_for()
    assert page.get_by_text("mlflow ui --backend-store-uri").is_visible()
    save_screenshot(page, "runs")
