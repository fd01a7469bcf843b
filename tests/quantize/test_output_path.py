"""--force replaces a regular file, never the source itself or a FIFO, device or folder (issue 10, item 5)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.quantize import quantize
from tests.synthetic_gguf import write_synthetic


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "src.gguf", "llama", n_layer=2)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", ["same path", "symlink", "hardlink", "other spelling"])
def test_output_that_is_the_source_is_refused(src: Path, how: str) -> None:
    before = _digest(src)
    out = {
        "same path": src,
        "symlink": src.with_name("link.gguf"),
        "hardlink": src.with_name("hard.gguf"),
        "other spelling": src.parent / "." / src.name,
    }[how]
    if how == "symlink":
        out.symlink_to(src)
    elif how == "hardlink":
        os.link(src, out)
    with pytest.raises(QuantdropError, match="is the source"):
        quantize(src, out, recipe="Q8_0", force=True)
    assert _digest(src) == before
    assert not [p for p in src.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("kind", "message"), [("fifo", "a FIFO"), ("device", "a character device"), ("directory", "a directory")]
)
def test_force_never_replaces_a_special_file(src: Path, kind: str, message: str) -> None:
    out = src.with_name("out.gguf")
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "device":
        out.symlink_to("/dev/null")  # were it replaced, only the link would go; still refused
    else:
        out.mkdir()
    with pytest.raises(QuantdropError, match=f"is {message}, not a regular file"):
        quantize(src, out, recipe="Q8_0", force=True)
    mode = os.stat(out).st_mode
    assert {"fifo": stat.S_ISFIFO, "device": stat.S_ISCHR, "directory": stat.S_ISDIR}[kind](mode)


def test_force_replaces_a_regular_file(src: Path) -> None:
    out = src.with_name("out.gguf")
    out.write_text("old")
    assert quantize(src, out, recipe="Q8_0", force=True).path == out
    assert out.read_bytes()[:4] == b"GGUF"
