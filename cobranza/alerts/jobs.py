"""Early warnings: watch payment behaviour constantly and alert early (docs/domain.md#early-warnings).

``raise_alerts(today=…)`` runs nightly. Each rule is one set-based SQL statement (ORM
aggregates, or raw SQL where it needs the settlement date of each invoice); Python
then makes one pass over the few aggregate rows that matched (one per client) to build the
``Alert`` rows, which are written with one bulk insert that ignores conflicts: the unique
``(client, kind, period_key)`` makes a rerun raise nothing twice. Each new alert also writes
one *system* entry on the client's timeline (bulk insert, like ``profiles``). Alerts reach the
assigned collector through ``selectors.alerts_for(user)`` (the alerts page, the client page's
panel and the dashboard summary); no task is created. Staff acknowledge and close them with
``cobranza.alerts.services``.

Days late at settlement are ``profiles``' definition: an invoice is settled when its status is
*paid*, on the date of the last payment applied to it (credit notes and discounts included),
and its days late are settlement date − due date, 0 when paid on time. Money counts only the
client's own currency. Clients written off are left out of every rule.

Rules (thresholds are the constants below):

1. **lateness** — paying later and later: the average days late of the invoices settled in
   the last ``LATENESS_RECENT_DAYS`` days is at least ``LATENESS_MIN_WORSENING`` days above the
   average of the invoices settled in the ``LATENESS_BASELINE_MONTHS`` months before that
   window, with at least ``LATENESS_MIN_SETTLED`` invoices in each window. Once a month
   (``period_key`` = the month, "2026-11").
2. **credit_limit** — the open balance of collectible invoices (open, partly paid, disputed)
   in the client's currency is above its credit limit (only limits above 0). Once a month.
3. **first_broken** — the client's first promise to pay ever judged broken or only partly kept
   was resolved in the last ``FIRST_BROKEN_DAYS`` days. Once per client, ever
   (``period_key`` = "first").
4. **pattern** — a regular payer stops paying: money payments (credit notes and discounts do
   not count) in at least ``PATTERN_MIN_MONTHS_PAID`` of the ``PATTERN_MONTHS`` calendar months
   before the silence, none in the last ``PATTERN_SILENCE_DAYS`` days, and an overdue balance
   now. The months are the ones that end before the month in which the silence began (today −
   45 days). Once a month.
5. **seasonal** — a calendar month that was weak in the last ``SEASONAL_HISTORY_MONTHS`` full
   calendar months starts within ``SEASONAL_LEAD_DAYS`` days (today included). A month is weak
   when, over those two years, (a) the invoices *due* in it were paid at least
   ``SEASONAL_MIN_WORSENING`` days later on average than all the client's invoices (at least
   ``SEASONAL_MIN_MONTH_SETTLED`` invoices that month and ``SEASONAL_MIN_SETTLED`` in all), or
   (b) the money received in it is at most half of an average month (``SEASONAL_MAX_SHARE`` %),
   for a client that paid in at least ``SEASONAL_MIN_MONTHS_PAID`` of the 24 months. Once per
   season (``period_key`` = the weak month, "2026-12").

Lateness, credit limit and pattern are raised again the next month if the condition lasts,
but not while the client's previous alert of that kind is still open or seen (``REPEATING``):
closing it says "handled", and the next month's run raises it anew if still true.

All comparisons are exact integer arithmetic (``Σa·nb − Σb·na ≥ 10·na·nb`` for "the average
is 10 days worse"), so a difference of exactly the threshold raises the alert.

The weekly digest (``send_weekly_digest``) emails every manager the alerts raised in the
previous ISO week (Monday to Sunday), grouped by kind and by collector, with totals. See its
docstring for how it avoids sending twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMonth
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import clock
from accounts.models import NON_CASH_METHODS, Client, Interaction, Invoice, Payment
from accounts.rules import collectible_q, days_late_sql, open_invoice_q, overdue_q, settled_invoices_sql
from cobranza import texts
from cobranza.alerts.selectors import managers, with_evidence
from cobranza.business import selectors as business
from cobranza.engine import channels
from cobranza.models import Alert, AlertDigest, AlertKind, AlertStatus, Commitment, CommitmentKind, CommitmentStatus
from cobranza.profiles.jobs import months_ago

log = logging.getLogger(__name__)

# --- thresholds -----------------------------------------------------------------------------

LATENESS_RECENT_DAYS = 90
LATENESS_BASELINE_MONTHS = 12
LATENESS_MIN_SETTLED = 2  # in each window
LATENESS_MIN_WORSENING = 10  # days

FIRST_BROKEN_DAYS = 7

PATTERN_MONTHS = 6
PATTERN_MIN_MONTHS_PAID = 5
PATTERN_SILENCE_DAYS = 45

SEASONAL_LEAD_DAYS = 15
SEASONAL_HISTORY_MONTHS = 24
SEASONAL_MIN_WORSENING = 15  # days
SEASONAL_MIN_MONTH_SETTLED = 2
SEASONAL_MIN_SETTLED = 6
SEASONAL_MAX_SHARE = 50  # percent of an average month
SEASONAL_MIN_MONTHS_PAID = 12
SEASONAL_YEARS = SEASONAL_HISTORY_MONTHS // 12  # each calendar month occurs this often in the history

FIRST_PERIOD = "first"
BAD_PROMISE = (CommitmentStatus.BROKEN, CommitmentStatus.PARTIAL)
# Delivery state of the weekly digest, kept in the alert's evidence. The leading underscore
# keeps it out of templates (Django templates refuse names that start with one).


def _d(value) -> Decimal:
    return Decimal(value or 0)


def _avg(total, n) -> str:
    """``total ÷ n`` to one decimal, as text (JSON keeps it exact)."""
    if not n:
        return "0.0"
    return str((Decimal(total) / Decimal(n)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _money(value) -> str:
    return str(_d(value).quantize(Decimal("0.01")))


def _month_key(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def _first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _date_param(day: dt.date):
    return connection.ops.adapt_datefield_value(day)


@dataclass
class Candidate:
    client_id: int
    kind: str
    period_key: str
    evidence: dict


# --- SQL: invoices settled, with their days late (profiles' definition) ------------------------


def _settled_sql(where: str, having: str) -> str:
    """Settled invoices of clients not written off, with days late at settlement (the
    ledger's rules, ``accounts.rules``)."""
    settled = settled_invoices_sql(
        join=f"JOIN {Client._meta.db_table} c ON c.id = i.client_id",
        where=f"AND c.status <> 'written_off' {where}",
        having=having,
    )
    days_late = days_late_sql("s.settled_on", "s.due_date")
    return f"SELECT s.client_id, s.due_date, s.settled_on, {days_late} AS days_late FROM ({settled}) s"


def _fetch(sql: str, params: dict) -> list[dict]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- the five rules -------------------------------------------------------------------------------


def _lateness(today: dt.date) -> list[Candidate]:
    recent_from = today - dt.timedelta(days=LATENESS_RECENT_DAYS)  # exclusive
    base_from = months_ago(recent_from, LATENESS_BASELINE_MONTHS)  # exclusive
    # A payment on or before base_from cannot be the last one of an invoice settled after it:
    # filtering before MAX() changes nothing and reads less.
    settled = _settled_sql(where="AND p.received_on > %(base_from)s", having="MAX(p.received_on) <= %(today)s")
    sql = f"""
        SELECT client_id, recent_n, recent_sum, base_n, base_sum FROM (
            SELECT client_id,
                   SUM(CASE WHEN settled_on > %(recent_from)s THEN 1 ELSE 0 END) AS recent_n,
                   SUM(CASE WHEN settled_on > %(recent_from)s THEN days_late ELSE 0 END) AS recent_sum,
                   SUM(CASE WHEN settled_on <= %(recent_from)s THEN 1 ELSE 0 END) AS base_n,
                   SUM(CASE WHEN settled_on <= %(recent_from)s THEN days_late ELSE 0 END) AS base_sum
            FROM ({settled}) t
            GROUP BY client_id
        ) agg
        WHERE recent_n >= {LATENESS_MIN_SETTLED} AND base_n >= {LATENESS_MIN_SETTLED}
          AND recent_sum * base_n - base_sum * recent_n >= {LATENESS_MIN_WORSENING} * recent_n * base_n
        ORDER BY client_id
    """  # noqa: S608 - constants and a fragment built above; values are parameters
    params = {
        "today": _date_param(today),
        "recent_from": _date_param(recent_from),
        "base_from": _date_param(base_from),
    }
    out = []
    for row in _fetch(sql, params):
        recent_avg, base_avg = _avg(row["recent_sum"], row["recent_n"]), _avg(row["base_sum"], row["base_n"])
        out.append(
            Candidate(
                client_id=row["client_id"],
                kind=AlertKind.LATENESS_WORSENING,
                period_key=_month_key(today),
                evidence={
                    "recent_from": (recent_from + dt.timedelta(days=1)).isoformat(),
                    "recent_to": today.isoformat(),
                    "recent_settled": int(row["recent_n"]),
                    "recent_avg_days": recent_avg,
                    "baseline_from": (base_from + dt.timedelta(days=1)).isoformat(),
                    "baseline_to": recent_from.isoformat(),
                    "baseline_settled": int(row["base_n"]),
                    "baseline_avg_days": base_avg,
                    "worsening_days": str(Decimal(recent_avg) - Decimal(base_avg)),
                    "threshold_days": LATENESS_MIN_WORSENING,
                },
            )
        )
    return out


def _credit_limit(today: dt.date) -> list[Candidate]:
    owed = collectible_q("invoices__") & Q(invoices__currency=F("currency"))
    rows = (
        Client.objects.filter(credit_limit__gt=0)
        .exclude(status=Client.Status.WRITTEN_OFF)
        .annotate(balance=Sum("invoices__open_balance", filter=owed), n=Count("invoices", filter=owed))
        .filter(balance__gt=F("credit_limit"))
        .order_by("pk")
        .values("pk", "currency", "credit_limit", "balance", "n")
    )
    out = []
    for row in rows:
        limit, balance = _d(row["credit_limit"]), _d(row["balance"])
        out.append(
            Candidate(
                client_id=row["pk"],
                kind=AlertKind.CREDIT_LIMIT,
                period_key=_month_key(today),
                evidence={
                    "currency": row["currency"],
                    "open_balance": _money(balance),
                    "credit_limit": _money(limit),
                    "excess": _money(balance - limit),
                    "used_pct": str((balance * 100 / limit).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)),
                    "open_invoices": row["n"],
                },
            )
        )
    return out


