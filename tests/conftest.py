"""Shared fixtures: the real-data folder beside the checkout, skipping cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REFINERY_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a message saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not available: {path} (a fresh clone has no ../shared)")
    return path


@pytest.fixture
def shared_data():
    return shared
