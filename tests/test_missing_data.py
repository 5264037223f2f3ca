"""The rule for tests that need the shared data: skip on a developer's machine, fail in CI."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _pytest.outcomes import Failed, Skipped
from dashboard_fixtures import require_data
from missing_data import missing_data


def outcome(action: Callable[[], object]) -> str:
    """ "skip", "fail" or "none": what `action` does to the test calling it (caught here)."""
    try:
        action()
    except Skipped:
        return "skip"
    except Failed:
        return "fail"
    return "none"


@pytest.mark.parametrize(("value", "expected"), [("", "skip"), ("false", "skip"), ("true", "fail")])
def test_missing_data_skips_outside_ci_and_fails_in_ci(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert outcome(lambda: missing_data("no data here")) == expected


def test_require_data_fails_in_ci_when_the_data_is_absent(monkeypatch, tmp_path):
    import dashboard_fixtures

    monkeypatch.setattr(dashboard_fixtures, "DATA_ROOT", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    assert outcome(require_data) == "fail"
    monkeypatch.delenv("CI")
    assert outcome(require_data) == "skip"
