# ruff: noqa: S603 - the benchmark starts its own harness with the project's interpreter
"""Curves, not points: the hot paths at several portfolio sizes (``make bench-curves``).

``BENCH_SCALES`` lists the sizes as ``clients:invoices`` pairs (default
``10000:100000,100000:1000000,300000:3000000``). Each size is a full harness run
(``python -m scripts.bench``, steps ``BENCH_CURVE_STEPS``, default load, nightly, planner,
pages) on its own database — the benchmark database's name with the client count appended,
kept for reruns like the main one — with its own results file. The figures are then gathered
into the main results under ``curves`` and docs/benchmarks.md is written again with a section
that gives, for each path, its time at each size and how it grew: the growth exponent ``k`` in
time ∝ size^k between two sizes (1: linear in the portfolio; 0: independent of it). A page that
shows a fixed amount (one client, one page of a list) should stay near 0; one that grows like
the portfolio is a defect (``expected`` below says which paths are meant to cover it all).

Dispatch is measured apart from the portfolio size, with 1, 2 and 4 worker processes
(``BENCH_DISPATCH_WORKERS``, in ``dispatch_bench``), to show where the machine saturates.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

from scripts.bench.common import RESULTS, ROOT, VAR, log

DEFAULT_SCALES = "10000:100000,100000:1000000,300000:3000000"
DEFAULT_STEPS = "load,nightly,planner,pages"

# What each path is meant to cost: "portfolio" paths read all of it by design (the nightly
# jobs, the planner, a manager's whole-portfolio figures); "shown" paths should cost what
# they show.
PORTFOLIO = "portfolio"
SHOWN = "shown"


def scales() -> list[tuple[int, int]]:
    out = []
    for part in os.environ.get("BENCH_SCALES", DEFAULT_SCALES).split(","):
        if part.strip():
            clients, invoices = part.strip().replace("_", "").split(":")
            out.append((int(clients), int(invoices)))
    return sorted(out, key=lambda pair: pair[1])


def _database_url(base_url: str, clients: int) -> str:
    base = base_url.split("?", 1)[0]
    name = base.rsplit("/", 1)[1]
    if "bench" not in name:
        name += "_bench"
    return f"{base.rsplit('/', 1)[0]}/{name}_{clients}"


def _create_database(url: str) -> None:
    import psycopg2

    u = urlparse(url)
    name = u.path.lstrip("/")
    conn = psycopg2.connect(
        dbname="postgres", user=u.username, password=u.password, host=u.hostname or "127.0.0.1", port=u.port or 5432
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if not cur.fetchone():
                cur.execute(f'CREATE DATABASE "{name}"')
                log(f"curves: created database {name}")
    finally:
        conn.close()


def run_scale(clients: int, invoices: int) -> dict:
    url = _database_url(os.environ["DATABASE_URL"], clients)
    _create_database(url)
    results_file = VAR / f"results-{clients}x{invoices}.json"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BENCH_CLIENTS": str(clients),
        "BENCH_INVOICES": str(invoices),
        "BENCH_STEPS": os.environ.get("BENCH_CURVE_STEPS", DEFAULT_STEPS),
        "BENCH_RESULTS": str(results_file),
        "BENCH_NO_REPORT": "1",
        "BENCH_PAGES_JIT_OFF": "0",
        "BENCH_QUICK": "0",
    }
    log(f"curves: {clients:,} clients / {invoices:,} invoices on {url.rsplit('/', 1)[1]}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scripts.bench"], cwd=ROOT, env=env, check=True)
    log(f"curves: {clients:,} clients done in {(time.perf_counter() - t0) / 60:.1f} min")
    return json.loads(results_file.read_text())


def points(run: dict) -> dict[str, tuple[float, str]]:
    """``{path: (seconds or ms, expected)}`` of one run: the hot paths' medians."""
    out: dict[str, tuple[float, str]] = {}
    for name, seconds in (run.get("nightly") or {}).items():
        out[f"nightly: {name.split(' (')[0]} (s)"] = (seconds, PORTFOLIO)
    planner = run.get("planner") or {}
    if planner.get("app"):
        out["planner, app (s)"] = (planner["app"]["median"], PORTFOLIO)
        out["planner, hand SQL (s)"] = (planner["hand"]["median"], PORTFOLIO)
    for key, page in (run.get("pages") or {}).items():
        # The manager's worklist ranks every due client of the portfolio to show a page of them.
        expected = PORTFOLIO if key in ("worklist_manager",) else SHOWN
        out[f"page: {key} p50 (ms)"] = (page["ms"]["p50"], expected)
    return out


def exponent(t1: float, t2: float, n1: int, n2: int) -> float | None:
    if not t1 or not t2 or t1 <= 0 or t2 <= 0 or n1 == n2:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)


def curves(runs: list[tuple[tuple[int, int], dict]]) -> dict:
    sizes = [list(scale) for scale, _run in runs]
    table: dict[str, dict] = {}
    for i, (_scale, run) in enumerate(runs):
        for path, (value, expected) in points(run).items():
            row = table.setdefault(path, {"expected": expected, "values": [None] * len(runs)})
            row["values"][i] = value
    for row in table.values():
        ks = []
        for i in range(1, len(sizes)):
            a, b = row["values"][i - 1], row["values"][i]
            k = exponent(a, b, sizes[i - 1][1], sizes[i][1]) if a is not None and b is not None else None
            ks.append(None if k is None else round(k, 2))
        row["exponents"] = ks
        worst = max((k for k in ks if k is not None), default=None)
        # A path meant to cost what it shows, growing at least half as fast as the portfolio.
        row["defect"] = bool(row["expected"] == SHOWN and worst is not None and worst >= 0.5)
    return {"sizes": sizes, "paths": table, "measured": time.strftime("%Y-%m-%d %H:%M")}


def main() -> int:
    from scripts.bench import report
    from scripts.bench.common import load_results, save_results

    runs = [((c, i), run_scale(c, i)) for c, i in scales()]
    results = load_results() if RESULTS.exists() else {}
    results["curves"] = curves(runs)
    save_results(results)
    if results.get("scale"):
        report.write(results)
        log("curves: written to docs/benchmarks.md")
    else:
        print("\n".join(report.curves_lines(results["curves"])))
    return 0


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morosos.settings")
    django.setup()
    sys.exit(main())
