"""docs/benchmarks.md (and /tmp/bench_interim.md while the pages are measured) from the results."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess

import django
from django.db import connection

from scripts.bench.common import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
# Written by `manage.py backtest --json` on the demo data (docs/domain.md#cash-forecast): the bench
# portfolio is generated in one go, so its history says less about payment habits than the demo's.
FORECAST_JSON = ROOT / "docs" / "forecast-backtest.json"
INTERIM = os.environ.get("BENCH_INTERIM", "/tmp/bench_interim.md")  # noqa: S108 - read by the lead


def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()  # noqa: S603
    except Exception:
        return ""


def machine() -> dict:
    cpu = ""
    for line in _cmd(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    mem_kb = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        shared = cur.fetchone()[0]
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "postgresql": pg,
        "shared_buffers": shared,
        "python": platform.python_version(),
        "django": django.get_version(),
        "date": _cmd(["date", "-u"]),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _f(x, unit="", nd=0):
    if x is None:
        return "—"
    return f"{x:,.{nd}f}{unit}"


def _spread(s: dict, nd=0, unit="") -> str:
    if not s or not s.get("n"):
        return "—"
    return f"{_f(s['median'], unit, nd)} ({_f(s['min'], '', nd)}–{_f(s['max'], '', nd)}, n={s['n']})"


def _pages_table(results: dict, key: str = "pages") -> list[str]:
    pages = results.get(key) or {}
    if not pages:
        return []
    out = [
        "| page | first request ms | p50 ms | p95 ms | min–max ms | SQL ms (p50) | queries | goal (p95) | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for p in pages.values():
        s = p["ms"]
        ok = s["p95"] <= p["goal_ms"]
        verdict = "met" if ok else f"**missed by {s['p95'] - p['goal_ms']:.0f} ms ({s['p95'] / p['goal_ms']:.1f}×)**"
        goal = f"≤ {p['goal_ms']:.0f} ms"
        if p.get("goal_queries"):
            goal += f", ≤ {p['goal_queries']} queries"
            if max(p["queries"]) > p["goal_queries"]:
                verdict = f"{'' if ok else verdict + '; '}**{max(p['queries'])} queries, over {p['goal_queries']}**"
        q = "/".join(str(x) for x in p["queries"])
        out.append(
            f"| {p['label']} (`{p['url']}`) | {_f(p.get('first_ms'))} | {s['p50']:.0f} | {s['p95']:.0f} "
            f"| {s['min']:.0f}–{s['max']:.0f} (n={s['n']}) | {_f((p.get('sql_ms') or {}).get('p50'))} | {q} "
            f"| {goal} | {verdict} |"
        )
    return out


ACTUAL = re.compile(r"actual time=([\d.]+)\.\.([\d.]+) rows=(\d+) loops=(\d+)")


def hot_plan_lines(plan: str, n: int = 12) -> list[str]:
    """The plan nodes that cost the most (end time × loops), in plan order, with their
    line and the next line (filter or index condition) for context."""
    lines = plan.splitlines()
    scored = []
    for i, line in enumerate(lines):
        m = ACTUAL.search(line)
        if m:
            scored.append((float(m.group(2)) * int(m.group(4)), i))
    keep = sorted(i for _c, i in sorted(scored, reverse=True)[:n])
    out = []
    for i in keep:
        out.append(lines[i][:400])
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if "Filter" in nxt or "Cond" in nxt:
            out.append(nxt[:400])
    return out


def _slow_details(results: dict) -> list[str]:
    out = []
    for key, p in (results.get("pages") or {}).items():
        if p["ms"]["p95"] <= p["goal_ms"] and "explain" not in p:
            continue
        out.append(f"#### {p['label']}: the slowest queries of one request")
        out.append("")
        for q in p.get("slowest", []):
            out.append(f"- {q['ms']} ms:")
            out.append("")
            out.append("  ```sql")
            out.append("  " + q["sql"][:1500].replace("\n", " "))
            out.append("  ```")
        if p.get("explain"):
            out.append("")
            out.append(
                f"EXPLAIN (ANALYZE, BUFFERS) of the slowest ({key}), the costliest nodes (time × loops); "
                f"whole plan in `var/bench/explain-{key}.txt`:"
            )
            out.append("")
            out.append("```")
            out.extend(hot_plan_lines(p["explain"]))
            lines = p["explain"].splitlines()
            jit = [i for i, line in enumerate(lines) if line.startswith("JIT:")]
            if jit:
                out.extend(lines[jit[0] :])
            else:
                out.extend(line for line in lines if line.startswith("Execution Time"))
            out.append("```")
        out.append("")
    return out


def _machine_lines(results: dict) -> list[str]:
    m = results.get("machine", {})
    return [
        f"- CPU: {m.get('cpu')}, {m.get('cores')} cores; RAM {m.get('ram_gb')} GB",
        f"- PostgreSQL {m.get('postgresql')} (shared_buffers {m.get('shared_buffers')}), "
        f"Python {m.get('python')}, Django {m.get('django')}",
        f"- Date: {m.get('date')} (load average at start: {m.get('load_average')})",
        "- A 2-core virtual machine: anything else running on it shows in the times (the load average "
        "at the start is above; the spreads below show the noise). The date is that of the last step run.",
    ]


def write_interim(results: dict) -> None:
    lines = ["# Bench interim figures (pages, in process, DEBUG off)", ""]
    lines += [f"Scale: {results['scale'][0]:,} clients / {results['scale'][1]:,} invoices.", ""]
    lines += _machine_lines(results) + [""]
    lines += _pages_table(results) + [""]
    if results.get("pages_jit_off"):
        lines += ["Same pages with `jit=off` on the connection:", ""] + _pages_table(results, "pages_jit_off") + [""]
    lines += _slow_details(results)
    try:
        with open(INTERIM, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    except OSError:
        pass


def curves_lines(curves: dict) -> list[str]:
    """The curves section (scripts/bench/curves.py): each path's median at each size and its
    growth exponent k between sizes (time ∝ invoices^k)."""
    sizes = curves["sizes"]
    head = " | ".join(f"{c:,} / {i:,}" for c, i in sizes)
    growth = " | ".join(f"k {a[1]:,}→{b[1]:,}" for a, b in zip(sizes, sizes[1:], strict=False))
    L = [
        "## Curves: cost against portfolio size",
        "",
        f"`make bench-curves` ({curves.get('measured', '')}): the same harness at each size (clients / invoices), "
        "each on its own database. k is the growth exponent between two sizes, time ∝ invoices^k: 1 grows "
        "like the portfolio, 0 does not grow. *portfolio*: meant to read the whole portfolio; *shown*: meant "
        "to cost what the page shows — such a path with k ≥ 0.5 is flagged as a defect.",
        "",
        f"| path | meant to cost | {head} | {growth} | |",
        "| --- | --- | " + " | ".join("---:" for _ in [*sizes, *sizes[1:]]) + " | --- |",
    ]
    for path, row in sorted(curves["paths"].items()):
        values = " | ".join("–" if v is None else (f"{v:.2f}" if "(s)" in path else f"{v:.0f}") for v in row["values"])
        ks = " | ".join("–" if k is None else f"{k:.2f}" for k in row["exponents"])
        flag = "**grows with the portfolio**" if row.get("defect") else ""
        L.append(f"| {path} | {row['expected']} | {values} | {ks} | {flag} |")
    return L


def write(results: dict) -> None:
    n_clients, n_invoices = results["scale"]
    L = ["# Benchmarks", ""]
    L.append(
        f"Portfolio: **{n_clients:,} clients, {n_invoices:,} invoices**"
        + (" (quick mode: development figures, not the reference)" if results.get("quick") else "")
        + f", generated for {results.get('today')}."
    )
    L += [
        "",
        f"Produced by `{results.get('command', 'make bench')}` (`scripts/bench.sh` → `python -m scripts.bench`)"
        + (f": {results['command_note']}." if results.get("command_note") else "."),
        "",
    ]
    L += ["## Machine", ""] + _machine_lines(results) + [""]
    L += [
        "Spread notation: median (min–max, n = repeats). Server times are wall-clock in the measuring process.",
        "",
    ]
    load = results.get("load") or {}
    if load:
        L += ["## 1. Bulk load and nightly jobs", ""]
        if load.get("seconds"):
            L.append(
                f"- Load (generate + COPY via `copy_expert`, one transaction): **{load['seconds']:.0f} s** "
                f"(generation {load['generate_seconds']:.0f} s, COPY {load['copy_seconds']:.0f} s), "
                f"ANALYZE {load['analyze_seconds']:.0f} s; ladder history (planner as of D−14, D−7, D−1, "
                f"notices marked sent) {load['history_seconds']:.0f} s."
            )
            L.append("- Rows: " + ", ".join(f"{t} {n:,}" for t, n in sorted(load.get("counts", {}).items())))
        if load.get("reused_from"):
            L.append(f"- This run reused the portfolio loaded on {load['reused_from']} (BENCH_RELOAD=1 reloads).")
        L.append("")
    nightly = results.get("nightly") or {}
    if nightly:
        L += ["| nightly job | seconds (one run) |", "| --- | ---: |"]
        L += [f"| {k} | {v:.1f} |" for k, v in nightly.items()]
        L.append("")
    pl = results.get("planner")
    if pl:
        ratio = pl["ratio"]["median"]
        L += ["## 2. Dunning planner vs one hand-tuned SQL statement", ""]
        L += [
            f"Whole portfolio, today = {results.get('today')}: **{pl['notices']:,} notices, {pl['items']:,} invoices** "
            "planned; both produce identical rows (asserted on every repeat; reset between repeats).",
            "",
            "| | seconds |",
            "| --- | ---: |",
            f"| `cobranza.engine.planner.plan` (what `run_dunning` calls via `engine.run`) | {_spread(pl['app'], 2)} |",
            f"| hand-tuned single statement (`scripts/bench/planner_sql.py`) | {_spread(pl['hand'], 2)} |",
            f"| ratio app / hand | {_spread(pl['ratio'], 2, '×')} |",
            "",
            f"Goal ≤ 1.5×: **{'met' if ratio <= 1.5 else 'missed'}** ({ratio:.2f}×)."
            + (
                " The application is faster than the hand-written statement it is measured against, so the "
                "yardstick itself is what to improve next (pacing was added to it as more CTEs, and its plan "
                "has not been tuned since)."
                if ratio < 1
                else ""
            ),
            "",
        ]
    d = results.get("dispatch")
    if d:
        L += ["## 3. Dispatch throughput", ""]
        L += [
            f"{d['notices_per_run']:,} planned email notices per run, 2 Celery worker processes (solo pool, Redis "
            "broker) → aiosmtpd on localhost; baseline: a plain `smtplib` loop sending the same rendered messages "
            "to the same server.",
            "",
            "| | notices/s |",
            "| --- | ---: |",
            f"| 2 Celery workers, batches of {d.get('batch_size', '?')} (claim, re-check, render, send, record) "
            f"| {_spread(d['workers'], 0)} |",
            *(
                [f"| 2 Celery workers, one task per notice | {_spread(d['workers_one_by_one'], 0)} |"]
                if (d.get("workers_one_by_one") or {}).get("median") is not None
                else []
            ),
            f"| smtplib loop, one connection per message (as Django's backend does) | "
            f"{_spread(d['smtplib_new_connection'], 0)} |",
            f"| smtplib loop, one connection for all | {_spread(d['smtplib_one_connection'], 0)} |",
            f"| ratio workers / smtplib (new connection) | {_spread(d['ratio_vs_new_connection'], 2, '×')} |",
            f"| ratio workers / smtplib (one connection) | {_spread(d['ratio_vs_one_connection'], 2, '×')} |",
            "",
        ]
        rv = d["ratio_vs_new_connection"]["median"]
        if rv is not None:
            L += [f"Goal ≥ 0.5× of the plain loop: **{'met' if rv >= 0.5 else 'missed'}** ({rv:.2f}×).", ""]
        L += ["Outcomes per run: " + "; ".join(str(r["status"]) for r in d["runs"]), ""]
        by_workers = d.get("by_workers") or {}
        if by_workers:
            cores = (results.get("machine") or {}).get("cores") or "?"
            L += [
                f"By number of worker processes ({cores} cores; one run each, "
                f"{next(iter(by_workers.values()))['notices']:,} notices):",
                "",
                "| workers | notices/s | × one worker |",
                "| ---: | ---: | ---: |",
            ]
            one = by_workers.get("1", {}).get("rate")
            for k, r in sorted(by_workers.items(), key=lambda kv: int(kv[0])):
                times_one = f"{r['rate'] / one:.2f}×" if one else "–"
                L.append(f"| {k} | {r['rate']:.0f} | {times_one} |")
            L.append("")
        probe = d.get("in_process") or {}
        one = d.get("in_process_one_by_one") or {}
        if probe.get("ms") and one.get("ms"):
            L += [
                "Where the time goes, in process, per notice: `cobranza.engine.dispatch.dispatch_batch` takes "
                f"{_spread(probe['ms'], 1, ' ms')} and {_spread(probe['queries'], 1)} queries (time in SQL "
                f"{_spread(probe.get('sql_ms') or {}, 1, ' ms')}); one by one (`dispatch`) "
                f"{_spread(one['ms'], 0, ' ms')} and {_spread(one['queries'], 0)} queries (time in SQL "
                f"{_spread(one.get('sql_ms') or {}, 0, ' ms')}).",
                "",
            ]
        elif probe.get("ms"):
            L += [
                f"Where the time goes: the same `cobranza.engine.dispatch.dispatch` in process takes "
                f"{_spread(probe['ms'], 0, ' ms')} per notice and runs {_spread(probe['queries'], 0)} queries "
                f"({_spread(probe.get('commits') or {}, 0)} explicit transaction blocks; the other writes "
                f"autocommit, each its own COMMIT); time in SQL "
                f"{_spread(probe.get('sql_ms') or {}, 0, ' ms')}.",
                "",
            ]
    if results.get("pages"):
        L += ["## 4. Page server time and query count (in process, django.test.Client, DEBUG off)", ""]
        L += _pages_table(results) + [""]
        L += [
            "First request = the first (unmeasured, cold) request of the page; p50/p95 over the measured "
            "requests after warm-up. SQL ms = time spent in the database per request (sum of the captured "
            "queries); the rest is Python (view, template rendering).",
            "",
        ]
        if results.get("pages_jit_off"):
            L += [
                "### Second pass: the same pages with `-c jit=off` added to the connection",
                "",
                "settings.py now sets `jit=off` itself (it did not when the first full-scale figures were taken, "
                "see below), so this is a repeat of the same configuration: the difference from the table above "
                "is run-to-run noise on the shared machine.",
                "",
            ]
            L += _pages_table(results, "pages_jit_off") + [""]
        L += _slow_details(results)
    im = results.get("import")
    if im:
        L += ["## 5. Import throughput", ""]
        L += [
            f"{im['rows']:,}-row invoice CSV through `imports.job_create` + `imports.run_job` (the entry points of "
            "`import_ledger`):",
            "",
            "| | rows/s |",
            "| --- | ---: |",
            f"| validation only (dry run) | {_spread(im['dry_run'], 0)} |",
            f"| import (validate + write) | {_spread(im['import'], 0)} |",
            "",
        ]
        if im.get("errors"):
            L += ["Failed attempts (retried): " + "; ".join(im["errors"]), ""]
    h = results.get("http")
    if h:
        L += ["## 6. HTTP load", ""]
        if h.get("skipped"):
            L += [f"Skipped: {h['skipped']}", ""]
        else:
            L += [
                f"{h['users']} concurrent logged-in staff users (locust, own virtualenv, 0.5–1.5 s think time) "
                f"against gunicorn ({h['gunicorn_workers']} workers, `--no-control-socket`), {h['seconds']} s per "
                f"run, {len(h['runs'])} runs; locust runs on the same machine.",
                "",
                "| page | requests | p50 ms | p95 ms | errors | req/s |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            names = [n for n in h["runs"][0] if n not in ("login form",)]
            for name in names:
                rows = [r[name] for r in h["runs"] if name in r]
                req = sum(r["requests"] for r in rows)
                fail = sum(r["failures"] for r in rows)
                p50 = "/".join(f"{r['p50_ms']:.0f}" for r in rows)
                p95 = "/".join(f"{r['p95_ms']:.0f}" for r in rows)
                rps = "/".join(f"{r['rps']:.1f}" for r in rows)
                L.append(f"| {name} | {req:,} | {p50} | {p95} | {fail} ({100 * fail / max(req, 1):.1f} %) | {rps} |")
            L += ["", "(Values per run separated by /.)", ""]
    L += forecast_lines(results.get("forecast") or _forecast_file())
    if results.get("curves"):
        L += curves_lines(results["curves"]) + [""]
    analysis = ROOT / "scripts" / "bench" / "analysis.md"
    if analysis.exists() and not results.get("quick"):
        L += [analysis.read_text().strip(), ""]
    steps = results.get("step_seconds") or {}
    if steps:
        L += ["## Harness run time", ""]
        L += ["| step | seconds |", "| --- | ---: |"] + [f"| {k} | {v:.0f} |" for k, v in steps.items()]
        L.append("")
    L += [f"_Written {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}._", ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(L))


def _forecast_file() -> dict | None:
    if not FORECAST_JSON.exists():
        return None
    return json.loads(FORECAST_JSON.read_text(encoding="utf-8"))


def forecast_lines(data: dict | None) -> list[str]:
    """The "Cash forecast backtest" section from ``backtest --json`` figures (none: no section)."""
    if not data:
        return []
    by = data["mae_by_actual"]
    dates = data["stand_dates"]
    lines = [
        "## 7. Cash forecast backtest",
        "",
        f"`manage.py backtest` on {data.get('source', 'the demo data')}: {len(dates)} stand dates "
        f"({dates[0]} … {dates[-1]}, every {data['step_weeks']} weeks) × {data['weeks']} weeks, "
        f"{data['currency']}. Weekly mean absolute error against what came in "
        "(docs/domain.md#cash-forecast); naive = every open invoice paid in full on its due date, "
        "overdue ones in the first week.",
        "",
        "| compared with | forecast MAE | naive MAE | improvement |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "received_open": "money applied to the invoices open at the stand date",
        "received": "all money received (incl. invoices issued later)",
    }
    for key, label in labels.items():
        m = by[key]
        lines.append(f"| {label} | {_money(m['forecast'])} | {_money(m['naive'])} | {m['improvement_pct']} % |")
    lines += ["", f"Figures from `{FORECAST_JSON.relative_to(ROOT)}` (computed {data['computed_on']}).", ""]
    return lines


def _money(text: str | None) -> str:
    return "—" if text is None else f"{float(text):,.2f}"


def drop_database() -> None:
    name = connection.settings_dict["NAME"]
    connection.close()
    import psycopg2

    s = connection.settings_dict
    conn = psycopg2.connect(dbname="postgres", user=s["USER"], host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


if __name__ == "__main__":  # re-render docs/benchmarks.md from the last results (after editing analysis.md)
    import django as _django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morosos.settings")
    _django.setup()
    from scripts.bench.common import load_results

    write(load_results())
