# ruff: noqa: S603 - fixed commands of this project (gunicorn, locust)
"""HTTP load: gunicorn (the Procfile's options, 2 workers) and N concurrent logged-in staff
users driven by locust from its own virtualenv; p50/p95 and error rate per page."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from scripts.bench import loader
from scripts.bench.common import ROOT, VAR, env_int, log

LOCUST = Path(os.environ.get("BENCH_LOCUST", ROOT / ".venv-locust" / "bin" / "locust"))
N_MANAGERS = 5


def _users() -> list[dict]:
    User = get_user_model()
    staff = loader.ensure_staff()
    group = Group.objects.get(name="Gerente")
    managers = [staff.manager]
    for i in range(1, N_MANAGERS):
        u, created = User.objects.get_or_create(username=f"bench_gerente{i}", defaults={"first_name": "Gerente"})
        if created:
            u.set_password(loader.PASSWORD)
            u.save(update_fields=["password"])
        u.groups.add(group)
        managers.append(u)
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM accounts_client ORDER BY md5(id::text) LIMIT 500")
        any_clients = [r[0] for r in cur.fetchall()]
        out = [{"username": m.username, "manager": True, "clients": any_clients} for m in managers]
        for c in staff.collectors:
            cur.execute(
                "SELECT id FROM accounts_client WHERE collector_id = %s ORDER BY md5(id::text) LIMIT 200", [c.pk]
            )
            out.append({"username": c.username, "manager": False, "clients": [r[0] for r in cur.fetchall()]})
    return [u for u in out if u["clients"]]


def _env(port: int) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "morosos.settings",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "MOROSOS_VAR_DIR": str(VAR),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - local URL
                return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer at {url}")


def _read_stats(prefix: Path) -> dict:
    out = {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["Request Count"])
            out[row["Name"]] = {
                "requests": n,
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"] or 0),
                "p95_ms": float(row["95%"] or 0),
                "rps": float(row["Requests/s"] or 0),
            }
    return out


def run(results: dict, today: dt.date) -> None:
    if not LOCUST.exists():
        log(f"  locust not found at {LOCUST}: HTTP benchmark skipped (scripts/bench.sh creates .venv-locust)")
        results["http"] = {"skipped": f"locust not found at {LOCUST}"}
        return
    from tests.processes import free_port

    users = env_int("BENCH_HTTP_USERS", 50)
    seconds = env_int("BENCH_HTTP_SECONDS", 60)
    runs = env_int("BENCH_HTTP_RUNS", 2)
    workers = env_int("BENCH_GUNICORN_WORKERS", max(2, os.cpu_count() or 2))
    spec = VAR / "locust-users.json"
    spec.write_text(json.dumps({"password": loader.PASSWORD, "users": _users()}))
    port = free_port()
    env = _env(port)
    venv_bin = Path(sys.executable).parent
    gunicorn_log = (VAR / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            str(venv_bin / "gunicorn"),
            "morosos.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "--workers",
            str(workers),
            "--timeout",
            "60",
            "--graceful-timeout",
            "30",
            "--max-requests",
            "1000",
            "--max-requests-jitter",
            "100",
        ],
        cwd=ROOT,
        env=env,
        stdout=gunicorn_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    per_run = []
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        for i in range(runs):
            prefix = VAR / f"locust-{i}"
            cmd = [
                str(LOCUST),
                "-f",
                str(ROOT / "scripts" / "bench" / "locustfile.py"),
                "--headless",
                "-u",
                str(users),
                "-r",
                str(max(users // 5, 1)),
                "-t",
                f"{seconds}s",
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ]
            subprocess.run(
                cmd,
                cwd=ROOT,
                env={**os.environ, "BENCH_LOCUST_USERS": str(spec)},
                check=False,
                stdout=(VAR / f"locust-{i}.log").open("w"),
                stderr=subprocess.STDOUT,
                timeout=seconds + 120,
            )
            stats = _read_stats(prefix)
            per_run.append(stats)
            agg = stats.get("Aggregated", {})
            log(
                f"  http run {i + 1}: {agg.get('requests')} requests, p50 {agg.get('p50_ms')} ms, "
                f"p95 {agg.get('p95_ms')} ms, {agg.get('failures')} failures"
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    results["http"] = {"users": users, "seconds": seconds, "gunicorn_workers": workers, "runs": per_run}
