"""Fixtures for the report tests: the paper's own numbers."""

from __future__ import annotations

import pytest

from quantdrop.report import ReportData
from tests.report.paper import paper_data as _paper_data


@pytest.fixture
def paper_data() -> ReportData:
    return _paper_data()
