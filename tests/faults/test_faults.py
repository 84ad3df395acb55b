"""Fault injection with real processes (results in docs/reliability.md): Celery workers killed with SIGKILL
or stopped past their lease, two beat schedulers at once, the broker (Redis) stopped and restarted, the workers'
PostgreSQL connections terminated, the SMTP server refusing and then accepting.

For every round: notices lost (goal 0), notices the SMTP server received twice (goal 0) and
the time to recover. The short versions run in `make test`; `make faults` runs them long
(FAULT_ROUNDS, FAULT_NOTICES, ...: see tests/faults/rig.py) and writes docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection
from django.utils import timezone

from cobranza.engine.planner import plan
from cobranza.models import Notice
from tests.faults.rig import Config, Round, env_number, make_clients, summarize, write_result
from tests.processes import RedisServer, child_pids

pytestmark = [pytest.mark.django_db(transaction=True)]


def _new_round(config: Config, number: int, mailbox, gestora, *, planned: bool = True) -> Round:
    client_ids = make_clients(collector=gestora, n=config.notices, tag=f"{config.scenario}{number}")
    if planned:
        plan(today=timezone.localdate())
    return Round(config=config, number=number, client_ids=client_ids, mailbox=mailbox)


def _target(config: Config, rng) -> int:
    """A random point of the dispatch, between 5 % and 90 % of the notices sent."""
    return rng.randint(max(1, config.notices // 20), max(1, config.notices * 9 // 10))


def _finish(config: Config, rounds: list[dict], **extra) -> dict:
    summary = summarize(config, rounds, **extra)
    write_result(summary)
    return summary


def _assert_nothing_lost_or_twice(summary: dict) -> None:
    total = summary["total"]
    detail = [
        {k: r[k] for k in ("round", "lost", "twice", "stuck", "statuses", "fault")}
        for r in summary["rounds"]
        if r["lost"] or r["twice"]
    ]
    assert total["unsettled_rounds"] == 0, detail
    assert total["lost"] == 0, detail
    assert total["twice"] == 0, detail
    assert all(r["planned_twice"] == 0 for r in summary["rounds"])


def test_workers_killed_at_random_points_lose_nothing_and_send_nothing_twice(
    fault_policy, gestora, mailbox, make_rig, shared_broker
):
    """Odd rounds kill a whole worker (main process and pool: a machine or container dying)
    and a supervisor starts a new one; even rounds kill one pool process, which Celery
    replaces, and the task it held comes back from the broker (acks_late)."""
    config = Config.from_env("sigkill", rounds=2)
    rig = make_rig(config, broker_url=shared_broker)
    rig.start_worker()
    rig.start_worker()
    rig.start_beat()
    rounds = []
    for n in range(1, config.rounds + 1):
        rng = config.rng(n)
        round_ = _new_round(config, n, mailbox, gestora)
        rig.kick()
        target = _target(config, rng)
        round_.wait_sent(target, rig)
        victim = rng.choice(rig.workers)
        pool = child_pids(victim.pid)
        if n % 2 or not pool:
            rig.kill_worker(victim)
            rig.start_worker(wait=False)  # what systemd's Restart=always or the orchestrator does
            round_.fault = {"kind": "worker", "at_sent": target}
        else:
            os.kill(rng.choice(pool), signal.SIGKILL)
            round_.fault = {"kind": "pool-process", "at_sent": target}
        round_.fault_ended()
        round_.wait_settled()
        rounds.append(round_.result())
        rig.purge()
    _assert_nothing_lost_or_twice(_finish(config, rounds))


def test_a_worker_stalled_past_its_lease_loses_nothing(fault_policy, gestora, mailbox, make_rig, shared_broker):
    """SIGSTOP a whole worker at a random point (a paused VM, a swap storm, a debugger) and
    SIGCONT it the moment another worker has taken one of its notices over (lease expired,
    second claim). Nothing may be lost, and nothing sent twice: every write of the stalled
    worker after its claim is fenced by its lease (tests/faults/test_lease_fencing.py is the
    deterministic reproduction of the duplicates this scenario found before the fence)."""
    config = Config.from_env("stall")
    rig = make_rig(config, broker_url=shared_broker)
    rig.start_worker()
    rig.start_worker()
    rig.start_beat()
    rounds = []
    for n in range(1, config.rounds + 1):
        rng = config.rng(n)
        round_ = _new_round(config, n, mailbox, gestora)
        rig.kick()
        target = _target(config, rng)
        round_.wait_sent(target, rig)
        victim = rng.choice(rig.workers)
        os.killpg(victim.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        held = list(round_.notices().filter(status=Notice.Status.SENDING).values_list("id", flat=True))
        taken_over = False
        deadline = stopped + config.lease + 3 * config.tick + 10
        while time.monotonic() < deadline:
            if round_.notices().filter(id__in=held, status=Notice.Status.SENDING, attempts__gte=2).exists():
                taken_over = True
                break
            time.sleep(0.005)
        os.killpg(victim.pid, signal.SIGCONT)
        round_.fault = {
            "kind": "worker-stopped",
            "at_sent": target,
            "stopped_s": round(time.monotonic() - stopped, 1),
            "held": len(held),
            "resumed_on_takeover": taken_over,
        }
        round_.fault_ended()
        round_.wait_settled()
        rounds.append(round_.result())
        rig.purge()
    summary = _finish(config, rounds)
    total = summary["total"]
    assert total["unsettled_rounds"] == 0
    assert total["lost"] == 0
    assert total["twice"] == 0


def test_two_beat_schedulers_at_once_plan_and_send_each_notice_once(
    fault_policy, gestora, mailbox, make_rig, shared_broker
):
    """Two `celery beat` both run the planner and the every-minute enqueue (accelerated to
    FAULT_TICK seconds): every notice is planned once and sent once."""
    config = Config.from_env("beat")
    rig = make_rig(config, broker_url=shared_broker)
    rig.start_worker()
    rig.start_worker()
    rig.start_beat(plans=True)
    rig.start_beat(plans=True)
    rounds = []
    for n in range(1, config.rounds + 1):
        round_ = _new_round(config, n, mailbox, gestora, planned=False)
        round_.fault = {"kind": "two-beats"}
        round_.fault_ended()  # the clients exist: from now on it is the schedulers' job
        round_.wait_for(lambda r=round_: r.notices().count() >= len(r.client_ids), "the beats to plan", rig)
        round_.wait_settled()
        rounds.append(round_.result())
    _assert_nothing_lost_or_twice(_finish(config, rounds))


def test_redis_stopped_and_restarted_mid_run_loses_nothing_and_sends_nothing_twice(
    fault_policy, gestora, mailbox, make_rig, tmp_path
):
    """A private redis-server without persistence, killed mid-dispatch: every queued and
    unacknowledged task is gone. The database still knows what is due; beat hands it out again."""
    config = Config.from_env("redis")
    down = env_number("REDIS_DOWN", 3, "redis")
    broker = RedisServer(tmp_path / "redis").start()
    rig = make_rig(config, broker_url=broker.url(0))
    try:
        rig.start_worker()
        rig.start_worker()
        rig.start_beat()
        rounds = []
        for n in range(1, config.rounds + 1):
            rng = config.rng(n)
            round_ = _new_round(config, n, mailbox, gestora)
            rig.kick()
            target = _target(config, rng)
            round_.wait_sent(target, rig)
            broker.kill()
            time.sleep(down)
            broker.start()
            round_.fault = {"kind": "redis-killed", "at_sent": target, "down_s": down}
            round_.fault_ended()
            round_.wait_settled()
            rounds.append(round_.result())
            rig.purge()
        summary = _finish(config, rounds)
    finally:
        rig.stop()
        broker.stop()
    _assert_nothing_lost_or_twice(summary)


def _terminate_other_backends() -> int:
    """pg_terminate_backend on every other session of the test database: the workers'.
    The shared server itself is never stopped."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def test_postgresql_connections_dropped_mid_run_lose_nothing_and_send_nothing_twice(
    fault_policy, gestora, mailbox, make_rig, shared_broker
):
    config = Config.from_env("postgres")
    kills = int(env_number("PG_KILLS", 2, "postgres"))
    rig = make_rig(config, broker_url=shared_broker)
    rig.start_worker()
    rig.start_worker()
    rig.start_beat()
    rounds = []
    for n in range(1, config.rounds + 1):
        rng = config.rng(n)
        round_ = _new_round(config, n, mailbox, gestora)
        rig.kick()
        terminated = []
        for target in sorted(_target(config, rng) for _ in range(kills)):
            round_.wait_sent(target, rig)
            terminated.append(_terminate_other_backends())
        round_.fault = {"kind": "pg_terminate_backend", "times": kills, "backends": terminated}
        round_.fault_ended()
        round_.wait_settled()
        rounds.append(round_.result())
        rig.purge()
    _assert_nothing_lost_or_twice(_finish(config, rounds))


