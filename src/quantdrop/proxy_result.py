"""The proxies' result type, in a module of its own so that the report can hold one without importing
the proxies verb (and llama.cpp) itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ProxyResult:
    """One variant against the reference (the numbers llama-perplexity --kl-divergence prints)."""

    variant: str
    fingerprint: str
    reference: str
    text: str
    n_ctx: int
    n_chunks: int
    n_tokens: int
    ppl: float
    ppl_err: float
    ppl_base: float
    ppl_base_err: float
    ln_ppl_ratio: float
    ln_ppl_ratio_err: float
    kld_mean: float
    kld_mean_err: float
    kld_median: float
    kld_p99: float
    kld_max: float
    rms_dp: float  # RMS of the change in the probability of the right token
    same_top: float  # fraction of tokens whose most likely next token is unchanged
    same_top_err: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
