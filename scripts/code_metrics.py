"""Code-shape metrics for issue 11: largest module, longest function, functions over 40 lines.

Usage: python scripts/code_metrics.py [SRC_DIR]   (default: src/quantdrop)
Function length is `end_lineno - lineno + 1` of each def (nested defs count on their own), and
`--body` counts from the first statement after the docstring instead: under `ruff format` a signature
that does not fit in one line takes a line per parameter, which says nothing about the function's logic.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 40


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef, body: bool) -> int:
    if not body:
        return node.lineno
    statements = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
    return statements[0].lineno


def _functions(path: Path, body: bool) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.end_lineno - _first_line(node, body) + 1, f"{path}:{node.lineno} {node.name}")
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


def main(*argv: str) -> None:
    body = "--body" in argv
    root = next((a for a in argv if a != "--body"), "src/quantdrop")
    files = sorted(Path(root).rglob("*.py"))
    modules = [(len(p.read_text().splitlines()), str(p)) for p in files]
    funcs = [f for p in files for f in _functions(p, body)]
    big, where = max(modules)
    length, name = max(funcs)
    over = sorted((f for f in funcs if f[0] > LIMIT), reverse=True)
    print(f"modules: {len(files)}, functions: {len(funcs)}")
    print(f"largest module: {big} lines ({where})")
    print(f"longest function: {length} lines ({name}){' (body)' if body else ''}")
    print(f"functions over {LIMIT} lines: {len(over)}")
    for n, label in over:
        print(f"  {n:4d} {label}")


if __name__ == "__main__":
    main(*sys.argv[1:])
