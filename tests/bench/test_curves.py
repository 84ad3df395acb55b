"""The curves of `make bench-curves` (scripts/bench/curves.py): how each hot path's cost grows
with the portfolio, computed from the harness's own results files, and the report's section."""

from __future__ import annotations

import math

import pytest

from scripts.bench import curves, dispatch_bench, report


def _run(*, planner_s: float, client_ms: float, manager_ms: float) -> dict:
    return {
        "nightly": {"compute_profiles": planner_s / 2},
        "planner": {"app": {"median": planner_s}, "hand": {"median": planner_s * 2}},
        "pages": {
            "client_detail": {"ms": {"p50": client_ms}},
            "worklist_manager": {"ms": {"p50": manager_ms}},
        },
    }


def test_the_exponent_is_the_growth_of_time_against_size():
    assert curves.exponent(1.0, 10.0, 100, 1000) == pytest.approx(1.0)
    assert curves.exponent(5.0, 5.0, 100, 1000) == pytest.approx(0.0)
    assert curves.exponent(1.0, 3.0, 1_000_000, 3_000_000) == pytest.approx(1.0)
    assert curves.exponent(2.0, 4.0, 100, 1000) == pytest.approx(math.log10(2))
    assert curves.exponent(0, 4.0, 100, 1000) is None


def test_a_page_that_grows_with_the_portfolio_is_flagged_and_one_meant_to_is_not():
    runs = [
        ((10_000, 100_000), _run(planner_s=1.0, client_ms=40, manager_ms=20)),
        ((100_000, 1_000_000), _run(planner_s=10.0, client_ms=44, manager_ms=200)),
        ((300_000, 3_000_000), _run(planner_s=30.0, client_ms=400, manager_ms=600)),
    ]
    out = curves.curves(runs)
    assert out["sizes"] == [[10_000, 100_000], [100_000, 1_000_000], [300_000, 3_000_000]]
    client = out["paths"]["page: client_detail p50 (ms)"]
    assert client["values"] == [40, 44, 400]
    assert client["exponents"][0] == pytest.approx(0.04, abs=0.01)
    assert client["exponents"][1] == pytest.approx(2.01, abs=0.01)
    assert client["defect"]  # a one-client page ten times slower on a three times larger portfolio
    manager = out["paths"]["page: worklist_manager p50 (ms)"]
    assert manager["expected"] == curves.PORTFOLIO and not manager["defect"]
    planner = out["paths"]["planner, app (s)"]
    assert planner["exponents"] == [1.0, 1.0] and not planner["defect"]


def test_the_report_shows_each_size_and_growth():
    runs = [
        ((10_000, 100_000), _run(planner_s=1.0, client_ms=40, manager_ms=20)),
        ((100_000, 1_000_000), _run(planner_s=10.0, client_ms=400, manager_ms=200)),
    ]
    lines = report.curves_lines(curves.curves(runs))
    text = "\n".join(lines)
    assert "| path | meant to cost | 10,000 / 100,000 | 100,000 / 1,000,000 | k 100,000→1,000,000 | |" in text
    assert "| page: client_detail p50 (ms) | shown | 40 | 400 | 1.00 | **grows with the portfolio** |" in text
    assert "| planner, app (s) | portfolio | 1.00 | 10.00 | 1.00 |  |" in text
    # Every row has as many cells as the header.
    rows = [line for line in lines if line.startswith("| ")]
    assert len({line.count("|") for line in rows}) == 1


def test_each_size_gets_its_own_bench_database(monkeypatch):
    assert (
        curves._database_url("postgres://postgres@127.0.0.1:5432/morosos_bench", 10_000)
        == "postgres://postgres@127.0.0.1:5432/morosos_bench_10000"
    )
    assert curves._database_url("postgres://u@h/morosos?sslmode=disable", 5).endswith("/morosos_bench_5")
    monkeypatch.setenv("BENCH_SCALES", "100000:1000000, 10000:100000")
    assert curves.scales() == [(10_000, 100_000), (100_000, 1_000_000)]


def test_dispatch_compares_one_two_and_four_workers_by_default(monkeypatch):
    monkeypatch.delenv("BENCH_DISPATCH_WORKERS", raising=False)
    assert dispatch_bench._worker_counts() == [1, 2, 4]
    monkeypatch.setenv("BENCH_DISPATCH_WORKERS", "")
    assert dispatch_bench._worker_counts() == []
