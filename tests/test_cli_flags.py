"""Verb = function = flags: every flag of a verb is a keyword of its API function (issue 11), except
the few that only choose how the CLI prints or which mode it runs, listed here with their reason.
The adapters live in quantdrop/cli (one module per verb); renamed flags keep their old spelling."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

import quantdrop
from quantdrop.cli import VERBS

FUNCTION_OF = {
    "quantize": "quantize",
    "plan": "plan",
    "eval": "evaluate",
    "proxies": "proxies",
    "study": "study",
    "tune": "tune",
    "imatrix": "imatrix",
    "speed": "speed",
}
NO_FUNCTION = {"demo-model", "recipes", "results"}  # CLI conveniences over quantdrop.demo_model, recipes, results
CLI_ONLY = {"help", "json"}  # how the CLI prints; the function returns the data itself
MODES = {"imatrix": {"show", "convert"}}  # other actions of the verb: imatrix_io.show/convert


def flags(verb: str) -> set[str]:
    parser = argparse.ArgumentParser()
    importlib.import_module(VERBS[verb][0]).configure(parser)
    return {action.dest for action in parser._actions}


def test_every_verb_is_accounted_for() -> None:
    assert set(VERBS) == set(FUNCTION_OF) | NO_FUNCTION


@pytest.mark.parametrize("verb", sorted(FUNCTION_OF))
def test_every_flag_is_a_keyword_of_the_function(verb: str) -> None:
    keywords = set(inspect.signature(getattr(quantdrop, FUNCTION_OF[verb])).parameters)
    extra = flags(verb) - keywords - CLI_ONLY - MODES.get(verb, set())
    assert not extra, f"quantdrop {verb}: flags that are not keywords of quantdrop.{FUNCTION_OF[verb]}: {extra}"


def test_each_verb_has_its_adapter_in_quantdrop_cli() -> None:
    for verb, (module, _) in VERBS.items():
        assert module == "quantdrop.cli." + verb.replace("-", "_")


# old spellings of renamed flags: still accepted, parsed to the new keyword, hidden from --help
OLD_SPELLINGS = [
    ("proxies", ["ref.gguf", "v.gguf", "--n-ctx", "256"], "ctx", 256),
    ("eval", ["m.gguf", "--bench", "mmlu", "--label", "x", "--n-ctx", "1024"], "ctx", 1024),
    ("plan", ["config.json", "--recipe", "Q4_K_M,Q8_0"], "recipes", "Q4_K_M,Q8_0"),
]


@pytest.mark.parametrize(("verb", "argv", "dest", "value"), OLD_SPELLINGS)
def test_old_spellings_still_parse_to_the_new_keyword(verb: str, argv: list[str], dest: str, value: object) -> None:
    parser = argparse.ArgumentParser()
    importlib.import_module(VERBS[verb][0]).configure(parser)
    old = next(a for a in argv if a.startswith("--n-") or a == "--recipe")
    assert getattr(parser.parse_args(argv), dest) == value
    new = "--" + dest.replace("_", "-")
    assert getattr(parser.parse_args([new if a == old else a for a in argv]), dest) == value
    assert new in parser.format_help() and f"{old} " not in parser.format_help()


def test_an_alias_does_not_override_the_default() -> None:
    parser = argparse.ArgumentParser()
    importlib.import_module(VERBS["proxies"][0]).configure(parser)
    assert parser.parse_args(["ref.gguf", "v.gguf"]).ctx == 512


def test_plan_yes_no_flags_become_bools(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from quantdrop.cli import plan as adapter

    seen: dict = {}
    monkeypatch.setattr(adapter, "plan", lambda **kw: seen.update(kw) or SimpleNamespace(to_dict=dict))
    parser = argparse.ArgumentParser()
    adapter.configure(parser)
    adapter.main(parser.parse_args(["config.json", "--flash-attn", "no", "--mmap", "no", "--json"]))
    assert (seen["mla_split"], seen["flash_attn"], seen["swa_full"], seen["mmap"]) == (True, False, False, False)
    defaults = inspect.signature(quantdrop.plan).parameters
    assert all(type(defaults[k].default) is bool for k in adapter.SWITCHES)


# calibration.py reads argparse's *source* as code-like calibration text (the "mix" dataset); it parses no flags
ARGPARSE_ALLOWED = {"calibration.py"}


def test_no_module_outside_quantdrop_cli_imports_argparse() -> None:
    package = Path(quantdrop.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        rel = path.relative_to(package)
        if rel.parts[0] == "cli" or str(rel) in ARGPARSE_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "argparse" or n.startswith("argparse.") for n in names):
                offenders.append(str(rel))
    assert not offenders, f"argparse outside quantdrop/cli (CLI adapters live there): {offenders}"


def test_call_with_flags_passes_the_functions_keywords_and_lets_the_adapter_override() -> None:
    import argparse

    from quantdrop.cli._flags import call_with_flags

    def fn(model: str, *, ctx: int = 1, progress: bool = False) -> tuple[str, int, bool]:
        return model, ctx, progress

    args = argparse.Namespace(model="m.gguf", ctx=4096, json=True, progress=False, command="x")
    assert call_with_flags(fn, args) == ("m.gguf", 4096, False)  # json/command are not fn's keywords
    assert call_with_flags(fn, args, progress=True) == ("m.gguf", 4096, True)
