"""A cheap content fingerprint of a (possibly huge) model file, shared by every cache and store key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sampled_digest(path: str | os.PathLike[str], samples: int = 16, sample_bytes: int = 1 << 20) -> tuple[int, str]:
    """(size, hash of the size, the first MiB (GGUF metadata) and `samples` evenly spaced blocks).

    Milliseconds on a 400 GB file, yet it changes with any re-quantization (every tensor's bytes move)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(f"{size}:".encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        for i in range(samples):
            f.seek(max(0, (size - sample_bytes) * i // max(1, samples - 1)))
            h.update(f.read(sample_bytes))
    return size, h.hexdigest()[:16]


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """`SIZE-HASH`, e.g. for file names of cached results."""
    size, digest = sampled_digest(path)
    return f"{size}-{digest}"