SMTP_FAULTS = ("451", "421", "refused")
REPLIES = {"451": "451 4.3.0 Mailbox busy, try again later", "421": "421 4.3.2 Service shutting down"}


def _advance_retries(round_: Round) -> int:
    """The clock reaches the retry time of every rescheduled notice (backoff is 2, 4, 8 …
    minutes by design; the short runs do not wait for it)."""
    return (
        round_.notices()
        .filter(status=Notice.Status.PLANNED, scheduled_at__gt=timezone.now())
        .update(scheduled_at=timezone.now())
    )


def _smtp_rounds(config: Config, *, real_backoff: bool, mailbox, gestora, make_rig, shared_broker):
    down = env_number("SMTP_DOWN", 3, config.scenario)
    rig = make_rig(config, broker_url=shared_broker)
    rig.start_worker()
    rig.start_worker()
    rig.start_beat()
    rounds = []
    for n in range(1, config.rounds + 1):
        rng = config.rng(n)
        kind = SMTP_FAULTS[(n - 1) % len(SMTP_FAULTS)]
        round_ = _new_round(config, n, mailbox, gestora)
        rig.kick()
        target = _target(config, rng)
        round_.wait_sent(target, rig)
        if kind == "refused":
            mailbox.go_down()
        else:
            mailbox.refuse(REPLIES[kind])
        time.sleep(down)
        if kind == "refused":
            mailbox.come_back()
        else:
            mailbox.refuse(None)
        round_.fault = {"kind": f"smtp-{kind}", "at_sent": target, "down_s": down, "real_backoff": real_backoff}
        round_.fault_ended()
        if real_backoff:
            round_.wait_settled()
        else:
            deadline = time.monotonic() + config.timeout
            while time.monotonic() < deadline:
                _advance_retries(round_)
                if round_.wait_settled(timeout=1):
                    break
        rounds.append(round_.result())
        rig.purge()
    return _finish(config, rounds, smtp_down_s=down)


