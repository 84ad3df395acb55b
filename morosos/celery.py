"""Celery application. The beat schedule lives here, in code, next to the tasks it names."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morosos.settings")

app = Celery("morosos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Filled in by the apps' issues (hourly dunning planner, nightly classification, weekly
# digest); every entry names a task by its stable `name=`.
app.conf.beat_schedule = {}
