"""Celery application. The beat schedule lives here, in code, next to the tasks it names."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_ready
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morosos.settings")

app = Celery("morosos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every entry names a task by its stable `name=`. The planner re-derives what is due from the
# database, so a missed or repeated tick loses or duplicates nothing.
app.conf.beat_schedule = {
    "plan-dunning-hourly": {"task": "cobranza.plan_dunning", "schedule": crontab(minute=5)},
    "enqueue-due-notices": {"task": "cobranza.enqueue_due", "schedule": 60.0},
    # Outgoing webhooks: retries whose backoff passed and deliveries abandoned by a dead worker.
    "enqueue-due-webhooks": {"task": "cobranza.enqueue_due_webhooks", "schedule": 60.0},
    "enqueue-portal-messages": {"task": "cobranza.enqueue_portal_messages", "schedule": 60.0},
    "prune-webhook-deliveries-nightly": {
        "task": "cobranza.prune_webhook_deliveries",
        "schedule": crontab(hour=3, minute=15),
    },
    # Promises and installments are judged the day after their date: early each morning,
    # before the 06:05 planning run picks up the ladders they resume.
    "judge-commitments-nightly": {"task": "cobranza.judge_commitments", "schedule": crontab(hour=5, minute=30)},
    "remind-installments-hourly": {"task": "cobranza.remind_installments", "schedule": crontab(minute=20)},
    "compute-profiles-nightly": {"task": "cobranza.compute_profiles", "schedule": crontab(hour=5, minute=40)},
    "accrue-late-fees-nightly": {"task": "cobranza.accrue_late_fees", "schedule": crontab(hour=5, minute=50)},
    "raise-alerts-nightly": {"task": "cobranza.raise_alerts", "schedule": crontab(hour=5, minute=55)},
    # The worklist's stored ranking facts: as of the new day just after midnight, again once the
    # nightly jobs above changed profiles and commitments, and the clients written to meanwhile.
    "refresh-worklist-rank-midnight": {"task": "cobranza.refresh_worklist_rank", "schedule": crontab(hour=0, minute=5)},
    "refresh-worklist-rank-morning": {"task": "cobranza.refresh_worklist_rank", "schedule": crontab(hour=6, minute=0)},
    "refresh-worklist-rank-touched": {"task": "cobranza.refresh_worklist_rank_touched", "schedule": 600.0},
    "aging-snapshot-monthly": {
        "task": "cobranza.snapshot_aging",
        "schedule": crontab(day_of_month=1, hour=0, minute=30),
    },
    "alert-digest-weekly": {"task": "cobranza.send_alert_digest", "schedule": crontab(hour=7, minute=0, day_of_week=1)},
    # Large portfolios: the dashboard's stored figures (cobranza.dashboard.summaries.REFRESH_MINUTES).
    "refresh-dashboard-summaries": {"task": "cobranza.refresh_dashboard_summaries", "schedule": 600.0},
}


@worker_ready.connect
def _plan_on_start(sender, **kwargs):
    """With DUNNING_PLAN_ON_WORKER_START (on in development), a starting worker plans today's
    notices at once instead of waiting for the next hourly tick: `make run` shows reminders
    going out within a minute. Planning twice is harmless (the planner records each notice once)."""
    if getattr(settings, "DUNNING_PLAN_ON_WORKER_START", False):
        sender.app.send_task("cobranza.plan_dunning")
