"""A source GGUF is checked like llama.cpp's loader checks it (gguf.cpp gguf_init_from_file_impl,
llama-model-loader) before any work: one line naming the file and the tensor (issue 10, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType

from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUFStreamWriter, pack_field, read_header
from quantdrop.quantize import quantize
from tests.quantize.crafted import Tensor, good_tensors, llama_fields, write_crafted


def _with(i: int, **change: object) -> list[Tensor]:
    tensors = good_tensors()
    for key, value in change.items():
        setattr(tensors[i], key, value)
    return tensors


DEFECTS = {
    "duplicate tensor": (_with(3, name="blk.0.attn_q.weight"), "'blk.0.attn_q.weight' appears twice"),
    "misaligned": (_with(1, offset=4096 + 8), "'output_norm.weight' has data offset 4104, not a multiple"),
    "shared offset": (_with(3, offset=0), "'blk.0.ffn_down.weight' (offset 0) overlaps tensor 'blk.0.attn_q"),
    "gap": (_with(2, offset=8192), "'blk.0.attn_q.weight' has data offset 8192, expected 4224"),
    "zero dimension": (_with(2, shape=(32, 0)), "'blk.0.attn_q.weight' has a dimension of 0"),
    "unknown type": (_with(1, type=4), "'output_norm.weight' has an unknown ggml type (4)"),
    "not whole blocks": (
        _with(2, type=T.Q4_0, shape=(48, 32)),
        "48 elements per row, not a multiple of its block size (32)",
    ),
    "five dimensions": (_with(1, shape=(2, 2, 2, 2, 2)), "(5 dimensions, expected 1 to 4)"),
    "long name": (_with(1, name="x" * 64), "is too long"),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_defective_source_is_refused_naming_the_tensor(tmp_path: Path, defect: str) -> None:
    tensors, message = DEFECTS[defect]
    src = write_crafted(tmp_path / "bad.gguf", tensors)
    with pytest.raises(QuantdropError) as err:
        quantize(src, tmp_path / "out.gguf", recipe="Q8_0")
    assert str(src) in str(err.value) and message in str(err.value), err.value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


def test_well_formed_crafted_source_quantizes(tmp_path: Path) -> None:
    """The defects above are the only difference from a file we accept."""
    src = write_crafted(tmp_path / "good.gguf", good_tensors())
    assert quantize(src, tmp_path / "out.gguf", recipe="Q8_0").path.is_file()


def test_duplicate_metadata_key_is_refused(tmp_path: Path) -> None:
    fields = [*llama_fields(), pack_field("llama.block_count", 2, GGUFValueType.UINT32)]
    src = write_crafted(tmp_path / "bad.gguf", good_tensors(), fields=fields)
    with pytest.raises(QuantdropError, match=r"metadata key 'llama.block_count' appears twice"):
        read_header(src)


def test_alignment_must_be_a_power_of_two(tmp_path: Path) -> None:
    fields = [*llama_fields(), pack_field("general.alignment", 24, GGUFValueType.UINT32)]
    src = write_crafted(tmp_path / "bad.gguf", good_tensors(), fields=fields, alignment=24)
    with pytest.raises(QuantdropError, match=r"general\.alignment is 24, expected a power of 2"):
        read_header(src)


def test_data_past_the_end_is_refused(tmp_path: Path) -> None:
    src = write_crafted(tmp_path / "cut.gguf", good_tensors(), truncate=100)
    with pytest.raises(QuantdropError, match=r"tensor blk\.0\.ffn_down\.weight ends past the end of the file"):
        read_header(src)


@pytest.mark.parametrize(
    ("fields", "tensors", "message"),
    [
        ([b"k", b"k"], [], "the metadata key"),
        ([], [("a", (32,), T.F32), ("a", (32,), T.F32)], "the tensor name 'a' twice"),
    ],
)
def test_writer_refuses_duplicates(tmp_path: Path, fields: list[bytes], tensors: list, message: str) -> None:
    packed = [pack_field(k.decode(), 1, GGUFValueType.UINT32) for k in fields]
    with open(tmp_path / "out.gguf", "wb") as fh, pytest.raises(QuantdropError, match=message):
        GGUFStreamWriter(fh, packed, tensors)


def test_absurd_block_count_is_refused(tmp_path: Path) -> None:
    """The planner loops over layers: a billion of them (metadata only) would hang it."""
    fields = [
        pack_field("llama.block_count", 10**9, GGUFValueType.UINT32) if f[8:25] == b"llama.block_count" else f
        for f in llama_fields()
    ]
    src = write_crafted(tmp_path / "bad.gguf", good_tensors(), fields=fields)
    with pytest.raises(QuantdropError, match=r"llama\.block_count = 1000000000: expected 0 to 10000"):
        quantize(src, tmp_path / "out.gguf", recipe="Q8_0", dry_run=True)