def _first_broken(today: dt.date) -> list[Candidate]:
    since = today - dt.timedelta(days=FIRST_BROKEN_DAYS)  # exclusive
    bad = Commitment.objects.filter(kind=CommitmentKind.PROMISE, status__in=BAD_PROMISE)
    earlier = bad.filter(client=OuterRef("client"), resolved_on__lt=OuterRef("resolved_on"))
    rows = (
        bad.filter(resolved_on__gt=since, resolved_on__lte=today)
        .exclude(client__status=Client.Status.WRITTEN_OFF)
        .filter(~Exists(earlier))
        .order_by("client_id", "resolved_on", "pk")
        .values("pk", "client_id", "status", "total", "paid_amount", "currency", "made_on", "resolved_on")
    )
    out, seen = [], set()
    for row in rows:
        if row["client_id"] in seen:  # two broken the same first day: the first recorded
            continue
        seen.add(row["client_id"])
        out.append(
            Candidate(
                client_id=row["client_id"],
                kind=AlertKind.FIRST_BROKEN_PROMISE,
                period_key=FIRST_PERIOD,
                evidence={
                    "commitment": row["pk"],
                    "status": row["status"],
                    "currency": row["currency"],
                    "total": _money(row["total"]),
                    "paid": _money(row["paid_amount"]),
                    "made_on": row["made_on"].isoformat(),
                    "resolved_on": row["resolved_on"].isoformat(),
                },
            )
        )
    return out


