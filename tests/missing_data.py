"""What a test does when the shared dataset is absent: skip on a developer's machine, fail in CI.

A CI run (`CI=true`, as GitHub Actions and most CI services set it) must never pass by skipping
the tests that need the data.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI (`CI=true`)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def missing_data(reason: str) -> NoReturn:
    """Skip the test with `reason`, or fail it with `reason` in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: tests that need the shared data must not skip)")
    pytest.skip(reason)