def test_smtp_refusing_then_accepting_loses_nothing_and_sends_nothing_twice(
    fault_policy, gestora, mailbox, make_rig, shared_broker
):
    """421/451 replies and refused connections are transient: the notice is rescheduled with
    backoff (message_id cleared, so the retry is a fresh send, not an "interrupted" one)."""
    config = Config.from_env("smtp", rounds=1)
    summary = _smtp_rounds(
        config,
        real_backoff=False,
        mailbox=mailbox,
        gestora=gestora,
        make_rig=make_rig,
        shared_broker=shared_broker,
    )
    _assert_nothing_lost_or_twice(summary)
    assert summary["total"]["retried"] > 0, "the SMTP fault hit no send: it proved nothing"


def test_smtp_outage_recovers_on_the_real_backoff_clock(fault_policy, gestora, mailbox, make_rig, shared_broker):
    """Long version only (FAULT_SMTP_BACKOFF_ROUNDS=1 or more): nothing advances the clock;
    the refused notices go out when their 2-minute backoff has passed."""
    config = Config.from_env("smtp_backoff", rounds=0)
    if config.rounds < 1:
        pytest.skip("long run only: waits the real retry backoff (FAULT_SMTP_BACKOFF_ROUNDS=1)")
    config.timeout = max(config.timeout, 240)
    summary = _smtp_rounds(
        config,
        real_backoff=True,
        mailbox=mailbox,
        gestora=gestora,
        make_rig=make_rig,
        shared_broker=shared_broker,
    )
    _assert_nothing_lost_or_twice(summary)
