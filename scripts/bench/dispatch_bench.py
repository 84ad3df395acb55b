# ruff: noqa: S603, S607, S608 - fixed commands of this project; only fixed table names in SQL
"""Dispatch throughput: 2 Celery worker processes (Redis broker) delivering planned email
notices to a real local SMTP server (aiosmtpd), against a plain smtplib loop sending the same
rendered messages to the same server."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection

from scripts.bench.common import ROOT, VAR, env_int, log, stats

sys.path.insert(0, str(ROOT))
from tests.smtp import SMTPServer  # noqa: E402 - the suite's aiosmtpd server


def _notice_ids(today: dt.date, n: int) -> list[int]:
    """Planned email notices of clients whose billing contact takes email, spread over the
    portfolio (not only the first clients), made due now."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT n.id FROM cobranza_notice n
            WHERE n.planned_for = %s AND n.status = 'planned' AND n.channel = 'email'
              AND EXISTS (SELECT 1 FROM accounts_contact c WHERE c.client_id = n.client_id AND c.is_active
                          AND c.email <> '' AND NOT c.opt_out_email)
            ORDER BY md5(n.id::text) LIMIT %s
            """,
            [today, n],
        )
        ids = [r[0] for r in cur.fetchall()]
        # Due now: the planner spreads a day's messages over each client's slot
        # (docs/domain.md#spread), and a worker does not claim a notice before its time — the
        # benchmark measures sending, not waiting for the slots.
        cur.execute(
            "UPDATE cobranza_notice SET scheduled_at = now() WHERE id = ANY(%s) AND scheduled_at > now()", [ids]
        )
        return ids


def _set_up_business() -> None:
    """The demo business, unless one is set up already: without it every debtor message is
    held (docs/domain.md, "Who the debtor hears from") and the runs would measure deferrals."""
    from cobranza.business import services as business
    from cobranza.demo import demo_logo

    business.business_demo(logo=demo_logo())


def _open_contact_rules():
    """Any hour, any day, no weekly cap and no spreading over the clients' slots during the run
    (restored afterwards): the benchmark measures sending, not waiting for office hours or for
    each client's time of day (docs/domain.md#spread)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id, start_time, end_time, weekdays, skip_holidays, max_per_channel_7d, spread_sends "
            "FROM cobranza_contactrules"
        )
        saved = cur.fetchall()
        cur.execute(
            "UPDATE cobranza_contactrules SET start_time = '00:00', end_time = '23:59:59', "
            "weekdays = '1,2,3,4,5,6,7', skip_holidays = false, max_per_channel_7d = 1000, spread_sends = false"
        )
    return saved


def _restore_contact_rules(saved) -> None:
    with connection.cursor() as cur:
        for row in saved:
            cur.execute(
                "UPDATE cobranza_contactrules SET start_time = %s, end_time = %s, weekdays = %s, skip_holidays = %s, "
                "max_per_channel_7d = %s, spread_sends = %s WHERE id = %s",
                [*row[1:], row[0]],
            )


