"""`quantdrop tune`: dynamic recipes, the per-tensor mix that loses least within a budget.

budget.py (what the budget allows), sensitivity.py (tier 1 and priors), measure.py (tier 2),
solve.py (the knapsack), emit.py (the recipe file), command.py (`tune()`; its CLI adapter is quantdrop/cli/tune.py).
`quantdrop.tune(...)` calls `command.tune` (the package itself is callable, so the API name works
whether or not this package was imported first).
"""

from __future__ import annotations

import sys
import types
from typing import Any


def tune(*args: Any, **kwargs: Any) -> Any:
    from quantdrop.tune.command import tune as _tune

    return _tune(*args, **kwargs)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
