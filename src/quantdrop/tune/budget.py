"""`--budget`: a file size (`281G`, `3.2GiB`, `300GB`), bits per weight (`3.6bpw`) or a device set
(`8x910B-64G`, `1xRTX4090-24G`, anything `quantdrop plan --devices` accepts).

Sizes follow devices.py: `G`/`GiB` are binary, `GB` decimal; a bare number is bytes. A device set's
byte budget is found by the planner itself (`fit_devices`): solve for a byte budget, ask
`quantdrop.plan` whether the recipe fits under llama.cpp's layer split, and bisect the budget down to
the largest that fits. The layer split depends only on each device's free memory, but the fullest
device depends on where the solver spends its bytes, so one planner call per trial is the simplest
correct check (one memory model: plan.py/memory.py; none is duplicated here).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from quantdrop.errors import QuantdropError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_BPW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*bpw\s*$", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}
FIT_STEPS = 14  # bisection steps for a device budget: the result is within 2^-14 of the upper bound


@dataclass(frozen=True)
class Budget:
    kind: str  # "bytes", "bpw" or "devices"
    value: float  # bytes, bits per weight, or 0 for a device set
    spec: str  # as given

    def describe(self) -> str:
        return self.spec


def parse_budget(text: str) -> Budget:
    """One `--budget` value -> Budget (a device set is checked against devices.toml now)."""
    spec = str(text).strip()
    if m := _BPW.match(spec):
        bpw = float(m.group(1))
        if not 0 < bpw <= 32:
            raise QuantdropError(f"--budget {spec}: bits per weight must be in (0, 32]")
        return Budget("bpw", bpw, spec)
    if m := _SIZE.match(spec):
        number, power, unit = float(m.group(1)), _POWERS[m.group(2).upper()], m.group(3) or ""
        base = 1000 if unit.lower() == "b" and power else 1024
        nbytes = round(number * base**power)
        if nbytes <= 0:
            raise QuantdropError(f"--budget {spec}: a size must be positive")
        return Budget("bytes", nbytes, spec)
    if "x" in spec.lower() or re.search(r"[A-Za-z]", spec):
        from quantdrop.devices import parse_devices

        sets = parse_devices(spec)  # a clear error for an unknown device
        if len(sets) != 1:
            raise QuantdropError(f"--budget {spec}: give one device set (no commas)")
        return Budget("devices", 0.0, spec)
    raise QuantdropError(
        f"--budget {spec!r}: expected a size (281G, 3.2GiB), bits per weight (3.6bpw) or a device set (8x910B-64G)"
    )


def byte_budget(budget: Budget, n_params: int) -> int:
    """The total tensor bytes a size or bpw budget allows (llama.cpp's bpw: all bytes x 8 / all params)."""
    if budget.kind == "bytes":
        return int(budget.value)
    if budget.kind == "bpw":
        return int(budget.value * n_params / 8)
    raise ValueError("a device budget is found with fit_devices")


@dataclass(frozen=True)
class Fit:
    budget_bytes: int  # the byte budget the solver was given
    result: object  # what `attempt` returned for it
    trials: int


def fit_devices(attempt: Callable[[int], tuple[bool, object]], lo: int, hi: int) -> Fit:
    """The largest byte budget in [lo, hi] whose solution fits (attempt(bytes) -> (fits, result)).

    `hi` is an upper bound (the devices' summed free memory), `lo` the smallest mix: if even that does not
    fit, the devices are too small for any mix of the allowed types."""
    fits, result = attempt(hi)
    if fits:
        return Fit(hi, result, 1)
    ok, best = attempt(lo)
    if not ok:
        raise QuantdropError(
            "the smallest mix of the allowed types does not fit these devices "
            "(try smaller --types, a shorter --ctx or more devices)"
        )
    trials = 2
    good = lo
    for _ in range(FIT_STEPS):
        if hi - good <= max(1, hi >> FIT_STEPS):
            break
        mid = (good + hi) // 2
        fits, result = attempt(mid)
        trials += 1
        if fits:
            good, best = mid, result
        else:
            hi = mid
    return Fit(good, best, trials)
