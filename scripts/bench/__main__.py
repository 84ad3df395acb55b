# ruff: noqa: S608 - only fixed table names are interpolated into SQL
"""The benchmark harness: ``python -m scripts.bench`` (``make bench`` runs it via scripts/bench.sh).

Environment:
  BENCH_CLIENTS, BENCH_INVOICES   scale (default 100000 / 1000000); BENCH_QUICK=1: 2000 / 20000
  BENCH_RELOAD=1                  reload even when the database holds a portfolio of that scale
  BENCH_STEPS=load,nightly,planner,pages,dispatch,import,http   (default: all, in this order)
  BENCH_REPEAT                    repeats of the planner (default 5), BENCH_PAGE_REQUESTS (default 30)
  BENCH_NOTICES                   notices sent per dispatch run (default 1500)
  BENCH_DISPATCH_WORKERS          worker processes compared (default 1,2,4), BENCH_SATURATION_NOTICES
                                  notices per worker-count run (default 500)
  BENCH_HTTP_USERS, BENCH_HTTP_SECONDS   locust load (default 50 users, 60 s)
  BENCH_DROP_DB=1                 drop the benchmark database at the end
The database must be a dedicated one: its name must contain "bench".
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morosos.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from scripts.bench import loader, report  # noqa: E402
from scripts.bench.common import (  # noqa: E402
    VAR,
    WRITE_REPORT,
    env_int,
    load_results,
    log,
    save_results,
    stats,
)

QUICK = os.environ.get("BENCH_QUICK") == "1"
N_CLIENTS = env_int("BENCH_CLIENTS", 2000 if QUICK else 100_000)
N_INVOICES = env_int("BENCH_INVOICES", 20_000 if QUICK else 1_000_000)
SEED = env_int("BENCH_SEED", 7)
# The monthly beat task snapshots one month; a 12-month backfill is a one-off (and slow at scale).
SNAPSHOT_MONTHS = env_int("BENCH_SNAPSHOT_MONTHS", 12 if QUICK else 1)
ALL_STEPS = ("load", "nightly", "planner", "pages", "dispatch", "import", "http")
STEPS = [s.strip() for s in os.environ.get("BENCH_STEPS", ",".join(ALL_STEPS)).split(",") if s.strip()]


def _meta_get() -> dict:
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        cur.execute("SELECT key, value FROM bench_meta")
        return dict(cur.fetchall())


def _meta_set(**values) -> None:
    with connection.cursor() as cur:
        for k, v in values.items():
            cur.execute(
                "INSERT INTO bench_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = %s",
                [k, str(v), str(v)],
            )


def _truncate() -> None:
    with connection.cursor() as cur:
        # CASCADE empties every table that points at the ledger (notices, commitments, ...);
        # reference data (segments, policies, templates, contact rules) does not point at it.
        cur.execute(
            "TRUNCATE accounts_client, accounts_invoice, accounts_payment, accounts_contact, accounts_interaction, "
            "accounts_businessgroup, cobranza_importjob RESTART IDENTITY CASCADE"
        )


def _history(today: dt.date) -> float:
    """Yesterday's state of the ladder: the planner as of two earlier days, notices then sent,
    so today's run has the steps already taken to skip (not a first run on an empty ledger)."""
    from cobranza.engine.planner import plan

    t0 = time.perf_counter()
    for days in (14, 7, 1):
        day = today - dt.timedelta(days=days)
        at = timezone.make_aware(dt.datetime.combine(day, dt.time(7, 0)))
        plan(today=day, now=at)
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                # A notice superseded by a firmer step the same day (docs/domain.md#pacing) was
                # never sent, and the database refuses a sent one that names its successor.
                "UPDATE cobranza_notice SET status = 'sent', sent_at = scheduled_at + interval '3 hours', "
                "attempts = 1 WHERE planned_for = %s AND status <> 'superseded'",
                [day],
            )
    return time.perf_counter() - t0