def _cash(qs: QuerySet[Payment]) -> QuerySet[Payment]:
    return qs.exclude(method__in=NON_CASH_METHODS)


def _pattern(today: dt.date) -> list[Candidate]:
    silence_from = today - dt.timedelta(days=PATTERN_SILENCE_DAYS)  # exclusive
    months_to = _first_of_month(silence_from)  # exclusive
    months_from = months_ago(months_to, PATTERN_MONTHS)
    mine = Payment.objects.filter(client=OuterRef("pk"))
    months_paid = (
        _cash(mine.filter(received_on__gte=months_from, received_on__lt=months_to))
        .order_by()
        .values("client")
        .annotate(n=Count(TruncMonth("received_on"), distinct=True))
        .values("n")
    )
    recent = _cash(mine.filter(received_on__gt=silence_from, received_on__lte=today))
    last = _cash(mine.filter(received_on__lte=today)).order_by("-received_on").values("received_on")[:1]
    overdue = (
        Invoice.objects.filter(open_invoice_q(), overdue_q(today), client=OuterRef("pk"), currency=OuterRef("currency"))
        .order_by()
        .values("client")
    )
    rows = (
        Client.objects.exclude(status=Client.Status.WRITTEN_OFF)
        .annotate(
            months_paid=Subquery(months_paid),
            overdue_amount=Subquery(overdue.annotate(s=Sum("open_balance")).values("s")),
            overdue_count=Subquery(overdue.annotate(n=Count("pk")).values("n")),
            last_payment=Subquery(last),
        )
        .filter(months_paid__gte=PATTERN_MIN_MONTHS_PAID, overdue_amount__gt=0)
        .filter(~Exists(recent))
        .order_by("pk")
        .values("pk", "currency", "months_paid", "overdue_amount", "overdue_count", "last_payment")
    )
    out = []
    for row in rows:
        last_on = row["last_payment"]
        out.append(
            Candidate(
                client_id=row["pk"],
                kind=AlertKind.PATTERN_CHANGE,
                period_key=_month_key(today),
                evidence={
                    "months_from": months_from.isoformat(),
                    "months_to": (months_to - dt.timedelta(days=1)).isoformat(),
                    "months": PATTERN_MONTHS,
                    "months_paid": int(row["months_paid"]),
                    "silence_days": PATTERN_SILENCE_DAYS,
                    "last_payment_on": last_on.isoformat() if last_on else "",
                    "days_without_payment": (today - last_on).days if last_on else None,
                    "currency": row["currency"],
                    "overdue_amount": _money(row["overdue_amount"]),
                    "overdue_invoices": int(row["overdue_count"] or 0),
                },
            )
        )
    return out


