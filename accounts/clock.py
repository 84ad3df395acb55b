"""The one clock every write reads (docs/domain.md#one-clock).

``now()`` is ``django.utils.timezone.now()`` — unless code runs inside ``running_at(moment)``,
in which case it is that moment. A dunning run, a nightly job or a replay of past days
(``run_dunning --today``) enters ``running_at`` once, and everything it writes — a notice's
sent time, a timeline entry, a task's due day, a row's created and updated stamps — carries the
time the run runs at, never the wall clock of the machine replaying it. So replaying 90 days
produces the same rows as living them, and contact caps and "last contact" count right.

The override is a context variable: it holds for the thread (or asyncio task) that set it and
ends with the ``with`` block; other requests and workers keep reading the real time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone

_moment: ContextVar[dt.datetime | None] = ContextVar("clock_moment", default=None)


def now() -> dt.datetime:
    """The current moment (aware): the run's when inside ``running_at``, else the real time."""
    return _moment.get() or timezone.now()


def localdate() -> dt.date:
    """Today in the company's time zone (``settings.TIME_ZONE``) at ``now()``."""
    return timezone.localdate(now())


def overridden() -> bool:
    """True inside ``running_at`` (a run at a chosen moment)."""
    return _moment.get() is not None


@contextmanager
def running_at(moment: dt.datetime | None) -> Iterator[dt.datetime]:
    """Make ``now()`` return ``moment`` inside the block (``None``: the real time, unchanged).
    ``moment`` must be aware."""
    if moment is None:
        yield now()
        return
    if timezone.is_naive(moment):
        raise ValueError("running_at needs an aware datetime")
    token = _moment.set(moment)
    try:
        yield moment
    finally:
        _moment.reset(token)
