"""Many clinicians at once: six browser sessions upload two X-rays each while a job trains.

Each session must get its own results, see nothing of the others, and show no error. How long
they take is measured by `bench/concurrency.py`, not asserted here.
"""

from __future__ import annotations

import pytest
from dashboard_fixtures import PROJECT_ROOT, make_tiny_dataset, require_data
from pneumonet_testing.concurrent_sessions import (
    open_predict,
    start_training_job,
    stop_training_job,
    upload_concurrently,
)

SESSIONS = 6
VIEWPORT = {"width": 1280, "height": 900}
FILES_PER_SESSION = 2


@pytest.fixture
def running_job(server_environment, tmp_path):
    dataset = make_tiny_dataset(tmp_path / "tiny")
    start_training_job(server_environment, dataset, PROJECT_ROOT)
    yield
    stop_training_job(server_environment, PROJECT_ROOT)


def test_six_sessions_get_their_own_results_while_training(browser, dashboard_server, running_job):
    data = require_data()
    images = (
        sorted((data / "test" / "PNEUMONIA").iterdir())[:6]
        + sorted((data / "test" / "NORMAL").iterdir())[:6]
    )
    uploads = [images[index::SESSIONS] for index in range(SESSIONS)]
    pages = [open_predict(browser, dashboard_server["url"], VIEWPORT) for _ in range(SESSIONS)]
    try:
        results = upload_concurrently(pages, uploads)
    finally:
        for page in pages:
            page.context.close()
    for result in results:
        assert result.seconds is not None, f"{result.files} never got their results"
        assert result.shown_foreign == [], f"{result.files} saw {result.shown_foreign}"
        assert result.errors == []
