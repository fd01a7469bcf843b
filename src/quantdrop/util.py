"""Small helpers with one home each (issue 11): atomic file writes, byte sizes for people, comma
lists, progress bars. Grep here before writing another."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


# -- atomic writes ------------------------------------------------------------------------------
def temp_path(path: str | os.PathLike[str]) -> Path:
    """The temporary a write to `path` goes through: `.NAME.PID.tmp` in the same directory, named by
    quantdrop.tempfiles (whose `sweep_stale` removes those of dead writers)."""
    from quantdrop.tempfiles import temp_path as named

    return named(Path(path))


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file that becomes `path` only when the block completes: written to `temp_path(path)`,
    flushed and fsynced, renamed over `path`, the directory fsynced. On any failure (an exception,
    Ctrl-C) the temporary is removed and `path` is left as it was."""
    target = Path(path)
    tmp = temp_path(target)
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], content: str | bytes) -> None:
    """Write `content` (str as UTF-8) to `path` atomically and durably (see `atomic_output`)."""
    with atomic_output(path) as fh:
        fh.write(content.encode("utf-8") if isinstance(content, str) else content)


# -- formatting and parsing ----------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    """Binary units with three significant digits: 377 GiB, 61.2 GiB, 138 MiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"
    return f"{n:.0f} B"


def comma_list(value: str | Iterable[str] | None) -> list[str]:
    """`"a,b, c"` or `["a,b", "c"]` -> `["a", "b", "c"]`: split on commas, stripped, empty parts dropped."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    return [x.strip() for part in parts for x in part.split(",") if x.strip()]


def name_list(value: str | Iterable[str] | None, default: Iterable[str], empty: str) -> list[str]:
    """`comma_list(value)`, or `default` when value is None; a QuantdropError saying `empty` when a
    given value names nothing ("--recipe ,")."""
    from quantdrop.errors import QuantdropError

    if value is None:
        return list(default)
    items = comma_list(value)
    if not items:
        raise QuantdropError(empty)
    return items


# -- progress ------------------------------------------------------------------------------------
def progress_bar(
    *columns: str, enabled: bool = True, unit: str = "items", clock: str = "remaining", transient: bool = False
) -> Any:
    """A rich progress bar on stderr: description, bar, done/total (`unit="bytes"`: sizes and speed),
    a text column per template in `columns` (e.g. "{task.fields[tps]:>8.1f} tok/s"), then the time
    remaining, elapsed or both. Disabled: a bar that prints nothing (the same calls still work)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    texts = [TextColumn(c) for c in columns]
    timers = {
        "elapsed": [TimeElapsedColumn()],
        "remaining": [TimeRemainingColumn()],
        "both": [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()],
    }[clock]
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        *texts,
        *timers,
        console=Console(stderr=True),
        disable=not enabled,
        transient=transient,
    )


# -- process and places ----------------------------------------------------------------------------
@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence llama.cpp's C-level loading chatter (fd 2), unless QUANTDROP_DEBUG is set."""
    if os.environ.get("QUANTDROP_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cache_dir() -> Path:
    """quantdrop's cache: $QUANTDROP_CACHE, default ~/.cache/quantdrop (the demo model, proxies, tune, speed)."""
    return Path(os.environ.get("QUANTDROP_CACHE") or Path.home() / ".cache" / "quantdrop")
