"""Real processes: two planners at once, two Celery worker processes on PostgreSQL + Redis,
a real SMTP server counting what arrives, and a worker killed with SIGKILL mid-batch."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts import services as ledger
from cobranza import tasks
from cobranza.engine.dispatch import due_notice_ids
from cobranza.engine.planner import plan
from cobranza.models import MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from tests.factories import make_client, make_invoice, segment
from tests.processes import ROOT, clean_env
from tests.smtp import SMTPServer

pytestmark = [pytest.mark.django_db(transaction=True)]

N_CLIENTS = 120


def _redis_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail("worker tests need the Redis broker: run `make test` (CELERY_BROKER_URL=redis://...)")
    return url


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def portfolio(gerente, gestora):
    """N clients with one invoice due yesterday, one email step at +1 day."""
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba workers", segment=segment("regular"))
    tpl = MessageTemplate.objects.create(code="w-email", name="w", channel="email")
    MessageTemplateText.objects.create(
        template=tpl, language="es", subject="Saldo {{ cliente }}", body="{{ cliente }}: {{ total_texto }}"
    )
    PolicyStep.objects.create(policy=policy, position=1, name="Aviso", offset_days=1, channel="email", template=tpl)
    due = timezone.localdate() - dt.timedelta(days=1)
    for i in range(N_CLIENTS):
        client = make_client(by=gerente, collector=gestora, legal_name=f"Cliente {i:03d}")
        ledger.contact_create(by=gerente, client=client, name=f"Pagos {i}", email=f"pagos{i}@example.com")
        make_invoice(by=gerente, client=client, number=f"W-{i:04d}", due_date=due)
    return policy


class Workers:
    """Celery worker processes of this project, on their own queue and against the test DB."""

    def __init__(self, tmp_path, smtp_port: int, lease_seconds: int = 600):
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        db = connection.settings_dict
        self.env = clean_env(
            tmp_path,
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            CELERY_BROKER_URL=_redis_broker(),
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


@pytest.fixture
def open_hours(db):
    """Contact rules allow any time of day, all of it at once (no spread over the day,
    docs/domain.md#spread), so the test does not depend on the clock."""
    from cobranza.models import ContactRules

    ContactRules.objects.update(
        start_time=dt.time(0, 0),
        end_time=dt.time(23, 59, 59),
        weekdays="1,2,3,4,5,6,7",
        skip_holidays=False,
        max_per_channel_7d=50,
        spread_sends=False,
    )


def _wait_until(predicate, timeout: float, what: str, workers: Workers):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{workers.log_tail()}")


def _status_counts() -> Counter:
    return Counter(Notice.objects.values_list("status", flat=True))


def _planners_at_once(n: int = 2) -> None:
    barrier = threading.Barrier(n)

    def run():
        try:
            barrier.wait()
            plan(today=timezone.localdate())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_two_planners_and_two_workers_send_each_email_once(portfolio, open_hours, smtp, tmp_path):
    _planners_at_once()
    ids = list(Notice.objects.values_list("id", flat=True))
    assert len(ids) == N_CLIENTS
    workers = Workers(tmp_path, smtp.port)
    try:
        workers.start(2)
        workers.enqueue(ids)
        workers.enqueue(ids)  # a repeated beat tick enqueues everything again
        _wait_until(lambda: _status_counts().get("sent", 0) == N_CLIENTS, 90, "all notices sent", workers)
        time.sleep(1)  # let any duplicate task finish before counting
    finally:
        workers.stop()
    message_ids = [m["Message-ID"] for m in smtp.messages]
    assert len(message_ids) == N_CLIENTS
    assert len(set(message_ids)) == N_CLIENTS
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"pagos{i}@example.com" for i in range(N_CLIENTS))


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(portfolio, open_hours, smtp, tmp_path):
    plan(today=timezone.localdate())
    ids = list(Notice.objects.values_list("id", flat=True))
    lease = 4
    workers = Workers(tmp_path, smtp.port, lease_seconds=lease)
    try:
        workers.start(2)
        workers.enqueue(ids)
        _wait_until(lambda: _status_counts().get("sent", 0) >= N_CLIENTS // 4, 60, "a quarter sent", workers)
        workers.kill(0)
        # What beat does every minute: hand every due or abandoned notice to the workers again.
        time.sleep(lease + 1)
        workers.start(1)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            counts = _status_counts()
            if counts.get("planned", 0) + counts.get("sending", 0) == 0:
                break
            workers.enqueue(due_notice_ids(now=timezone.now()))
            time.sleep(lease + 1)
        time.sleep(1)
    finally:
        workers.stop()
    counts = _status_counts()
    sent_ids = set(Notice.objects.filter(status="sent").values_list("message_id", flat=True))
    received = Counter(m["Message-ID"] for m in smtp.messages)
    # Nothing lost: every notice ended sent, or failed as "interrupted" for a person to check.
    assert counts.get("planned", 0) == counts.get("sending", 0) == 0, counts
    assert counts["sent"] + counts.get("failed", 0) == N_CLIENTS
    # Nothing twice.
    assert max(received.values()) == 1
    # Every notice recorded as sent really arrived.
    assert sent_ids <= set(received)
    interrupted = Notice.objects.filter(status="failed")
    assert all("interrumpido" in n.reason for n in interrupted)
    print(f"\nkilled worker: sent={counts['sent']} interrupted={counts.get('failed', 0)} received={len(received)}")
