"""`quantdrop demo-model`: build (once) and print the embedded reference model's path."""

from __future__ import annotations

import argparse

from quantdrop import demo_model


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (demo_model.__doc__ or "").splitlines()[0]


def main(args: argparse.Namespace) -> int:
    path = demo_model.ensure_demo_model(verbose=True)
    print(f"note: {demo_model.NOTE}")
    print(path)
    return 0
