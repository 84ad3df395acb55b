"""Helpers shared by the benchmark steps: timing statistics, the results file, the database."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("MOROSOS_VAR_DIR") or ROOT / "var" / "bench")
# One results file per run; the curves (scripts/bench/curves.py) give each scale its own.
RESULTS = Path(os.environ.get("BENCH_RESULTS") or VAR / "results.json")
# The curves' inner runs measure and keep their results; only the outer run writes the report.
WRITE_REPORT = os.environ.get("BENCH_NO_REPORT") != "1"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def stats(values: list[float]) -> dict:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "p5": pct(values, 5),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "values": [round(v, 4) for v in values],
    }


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {}


def save_results(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False))


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value.replace("_", "").replace(",", "")) if value.strip() else default