def step_load(results: dict, today: dt.date) -> None:
    meta = _meta_get()
    wanted = {"clients": str(N_CLIENTS), "invoices": str(N_INVOICES), "seed": str(SEED)}
    have = {k: meta.get(k) for k in wanted}
    if have == wanted and os.environ.get("BENCH_RELOAD") != "1" and meta.get("loaded") == "1":
        log(f"reusing the loaded portfolio ({N_CLIENTS:,} clients, {N_INVOICES:,} invoices, loaded {meta['today']})")
        results["load"] = results.get("load") or {}
        results["load"]["reused_from"] = meta["today"]
        return
    log(f"loading {N_CLIENTS:,} clients / {N_INVOICES:,} invoices (COPY)")
    _truncate()
    _meta_set(loaded="0")
    res = loader.load(n_clients=N_CLIENTS, n_invoices=N_INVOICES, today=today, seed=SEED, progress=log)
    t0 = time.perf_counter()
    loader.analyze()
    analyze_s = time.perf_counter() - t0
    log(f"loaded in {res.seconds:.1f} s (+ ANALYZE {analyze_s:.1f} s): {res.counts}")
    hist_s = _history(today)
    log(f"ladder history (3 planner days) in {hist_s:.1f} s")
    _meta_set(loaded="1", today=today.isoformat(), big_client_id=res.big_client_id, **wanted)
    results["load"] = {
        "seconds": res.seconds,
        "generate_seconds": res.generate_seconds,
        "copy_seconds": res.copy_seconds,
        "analyze_seconds": analyze_s,
        "history_seconds": hist_s,
        "counts": res.counts,
        "big_client_id": res.big_client_id,
    }


def step_nightly(results: dict, today: dt.date) -> None:
    from cobranza.alerts import jobs as alerts
    from cobranza.dashboard import jobs as dashboard
    from cobranza.profiles import jobs as profiles
    from cobranza.worklist import jobs as worklist

    out = {}
    for name, fn in (
        ("compute_profiles", lambda: profiles.compute_profiles(today=today)),
        (
            f"snapshot_aging (backfill of {SNAPSHOT_MONTHS} month{'s' if SNAPSHOT_MONTHS > 1 else ''})",
            lambda: dashboard.backfill_snapshots(months=SNAPSHOT_MONTHS, today=today),
        ),
        ("raise_alerts", lambda: alerts.raise_alerts(today=today)),
        # After the jobs above (profiles change the score), as beat runs it in the morning.
        ("refresh_worklist_rank", lambda: worklist.worklist_rank_refresh(today=today)),
    ):
        log(f"nightly job {name} ...")
        t0 = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - t0
        log(f"  {name}: {out[name]:.1f} s")
    results["nightly"] = out
    loader.analyze()


def step_planner(results: dict, today: dt.date) -> None:
    from cobranza.engine.planner import plan
    from scripts.bench.planner_sql import plan_by_hand, planned_rows, reset_day

    repeat = env_int("BENCH_REPEAT", 3 if QUICK else 5)
    now = timezone.make_aware(dt.datetime.combine(today, dt.time(7, 0)))
    app_t, hand_t = [], []
    app_rows = hand_rows = None
    reset_day(today=today)
    for i in range(repeat):
        t0 = time.perf_counter()
        r = plan(today=today, now=now)
        app_t.append(time.perf_counter() - t0)
        rows = planned_rows(today=today)
        app_rows = app_rows or rows
        assert rows == app_rows, "the planner planned different rows on a repeat"
        reset_day(today=today)
        t0 = time.perf_counter()
        plan_by_hand(today=today, now=now)
        hand_t.append(time.perf_counter() - t0)
        rows = planned_rows(today=today)
        hand_rows = hand_rows or rows
        assert len(rows[0]) == len(app_rows[0]) and len(rows[1]) == len(app_rows[1]), (
            f"counts differ: planner {len(app_rows[0])}/{len(app_rows[1])}, hand SQL {len(rows[0])}/{len(rows[1])}"
        )
        assert rows == app_rows, "hand SQL planned different rows from the planner"
        log(f"  planner repeat {i + 1}: app {app_t[-1]:.2f} s, hand SQL {hand_t[-1]:.2f} s ({r.notices} notices)")
        if i < repeat - 1:
            reset_day(today=today)
    # The last hand-SQL run's rows stay planned for the dispatch benchmark (same rows as the app's).
    results["planner"] = {
        "app": stats(app_t),
        "hand": stats(hand_t),
        "notices": len(app_rows[0]),
        "items": len(app_rows[1]),
        "ratio": stats([a / h for a, h in zip(app_t, hand_t, strict=True)]),
    }


