"""A tiny benchmark for the engine's tests: "What is A + B?", scored by the last integer.

Loaded through the runner's `module:factory` form (`--bench toy_benchmark:create`), so the runner,
store and CLI are tested without the real benchmark modules or their data.
"""

from __future__ import annotations

import re
from pathlib import Path

from quantdrop.eval.types import Completion, Item, Message, Score

TEMPLATE = "What is {a} + {b}? Answer with the number."


class Toy:
    name = "toy"
    title = "Toy sums"
    default_samples = 2
    weight = 1.0

    def __init__(self, n: int = 20, full_size: int | None = None, template: str | None = None, **_: object) -> None:
        self.n = int(n)  # options from the command line arrive as strings
        self.full_size = int(full_size or n)
        self.template = template or TEMPLATE
        self.loaded_from = "generated"

    def load(self, data_dir: Path | None = None) -> list[Item]:
        return [
            Item(id=f"toy-{i:04d}", prompt=self.template.format(a=i, b=2 * i + 1), target=3 * i + 1)
            for i in range(self.n)
        ]

    def messages(self, item: Item) -> list[Message]:
        return [{"role": "user", "content": item.prompt}]

    def score(self, item: Item, completion: Completion) -> Score:
        text = re.sub(r"<think>.*?</think>", "", completion.text, flags=re.S)
        if "<think>" in text:
            return Score(0.0, "unextracted", detail="unclosed think block")
        numbers = re.findall(r"-?\d+", text)
        if not numbers:
            return Score(0.0, "unextracted")
        ok = int(numbers[-1]) == item.target
        return Score(float(ok), "correct" if ok else "wrong", extracted=numbers[-1])


def create(**options: object) -> Toy:
    return Toy(**options)


def create_big(**options: object) -> Toy:
    return Toy(n=200, **options)


def create_partial(**options: object) -> Toy:
    return Toy(n=6, full_size=10, **options)


after_run_calls: list[tuple[str, str, bool]] = []


class HookedToy(Toy):
    """A toy with an after-run hook (as C-Eval's submission file): records each call."""

    def after_run(self, store: str, label: str, result: object) -> str:
        after_run_calls.append((store, label, bool(getattr(result, "complete", False))))
        return f"hooked {label}"


def create_hooked(**options: object) -> HookedToy:
    return HookedToy(n=4, **options)
