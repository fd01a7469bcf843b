"""Shared fixtures: the embedded reference model, and llama.cpp's own quantizer as a reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it: see quantdrop.cli
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_model() -> Path:
    from quantdrop.demo_model import ensure_demo_model

    return ensure_demo_model()
