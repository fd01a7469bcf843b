"""Verb = function = flags: every flag of a verb is a keyword of its API function (issue 11), except
the few that only choose how the CLI prints or which mode it runs, listed here with their reason."""

from __future__ import annotations

import argparse
import importlib
import inspect

import pytest

import quantdrop
from quantdrop.cli import VERBS

FUNCTION_OF = {"quantize": "quantize", "plan": "plan", "eval": "evaluate", "proxies": "proxies",
               "study": "study", "tune": "tune", "imatrix": "imatrix", "speed": "speed"}
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
