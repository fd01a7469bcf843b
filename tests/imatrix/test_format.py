"""llama.cpp's imatrix formats: GGUF (written and read) and legacy .dat (read, converted)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from quantdrop.errors import QuantdropError
from quantdrop.imatrix_io import Imatrix, check_matches, read_imatrix, write_imatrix


def _sample() -> Imatrix:
    rng = np.random.default_rng(1)
    return Imatrix(
        sums={"blk.0.attn_q.weight": rng.random((1, 8)) * 100, "blk.1.ffn_up_exps.weight": rng.random((3, 4)) * 10},
        counts={"blk.0.attn_q.weight": np.array([512]), "blk.1.ffn_up_exps.weight": np.array([7, 0, 5])},
        datasets=["calib.txt"],
        chunk_count=1,
        chunk_size=512,
    )


def test_gguf_round_trip_and_layout(tmp_path: Path) -> None:
    im = _sample()
    path = write_imatrix(im, tmp_path / "im.gguf")
    # gguf-py's own reader sees llama.cpp's layout: keys, names, (n_cols, n_mat) sums, (1, n_mat) counts
    r = GGUFReader(path)
    assert r.fields["general.type"].contents() == "imatrix"
    assert r.fields["imatrix.datasets"].contents() == ["calib.txt"]
    assert r.fields["imatrix.chunk_size"].contents() == 512
    shapes = {t.name: list(t.shape) for t in r.tensors}
    assert shapes["blk.1.ffn_up_exps.weight.in_sum2"] == [4, 3]
    assert shapes["blk.1.ffn_up_exps.weight.counts"] == [1, 3]
    assert shapes["blk.0.attn_q.weight.in_sum2"] == [8]  # gguf drops trailing ones, as ggml_n_dims
    back = read_imatrix(path)
    for name in im.sums:
        np.testing.assert_array_equal(back.sums[name], im.sums[name].astype(np.float32))
        np.testing.assert_array_equal(back.counts[name], im.counts[name])
    norm = back.normalized()["blk.1.ffn_up_exps.weight"].reshape(3, 4)
    np.testing.assert_allclose(norm[0], im.sums["blk.1.ffn_up_exps.weight"][0] / 7, rtol=1e-6)
    np.testing.assert_array_equal(norm[1], np.ones(4))  # an expert never routed to: ones (quantize.cpp)


def _legacy_bytes(entries: dict[str, tuple[int, np.ndarray]], chunks: int, dataset: str) -> bytes:
    """save_imatrix_legacy's layout, written here from imatrix.cpp's description."""
    out = struct.pack("<i", len(entries))
    for name, (ncall, values) in entries.items():
        out += struct.pack("<i", len(name)) + name.encode() + struct.pack("<ii", ncall, values.size)
        out += values.astype("<f4").tobytes()
    return out + struct.pack("<i", chunks) + struct.pack("<i", len(dataset)) + dataset.encode()


def test_legacy_dat_reads_normalizes_and_converts(tmp_path: Path) -> None:
    values = np.array([2.0, 4.0, 6.0], dtype=np.float32)
    dat = tmp_path / "old.dat"
    dat.write_bytes(_legacy_bytes({"blk.0.ffn_down.weight": (4, values)}, 4, "wiki.train.raw"))
    im = read_imatrix(dat)
    assert im.legacy and im.chunk_count == 4 and im.datasets == ["wiki.train.raw"]
    np.testing.assert_allclose(im.normalized()["blk.0.ffn_down.weight"], values / 4)
    gguf = im.to_gguf_counts(512)  # imatrix.cpp load_imatrix: sums * chunk_size, counts ncall * chunk_size
    np.testing.assert_allclose(gguf.sums["blk.0.ffn_down.weight"][0], values * 512)
    assert gguf.counts["blk.0.ffn_down.weight"].tolist() == [2048]
    np.testing.assert_allclose(gguf.normalized()["blk.0.ffn_down.weight"], values / 4)
    write_imatrix(gguf, tmp_path / "new.gguf")
    np.testing.assert_allclose(read_imatrix(tmp_path / "new.gguf").normalized()["blk.0.ffn_down.weight"], values / 4)


@pytest.mark.parametrize("content", [b"", b"\x05\x00\x00\x00garbage", b"hello world, not an imatrix at all"])
def test_not_an_imatrix(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_bytes(content)
    with pytest.raises(QuantdropError, match="not an imatrix"):
        read_imatrix(bad)


def test_a_model_is_not_an_imatrix(demo_model: Path) -> None:
    with pytest.raises(QuantdropError, match=r"no \*\.in_sum2 tensors"):
        read_imatrix(demo_model)


def test_check_matches_names_the_first_mismatch() -> None:
    norm = {"blk.0.attn_k.weight": np.ones(576), "blk.0.attn_q.weight": np.ones(576)}
    with pytest.raises(QuantdropError, match=r"blk\.0\.attn_k\.weight has 576 values.*256 columns x 1 experts"):
        check_matches(norm, {"blk.0.attn_k.weight": (256, 64), "blk.0.attn_q.weight": (256, 256)}, "x.gguf")
    with pytest.raises(QuantdropError, match=r"first entry blk\.0\.attn_k\.weight names no tensor"):
        check_matches(norm, {"other.weight": (576, 10)}, "x.gguf")
    check_matches(norm, {"blk.0.attn_k.weight": (576, 64)}, "x.gguf")  # a match: no error


def test_cli_convert_and_show_a_legacy_file(tmp_path: Path) -> None:
    from tests.hostile.cli import assert_clean_failure, run

    values = np.array([1.0, 3.0], dtype=np.float32)
    dat = tmp_path / "old.dat"
    dat.write_bytes(_legacy_bytes({"blk.3.attn_q.weight": (2, values)}, 2, "old-text"))
    shown = run("imatrix", "--show", dat)
    assert shown.returncode == 0 and "legacy .dat imatrix, 1 entries" in shown.stdout, shown.stderr
    out = tmp_path / "new.gguf"
    assert run("imatrix", "--convert", dat, "-o", out, "--ctx", "256").returncode == 0
    im = read_imatrix(out)
    assert not im.legacy and im.datasets == ["old-text"] and im.counts["blk.3.attn_q.weight"].tolist() == [512]
    np.testing.assert_allclose(im.normalized()["blk.3.attn_q.weight"], values / 2)
    assert_clean_failure(run("imatrix", "--convert", dat, "-o", out), "exists")
    assert_clean_failure(run("imatrix", "--show", tmp_path / "missing.gguf"), "not found")
