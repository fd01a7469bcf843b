"""Shared fixtures of the evaluation tests: this folder on sys.path (fake_openai, toy_benchmark,
paper_tables import by name) and a fake OpenAI-compatible server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from fake_openai import FakeOpenAI  # noqa: E402


@pytest.fixture
def fake_server():
    with FakeOpenAI() as server:
        yield server
