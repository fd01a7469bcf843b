"""A damaged cached reference file is rebuilt, not a failure forever; a cache dir that is a file is one
line (issue 10, items 6 and 11). A tiny synthetic model keeps this fast (no slow marker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.proxies import ReferenceLogProbs, reference_log_probs
from tests.synthetic_gguf import write_synthetic

N_CTX, CHUNKS = 16, 2


@pytest.fixture(scope="module")
def model_and_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("proxies")
    text = folder / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    return write_synthetic(folder / "tiny.gguf", "llama", n_layer=1, tokenizer=True), text


def _reference(model_and_text: tuple[Path, Path], cache: Path) -> ReferenceLogProbs:
    model, text = model_and_text
    return reference_log_probs(model, text=text, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=cache, progress=False)


@pytest.mark.parametrize("damage", ["truncated", "three bytes", "foreign"])
def test_damaged_cached_reference_is_rebuilt(
    model_and_text, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _reference(model_and_text, tmp_path)
    whole = good.path.read_bytes()
    damaged = {"truncated": whole[:-10], "three bytes": whole[:3], "foreign": b"SQLite format 3\0" + whole[16:]}
    good.path.write_bytes(damaged[damage])
    again = _reference(model_and_text, tmp_path)
    assert again.path == good.path and again.path.read_bytes() == whole
    assert "is damaged" in capsys.readouterr().err


def test_cache_dir_that_is_a_file(model_and_text, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("x")
    with pytest.raises(QuantdropError, match="is a file, not a folder"):
        _reference(model_and_text, cache)


def test_stale_temporaries_in_the_cache_are_swept(model_and_text, tmp_path: Path) -> None:
    from tests.quantize.test_interrupt import dead_pid

    stale = tmp_path / f".ref-x.json.{dead_pid()}.tmp"
    stale.write_text("{")
    _reference(model_and_text, tmp_path)
    assert not stale.exists()
