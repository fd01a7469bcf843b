"""The Pareto front and the device sets' weight budgets drawn on the quality-vs-size plot."""

from __future__ import annotations

from quantdrop.report import plots
from tests.report.paper import DEVICES, GIB


def test_pareto_front() -> None:
    # (size, accuracy): (2, 4) is beaten by (1, 5); (4, 6) by (3, 6), which is smaller at equal accuracy
    assert plots.pareto_front([(1, 5), (2, 4), (3, 6), (4, 6)], higher_is_better=True) == [0, 2]
    # (size, KL divergence): lower is better
    assert plots.pareto_front([(3, 0.2), (1, 0.3), (2, 0.1)], higher_is_better=False) == [1, 2]


def test_weight_budget_reproduces_the_papers_fit(paper_data) -> None:
    """8x910B-64G: 512 GiB less the paper's KV/buffer overhead (MU total - size, ~188 GiB) holds about
    324 GiB of weights: DQ3_K_M (281 GiB) fits, Q4_K_M (377 GiB) does not, as Table 1 and section 4.4 say."""
    budget = plots.weight_budget(paper_data, DEVICES[1]) / GIB
    assert budget == 512 - 188
    fits = {s.label: s.size_bytes / GIB <= budget for s in paper_data.sizes}
    assert fits == {s.label: s.placements["8x910B-64G"].fits for s in paper_data.sizes}


def test_plots_are_pngs_or_absent(paper_data) -> None:
    assert plots.quality_vs_size(paper_data)[:4] == b"\x89PNG"
    assert plots.benchmark_bars(paper_data)[:4] == b"\x89PNG"
    paper_data.results = None
    assert plots.benchmark_bars(paper_data) is None and plots.quality_vs_size(paper_data) is None


def test_pareto_front_of_speed_prefers_the_faster() -> None:
    # (tokens/s, accuracy): (10, 5) is beaten by (20, 6); (30, 4) is the fastest
    assert plots.pareto_front([(10, 5), (20, 6), (30, 4), (25, 3)], True, smaller_x_better=False) == [1, 2]


def test_quality_vs_speed_needs_speed_results(paper_data) -> None:
    import dataclasses

    from tests.report.paper import illustrative_speed

    assert plots.quality_vs_speed(paper_data) is None  # no speed measured
    with_speed = dataclasses.replace(paper_data, **illustrative_speed())
    assert plots.quality_vs_speed(with_speed)[:4] == b"\x89PNG"
    assert plots.generation_speed(with_speed)["Q4_K_M"] == 20.0
    assert set(plots.figures(with_speed)) == {"quality-vs-size", "quality-vs-speed", "benchmark-bars"}
    with_speed.results = None  # speed, but no quality to set against it
    assert plots.quality_vs_speed(with_speed) is None