def _upcoming_month(today: dt.date) -> dt.date | None:
    """The first day of the month that starts within the lead days (today included)."""
    start = _first_of_month(today + dt.timedelta(days=SEASONAL_LEAD_DAYS))
    return start if start >= today else None


def _seasonal(today: dt.date) -> list[Candidate]:
    month = _upcoming_month(today)
    if month is None:
        return []
    hist_to = _first_of_month(today)  # exclusive: full months only
    hist_from = months_ago(hist_to, SEASONAL_HISTORY_MONTHS)
    # The weak month's two occurrences in the history (always both inside it).
    spans = [(months_ago(month, 12), months_ago(month, 11)), (months_ago(month, 24), months_ago(month, 23))]
    params = {
        "today": _date_param(today),
        "hist_from": _date_param(hist_from),
        "hist_to": _date_param(hist_to),
        "m1_from": _date_param(spans[0][0]),
        "m1_to": _date_param(spans[0][1]),
        "m2_from": _date_param(spans[1][0]),
        "m2_to": _date_param(spans[1][1]),
    }
    in_month = (
        "((due_date >= %(m1_from)s AND due_date < %(m1_to)s) OR (due_date >= %(m2_from)s AND due_date < %(m2_to)s))"
    )
    settled = _settled_sql(
        where="AND i.due_date >= %(hist_from)s AND i.due_date < %(hist_to)s", having="MAX(p.received_on) <= %(today)s"
    )
    sql = f"""
        SELECT client_id, COUNT(*) AS n, SUM(days_late) AS days_sum,
               SUM(CASE WHEN {in_month} THEN 1 ELSE 0 END) AS month_n,
               SUM(CASE WHEN {in_month} THEN days_late ELSE 0 END) AS month_sum
        FROM ({settled}) t
        GROUP BY client_id
    """  # noqa: S608 - fragments built above; values are parameters
    lateness = {row["client_id"]: row for row in _fetch(sql, params)}
    month_q = Q(received_on__gte=spans[0][0], received_on__lt=spans[0][1]) | Q(
        received_on__gte=spans[1][0], received_on__lt=spans[1][1]
    )
    money = {
        row["client_id"]: row
        for row in _cash(
            Payment.objects.filter(
                received_on__gte=hist_from, received_on__lt=hist_to, currency=F("client__currency")
            ).exclude(client__status=Client.Status.WRITTEN_OFF)
        )
        .order_by()
        .values("client_id")
        .annotate(
            total=Sum("amount"),
            month_total=Sum("amount", filter=month_q),
            months=Count(TruncMonth("received_on"), distinct=True),
            currency=Min("currency"),
        )
    }
    out = []
    for client_id in sorted(set(lateness) | set(money)):
        reasons, evidence = [], {}
        late = lateness.get(client_id)
        if late:
            n, total, mn, ms = (int(late[k] or 0) for k in ("n", "days_sum", "month_n", "month_sum"))
            evidence.update(
                settled=n,
                avg_days=_avg(total, n),
                month_settled=mn,
                month_avg_days=_avg(ms, mn),
            )
            if (
                mn >= SEASONAL_MIN_MONTH_SETTLED
                and n >= SEASONAL_MIN_SETTLED
                and ms * n - total * mn >= SEASONAL_MIN_WORSENING * mn * n
            ):
                reasons.append("lateness")
        paid = money.get(client_id)
        if paid:
            total, month_total = _d(paid["total"]), _d(paid["month_total"])
            evidence.update(
                currency=paid["currency"],
                months_paid=int(paid["months"]),
                received_month=_money(month_total / SEASONAL_YEARS),
                received_avg=_money(total / SEASONAL_HISTORY_MONTHS),
            )
            # month_total ÷ years (the month in an average year) ≤ 50 % × total ÷ 24 (an average month)
            if (
                paid["months"] >= SEASONAL_MIN_MONTHS_PAID
                and month_total * 100 * SEASONAL_HISTORY_MONTHS <= SEASONAL_MAX_SHARE * total * SEASONAL_YEARS
            ):
                reasons.append("payments")
        if not reasons:
            continue
        evidence.update(
            month=month.month,
            month_start=month.isoformat(),
            history_from=hist_from.isoformat(),
            history_to=(hist_to - dt.timedelta(days=1)).isoformat(),
            reasons=reasons,
        )
        out.append(
            Candidate(client_id=client_id, kind=AlertKind.SEASONAL, period_key=_month_key(month), evidence=evidence)
        )
    return out


