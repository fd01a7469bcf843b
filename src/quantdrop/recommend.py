"""The one recommendation policy, in the spirit of the paper's section 4.4: per device set, the best
variant that fits. `quantdrop plan` (scores from --accuracy), the report and the study's summary all
call `recommend`; each only maps what it knows into `Candidate`s.

Among the variants that fit a device set, pick the best by the strongest evidence available: the
accuracy (weighted avg. of Table 2, or only whether its drop is significant when KL divergences are
there to rank the rest), else the mean KL divergence from the reference, else bits per weight. The
reason line says why, what it costs in memory, which variants within ACCURACY_TIE points are as good,
which better or bigger variants do not fit, and which smaller one costs no significant accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from quantdrop.errors import QuantdropError
from quantdrop.util import fmt_bytes

INF = float("inf")
ACCURACY_TIE = 0.5  # points: variants this close to the best accuracy are named as alternatives


@dataclass(frozen=True)
class DeviceSet:
    """`count` devices of `capacity_bytes` each, e.g. DeviceSet("8xH100-80G", 8, 80 * 2**30)."""

    name: str
    count: int
    capacity_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.count * self.capacity_bytes


@dataclass(frozen=True)
class Placement:
    """One variant on one device set: the paper's "MU (total)" and "MU (per GPU)", and whether it fits."""

    total_bytes: int
    per_device_bytes: int  # the most loaded device
    fits: bool


@dataclass(frozen=True)
class Candidate:
    """A variant and the evidence about it (None: not measured)."""

    label: str
    size_bytes: int
    bpw: float
    placements: dict[str, Placement]  # device set name -> placement
    accuracy: float | None = None  # weighted avg., percent
    drop: float | None = None  # accuracy drop against the baseline, percent
    significant: bool | None = None  # the drop's paired CI excludes 0
    kl: float | None = None  # mean KL divergence from the reference
    tg: float | None = None  # generation tokens/s on the machine that ran the study (quantdrop.speed)
    evidence: str | None = None  # what a "no significant drop" rests on: agreement, detectable drop


@dataclass(frozen=True)
class Recommendation:
    device_set: str
    recipe: str | None  # None: nothing fits
    reason: str
    alternatives: list[str] = field(default_factory=list)  # as good within ACCURACY_TIE points
    fits: list[str] = field(default_factory=list)  # every variant that fits, in the given order

    def line(self) -> str:
        """One line for a terminal: "8xH100-80G: Q4_K_M - best weighted avg. ..."."""
        return (
            f"{self.device_set}: {self.recipe} - {self.reason}" if self.recipe else f"{self.device_set}: {self.reason}"
        )


def _ranking(fitting: list[Candidate]) -> tuple[list[Candidate], Callable[[Candidate], tuple], str]:
    """(the variants ranked, a sort key (smaller is better), what decides) from the strongest evidence.

    With paired CIs and KL divergences, accuracy decides only through significance: a variant with a
    significant drop ranks below any without, and the KL divergence ranks the rest, so a small noisy
    sample cannot crown a variant that merely got one more question right."""
    has_ci = any(c.significant is not None for c in fitting)
    with_acc = [c for c in fitting if c.accuracy is not None]
    with_kl = [c for c in fitting if c.kl is not None]
    kl = lambda c: INF if c.kl is None else c.kl  # noqa: E731
    if has_ci and with_kl and all(c.kl is not None for c in with_acc):
        return with_kl, lambda c: (bool(c.significant), kl(c), -c.size_bytes), "significance+kl"
    if with_acc:
        return (
            with_acc,
            lambda c: (bool(c.significant), -(c.accuracy if c.accuracy is not None else -INF), kl(c), -c.size_bytes),
            "accuracy",
        )
    if with_kl:
        return with_kl, lambda c: (kl(c), -c.size_bytes), "kl"
    return fitting, lambda c: (-c.bpw, -c.size_bytes), "bits"


def _why(best: Candidate, ranked: list[Candidate], key: Callable[[Candidate], tuple], basis: str) -> str:
    n = f"{len(ranked)} {'evaluated ' if basis == 'accuracy' else 'measured ' if 'kl' in basis else ''}variant"
    n += "s" if len(ranked) > 1 else ""
    if basis == "bits":
        return f"most bits per weight ({best.bpw:.2f}) of the {n} that fit; no quality measured"
    if basis in ("kl", "significance+kl"):
        why = f"lowest mean KL divergence ({best.kl:.4f}) of the {n} that fit"
        if basis == "kl":
            return why
        return (
            "every fitting variant has a significant accuracy drop; "
            if key(best)[0]
            else "no significant accuracy drop, and "
        ) + why
    why = f"best weighted avg. ({best.accuracy:.2f}) of the {n} that fit"
    return why + (", all with a significant accuracy drop" if key(best)[0] else "")


def _alternatives(best: Candidate, ranked: list[Candidate], basis: str) -> list[Candidate]:
    if basis != "accuracy" or best.accuracy is None:
        return []
    return [
        c
        for c in ranked
        if c is not best
        and c.accuracy is not None
        and best.accuracy - c.accuracy <= ACCURACY_TIE
        and bool(c.significant) == bool(best.significant)
    ]


