"""cli.main's last line of defence: an OSError naming a file is one line (a read-only folder, a full
disk: root writes anyway, so it is provoked here), SIGTERM exits 143 like Ctrl-C exits 130."""

from __future__ import annotations

import argparse
import errno
import os
import signal

import pytest

from quantdrop import cli
from quantdrop.cli import recipes as command


def _raising(exc: BaseException):
    def main(args: argparse.Namespace) -> int:
        raise exc

    return main


def test_os_error_naming_a_file_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(command, "main", _raising(PermissionError(errno.EACCES, "Permission denied", "/ro/out")))
    assert cli.main(["recipes"]) == 2
    assert capsys.readouterr().err == "quantdrop recipes: error: /ro/out: Permission denied\n"


def test_sigterm_is_handled_like_ctrl_c(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def main(args: argparse.Namespace) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have stopped the verb")

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(command, "main", main)
    try:
        assert cli.main(["recipes"]) == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err.startswith("quantdrop recipes: terminated; ")
