"""OpenMP's wait policy for llama.cpp's threads: chosen once per process, before llama_cpp is loaded.

libgomp reads OMP_WAIT_POLICY (and GOMP_SPINCOUNT) when it loads, so the choice must come before
the first `import llama_cpp`. Measured with llama-bench (135M F16, 2 threads, a 2-core machine):

| policy  | quiet machine pp/tg t/s | next to a 2-core CPU hog pp/tg t/s |
|---------|------------------------:|-----------------------------------:|
| PASSIVE | 607 / 33                | 501 / 61                           |
| unset   | 877 / 113               | 221 / 30                           |

So the verbs that run llama.cpp next to our own worker processes (scorers, the code sandbox,
proxies' and tune's pools) get PASSIVE, while `speed` measures as llama-bench does: the policy as
the user left it (unset: llama.cpp's default, threads spin a while before they sleep). A policy
the user set is always kept. One that quantdrop set is marked (FORCED_MARK), so a process that
measures speed on behalf of another verb (speed's measuring child under `study`) can take it back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

POLICY = "OMP_WAIT_POLICY"
SPINCOUNT = "GOMP_SPINCOUNT"
FORCED_MARK = "QUANTDROP_FORCED_OMP_WAIT_POLICY"  # set to the policy quantdrop forced, never by users
MEASURING_VERBS = frozenset({"speed"})  # as llama-bench: the user's environment, untouched


def omp_policy_for(verb: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The OMP_WAIT_POLICY `verb` runs with: the user's own when set; else None (unset, llama.cpp's
    default) for the measuring verbs and PASSIVE for every other."""
    if POLICY in environ:
        return environ[POLICY]
    return None if verb in MEASURING_VERBS else "PASSIVE"


def set_wait_policy(verb: str, environ: MutableMapping[str, str] = os.environ) -> None:
    """Set `verb`'s policy in `environ` (the CLI calls this before it imports the verb's module)."""
    policy = omp_policy_for(verb, environ)
    if policy is not None and POLICY not in environ:
        environ[POLICY] = policy
        environ[FORCED_MARK] = policy


def measuring_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment for a process that measures speed: the user's, less a policy quantdrop forced."""
    env = dict(environ)
    forced = env.pop(FORCED_MARK, None)
    if forced is not None and env.get(POLICY) == forced:
        del env[POLICY]
    return env


def describe(environ: Mapping[str, str]) -> dict[str, str | None]:
    """The policy a process with `environ` runs under, for a result's machine record."""
    return {"omp_wait_policy": environ.get(POLICY), "gomp_spincount": environ.get(SPINCOUNT)}
