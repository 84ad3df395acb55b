"""Celery tasks: thin wrappers with stable names; the work is in engine/dispatch."""

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import clock
from cobranza.alerts import jobs as alerts
from cobranza.dashboard import jobs as dashboard
from cobranza.dashboard import summaries
from cobranza.engine import dispatch, escalation, planner
from cobranza.imports import services as imports
from cobranza.portal import jobs as portal_messages
from cobranza.profiles import fees
from cobranza.profiles import jobs as profiles
from cobranza.webhooks import outgoing as webhooks_out
from cobranza.worklist import jobs as worklist
from cobranza.workspace import jobs as commitments


@shared_task(name="cobranza.plan_dunning", time_limit=1800, soft_time_limit=1700)
def plan_dunning() -> dict:
    """Hourly: record the notices due today, escalate ladders that ended unpaid, then hand
    the due notices to the workers."""
    now = clock.now()
    today = timezone.localdate(now)
    result = planner.plan(today=today, now=now)
    escalated = escalation.escalate(today=today, now=now)
    enqueue_due.delay()
    return {**result.as_dict(), "escalated": len(escalated)}


@shared_task(name="cobranza.enqueue_due", time_limit=120, soft_time_limit=100)
def enqueue_due(limit: int = 2000) -> int:
    """Every minute: one dispatch task per batch of DUNNING_BATCH_SIZE notices that may go out
    now (a notice enqueued twice is claimed once)."""
    ids = dispatch.due_notice_ids(now=clock.now(), limit=limit)
    size = max(settings.DUNNING_BATCH_SIZE, 1)
    with transaction.atomic():
        for start in range(0, len(ids), size):
            dispatch_notices.delay_on_commit(ids[start : start + size])
    return len(ids)


@shared_task(name="cobranza.dispatch_notices", time_limit=600, soft_time_limit=540, acks_late=True)
def dispatch_notices(notice_ids: list[int]) -> dict[str, int]:
    """A batch: one claim, one SMTP connection (engine/dispatch.dispatch_batch). Outcomes counted."""
    outcomes: dict[str, int] = {}
    for result in dispatch.dispatch_batch(notice_ids).values():
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return outcomes


@shared_task(name="cobranza.dispatch_notice", time_limit=120, soft_time_limit=100, acks_late=True)
def dispatch_notice(notice_id: int) -> str:
    """One notice (tasks already queued by an older version, manual retries)."""
    return dispatch.dispatch(notice_id).outcome


@shared_task(name="cobranza.judge_commitments", time_limit=1800, soft_time_limit=1700)
def judge_commitments() -> dict:
    """Nightly: promises, plans and extensions whose dates passed are kept, partly kept or
    broken; broken ones resume the ladder one step firmer."""
    return commitments.judge(today=clock.localdate())


@shared_task(name="cobranza.remind_installments", time_limit=900, soft_time_limit=840)
def remind_installments() -> dict:
    """Hourly: the installment reminders whose day has come and whose contact hours allow."""
    return commitments.remind_installments(now=clock.now())


@shared_task(name="cobranza.compute_profiles", time_limit=3600, soft_time_limit=3500)
def compute_profiles() -> dict:
    """Nightly, after the commitments are judged (so last night's broken promises count)."""
    return profiles.compute_profiles(today=clock.localdate())


@shared_task(name="cobranza.accrue_late_fees", time_limit=3600, soft_time_limit=3500)
def accrue_late_fees() -> dict:
    """Nightly: fixed fees due and interest to date, in set-based SQL."""
    return fees.accrue_late_fees(today=clock.localdate())


@shared_task(name="cobranza.raise_alerts", time_limit=3600, soft_time_limit=3500)
def raise_alerts() -> dict:
    """Nightly, after the profiles: early warnings, once per client, kind and period."""
    return alerts.raise_alerts(today=clock.localdate())


@shared_task(name="cobranza.send_alert_digest", time_limit=900, soft_time_limit=840)
def send_alert_digest() -> int:
    """Mondays: last week's alerts to every manager, once per manager and week."""
    return alerts.send_weekly_digest(today=clock.localdate())


@shared_task(name="cobranza.snapshot_aging", time_limit=3600, soft_time_limit=3500)
def snapshot_aging() -> dict:
    """On the 1st: last month's closing aging per client and currency (roll rates, trends)."""
    stored = dashboard.backfill_snapshots(months=1, today=clock.localdate())
    return {end.isoformat(): rows for end, rows in stored.items()}


@shared_task(name="cobranza.refresh_dashboard_summaries", time_limit=1800, soft_time_limit=1740)
def refresh_dashboard_summaries() -> dict:
    """Every 10 minutes: recompute the stored dashboard figures viewed lately (large portfolios)."""

    return summaries.summaries_refresh()


@shared_task(name="cobranza.refresh_worklist_rank", time_limit=1800, soft_time_limit=1740)
def refresh_worklist_rank() -> dict:
    """Just after midnight and after the nightly jobs: every client's stored ranking facts as of
    today (ages crossed their buckets overnight; docs/domain.md#worklist-ranking)."""
    return worklist.worklist_rank_refresh(today=clock.localdate())


@shared_task(name="cobranza.refresh_worklist_rank_touched", time_limit=600, soft_time_limit=540)
def refresh_worklist_rank_touched() -> dict:
    """Every 10 minutes: the stored ranking facts of the clients written to since (the worklist
    recomputes them as it reads meanwhile)."""
    return worklist.worklist_rank_refresh_touched(today=clock.localdate())


@shared_task(name="cobranza.run_import", time_limit=3600, soft_time_limit=3500)
def run_import(job_id: int) -> str:
    """A large import file, checked and written in the background (the job page shows progress)."""
    imports.run_import_job(job_id)
    return "done"


@shared_task(name="cobranza.deliver_webhook", time_limit=90, soft_time_limit=60, acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    """One outgoing webhook: claim, re-check, POST (timeout well under the limits), record."""

    return webhooks_out.deliver(delivery_id)


@shared_task(name="cobranza.enqueue_due_webhooks", time_limit=120, soft_time_limit=100)
def enqueue_due_webhooks(limit: int = 2000) -> int:
    """Every minute: retries whose backoff has passed, deliveries whose enqueue was lost and
    claims whose lease expired (a delivery enqueued twice is claimed once)."""

    ids = webhooks_out.due_delivery_ids(now=clock.now(), limit=limit)
    with transaction.atomic():
        for delivery_id in ids:
            deliver_webhook.delay_on_commit(delivery_id)
    return len(ids)


@shared_task(name="cobranza.prune_webhook_deliveries", time_limit=900, soft_time_limit=840)
def prune_webhook_deliveries() -> int:
    """Nightly: finished webhook deliveries older than OUTGOING_WEBHOOKS_RETENTION_DAYS."""

    return webhooks_out.prune_deliveries()


@shared_task(name="cobranza.send_portal_message", time_limit=120, soft_time_limit=100, acks_late=True)
def send_portal_message(message_id: int) -> str:
    """One message about the self-service page (the link, a confirmation): claim, re-check, send."""
    return portal_messages.send(message_id)


@shared_task(name="cobranza.enqueue_portal_messages", time_limit=120, soft_time_limit=100)
def enqueue_portal_messages(limit: int = 2000) -> int:
    """Every minute: portal messages deferred by the contact rules, retried, or whose enqueue
    was lost (a message enqueued twice is claimed once)."""
    ids = portal_messages.due_message_ids(now=clock.now(), limit=limit)
    with transaction.atomic():
        for message_id in ids:
            send_portal_message.delay_on_commit(message_id)
    return len(ids)
