"""Real processes: two planners at once, two Celery worker processes on PostgreSQL + Redis,
a real SMTP server counting what arrives, and a worker killed with SIGKILL mid-batch."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from accounts import services as ledger
from cobranza.engine.dispatch import due_notice_ids
from cobranza.engine.planner import plan
from cobranza.models import Notice
from tests.factories import make_client, make_invoice
from tests.smtp import SMTPServer
from tests.workers import Workers, wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]

N_CLIENTS = 120


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def portfolio(fault_policy, gerente, gestora):
    """N clients with one invoice due yesterday, under the fault suite's policy: one email step
    at +1 day, contact rules that allow any time of day, all at once (tests/faults/conftest.py),
    so the test does not depend on the clock."""
    due = timezone.localdate() - dt.timedelta(days=1)
    for i in range(N_CLIENTS):
        client = make_client(by=gerente, collector=gestora, legal_name=f"Cliente {i:03d}")
        ledger.contact_create(by=gerente, client=client, name=f"Pagos {i}", email=f"pagos{i}@example.com")
        make_invoice(by=gerente, client=client, number=f"W-{i:04d}", due_date=due)
    return fault_policy


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


def test_two_planners_and_two_workers_send_each_email_once(portfolio, smtp, tmp_path):
    _planners_at_once()
    ids = list(Notice.objects.values_list("id", flat=True))
    assert len(ids) == N_CLIENTS
    workers = Workers(tmp_path, smtp.port)
    try:
        workers.start(2)
        workers.enqueue(ids)
        workers.enqueue(ids)  # a repeated beat tick enqueues everything again
        wait_until(lambda: _status_counts().get("sent", 0) == N_CLIENTS, 90, "all notices sent", workers)
        time.sleep(1)  # let any duplicate task finish before counting
    finally:
        workers.stop()
    message_ids = [m["Message-ID"] for m in smtp.messages]
    assert len(message_ids) == N_CLIENTS
    assert len(set(message_ids)) == N_CLIENTS
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"pagos{i}@example.com" for i in range(N_CLIENTS))


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(portfolio, smtp, tmp_path):
    plan(today=timezone.localdate())
    ids = list(Notice.objects.values_list("id", flat=True))
    lease = 4
    workers = Workers(tmp_path, smtp.port, lease_seconds=lease)
    try:
        workers.start(2)
        workers.enqueue(ids)
        wait_until(lambda: _status_counts().get("sent", 0) >= N_CLIENTS // 4, 60, "a quarter sent", workers)
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
