"""Early warnings, the reads: the alerts page, the client page's panel, the dashboard summary
and the digest's recipients. Raising them nightly and the weekly digest are
``cobranza.alerts.jobs``; acknowledging and closing, ``cobranza.alerts.services``.

A collector sees the alerts of their own clients; managers see every one.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet

from accounts.models import Client
from accounts.roles import GROUP_NAMES, Role, is_collector, is_manager
from cobranza.models import Alert, AlertKind, AlertStatus

_DATE_KEYS = ("_from", "_to", "_on", "_start")


def with_evidence(alerts):
    """Give each alert ``ev``: its evidence with the dates as dates, for the templates."""
    alerts = list(alerts)
    for alert in alerts:
        ev = dict(alert.evidence or {})
        for key, value in ev.items():
            if key.endswith(_DATE_KEYS) and isinstance(value, str) and value:
                with contextlib.suppress(ValueError):
                    ev[key] = dt.date.fromisoformat(value)
        alert.ev = ev
    return alerts


PENDING = "pending"  # the list's default filter: not closed


def _visible(qs: QuerySet[Alert], user) -> QuerySet[Alert]:
    if is_manager(user):
        return qs
    if is_collector(user):
        return qs.filter(client__collector=user)
    return qs.none()


def alerts_for(user) -> QuerySet[Alert]:
    """Open alerts the user should act on: a collector's own clients', every one for managers."""
    qs = Alert.objects.filter(status=AlertStatus.OPEN).select_related("client", "client__collector")
    return _visible(qs, user).order_by("-raised_on", "-id")


def alert_list(*, user, kind: str = "", status: str = PENDING, collector=None) -> QuerySet[Alert]:
    """The alerts page: visible alerts, filtered (one query per page)."""
    qs = _visible(Alert.objects.select_related("client", "client__collector", "handled_by"), user)
    if kind:
        qs = qs.filter(kind=kind)
    if status == PENDING:
        qs = qs.exclude(status=AlertStatus.CLOSED)
    elif status in AlertStatus.values:
        qs = qs.filter(status=status)
    if collector is not None:
        qs = qs.filter(client__collector=collector)
    return qs.order_by("-raised_on", "-id")


def client_alerts(client: Client) -> list[Alert]:
    """The client page's panel: the alerts not closed yet (one query)."""
    return with_evidence(
        Alert.objects.filter(client=client).exclude(status=AlertStatus.CLOSED).select_related("handled_by")
    )


LATEST = 5


def alert_summary(user) -> dict:
    """For the dashboard: open alerts by kind and the latest ones (two queries)."""
    visible = alerts_for(user)
    counts = dict(visible.order_by().values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    return {
        "by_kind": [{"kind": k, "label": label, "count": counts.get(k, 0)} for k, label in AlertKind.choices],
        "total": sum(counts.values()),
        "latest": with_evidence(visible[:LATEST]),
    }


def managers():
    """Active managers and administrators with an email address."""
    names = [GROUP_NAMES[Role.MANAGER], GROUP_NAMES[Role.ADMIN]]
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(groups__name__in=names) | Q(is_superuser=True))
        .distinct()
        .order_by("pk")
    )
