"""Small helpers with one home each (issue 11): byte sizes for people."""

from __future__ import annotations


def fmt_bytes(n: float) -> str:
    """Binary units with three significant digits: 377 GiB, 61.2 GiB, 138 MiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"
    return f"{n:.0f} B"
