"""Import throughput: an invoice CSV through the project's import service (the entry points
``import_ledger`` uses: ``imports.job_create`` then ``imports.run_job``), rows per second,
for the validation pass (dry run) and the real import."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import time

from django.db import connection, transaction

from scripts.bench.common import VAR, env_int, log, stats

RETRIES = 3


def write_csv(path, *, rows: int, run: str, today: dt.date, seed: int = 11) -> None:
    rng = random.Random(seed)
    with connection.cursor() as cur:
        cur.execute("SELECT tax_id, currency FROM accounts_client WHERE tax_id LIKE 'BEN%%' ORDER BY id")
        clients = cur.fetchall()
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Folio", "RFC", "Emision", "Vencimiento", "Importe", "Moneda", "Concepto"])
        for n in range(rows):
            tax_id, currency = clients[rng.randrange(len(clients))]
            issue = today - dt.timedelta(days=rng.randint(1, 90))
            due = issue + dt.timedelta(days=30)
            amount = rng.randint(10_000, 5_000_000) / 100
            w.writerow(
                [f"IMP{run}-{n:06d}", tax_id, issue.isoformat(), due.isoformat(), f"{amount:.2f}", currency, "Venta"]
            )


def _import(path, *, dry_run: bool):
    from cobranza.imports import services as imports

    job = imports.job_create(
        by=None, kind="invoices", file_name=os.path.basename(path), data=b"", dry_run=dry_run, path=str(path)
    )
    t0 = time.perf_counter()
    job = imports.run_job(job)
    return job, time.perf_counter() - t0


def _max_ids() -> dict:
    with connection.cursor() as cur:
        out = {}
        for table in ("accounts_invoice", "accounts_interaction", "accounts_payment"):
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - fixed names
            out[table] = cur.fetchone()[0]
        return out


def _forget(before: dict) -> None:
    """Remove what the import wrote, so the portfolio keeps its scale for the next run (the
    timeline is append-only against UPDATE; deleting benchmark rows is allowed)."""
    inv, ent, pay = before["accounts_invoice"], before["accounts_interaction"], before["accounts_payment"]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "DELETE FROM accounts_interaction_invoices WHERE invoice_id > %s OR interaction_id > %s", [inv, ent]
        )
        cur.execute("DELETE FROM accounts_interaction WHERE id > %s", [ent])
        cur.execute("DELETE FROM accounts_paymentallocation WHERE invoice_id > %s OR payment_id > %s", [inv, pay])
        cur.execute("DELETE FROM accounts_payment WHERE id > %s", [pay])
        cur.execute("DELETE FROM accounts_invoice WHERE id > %s", [inv])
    # The deleted rows stay as dead tuples until a vacuum: without one, each repeat imports
    # into tables and indexes bloated by the previous one (measured: half the throughput).
    with connection.cursor() as cur:
        for table in (
            "accounts_interaction_invoices",
            "accounts_interaction",
            "accounts_paymentallocation",
            "accounts_payment",
            "accounts_invoice",
        ):
            cur.execute(f"VACUUM (ANALYZE) {table}")
    # Deleting the imported invoices marked their clients for the worklist to recompute as it
    # reads, as any write does; the 10-minute refresh of beat would take them (the HTTP
    # benchmark that follows would otherwise measure ~40,000 clients recomputed per worklist).
    from accounts import clock
    from cobranza.worklist import jobs as worklist_jobs

    worklist_jobs.worklist_rank_refresh_touched(today=clock.localdate())


def run(results: dict, today: dt.date) -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    # Under the import limit (IMPORT_MAX_ROWS, 100,000 rows per file with its header).
    rows = env_int("BENCH_IMPORT_ROWS", 5_000 if quick else 50_000)
    repeat = env_int("BENCH_IMPORT_REPEAT", 2)
    VAR.mkdir(parents=True, exist_ok=True)
    dry, real, errors = [], [], []
    stamp = dt.datetime.now().strftime("%H%M%S")
    for i in range(repeat):
        path = VAR / f"import-{stamp}-{i}.csv"
        write_csv(path, rows=rows, run=f"{stamp}{i}", today=today, seed=11 + i)
        for _attempt in range(RETRIES):
            before = _max_ids()
            try:
                job, secs = _import(path, dry_run=True)
                if job.status != "done":
                    raise RuntimeError(f"dry run {job.status}: {job.errors[:3]}")
                dry.append(rows / secs)
                job, secs = _import(path, dry_run=False)
                if job.status != "done":
                    raise RuntimeError(f"import {job.status}: {job.errors[:3]}")
                real.append(rows / secs)
                log(f"  import run {i + 1}: dry run {dry[-1]:.0f} rows/s, import {real[-1]:.0f} rows/s ({job.summary})")
                _forget(before)
                break
            except Exception as exc:  # the import service may be mid-rewrite by another helper
                errors.append(f"{type(exc).__name__}: {exc}"[:500])
                _forget(before)
                log(f"  import attempt failed ({exc}); retrying in 30 s")
                time.sleep(30)
        path.unlink(missing_ok=True)
    results["import"] = {"rows": rows, "dry_run": stats(dry), "import": stats(real), "errors": errors}
