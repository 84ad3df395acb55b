"""Stored dashboard summaries: how the dashboard stays fast on a large portfolio.

Computing the dashboard live reads every open invoice twice (closing and opening receivables);
at a million invoices that takes about a second or more. When a live computation takes longer
than ``settings.DASHBOARD_LIVE_MAX_MS``, its result is stored (``DashboardSummary``) for those
filters and language, and the next views show it, saying when it was computed. A beat job
(``summaries_refresh``, every ``REFRESH_MINUTES``) recomputes the summaries viewed in the last
``KEEP_DAYS`` and forgets the others; a manager can recompute the one on screen at once. A
summary older than ``STALE_AFTER`` (the beat job is not running) is not shown: the page computes
live again. Small portfolios are always computed live and never stored.

The page, its exports and the PDF read the same ``metrics.Dashboard`` (stored or live), so they
agree with each other; the API (``/api/v1/metrics/``) always computes live.

A stored summary is a pickle, so it only loads while ``metrics.Dashboard`` and the classes it
holds keep their module, name and fields. ``FORMAT_VERSION`` is part of the key: bumping it
makes every older row unreachable (the next view computes and stores under the new key; the beat
job forgets the old rows). A row that still cannot be loaded is treated as missing: computed
again and overwritten, never a 500.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import pickle  # noqa: S403 - our own rows, written and read only by this module
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import translation

from accounts import clock
from cobranza.dashboard import metrics
from cobranza.forecast import selectors as forecast_selectors
from cobranza.models import DashboardSummary

logger = logging.getLogger(__name__)

REFRESH_MINUTES = 10
STALE_AFTER = dt.timedelta(minutes=3 * REFRESH_MINUTES)
KEEP_DAYS = 2
TOUCH_EVERY = dt.timedelta(minutes=5)  # record a view at most this often (one UPDATE)
# Bump whenever what is pickled changes shape: metrics.Dashboard or a dataclass inside it moves,
# is renamed, or gains, loses or retypes a field (test_dashboard_summaries fails until you do).
FORMAT_VERSION = 4  # 3: roll rates follow the invoices (RollRow.bases, .rolled); 4: forecast


@dataclass(frozen=True)
class Freshness:
    computed_at: dt.datetime
    duration_ms: int
    stored: bool  # shown from a stored summary (else computed for this request)

    @property
    def refresh_minutes(self) -> int:
        return REFRESH_MINUTES


def _filters_json(f: metrics.Filters) -> dict:
    return {
        "currency": f.currency,
        "start": f.start.isoformat(),
        "end": f.end.isoformat(),
        "segment": f.segment,
        "collector": f.collector,
        "profile": f.profile,
    }


def _filters_from(data: dict) -> metrics.Filters:
    return metrics.Filters(
        currency=data["currency"],
        start=dt.date.fromisoformat(data["start"]),
        end=dt.date.fromisoformat(data["end"]),
        segment=data["segment"],
        collector=data["collector"],
        profile=data["profile"],
    )


def summary_key(f: metrics.Filters, language: str) -> str:
    raw = json.dumps([FORMAT_VERSION, _filters_json(f), language], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def _compute(f: metrics.Filters) -> tuple[metrics.Dashboard, int]:
    started = time.perf_counter()
    # The page shows the cash expected from today (1 query), stored with the rest.
    data = metrics.dashboard(f, forecast=forecast_selectors.forecast_for(f, clock.localdate()))
    return data, round((time.perf_counter() - started) * 1000)


def _store(
    f: metrics.Filters, language: str, data: metrics.Dashboard, duration_ms: int, now: dt.datetime, *, viewed: bool
) -> None:
    """Store (or replace) the summary; ``viewed`` also records a view (not for the beat job)."""
    fields = {
        "filters": _filters_json(f),
        "language": language,
        "data": pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL),
        "computed_at": now,
        "duration_ms": duration_ms,
    }
    DashboardSummary.objects.update_or_create(
        key=summary_key(f, language),
        defaults={**fields, "viewed_at": now} if viewed else fields,
        create_defaults={**fields, "viewed_at": now},
    )


def _unpickle(row: DashboardSummary) -> metrics.Dashboard | None:
    """The row's dashboard, or None when it cannot be loaded: written by an older release
    whose classes have since moved or changed (any error unpickling, or another type)."""
    try:
        data = pickle.loads(bytes(row.data))  # noqa: S301 - written by _store
    except Exception:
        logger.warning("dashboard summary %s cannot be loaded; computing it again", row.pk, exc_info=True)
        return None
    if not isinstance(data, metrics.Dashboard):
        logger.warning("dashboard summary %s holds a %s; computing it again", row.pk, type(data).__name__)
        return None
    return data


def dashboard_load(f: metrics.Filters, *, now: dt.datetime | None = None) -> tuple[metrics.Dashboard, Freshness]:
    """The dashboard for these filters in the active language: a fresh stored summary when
    there is one (1 query, 2 when the view is recorded), else computed live — and stored
    when that took longer than ``DASHBOARD_LIVE_MAX_MS``, or when it replaces a stored row
    that could not be loaded (that row exists because these filters were slow)."""
    now = now or clock.now()
    language = translation.get_language() or settings.LANGUAGE_CODE
    key = summary_key(f, language)
    row = DashboardSummary.objects.filter(key=key, computed_at__gte=now - STALE_AFTER).first()
    if row is not None:
        data = _unpickle(row)
        if data is not None:
            if row.viewed_at < now - TOUCH_EVERY:
                DashboardSummary.objects.filter(pk=row.pk).update(viewed_at=now)
            return data, Freshness(row.computed_at, row.duration_ms, stored=True)
    data, duration_ms = _compute(f)
    if row is not None or duration_ms > settings.DASHBOARD_LIVE_MAX_MS:
        _store(f, language, data, duration_ms, now, viewed=True)
    return data, Freshness(now, duration_ms, stored=False)


def summary_refresh(f: metrics.Filters) -> Freshness:
    """Recompute and store the summary of these filters in the active language now (the page's
    "Recalcular ahora")."""
    now = clock.now()
    data, duration_ms = _compute(f)
    _store(f, translation.get_language() or settings.LANGUAGE_CODE, data, duration_ms, now, viewed=True)
    return Freshness(now, duration_ms, stored=True)


def summaries_forget() -> int:
    """Drop every stored summary (after a change the stored figures do not have, such as new
    month-end snapshots); the next view computes live, and stores again if that is slow."""
    deleted, _detail = DashboardSummary.objects.all().delete()
    return deleted


def summaries_refresh(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat job: recompute every summary viewed in the last ``KEEP_DAYS``, forget the
    others and those of an older ``FORMAT_VERSION`` (a view stores them again under the
    current key). One dashboard computation per kept summary."""
    now = now or clock.now()
    forgotten, _detail = DashboardSummary.objects.filter(viewed_at__lt=now - dt.timedelta(days=KEEP_DAYS)).delete()
    refreshed = 0
    for pk, key, filters, language in DashboardSummary.objects.values_list("pk", "key", "filters", "language"):
        try:
            f = _filters_from(filters)
        except (KeyError, TypeError, ValueError):
            f = None  # filters stored by an older release
        if f is None or summary_key(f, language) != key:
            forgotten += DashboardSummary.objects.filter(pk=pk).delete()[0]
            continue
        with translation.override(language):
            data, duration_ms = _compute(f)
        _store(f, language, data, duration_ms, clock.now(), viewed=False)
        refreshed += 1
    logger.info("dashboard summaries: %s refreshed, %s forgotten", refreshed, forgotten)
    return {"refreshed": refreshed, "forgotten": forgotten}
