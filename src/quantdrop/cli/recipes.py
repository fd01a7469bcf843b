"""`quantdrop recipes [show NAME [--model M]]`: list the recipes, or print one resolved per tensor."""

from __future__ import annotations

import argparse
import json
import sys

from quantdrop.recipes import list_recipes, load_recipe, resolve
from quantdrop.recipes.resolve import ResolvedPlan
from quantdrop.util import fmt_bytes


def print_plan(plan: ResolvedPlan, file=None) -> None:
    """The per-tensor table and per-type totals, as `recipes show` and `quantize --dry-run` print it."""
    out = file or sys.stdout
    width = max((len(e.name) for e in plan.entries), default=10)
    print(f"{'tensor':<{width}}  {'shape':<22} {'type':<6} {'bytes':>12}  rule", file=out)
    for e in plan.entries:
        shape = "x".join(str(d) for d in e.shape)
        print(f"{e.name:<{width}}  {shape:<22} {e.type.name:<6} {e.nbytes:>12}  {e.rule}", file=out)
    print(file=out)
    counts = plan.count_by_type
    for qtype, nbytes in plan.bytes_by_type.items():
        print(f"  {qtype:<6} {counts[qtype]:>5} tensors  {fmt_bytes(nbytes):>11}", file=out)
    print(
        f"{plan.recipe.name}: {plan.n_params:,} parameters, {fmt_bytes(plan.nbytes)}, "
        f"{plan.bits_per_weight:.2f} bits per weight",
        file=out,
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("name", nargs="?", help="recipe to show (preset name or file)")
    parser.add_argument("--model", help="GGUF, HF config.json or model directory to resolve the recipe for")
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    from quantdrop.errors import QuantdropError

    if args.action == "list":
        recipes = list_recipes()
        if args.json:
            print(
                json.dumps(
                    [
                        {"name": r.name, "default": r.default.name, "base": r.base, "description": r.description}
                        for r in recipes
                    ],
                    indent=1,
                )
            )
            return 0
        width = max(len(r.name) for r in recipes)
        for r in recipes:
            print(f"{r.name:<{width}}  {r.description}")
        print(
            "\nA recipe file (TOML or YAML) works wherever a name does; "
            "`quantdrop recipes show NAME --model M` prints it resolved."
        )
        return 0
    if not args.name:
        raise QuantdropError("recipes show needs a recipe name or file")
    recipe = load_recipe(args.name)
    if not args.model:
        print(f"{recipe.name}: {recipe.description}")
        print(f"  default type: {recipe.default.name}; base: {recipe.base or 'none (pure)'}")
        for i, rule in enumerate(recipe.rules, 1):
            print(f"  rule {i}: {rule.describe()}")
        return 0
    from quantdrop.inventory import load

    plan = resolve(recipe, load(args.model))
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        from quantdrop.recipes.resolve import plan_as_dict

        print(json.dumps(plan_as_dict(plan), indent=1))
    else:
        print_plan(plan)
    return 0
