"""Shared test settings: the one data setting, and helpers to grade notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The single data setting of the test suite: $ADGRADE_DATA, defaulting to the shared copy beside the checkout.
DATA_DIR = Path(os.environ.get("ADGRADE_DATA", REPO.parent / "shared" / "data" / "nsl-kdd"))
SUBMISSIONS = REPO / "tests" / "submissions"
SOLUTION = REPO / "reference" / "solution.ipynb"
TEMPLATE = REPO / "student_templates" / "nslkdd_assessment.ipynb"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from harness import data

    try:
        data.require_files(DATA_DIR, data.REQUIRED_FILES)
    except data.DataError as error:
        pytest.fail(f"The NSL-KDD files are needed for this test: {error}")
    return DATA_DIR
