"""GGUFStreamWriter is a state machine like gguf-py's GGUFWriter: it refuses data after the last planned
tensor or after finish(), and finish() (or a clean `with` exit) refuses a file that misses a planned
tensor, which through util.atomic_output leaves no file at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader

from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUFStreamWriter
from quantdrop.util import atomic_output

PLAN = [("a.weight", (64,), T.F32), ("b.weight", (32,), T.F32), ("c.weight", (16,), T.F32)]


def _tensor(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32).view(np.uint8)


def test_a_complete_file_loads(tmp_path: Path) -> None:
    out = tmp_path / "ok.gguf"
    with atomic_output(out) as fh, GGUFStreamWriter(fh, [], PLAN) as w:
        for _, (n,), _ in PLAN:
            w.write(_tensor(n))
            w.end_tensor()
    r = GGUFReader(out)
    assert [t.name for t in r.tensors] == ["a.weight", "b.weight", "c.weight"]
    assert np.array_equal(r.tensors[2].data, np.arange(16, dtype=np.float32))


def test_closing_before_the_last_tensor_raises_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "short.gguf"
    missing = pytest.raises(QuantdropError, match=r"after 2 of 3 planned tensors \(missing: c\.weight\)")
    with missing, atomic_output(out) as fh:
        w = GGUFStreamWriter(fh, [], PLAN)
        for _, (n,), _ in PLAN[:2]:
            w.write(_tensor(n))
            w.end_tensor()
        w.finish()
    assert list(tmp_path.iterdir()) == []


def test_a_half_written_tensor_is_not_finished(tmp_path: Path) -> None:
    with open(tmp_path / "x", "wb") as fh, pytest.raises(QuantdropError, match="after 0 of 3"):
        w = GGUFStreamWriter(fh, [], PLAN)
        w.write(_tensor(8))
        w.finish()


def test_out_of_order_calls_are_refused(tmp_path: Path) -> None:
    with open(tmp_path / "x", "wb") as fh:
        w = GGUFStreamWriter(fh, [], PLAN[:1])
        w.write(_tensor(64))
        w.end_tensor()
        with pytest.raises(QuantdropError, match="after the last of the 1 planned tensors"):
            w.write(b"\0" * 4)
        with pytest.raises(QuantdropError, match="after the last"):
            w.end_tensor()
        w.finish()
        with pytest.raises(QuantdropError, match=r"after finish\(\)"):
            w.write(b"")
