"""The fault-test harness: real Celery workers and beat schedulers of this project (as
subprocesses), a real SMTP server that timestamps what it receives, and the measurements of a
round (lost, twice, time to recover).

Definitions used everywhere (docs/reliability.md repeats them):
- *delivered*: the SMTP server received the notice's Message-ID at least once;
- *twice*: extra copies the SMTP server received of one notice (same Message-ID, or a second
  notice for the same client and step);
- *flagged*: failed as "interrupted", with a review task for a person (the worker died between
  storing the message and recording the send: it may have gone out, so it is not resent);
- *gave up*: failed after the retries ran out, visible in the notice list with "retry";
- *lost*: not delivered, and neither flagged nor failed visibly (still planned or sending when
  the round ends, skipped, or recorded as sent without arriving).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import random
import re
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import redis
from celery import Celery
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Client, Contact, Invoice
from cobranza.models import CollectorTask, Notice, TaskKind
from tests.factories import segment
from tests.processes import celery_worker_args, clean_env, kill_group, spawn, stop_groups
from tests.smtp import Recorder, SMTPServer

NOTICE_ID = re.compile(r"<notice-(\d+)\.")
OPEN = (Notice.Status.PLANNED, Notice.Status.SENDING)


def env_number(name: str, default: float, scenario: str = "") -> float:
    """FAULT_<SCENARIO>_<NAME> wins over FAULT_<NAME>, which wins over the default."""
    for key in (f"FAULT_{scenario.upper()}_{name}", f"FAULT_{name}"):
        value = os.environ.get(key)
        if value:
            return float(value)
    return default


@dataclass
class Config:
    scenario: str
    rounds: int
    notices: int
    lease: float
    tick: float
    timeout: float
    seed: int

    @classmethod
    def from_env(cls, scenario: str, *, rounds: int = 1) -> Config:
        return cls(
            scenario=scenario,
            rounds=int(env_number("ROUNDS", rounds, scenario)),
            notices=int(env_number("NOTICES", 100, scenario)),
            lease=env_number("LEASE", 5, scenario),
            tick=env_number("TICK", 2, scenario),
            timeout=env_number("ROUND_TIMEOUT", 120, scenario),
            seed=int(env_number("SEED", 20261129, scenario)),
        )

    def rng(self, round_no: int) -> random.Random:
        return random.Random(f"{self.seed}-{self.scenario}-{round_no}")


class TimedRecorder(Recorder):
    """Also notes when each message arrived (monotonic clock) and which notice it carried."""

    def __init__(self):
        super().__init__()
        self.arrivals: list[tuple[float, int | None, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        match = NOTICE_ID.match(str(message["Message-ID"] or ""))
        with self.lock:
            self.messages.append(message)
            self.arrivals.append((time.monotonic(), int(match.group(1)) if match else None, str(message["To"])))
        return "250 Message accepted for delivery"

    def snapshot(self) -> list[tuple[float, int | None, str]]:
        with self.lock:
            return list(self.arrivals)


class Mailbox:
    """The SMTP server of a fault test; it can be stopped and started on the same port
    (connections refused in between) or made to refuse recipients with a 4xx reply."""

    def __init__(self):
        self.recorder = TimedRecorder()
        self.server = SMTPServer(recorder=self.recorder).start()
        self.port = self.server.port

    def refuse(self, reply: str | None) -> None:
        self.recorder.refuse_with = reply

    def go_down(self) -> None:
        self.server.stop()

    def come_back(self) -> None:
        self.server = SMTPServer(port=self.port, recorder=self.recorder).start()

    def close(self) -> None:
        self.server.stop()


class Rig:
    """Workers and beat schedulers of this project on a queue of their own."""

    def __init__(self, tmp_path: Path, *, broker_url: str, smtp_port: int, config: Config):
        self.tmp = tmp_path
        self.broker_url = broker_url
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.logs = tmp_path / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        db = connection.settings_dict
        self.env = clean_env(
            tmp_path,
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            CELERY_BROKER_URL=broker_url,
            EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
            DEFAULT_FROM_EMAIL="cobranza@morosos.example",
            DUNNING_LEASE_SECONDS=str(int(config.lease)),
            SECRET_KEY="test-faults-" + "x" * 50,
            DJANGO_DEBUG="0",
            FAULT_QUEUE=self.queue,
            FAULT_TICK=str(config.tick),
        )
        self.workers: list = []
        self.beats: list = []
        self._started = 0

    def _celery(self, *args: str, name: str, **env: str):
        log = self.logs / f"{name}.log"
        proc = spawn(["celery", "-A", "tests.faults.celeryapp", *args], env={**self.env, **env}, log=log)
        proc.log = log
        return proc

    def start_worker(self, *, wait: bool = True):
        self._started += 1
        name = f"worker{self._started}"
        # --max-tasks-per-child as in the Procfile
        options = ("--concurrency", "2", "--max-tasks-per-child", "500")
        proc = self._celery(*celery_worker_args(self.queue, name, *options), name=name)
        self.workers.append(proc)
        if wait:
            self.wait_ready(proc)
        return proc

    def start_beat(self, *, plans: bool = False):
        i = len(self.beats) + 1
        proc = self._celery(
            "beat",
            "-l",
            "info",
            "-s",
            str(self.tmp / f"beat{i}-schedule"),
            "--pidfile",
            str(self.tmp / f"beat{i}.pid"),
            name=f"beat{i}",
            FAULT_BEAT_PLANS="1" if plans else "0",
        )
        self.beats.append(proc)
        return proc

    def wait_ready(self, proc, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in proc.log.read_text():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker did not start:\n{proc.log.read_text()[-3000:]}")

    def kill_worker(self, proc) -> None:
        kill_group(proc)
        self.workers.remove(proc)

    def kick(self) -> None:
        """What the planning task does at its end: one enqueue_due for the new notices."""
        client = Celery("faults-client", broker=self.broker_url)
        try:
            client.send_task("cobranza.enqueue_due", queue=self.queue)
        finally:
            client.close()

    def purge(self) -> None:
        """Between rounds: drop leftover (duplicate) tasks so rounds do not overlap."""
        redis.Redis.from_url(self.broker_url).delete(self.queue)

    def stop(self) -> None:
        stop_groups(self.beats + self.workers)

    def log_tail(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-chars:]}" for p in sorted(self.logs.glob("*.log")))


def make_clients(*, collector, n: int, tag: str) -> list[int]:
    """``n`` new clients, each with a billing email and one invoice due yesterday: one email
    notice each once planned (the policy of the `fault_policy` fixture).

    Written in three bulk INSERTs, not through the services: 1,000 clients a round through
    client_create/contact_create/invoice_create take ~90 s here, longer than the faults they
    feed. The rows are those the services write (same defaults, open_balance generated by
    PostgreSQL) minus the "client created" timeline entries, which planning and dispatch do
    not read."""
    due = timezone.localdate() - dt.timedelta(days=1)
    regular = segment("regular")
    with transaction.atomic():
        clients = Client.objects.bulk_create(
            Client(
                legal_name=f"Cliente {tag}-{i:04d}",
                tax_id=f"F{tag}{i:05d}".upper(),
                segment=regular,
                collector=collector,
            )
            for i in range(n)
        )
        Contact.objects.bulk_create(
            Contact(client=c, name=f"Pagos {tag}-{i}", email=f"pagos-{tag}-{i}@example.com")
            for i, c in enumerate(clients)
        )
        Invoice.objects.bulk_create(
            Invoice(
                client=c,
                number=f"{tag}-{i:04d}",
                issue_date=due - dt.timedelta(days=c.payment_terms_days),
                due_date=due,
                currency=c.currency,
                amount=Decimal("1000.00"),
            )
            for i, c in enumerate(clients)
        )
    return [c.pk for c in clients]


class Round:
    """One round of a scenario: its clients' notices, what the SMTP server received for
    them, and the clock."""

    def __init__(self, *, config: Config, number: int, client_ids: list[int], mailbox: Mailbox):
        self.config = config
        self.number = number
        self.client_ids = client_ids
        self.recorder = mailbox.recorder
        self.started = time.monotonic()
        self.fault_end: float | None = None
        self.settled_at: float | None = None
        self.fault: dict = {}

    def notices(self):
        return Notice.objects.filter(client_id__in=self.client_ids)

    def counts(self) -> Counter:
        return Counter(self.notices().values_list("status", flat=True))

    def sent(self) -> int:
        return self.notices().filter(status=Notice.Status.SENT).count()

    def wait_for(self, predicate, what: str, rig: Rig, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.config.timeout)
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"round {self.number}: timed out waiting for {what}\n{rig.log_tail()}")

    def wait_sent(self, target: int, rig: Rig) -> None:
        self.wait_for(lambda: self.sent() >= target, f"{target} notices sent", rig)

    def fault_ended(self) -> None:
        self.fault_end = time.monotonic()

    def wait_settled(self, timeout: float | None = None) -> bool:
        """Until no notice of the round is planned or sending (False on timeout: the
        leftovers count as lost)."""
        deadline = time.monotonic() + (timeout or self.config.timeout)
        while time.monotonic() < deadline:
            if not self.notices().filter(status__in=OPEN).exists():
                self.settled_at = time.monotonic()
                time.sleep(1.0)  # a late duplicate would arrive now
                return True
            time.sleep(0.2)
        return False

    def result(self) -> dict:
        rows = list(self.notices().values("id", "client_id", "status", "attempts", "reason"))
        ids = {r["id"] for r in rows}
        arrivals = [a for a in self.recorder.snapshot() if a[1] in ids]
        received = Counter(nid for _t, nid, _to in arrivals)
        review = set(
            CollectorTask.objects.filter(notice_id__in=ids, kind=TaskKind.REVIEW).values_list("notice_id", flat=True)
        )
        per_client = Counter(r["client_id"] for r in rows)
        delivered_per_client = Counter()
        for r in rows:
            delivered_per_client[r["client_id"]] += received[r["id"]]
        out = Counter()
        for r in rows:
            delivered = received[r["id"]] > 0
            failed = r["status"] == Notice.Status.FAILED
            flagged = failed and r["id"] in review
            out["delivered"] += delivered
            out["flagged"] += flagged
            out["flagged_but_delivered"] += flagged and delivered
            out["gave_up"] += failed and not flagged
            out["retried"] += r["attempts"] > 1
            out["stuck"] += r["status"] in OPEN
            out["sent_not_delivered"] += r["status"] == Notice.Status.SENT and not delivered
            out["lost"] += not delivered and not failed
        twice_by_id = sum(c - 1 for c in received.values() if c > 1)
        twice_by_client = sum(c - 1 for c in delivered_per_client.values() if c > 1)
        after = [t for t, _nid, _to in arrivals if self.fault_end is not None and t >= self.fault_end]
        return {
            "round": self.number,
            "clients": len(self.client_ids),
            "notices": len(rows),
            "planned_twice": sum(c - 1 for c in per_client.values() if c > 1),
            "missing_notices": len(self.client_ids) - len(per_client),
            "statuses": dict(self.counts()),
            **{k: out[k] for k in ("delivered", "flagged", "flagged_but_delivered", "gave_up", "retried", "stuck")},
            "sent_not_delivered": out["sent_not_delivered"],
            "lost": out["lost"] + len(self.client_ids) - len(per_client),
            "twice": max(twice_by_id, twice_by_client),
            "settled": self.settled_at is not None,
            "resume_s": round(min(after) - self.fault_end, 3) if after else None,
            "recovery_s": round(self.settled_at - self.fault_end, 3)
            if self.settled_at is not None and self.fault_end is not None
            else None,
            "round_s": round((self.settled_at or time.monotonic()) - self.started, 3),
            "fault": self.fault,
        }


def summarize(config: Config, rounds: list[dict], **extra) -> dict:
    def stat(key):
        values = [r[key] for r in rounds if r[key] is not None]
        if not values:
            return {"median": None, "max": None}
        return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}

    total = {
        k: sum(r[k] for r in rounds)
        for k in ("notices", "delivered", "lost", "twice", "flagged", "flagged_but_delivered", "gave_up", "retried")
    }
    return {
        "scenario": config.scenario,
        "config": config.__dict__,
        "rounds": rounds,
        "total": {**total, "rounds": len(rounds), "unsettled_rounds": sum(not r["settled"] for r in rounds)},
        "resume_s": stat("resume_s"),
        "recovery_s": stat("recovery_s"),
        "round_s": stat("round_s"),
        **extra,
    }


def write_result(summary: dict) -> None:
    """With FAULT_RESULTS_DIR set (scripts/faults.sh), keep the figures for the report."""
    folder = os.environ.get("FAULT_RESULTS_DIR")
    print(f"\n[{summary['scenario']}] {json.dumps(summary['total'])} recovery={summary['recovery_s']}")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{summary['scenario']}.json").write_text(json.dumps(summary, indent=2, default=str))
