"""How long `quantdrop plan` takes: 10 recipes on DeepSeek-R1's config.json, and a GGUF header.

Run: .venv/bin/python benchmarks/plan_speed.py   (prints wall and CPU seconds, best of N)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from quantdrop.plan import plan

R1 = Path(__file__).parents[1] / "tests" / "fixtures" / "configs" / "deepseek-r1.json"
RECIPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_L", "Q3_K_M", "DQ3_K_M", "Q2_K_L", "UD-Q2_K_XL"]


def best_of(n: int, fn: Callable[[], object]) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    plan(R1, RECIPES[:1])  # imports
    wall, cpu = best_of(5, lambda: plan(R1, RECIPES, devices="8xH100-80G,8x910B-64G"))
    print(f"DeepSeek-R1 config.json, 10 recipes, 2 device sets: {wall:.3f} s wall, {cpu:.3f} s CPU")
    try:
        from quantdrop.demo_model import ensure_demo_model

        gguf = ensure_demo_model()
    except Exception as err:  # the demo model is optional here
        print(f"(no demo model: {err})")
        return
    wall, cpu = best_of(5, lambda: plan(gguf, "Q4_K_M"))
    print(f"SmolLM2-135M F16 GGUF header, 1 recipe: {wall:.3f} s wall, {cpu:.3f} s CPU")


if __name__ == "__main__":
    main()
