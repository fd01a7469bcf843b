"""One home each (quantdrop.util): the atomic write (fsyncs the file and its directory, `.NAME.PID.tmp`,
nothing left on failure), the byte formatter, the comma-list parser, the progress bar; and one
layer-number-from-name (recipes.llamacpp.layer_of). The source checks fail when a copy comes back."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from quantdrop import util
from quantdrop.errors import QuantdropError
from quantdrop.recipes.llamacpp import layer_of

SRC = Path(__file__).resolve().parents[1] / "src" / "quantdrop"


def _files_with(pattern: str) -> set[str]:
    return {str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if re.search(pattern, p.read_text())}


def test_atomic_write_fsyncs_the_file_and_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []  # True: a directory
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real(fd)))
    target = tmp_path / "out.txt"
    util.atomic_write(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    assert synced == [False, True]
    assert list(tmp_path.iterdir()) == [target]


def test_the_temporary_is_dot_name_pid_tmp_and_goes_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"precious")
    with pytest.raises(RuntimeError), util.atomic_output(target) as fh:
        fh.write(b"half")
        assert (tmp_path / f".model.gguf.{os.getpid()}.tmp").exists()
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]
    assert util.temp_path(target) == tmp_path / f".model.gguf.{os.getpid()}.tmp"


def test_every_atomic_write_goes_through_the_helper() -> None:
    # proxies' reference log-probs are a resumable partial file (kept on purpose), renamed when complete
    assert _files_with(r"os\.replace\(|mkstemp\(") == {"util.py", "proxies.py"}
    assert "os.replace(" not in (SRC / "proxies.py").read_text().split("def reference_log_probs")[0]


def test_one_byte_formatter_one_progress_bar_one_comma_list() -> None:
    assert util.fmt_bytes(377 * 2**30) == "377 GiB" and util.fmt_bytes(1536) == "1.50 KiB"
    assert _files_with(r"rich\.progress") == {"util.py"}
    assert _files_with(r"def _human\(|/ 2\*\*30|/ GiB:") == set()
    assert util.comma_list(" a,b,, c ") == ["a", "b", "c"] and util.comma_list(["a,b", "c"]) == ["a", "b", "c"]
    assert util.comma_list(None) == []
    assert util.name_list(None, ("Q8_0",), "none") == ["Q8_0"] and util.name_list("a,b", (), "none") == ["a", "b"]
    with pytest.raises(QuantdropError, match="no recipe given"):
        util.name_list(" , ", ("Q8_0",), "no recipe given")
    # grammars of their own: devices.py (errors for empty parts), plan's --accuracy (RECIPE=SCORE),
    # serve.py's GPU ranges ("0-3,5")
    assert _files_with(r'split\(",".*\n(?!.*raise)') <= {"util.py", "devices.py", "plan.py", "serve.py"}


def test_one_layer_number_from_name() -> None:
    assert layer_of("blk.12.attn_q.weight") == 12 and layer_of("output.weight") is None
    # (a `startswith("blk.")` test of whether a tensor is in a block is not a layer number)
    assert _files_with(r'split\("\.", 2\)\[1\]|blk\\\.\(\\d\+\)') == {"recipes/llamacpp.py"}
