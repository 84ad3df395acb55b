"""One dunning run: plan what is due, then dispatch what may go out now.

Used by ``manage.py run_dunning`` (inline, with a summary) and by the Celery beat tasks
(plan, then enqueue one dispatch task per batch of due notices).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from accounts import clock
from cobranza.engine import dispatch, escalation, planner


def default_now(today: dt.date | None) -> dt.datetime:
    """``--today`` time travel runs at 10:00 in the company's time zone, inside every
    preset's contact hours; without it, now."""
    if today is None:
        return clock.now()
    return dt.datetime.combine(today, dt.time(10, 0), tzinfo=ZoneInfo(settings.TIME_ZONE))


def run(*, today: dt.date | None = None, now: dt.datetime | None = None, dry_run: bool = False) -> dict:
    """Plan, escalate and dispatch. With ``today`` or ``now`` (a replay or a simulation),
    the whole run reads that moment from ``accounts.clock``: every stamp it writes is the
    simulated time, as if the run had happened then (docs/domain.md#one-clock).

    With ``today`` alone (a day's replay) the run then walks the clock through the rest of
    that company day, dispatching each notice at the moment it falls due — the clients' slots
    (docs/domain.md#spread) — as the every-minute dispatcher would have."""
    replay = today is not None or now is not None
    walk_until = None
    if today is not None and now is None:
        walk_until = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(settings.TIME_ZONE))
    now = now or default_now(today)
    today = today or timezone.localdate(now)
    with clock.running_at(now if replay else None):
        return _run(today=today, now=now, dry_run=dry_run, walk_until=walk_until)


def _run(*, today: dt.date, now: dt.datetime, dry_run: bool, walk_until: dt.datetime | None = None) -> dict:
    planned = planner.plan(today=today, now=now, dry_run=dry_run)
    escalated = escalation.escalate(today=today, now=now, dry_run=dry_run)
    outcomes: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    moment: dt.datetime | None = now
    while not dry_run and moment is not None:
        with clock.running_at(moment if walk_until else None):
            _dispatch_due(moment, outcomes, reasons)
        moment = dispatch.next_due_at(after=moment, before=walk_until) if walk_until else None
    return {
        "today": today.isoformat(),
        "now": now.isoformat(),
        "dry_run": dry_run,
        "planned": planned.as_dict(),
        "escalated": len(escalated),
        "dispatched": {
            key: outcomes.get(key, 0) for key in ("sent", "deferred", "skipped", "failed", "retry", "superseded")
        },
        "reasons": [
            {"outcome": outcome, "reason": reason, "count": count}
            for (outcome, reason), count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def _dispatch_due(now: dt.datetime, outcomes: Counter[str], reasons: Counter[tuple[str, str]]) -> None:
    # Loop until nothing due is left: a deferred notice moves to the future, so this ends.
    while ids := dispatch.due_notice_ids(now=now):
        progressed = False
        size = max(settings.DUNNING_BATCH_SIZE, 1)
        for start in range(0, len(ids), size):
            for result in dispatch.dispatch_batch(ids[start : start + size], now=now).values():
                if result.outcome == dispatch.Outcome.NOT_CLAIMED:
                    continue
                progressed = True
                outcomes[result.outcome] += 1
                if result.reason:
                    reasons[(result.outcome, result.reason)] += 1
        if not progressed:
            break