RULES = (_lateness, _credit_limit, _first_broken, _pattern, _seasonal)

# What each rule checks, as the alerts page explains it.
RULE_TEXTS: dict[str, str] = {
    AlertKind.LATENESS_WORSENING: gettext_lazy(
        "El atraso promedio al liquidar de los últimos 90 días es al menos 10 días peor que el de los 12 meses "
        "anteriores (mínimo 2 facturas liquidadas en cada periodo). Una vez al mes."
    ),
    AlertKind.CREDIT_LIMIT: gettext_lazy(
        "El saldo abierto en la moneda del cliente supera su límite de crédito. Una vez al mes."
    ),
    AlertKind.FIRST_BROKEN_PROMISE: gettext_lazy(
        "Su primera promesa de pago incumplida (o cumplida solo en parte) se resolvió en los últimos 7 días."
    ),
    AlertKind.PATTERN_CHANGE: gettext_lazy(
        "Pagaba cada mes (al menos 5 de los 6 meses anteriores), lleva 45 días sin pagar y tiene saldo vencido. "
        "Una vez al mes."
    ),
    AlertKind.SEASONAL: gettext_lazy(
        "En 15 días o menos empieza un mes que en los últimos 2 años fue flojo: sus facturas de ese mes se "
        "pagaron al menos 15 días más tarde que su promedio, o en ese mes pagó la mitad o menos de un mes "
        "promedio. Una vez por temporada."
    ),
}


# --- titles and timeline entries (in the site's language: they are stored) ------------------------