# The business the benchmark portfolio belongs to (a real installation is set up on first login).
BENCH_BUSINESS = {
    "trade_name": "Ferretería Bench",
    "legal_name": "Ferretería Bench, S.A. de C.V.",
    "sender_name": "Cobranza Ferretería Bench",
    "sender_email": "cobranza@bench.example",
    "public_base_url": "https://cobranza.bench.example",
    "phone": "+52 55 5555 0100",
}


def _business_set_up() -> None:
    """Measure the pages as a set-up installation serves them: while the business setup is
    pending, every request checks it again and saves the session (1 + 3 queries that are no
    page's own; cobranza/business/middleware.py)."""
    from cobranza.business import selectors as business_selectors
    from cobranza.business import services as business_services

    if not business_selectors.is_set_up():
        business_services.business_update(by=None, fields=BENCH_BUSINESS)
        business_services.business_setup_complete(by=None, fields=BENCH_BUSINESS)


def _measure_pages(results: dict, key: str, *, explain: bool) -> None:
    from django.contrib.auth import get_user_model

    from scripts.bench import pages as P

    _business_set_up()
    meta = _meta_get()
    User = get_user_model()
    users = {
        "manager": User.objects.get(username="bench_gerente"),
        "collector": User.objects.get(username="bench_gestor00"),
    }
    clients = {k: P.logged_in(u) for k, u in users.items()}
    repeat = env_int("BENCH_PAGE_REQUESTS", 10 if QUICK else 30)
    budget = env_int("BENCH_PAGE_BUDGET", 150)
    out = results.setdefault(key, {})
    big = int(meta["big_client_id"])
    for page in P.pages(big_client_id=big, search="Ferreter", specific=P.specific_searches(big)):
        m = P.measure(clients[page.user], page.url, warmup=3, repeat=repeat, budget_s=budget)
        s = stats(m["times_ms"])
        entry = {
            "label": page.label,
            "url": page.url,
            "goal_ms": page.goal_ms,
            "goal_queries": page.goal_queries,
            "ms": s,
            "sql_ms": stats(m["sql_ms"]),
            "queries": sorted(set(m["queries"])),
            "first_ms": m["first_ms"],
        }
        slow = P.slowest_queries(m["captured"], 3)
        entry["slowest"] = [{"ms": round(ms, 1), "sql": sql[:4000]} for ms, sql in slow]
        if explain and s["p95"] > page.goal_ms and slow:
            try:
                entry["explain"] = P.explain(slow[0][1])
            except Exception as exc:  # a query that cannot be EXPLAINed alone (e.g. SAVEPOINT)
                entry["explain"] = f"(EXPLAIN failed: {exc})"
            (VAR / f"explain-{page.key}.txt").write_text(slow[0][1] + "\n\n" + entry["explain"])
        out[page.key] = entry
        goal = f" (goal ≤ {page.goal_ms:.0f} ms" + (f", ≤ {page.goal_queries} queries)" if page.goal_queries else ")")
        log(
            f"  {page.key}: p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms (SQL p50 {entry['sql_ms']['p50']:.0f} ms), "
            f"{entry['queries']} queries{goal}"
        )
        save_results(results)
        if WRITE_REPORT:
            report.write_interim(results)


