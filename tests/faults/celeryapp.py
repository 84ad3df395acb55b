"""The project's Celery app as the fault tests run it: `celery -A tests.faults.celeryapp
worker|beat`. Same tasks, same task names, same beat entries; two things differ, through the
environment:

- FAULT_QUEUE: every task (beat's and the ones tasks enqueue) goes to a queue of the test's
  own, so a test never consumes or feeds anybody else's work on a shared Redis;
- FAULT_TICK: beat's "every minute" entry (hand every due or abandoned notice to the workers)
  runs every FAULT_TICK seconds, and with FAULT_BEAT_PLANS=1 the hourly planner too, so that a
  round takes seconds instead of hours. Nothing else of the schedule runs.
"""

import os

from morosos.celery import app

QUEUE = os.environ["FAULT_QUEUE"]
TICK = float(os.environ.get("FAULT_TICK", "2"))

app.conf.task_default_queue = QUEUE
_production = dict(app.conf.beat_schedule)
schedule = {"enqueue-due-notices": {**_production["enqueue-due-notices"], "schedule": TICK}}
if os.environ.get("FAULT_BEAT_PLANS") == "1":
    schedule["plan-dunning-hourly"] = {**_production["plan-dunning-hourly"], "schedule": TICK}
app.conf.beat_schedule = schedule

__all__ = ["app"]
