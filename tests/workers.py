"""Celery worker processes of this project for tests that need real ones (tests that kill,
race or count what two workers send): on a queue of their own, against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection

from cobranza import tasks
from tests.processes import ROOT, clean_env


def redis_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail("worker tests need the Redis broker: run `make test` (CELERY_BROKER_URL=redis://...)")
    return url


class Workers:
    """Celery worker processes of this project, on their own queue and against the test DB."""

    def __init__(self, tmp_path, smtp_port: int, lease_seconds: int = 600):
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        db = connection.settings_dict
        self.env = clean_env(
            tmp_path,
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            CELERY_BROKER_URL=redis_broker(),
            EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
            DEFAULT_FROM_EMAIL="cobranza@morosos.example",
            DUNNING_LEASE_SECONDS=str(lease_seconds),
            SECRET_KEY="test-workers-" + "x" * 50,
            DJANGO_DEBUG="0",
        )
        self.procs: list[subprocess.Popen] = []
        self.logs = tmp_path / "workers"
        self.logs.mkdir(exist_ok=True)

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            i = len(self.procs)
            log = (self.logs / f"worker{i}.log").open("w")
            proc = subprocess.Popen(
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
                    "2",
                    "-n",
                    f"w{i}-{self.queue}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs.append(proc)

    def enqueue(self, ids) -> None:
        for notice_id in ids:
            tasks.dispatch_notice.apply_async(args=[notice_id], queue=self.queue)

    def kill(self, i: int) -> None:
        os.killpg(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def log_tail(self) -> str:
        return "\n".join((p.read_text()[-2000:]) for p in sorted(self.logs.glob("*.log")))


def wait_until(predicate, timeout: float, what: str, workers: Workers):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{workers.log_tail()}")