def _worklist_rank_fresh(results: dict, today: dt.date) -> None:
    """The worklist's stored ranking facts as beat keeps them: refreshed for today (after
    midnight and the nightly jobs), the clients touched since every 10 minutes."""
    from cobranza.models import WorklistRankState
    from cobranza.worklist import jobs as worklist

    t0 = time.perf_counter()
    if WorklistRankState.objects.filter(computed_on=today).exists():
        name = "refresh_worklist_rank_touched (every 10 min)"
        worklist.worklist_rank_refresh_touched(today=today)
    else:
        name = "refresh_worklist_rank (after midnight and the nightly jobs)"
        worklist.worklist_rank_refresh(today=today)
    results.setdefault("nightly", {})[name] = time.perf_counter() - t0
    log(f"  {name}: {time.perf_counter() - t0:.1f} s")


def step_pages(results: dict, today: dt.date) -> None:
    results.pop("pages_jit_off", None)
    _worklist_rank_fresh(results, today)
    _measure_pages(results, "pages", explain=True)
    try:
        from cobranza.dashboard import summaries
    except ImportError:
        summaries = None
    if summaries is not None and hasattr(summaries, "summaries_refresh"):
        # The stored dashboard figures that the views above asked for, recomputed as beat does every 10 min.
        t0 = time.perf_counter()
        summaries.summaries_refresh()
        results.setdefault("nightly", {})["refresh_dashboard_summaries (every 10 min, after the views)"] = (
            time.perf_counter() - t0
        )
        log(f"  refresh_dashboard_summaries: {time.perf_counter() - t0:.1f} s")
    if os.environ.get("BENCH_PAGES_JIT_OFF", "1") != "1":
        return
    # The same pages with PostgreSQL's JIT off for this connection (a candidate setting).
    log("pages again with jit=off")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("options")
    options["options"] = ((saved or "") + " -c jit=off").strip()
    connection.close()
    try:
        _measure_pages(results, "pages_jit_off", explain=False)
    finally:
        if saved is None:
            options.pop("options", None)
        else:
            options["options"] = saved
        connection.close()


def main() -> int:
    db = connection.settings_dict["NAME"]
    if "bench" not in db:
        print(f"refusing to run on database {db!r}: use a dedicated benchmark database (name with 'bench')")
        return 2
    started = time.perf_counter()
    today = timezone.localdate()
    results = load_results()
    if results.get("scale") != [N_CLIENTS, N_INVOICES]:
        # Another scale's figures go; the curves (their own runs, their own databases) stay.
        results = {"curves": results["curves"]} if results.get("curves") else {}
    results["scale"] = [N_CLIENTS, N_INVOICES]
    results["quick"] = QUICK
    results["today"] = today.isoformat()
    results["command"] = os.environ.get("BENCH_COMMAND", "make bench")
    results["machine"] = report.machine()
    call_command("migrate", interactive=False, verbosity=0)
    steps = {
        "load": step_load,
        "nightly": step_nightly,
        "planner": step_planner,
        "pages": step_pages,
    }
    from scripts.bench import dispatch_bench, http_bench, import_bench

    steps["dispatch"] = dispatch_bench.run
    steps["import"] = import_bench.run

    def step_http(results: dict, today: dt.date) -> None:
        # The web server reads the real clock: a run that crosses midnight (bench clock) would
        # find the stored worklist facts a day old and every worklist recomputing every client
        # written to since — what beat's refresh after midnight prevents. Do what beat does.
        from accounts import clock

        _worklist_rank_fresh(results, clock.localdate())
        http_bench.run(results, today)

    steps["http"] = step_http
    if "nightly" in STEPS and "load" in STEPS and results.get("load", {}).get("reused_from"):
        log("portfolio reused: nightly jobs run again on it")
    for name in STEPS:
        log(f"== {name}")
        t0 = time.perf_counter()
        steps[name](results, today)
        results.setdefault("step_seconds", {})[name] = time.perf_counter() - t0
        save_results(results)
        if WRITE_REPORT:
            report.write(results)
    results["total_seconds"] = time.perf_counter() - started
    save_results(results)
    if WRITE_REPORT:
        report.write(results)
    log(f"done in {results['total_seconds'] / 60:.1f} min" + (" -> docs/benchmarks.md" if WRITE_REPORT else ""))
    if os.environ.get("BENCH_DROP_DB") == "1":
        report.drop_database()
    return 0


if __name__ == "__main__":
    sys.exit(main())
