"""Celery worker processes of this project for tests that need real ones (tests that kill,
race or count what two workers send): on a queue of their own, against the test database."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection

from cobranza import tasks
from tests.processes import celery_worker_args, clean_env, kill_group, spawn, stop_groups


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
            args = celery_worker_args(self.queue, f"w{i}", "--concurrency", "2")
            self.procs.append(spawn(["celery", "-A", "morosos", *args], env=self.env, log=self.logs / f"worker{i}.log"))

    def enqueue(self, ids) -> None:
        for notice_id in ids:
            tasks.dispatch_notice.apply_async(args=[notice_id], queue=self.queue)

    def kill(self, i: int) -> None:
        kill_group(self.procs[i])

    def stop(self) -> None:
        stop_groups(self.procs)

    def log_tail(self) -> str:
        return "\n".join((p.read_text()[-2000:]) for p in sorted(self.logs.glob("*.log")))


def wait_until(predicate, timeout: float, what: str, workers: Workers):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{workers.log_tail()}")