def alert_title(kind: str, ev: dict) -> texts.Text:
    if kind == AlertKind.LATENESS_WORSENING:
        return texts.ALERT_LATENESS(
            recent=texts.number(ev["recent_avg_days"]), base=texts.number(ev["baseline_avg_days"])
        )
    if kind == AlertKind.CREDIT_LIMIT:
        return texts.ALERT_CREDIT_LIMIT(
            balance=texts.money(ev["open_balance"], ev["currency"]),
            limit=texts.money(ev["credit_limit"], ev["currency"]),
        )
    if kind == AlertKind.FIRST_BROKEN_PROMISE:
        return texts.ALERT_FIRST_BROKEN(
            amount=texts.money(ev["total"], ev["currency"]), date=texts.date(dt.date.fromisoformat(ev["resolved_on"]))
        )
    if kind == AlertKind.PATTERN_CHANGE:
        return texts.ALERT_PATTERN(
            paid=ev["months_paid"],
            months=ev["months"],
            days=ev["days_without_payment"] if ev["days_without_payment"] is not None else ev["silence_days"],
        )
    if kind == AlertKind.SEASONAL:
        return texts.ALERT_SEASONAL(month=texts.date(dt.date.fromisoformat(ev["month_start"]), "F"))
    return texts.choice(AlertKind, kind)


def _timeline_body(alert: Alert) -> str:
    with_evidence([alert])
    return " ".join(render_to_string("cobranza/alerts/_evidence_plain.txt", {"alert": alert}).split())


# Kinds raised again each month while the condition lasts — unless the previous one is still
# open or seen: one unclosed alert says it already.
REPEATING = (AlertKind.LATENESS_WORSENING, AlertKind.CREDIT_LIMIT, AlertKind.PATTERN_CHANGE)


