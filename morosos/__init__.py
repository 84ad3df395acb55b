# Load Celery with Django so that @shared_task and delay_on_commit use this app.
from .celery import app as celery_app

__all__ = ("celery_app",)
