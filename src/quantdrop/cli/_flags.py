"""Flag helpers shared by the verb adapters: calling the verb's function with the parsed flags, old
spellings kept as hidden aliases, yes/no switches."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

YES_NO = ("yes", "no")


def add_flag(parser: Any, flag: str, *old: str, **kwargs: Any) -> argparse.Action:
    """`parser.add_argument(flag, **kwargs)`, plus each spelling in `old` parsing to the same keyword,
    hidden from --help, so commands written before a rename keep working (`--n-ctx` -> `--ctx`).
    `parser` is a parser or an argument group."""
    if kwargs.get("required") and old:
        raise ValueError(f"{flag}: a required flag cannot have aliases (argparse checks the one action)")
    action = parser.add_argument(flag, **kwargs)
    hidden = {**kwargs, "dest": action.dest, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
    for name in old:
        parser.add_argument(name, **hidden)
    return action


def add_yes_no(parser: Any, flag: str, default: bool, help: str) -> argparse.Action:
    """A `--flag yes|no` switch (the CLI's spelling); the adapter passes the function `value == "yes"`."""
    return parser.add_argument(flag, default="yes" if default else "no", choices=YES_NO, help=help)


def call_with_flags(fn: Callable[..., T], args: argparse.Namespace, **extra: Any) -> T:
    """`fn(**flags, **extra)`: every parsed flag named like a parameter of `fn` (as mlx-lm's adapters
    call `fn(**vars(args))`); flags that only steer printing (`--json`) are left out by name, and
    `extra` (values the adapter computes, e.g. `progress`) wins over a flag of the same name."""
    params = inspect.signature(fn).parameters
    flags = {k: v for k, v in vars(args).items() if k in params and k not in extra}
    return fn(**flags, **extra)
