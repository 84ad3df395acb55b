"""Task options: what Celery checks only when a task is sent, checked here for every task."""

from morosos.celery import app


def test_every_task_can_be_sent_its_soft_limit_is_within_its_hard_limit():
    # apply_async raises ValueError when the soft limit (a task's own or the global
    # CELERY_TASK_SOFT_TIME_LIMIT) exceeds the task's hard limit: plan_dunning's
    # enqueue_due.delay() failed that way once.
    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if name.startswith("cobranza.")}
    assert {
        "cobranza.plan_dunning",
        "cobranza.enqueue_due",
        "cobranza.dispatch_notices",
        "cobranza.dispatch_notice",
    } <= set(tasks)
    for name, task in tasks.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert task.time_limit, f"{name} has no time limit of its own"
        assert soft <= hard, f"{name}: soft limit {soft} > time limit {hard}"