def _fresh(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates not raised yet for their period, nor still pending from an earlier one
    (one query)."""
    if not candidates:
        return []
    found = Alert.objects.filter(client_id__in={c.client_id for c in candidates}).filter(
        Q(period_key__in={c.period_key for c in candidates}) | Q(kind__in=REPEATING) & ~Q(status=AlertStatus.CLOSED)
    )
    same_period, pending = set(), set()
    for client_id, kind, period_key, status in found.values_list("client_id", "kind", "period_key", "status"):
        same_period.add((client_id, kind, period_key))
        if kind in REPEATING and status != AlertStatus.CLOSED:
            pending.add((client_id, kind))
    return [
        c
        for c in candidates
        if (c.client_id, c.kind, c.period_key) not in same_period and (c.client_id, c.kind) not in pending
    ]


def raise_alerts(*, today: dt.date) -> dict:
    """Raise every early warning due ``today`` (nightly). Returns ``{"today", "candidates",
    "raised", "by_kind"}``: ``candidates`` matched a rule, ``raised`` are new (the others were
    already raised for the same period)."""
    candidates = [c for rule in RULES for c in rule(today)]
    fresh = _fresh(candidates)
    # Timeline entries are dated on the day judged (the demo judges a past day), never later.
    end_of_day = dt.datetime.combine(today, dt.time(12, 0), tzinfo=timezone.get_current_timezone())
    now = min(clock.now(), end_of_day)
    alerts, entries = [], []
    with translation.override(settings.LANGUAGE_CODE):
        for c in fresh:
            alert = Alert(
                client_id=c.client_id,
                kind=c.kind,
                period_key=c.period_key,
                **texts.columns("title", alert_title(c.kind, c.evidence)),
                evidence=c.evidence,
                raised_on=today,
            )
            alerts.append(alert)
            entries.append(
                Interaction(
                    client_id=c.client_id,
                    kind=Interaction.Kind.SYSTEM,
                    direction=Interaction.Direction.INTERNAL,
                    **texts.columns("summary", texts.ALERT_RAISED(title=texts.from_columns(alert, "title"))),
                    body=_timeline_body(alert),
                    occurred_at=now,
                )
            )
    with transaction.atomic():
        # The unique (client, kind, period_key) is the guarantee; the read above only keeps
        # the timeline from repeating what a concurrent run already raised.
        Alert.objects.bulk_create(alerts, ignore_conflicts=True)
        Interaction.objects.bulk_create(entries)
    return {
        "today": today.isoformat(),
        "candidates": len(candidates),
        "raised": len(alerts),
        "by_kind": dict(sorted(Counter(a.kind for a in alerts).items())),
    }


# --- the weekly digest ---------------------------------------------------------------------------


def digest_week(today: dt.date) -> tuple[dt.date, dt.date, str]:
    """The ISO week the digest run on ``today`` covers: the previous one, Monday to Sunday."""
    start = today - dt.timedelta(days=today.weekday() + 7)
    year, week, _day = start.isocalendar()
    return start, start + dt.timedelta(days=6), f"{year}-W{week:02d}"


def _digest_context(alerts: list[Alert], start: dt.date, end: dt.date, label: str) -> dict:
    by_kind: dict[str, dict] = {}
    for kind, kind_label in AlertKind.choices:
        by_kind[kind] = {"kind": kind, "label": kind_label, "collectors": defaultdict(list), "count": 0}
    by_collector: Counter = Counter()
    for alert in alerts:
        collector = alert.client.collector
        name = (collector.get_full_name() or collector.get_username()) if collector else _("Sin gestor asignado")
        group = by_kind[alert.kind]
        group["collectors"][name].append(alert)
        group["count"] += 1
        by_collector[name] += 1
    kinds = [{**g, "collectors": sorted(g["collectors"].items())} for g in by_kind.values() if g["count"]]
    return {
        "start": start,
        "end": end,
        "week": label,
        "kinds": kinds,
        "by_collector": sorted(by_collector.items()),
        "total": len(alerts),
        "still_open": sum(1 for a in alerts if a.status == AlertStatus.OPEN),
        "url": getattr(settings, "SITE_URL", "").rstrip("/") + reverse("cobranza:alert_list"),
        # Staff mail: the business's name once it is set up, our product's before.
        "company": business.current().trade_name or "Morosos",
    }


def send_weekly_digest(*, today: dt.date) -> int:
    """Email each manager the alerts raised in the previous ISO week; returns emails sent.

    Claim, then send: an ``AlertDigest`` row per manager and week is created before the email
    goes out (unique per user and week), so a second run, or two at once, sends nothing
    twice. A transient SMTP failure releases the claim for the next run; a permanent one is
    recorded on the row. A week without alerts sends no email. Network I/O happens outside any
    transaction.
    """
    start, end, label = digest_week(today)
    alerts = list(
        Alert.objects.filter(raised_on__gte=start, raised_on__lte=end)
        .select_related("client", "client__collector")
        .order_by("client__legal_name", "kind", "pk")
    )
    if not alerts:
        return 0
    domain = getattr(settings, "DUNNING_MESSAGE_ID_DOMAIN", "") or settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1]
    sent = 0
    with translation.override(settings.LANGUAGE_CODE):
        context = _digest_context(alerts, start, end, label)
        subject = " ".join(render_to_string("cobranza/email/digest_subject.txt", context).split())
        for manager in managers():
            message_id = f"<alert-digest.{label}.{manager.pk}@{domain.strip('<> ')}>"
            try:
                with transaction.atomic():
                    digest = AlertDigest.objects.create(
                        user=manager, week=label, message_id=message_id, alerts=len(alerts)
                    )
            except IntegrityError:
                continue  # already sent (or being sent) this week
            body = render_to_string("cobranza/email/digest_body.txt", {**context, "manager": manager})
            try:
                channels.send_email(
                    channels.OutgoingMessage(
                        notice_id=0,
                        channel="email",
                        recipient=manager.email,
                        subject=subject,
                        body=body.strip() + "\n",
                        message_id=message_id,
                    )
                )
            except channels.TransientSendError:
                digest.delete()  # the next run tries again
                continue
            except channels.PermanentSendError as exc:
                AlertDigest.objects.filter(pk=digest.pk).update(error=str(exc)[:255])
                continue
            AlertDigest.objects.filter(pk=digest.pk).update(sent_at=clock.now())
            sent += 1
    log.info("alert digest %s: %d alerts to %d managers", label, len(alerts), sent)
    return sent
