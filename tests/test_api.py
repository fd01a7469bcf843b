"""The public Python API (README "Python API"): every verb is a function, callable any number of
times as `quantdrop.X` and through `from quantdrop import X`, even after its submodule of the same
name was imported (which used to rebind `quantdrop.X` to the module: "'module' object is not
callable")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import quantdrop

ROOT = Path(__file__).resolve().parents[1]
README_VERBS = [
    "quantize",
    "plan",
    "evaluate",
    "study",
    "proxies",
    "tune",
    "imatrix",
    "speed",
    "load_recipe",
    "read_gguf_inventory",
]

# Runs in a fresh interpreter: each verb's submodule is imported first (the rebinding trigger),
# then each verb is called twice by attribute and twice after `from quantdrop import X`.
SCRIPT = r"""
import importlib, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.synthetic_gguf import write_synthetic
import quantdrop
from quantdrop.errors import QuantdropError

tmp = Path(sys.argv[2])
src = write_synthetic(tmp / "src.gguf", "llama", n_layer=2)
config = Path(sys.argv[1]) / "tests/fixtures/configs/qwen2.5-0.5b.json"
missing = str(tmp / "missing.gguf")
for name, module in quantdrop._API.items():
    importlib.import_module(module)          # `import quantdrop.plan` and the like
calls = {
    "quantize": lambda f, i: f(src, tmp / f"q{i}.gguf", recipe="Q4_K_M"),
    "plan": lambda f, i: f(config, recipes="Q4_K_M"),
    "evaluate": lambda f, i: f(missing, bench=["mmlu"], label="x", store=str(tmp / "s.sqlite")),
    "study": lambda f, i: f(missing, out=tmp / "study"),
    "proxies": lambda f, i: f(missing, [missing]),
    "tune": lambda f, i: f(config, budget="300M"),
    "imatrix": lambda f, i: f(missing, tmp / f"im{i}.gguf"),
    "speed": lambda f, i: f([missing]),
    "load_recipe": lambda f, i: f("Q4_K_M"),
    "read_gguf_inventory": lambda f, i: f(src),
    "QuantdropError": lambda f, i: f("x"),
}
for name, module in quantdrop._API.items():
    from_import = getattr(importlib.import_module("quantdrop"), name)
    exec(f"from quantdrop import {name} as imported", globals())
    for way, fn in (("attribute", getattr(quantdrop, name)), ("from-import", imported), ("", from_import)):
        assert fn is getattr(importlib.import_module(module), name), (name, way, fn)
        for i in range(2):
            try:
                result = calls[name](fn, f"{way}{i}")
            except QuantdropError as err:  # reached the function: it validated its input
                result = err
            print(name, way, i, type(result).__name__)
print("done")
"""


def test_every_verb_is_a_function_callable_twice_both_ways(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == "done"
    expected = {
        "quantize": "QuantizeResult",
        "plan": "Plan",
        "load_recipe": "Recipe",
        "read_gguf_inventory": "ModelInventory",
        "evaluate": "QuantdropError",
        "study": "QuantdropError",
        "proxies": "QuantdropError",
        "tune": "TuneResult",
        "imatrix": "QuantdropError",
        "speed": "QuantdropError",
    }
    for name, result in expected.items():
        for way in ("attribute", "from-import"):
            assert f"{name} {way} 1 {result}" in lines, (name, way, lines)


def test_the_readme_verbs_are_the_api() -> None:
    assert set(README_VERBS) <= set(quantdrop.__all__)
    readme = (ROOT / "README.md").read_text()
    for name in ("quantize", "plan", "evaluate", "study"):
        assert f"quantdrop.{name}(" in readme
