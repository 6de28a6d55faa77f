"""Fixtures of the training.data tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.data.samples import GOOD_ROWS, csv_text, write


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    """A plain CSV of the three GOOD_ROWS."""
    return write(tmp_path / "loans.csv", csv_text(GOOD_ROWS))
