"""The rule for tests that need the shared data: skip on a developer's machine, fail in CI."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped
from dashboard_fixtures import require_data
from missing_data import missing_data


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_missing_data_skips_outside_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(Skipped, match="no data here"):
        missing_data("no data here")


@pytest.mark.parametrize("value", ["true", "TRUE"])
def test_missing_data_fails_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(Failed, match="no data here.*CI=true"):
        missing_data("no data here")


def test_require_data_fails_in_ci_when_the_data_is_absent(monkeypatch, tmp_path):
    import dashboard_fixtures

    monkeypatch.setattr(dashboard_fixtures, "DATA_ROOT", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="shared dataset not found"):
        require_data()
    monkeypatch.delenv("CI")
    with pytest.raises(Skipped, match="shared dataset not found"):
        require_data()


def test_require_real_data_fails_in_ci_when_the_data_is_absent(monkeypatch, tmp_path):
    import conftest

    monkeypatch.setattr(conftest, "REAL_DATA_ROOT", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="shared dataset not found"):
        conftest.require_real_data()