class Workers:
    def __init__(self, smtp_port: int, logs: Path):
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        db = connection.settings_dict
        self.env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "SECRET_KEY")},
            "DJANGO_SETTINGS_MODULE": "morosos.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "DEFAULT_FROM_EMAIL": "cobranza@morosos.example",
            "DJANGO_DEBUG": "0",
            "DUNNING_PLAN_ON_WORKER_START": "0",
            "MOROSOS_VAR_DIR": str(VAR),
            "PYTHONUNBUFFERED": "1",
        }
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '/usr/bin:/bin')}"
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, n: int = 2) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        # wait_ready reads every worker log: a larger earlier run's must not count.
        for old in self.logs.glob("worker*.log"):
            old.unlink()
        for i in range(n):
            log_file = (self.logs / f"worker{i}.log").open("w")
            self.procs.append(
                subprocess.Popen(
                    [
                        "celery",
                        "-A",
                        "morosos",
                        "worker",
                        "-l",
                        "info",
                        "-Q",
                        self.queue,
                        "--concurrency",
                        "1",
                        "--pool",
                        "solo",
                        "-n",
                        f"w{i}-{self.queue}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = [p.read_text(errors="replace") for p in self.logs.glob("worker*.log")]
            if len(logs) == len(self.procs) and all(" ready." in text for text in logs):
                return
            time.sleep(0.2)
        raise RuntimeError("Celery workers did not start: see " + str(self.logs))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def _finished(ids: list[int]) -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM cobranza_notice WHERE id = ANY(%s) AND status NOT IN ('planned', 'sending')",
            [ids],
        )
        return cur.fetchone()[0]


def _status_counts(ids: list[int]) -> dict:
    with connection.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM cobranza_notice WHERE id = ANY(%s) GROUP BY 1", [ids])
        return dict(cur.fetchall())


def _workers_run(ids: list[int], smtp: SMTPServer, logs: Path, n_workers: int = 2, *, batches: bool = True) -> dict:
    """The workers dispatching ``ids``: in batches of DUNNING_BATCH_SIZE (``dispatch_notices``,
    what enqueue_due queues) or one task per notice (``dispatch_notice``, the path before batches)."""
    from cobranza import tasks

    workers = Workers(smtp.port, logs)
    workers.start(n_workers)
    try:
        workers.wait_ready()
        before = len(smtp.messages)
        t0 = time.perf_counter()
        if batches:
            size = max(settings.DUNNING_BATCH_SIZE, 1)
            for start in range(0, len(ids), size):
                tasks.dispatch_notices.apply_async(args=[ids[start : start + size]], queue=workers.queue)
        else:
            for notice_id in ids:
                tasks.dispatch_notice.apply_async(args=[notice_id], queue=workers.queue)
        deadline = time.monotonic() + max(120, len(ids) / 5)
        while time.monotonic() < deadline and _finished(ids) < len(ids):
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        sent = len(smtp.messages) - before
    finally:
        workers.stop()
    return {"seconds": elapsed, "delivered": sent, "status": _status_counts(ids)}


def _rendered(ids: list[int]) -> list[EmailMessage]:
    """The messages the workers sent, rebuilt as channels.send_email builds them."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT recipient, subject, body, message_id FROM cobranza_notice WHERE id = ANY(%s) AND status = 'sent'",
            [ids],
        )
        rows = cur.fetchall()
    return [
        EmailMessage(
            subject=s, body=b, from_email="cobranza@morosos.example", to=[r], headers={"Message-ID": f"<x{m}>"}
        )
        for r, s, b, m in rows
    ]


def _smtplib_loop(messages: list[EmailMessage], port: int, *, reuse: bool) -> float:
    payloads = [(m.from_email, m.to, m.message().as_bytes(linesep="\r\n")) for m in messages]
    t0 = time.perf_counter()
    if reuse:
        with smtplib.SMTP("127.0.0.1", port) as s:
            for frm, to, data in payloads:
                s.sendmail(frm, to, data)
    else:
        for frm, to, data in payloads:
            with smtplib.SMTP("127.0.0.1", port) as s:
                s.sendmail(frm, to, data)
    return time.perf_counter() - t0


def _in_process(ids: list[int], port: int, *, batches: bool = True) -> dict:
    """Where a worker's time goes: the same dispatch in this process, timed, queries counted —
    per notice, either as batches of DUNNING_BATCH_SIZE (``dispatch_batch``; each batch's time and
    queries divided by its notices) or one by one (``dispatch``)."""
    from django.test.utils import CaptureQueriesContext, override_settings

    from cobranza.engine.dispatch import dispatch, dispatch_batch

    size = max(settings.DUNNING_BATCH_SIZE, 1) if batches else 1
    times, queries, slowest, commits, sql_ms = [], [], [], [], []
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
    ):
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                if batches:
                    dispatch_batch(chunk)
                else:
                    dispatch(chunk[0])
                elapsed = (time.perf_counter() - t0) * 1000
            n = len(chunk)
            times.append(elapsed / n)
            queries.append(len(ctx.captured_queries) / n)
            commits.append(sum(1 for q in ctx.captured_queries if q["sql"].strip().upper() == "COMMIT") / n)
            sql_ms.append(sum(float(q.get("time") or 0) for q in ctx.captured_queries) * 1000 / n)
            slowest.extend((float(q.get("time") or 0) * 1000, q["sql"][:300]) for q in ctx.captured_queries)
    slowest.sort(key=lambda r: -r[0])
    return {
        "ms": stats(times),
        "queries": stats(queries),
        "commits": stats(commits),
        "sql_ms": stats(sql_ms),
        "slowest": slowest[:5],
    }


def _worker_counts() -> list[int]:
    """``BENCH_DISPATCH_WORKERS``: the numbers of worker processes to compare (default 1,2,4;
    empty to skip)."""
    raw = os.environ.get("BENCH_DISPATCH_WORKERS", "1,2,4")
    return [int(part) for part in raw.split(",") if part.strip()]


def run(results: dict, today: dt.date) -> None:
    n = env_int("BENCH_NOTICES", 100 if os.environ.get("BENCH_QUICK") == "1" else 1500)
    repeat = env_int("BENCH_DISPATCH_REPEAT", 2)
    n_saturation = env_int("BENCH_SATURATION_NOTICES", 50 if os.environ.get("BENCH_QUICK") == "1" else 500)
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise RuntimeError("the dispatch benchmark needs CELERY_BROKER_URL=redis://...")
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    smtp = SMTPServer().start()
    _set_up_business()
    saved = _open_contact_rules()
    worker_rate, loop_new, loop_reuse, one_by_one = [], [], [], []
    by_workers: dict[str, dict] = {}
    probe, probe_one = {}, {}
    runs = []
    try:
        probe_one = _in_process(_notice_ids(today, 20), smtp.port, batches=False)
        probe = _in_process(_notice_ids(today, 2 * settings.DUNNING_BATCH_SIZE), smtp.port)
        for label, p in (("one by one", probe_one), ("in batches", probe)):
            log(
                f"  in-process dispatch {label}: {p['ms']['median']:.1f} ms and {p['queries']['median']:.1f} "
                f"queries per notice (median of {p['ms']['n']})"
            )
        # Where the machine saturates: one run per number of worker processes, first, so the
        # day's planned email notices (~4,300 at 100,000 clients) last for every count.
        for n_workers in _worker_counts():
            ids = _notice_ids(today, n_saturation)
            if not ids:
                log(f"  no planned email notices left for {n_workers} workers")
                break
            r = _workers_run(ids, smtp, VAR / "dispatch-logs", n_workers=n_workers)
            by_workers[str(n_workers)] = {**r, "notices": len(ids), "rate": r["delivered"] / r["seconds"]}
            log(f"  dispatch with {n_workers} worker(s): {by_workers[str(n_workers)]['rate']:.0f}/s")
        for i in range(repeat):
            ids = _notice_ids(today, n)
            if len(ids) < n:
                log(f"  only {len(ids)} planned email notices left (wanted {n})")
            if not ids:
                break
            r = _workers_run(ids, smtp, VAR / "dispatch-logs")
            rate = r["delivered"] / r["seconds"]
            # One task per notice (the path before batches), on the first run only.
            before = _notice_ids(today, n) if i == 0 else []
            if before:
                r1 = _workers_run(before, smtp, VAR / "dispatch-logs", batches=False)
                one_by_one.append(r1["delivered"] / r1["seconds"])
            msgs = _rendered(ids)
            t_new = _smtplib_loop(msgs, smtp.port, reuse=False)
            t_reuse = _smtplib_loop(msgs, smtp.port, reuse=True)
            worker_rate.append(rate)
            loop_new.append(len(msgs) / t_new)
            loop_reuse.append(len(msgs) / t_reuse)
            runs.append({**r, "notices": len(ids)})
            log(
                f"  dispatch run {i + 1}: workers {rate:.0f}/s in batches ({r['delivered']} in {r['seconds']:.1f} s, "
                f"one task per notice {one_by_one[-1] if one_by_one else 0:.0f}/s, "
                f"{r['status']}), "
                f"smtplib new connection {loop_new[-1]:.0f}/s, one connection {loop_reuse[-1]:.0f}/s"
            )
    finally:
        _restore_contact_rules(saved)
        smtp.stop()
    results["dispatch"] = {
        "by_workers": by_workers,
        "notices_per_run": n,
        "notices_per_saturation_run": n_saturation,
        "workers": stats(worker_rate),
        "workers_one_by_one": stats(one_by_one),
        "batch_size": settings.DUNNING_BATCH_SIZE,
        "smtplib_new_connection": stats(loop_new),
        "smtplib_one_connection": stats(loop_reuse),
        "ratio_vs_new_connection": stats([w / s for w, s in zip(worker_rate, loop_new, strict=True)]),
        "ratio_vs_one_connection": stats([w / s for w, s in zip(worker_rate, loop_reuse, strict=True)]),
        "runs": runs,
        "in_process": probe,
        "in_process_one_by_one": probe_one,
    }