PREFERENCES = ("quality", "speed", "balanced")
BALANCED_KL = 2.0  # --prefer balanced: the fastest variant whose mean KL is within this factor of the best's


def _prefer_speed(best: Candidate, ranked: list[Candidate], prefer: str) -> tuple[Candidate, str] | None:
    """--prefer speed: the fastest variant without a significant drop (all of them when every one has
    one); balanced: the same among those whose KL is within BALANCED_KL of the quality choice's."""
    pool = [c for c in ranked if c.tg is not None and not c.significant] or [c for c in ranked if c.tg]
    if prefer == "balanced" and best.kl is not None:
        pool = [c for c in pool if c.kl is not None and c.kl <= BALANCED_KL * best.kl]
    if prefer == "quality" or not pool:
        return None
    fast = max(pool, key=lambda c: (c.tg or 0.0, -c.size_bytes))
    which = "without a significant accuracy drop" if not fast.significant else "measured"
    if prefer == "balanced" and best.kl is not None:
        which += f" and a mean KL divergence within {BALANCED_KL:g}x of {best.label}'s"
    return fast, f"fastest generation ({fast.tg:.1f} t/s) of the variants {which} (--prefer {prefer})"


def recommend_for(device: DeviceSet, candidates: list[Candidate], prefer: str = "quality") -> Recommendation:
    rows = [c for c in candidates if device.name in c.placements]
    if not rows:
        return Recommendation(device.name, None, "no memory plan for this device set")
    fitting = [c for c in rows if c.placements[device.name].fits]
    if not fitting:
        least = min(rows, key=lambda c: c.placements[device.name].per_device_bytes)
        need = least.placements[device.name].per_device_bytes
        return Recommendation(
            device.name,
            None,
            f"nothing fits: even {least.label} needs {fmt_bytes(need)} "
            f"per device, {fmt_bytes(device.capacity_bytes)} available",
        )
    ranked, key, basis = _ranking(fitting)
    best = min(ranked, key=key)
    why = _why(best, ranked, key, basis)
    faster = _prefer_speed(best, ranked, prefer)
    if faster is not None:
        best, why = faster
    place = best.placements[device.name]
    reason = f"{why}; {fmt_bytes(place.per_device_bytes)} of {fmt_bytes(device.capacity_bytes)} per device"
    if best.drop is not None:
        verdicts = {True: "significant", False: "not significant"}
        reason += f"; accuracy drop {best.drop:.2f}% ({verdicts.get(best.significant, 'significance unknown')})"
        reason += f" ({best.evidence})" if best.evidence else ""
    alts = _alternatives(best, ranked, basis)
    if alts:
        reason += "; " + ", ".join(f"{c.label} ({c.accuracy:.2f})" for c in alts) + f" within {ACCURACY_TIE} points"
    reason += _not_fitting(device, rows, fitting, best, key)
    reason += _cheaper(fitting, best)
    return Recommendation(device.name, best.label, reason, [c.label for c in alts], [c.label for c in fitting])


def _not_fitting(
    device: DeviceSet,
    rows: list[Candidate],
    fitting: list[Candidate],
    best: Candidate,
    key: Callable[[Candidate], tuple],
) -> str:
    """Better-ranked or bigger measured variants the device set cannot hold (the paper: "Q4 exceeds the
    910B's 64GB")."""
    measured = {c.label for c in _ranking(rows)[0]}
    out = [c for c in rows if c not in fitting and c.label in measured and (key(c) < key(best) or c.bpw > best.bpw)]
    if not out:
        return ""
    return "; does not fit: " + ", ".join(
        f"{c.label} would need {fmt_bytes(c.placements[device.name].per_device_bytes)} per device" for c in out
    )


def _cheaper(fitting: list[Candidate], best: Candidate) -> str:
    """A smaller variant that costs no significant accuracy: the cost-performance choice."""
    cheaper = [c for c in fitting if c.size_bytes < best.size_bytes and c.significant is False]
    if not cheaper:
        return ""
    alt = min(cheaper, key=lambda c: c.size_bytes)
    text = f"; {alt.label} is {100 * (1 - alt.size_bytes / best.size_bytes):.0f}% smaller with no significant drop"
    but = []
    if alt.kl is not None and best.kl is not None:
        but.append(f"a mean KL divergence of {alt.kl:.4f} against {best.kl:.4f}")
    but += [alt.evidence] if alt.evidence else []
    return text + (f" (but {'; '.join(but)})" if but else "")


def recommend(devices: list[DeviceSet], candidates: list[Candidate], prefer: str = "quality") -> list[Recommendation]:
    """One recommendation per device set, in the order the device sets were given; `prefer` speed or
    balanced lets measured generation speed decide among the variants the evidence does not rule out."""
    if prefer not in PREFERENCES:
        raise QuantdropError(f"--prefer must be one of {', '.join(PREFERENCES)}, got {prefer!r}")
    return [recommend_for(d, candidates, prefer) for d in devices]
