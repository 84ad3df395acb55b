"""Portfolio metrics: the one definition of every number the managers' dashboard shows.

The dashboard page, its CSV/XLSX exports, the PDF report and any API read these functions;
nothing else computes a KPI. Every function is a fixed number of SQL aggregate queries,
whatever the size of the portfolio, and returns plain data (dataclasses, Decimals, dates).
docs/domain.md#kpis states each formula in prose: keep it in step.

These are the dashboard's reads (its selectors, named ``metrics`` because the rest of the code
and the stored summaries know them so: ``summaries`` pickles ``metrics.Dashboard``). The one
write, the month-end aging snapshots the trends read, is ``cobranza.dashboard.jobs``.

Conventions
-----------
- **One currency at a time.** Money is never summed across currencies: every function takes
  ``Filters.currency`` (the dashboard defaults to the company's main currency, the most common
  client currency) and counts only invoices, payments and snapshots in it. The promise-kept
  rate is a count of promises, not money: it counts promises in every currency (see
  ``promise_kept_by_collector``).
- **Period.** ``Filters.start``/``Filters.end`` are inclusive dates. Default: the last complete
  calendar month (DSO and CEI are monthly measures, and it is the month the 12-month trend
  ends with, so the cards and the trend's last point agree).
- **Receivables as of a date D** (``receivables_as_of``): for every invoice issued on or before
  D and not cancelled, its amount minus the allocations of payments *received* on or before D
  (credit notes and negotiated discounts included: they settle the invoice). Computed as
  ``open_balance + allocations received after D``, so only invoices open today or paid after D
  are read. Approximations, because the ledger keeps no dated history for them:
  * a written-off invoice leaves the receivables on the day of its last update
    (``updated_at``, normally the write-off itself) and counts before that;
  * an allocation is dated by its payment's ``received_on`` (credit applied later to an
    older payment counts from the day the money came in).
  At today, the result equals the live client list and ``accounts.selectors.portfolio_aging``.
- **Aging** is ``accounts.rules``' aging rule (``BUCKETS``, ``aging_bucket_sql``): an
  invoice due on D is current on D and 1–30 days overdue from D + 1.
- **Filters** by segment, collector and delinquency profile apply to the client's *current*
  attributes (also for past snapshots).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.contrib.postgres.aggregates import BoolAnd
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts import rules as ledger
from accounts.models import MONEY, NON_CASH_METHODS, ZERO, Client, Invoice, Payment, PaymentAllocation, Segment
from accounts.rules import BUCKETS, OVERDUE_BUCKETS, Bucket
from cobranza import rules
from cobranza.forecast.data import Forecast
from cobranza.models import (
    AgingSnapshot,
    ClientProfile,
    Commitment,
    Dispute,
    Profile,
)
from cobranza.rules import effective_profile_expr, effective_profile_q, effective_profile_sql

MONEY_FIELD = DecimalField(**MONEY)
ONE_DECIMAL = Decimal("0.1")
CENT = Decimal("0.01")

# AgingSnapshot's column for each bucket code.
SNAPSHOT_COLUMNS = {
    "current": "current",
    "1_30": "d1_30",
    "31_60": "d31_60",
    "61_90": "d61_90",
    "91_120": "d91_120",
    "120_plus": "d120_plus",
}

# AgingSnapshot's roll columns for each bucket but the last (docs/domain.md#roll-rate): the
# bucket's balance at the previous close, and what those invoices owe now in the next bucket.
ROLL_BASE = {code: f"roll_base_{column}" for code, column in list(SNAPSHOT_COLUMNS.items())[:-1]}
ROLL_NEXT = {code: f"roll_next_{column}" for code, column in list(SNAPSHOT_COLUMNS.items())[:-1]}

# The promise-kept rule's constants (``cobranza.rules``), importable from here as before.
PROMISE_KINDS = rules.PROMISE_KINDS
JUDGED_STATUSES = rules.JUDGED_STATUSES
# Who a promise counts for: the collector assigned to the client today.
PROMISE_ATTRIBUTION = "client__collector"


# --- the formulas, as shown next to each number --------------------------------------------------

FORMULAS = {
    "receivable": _(
        "Cartera al cierre: importe de las facturas emitidas hasta la fecha final (sin canceladas) "
        "menos los pagos aplicados recibidos hasta esa fecha."
    ),
    "overdue": _("Vencido: cartera al cierre de las facturas con vencimiento anterior a la fecha final."),
    "credit_sales": _("Ventas a crédito: importe de las facturas emitidas en el periodo (sin canceladas)."),
    "collected": _(
        "Cobrado: pagos recibidos en el periodo, sin notas de crédito ni descuentos negociados "
        "(no son dinero recibido)."
    ),
    "dso": _("DSO = cartera al cierre ÷ ventas a crédito del periodo × días del periodo."),
    "best_dso": _("DSO óptimo = cartera al corriente (no vencida) al cierre ÷ ventas a crédito del periodo × días."),
    "add": _("Días promedio de atraso = DSO − DSO óptimo."),
    "cei": _(
        "CEI = (cartera inicial + ventas a crédito − cartera al cierre) ÷ "
        "(cartera inicial + ventas a crédito − cartera al corriente al cierre) × 100."
    ),
    "recovery": _(
        "Tasa de recuperación = cobros en efectivo del periodo aplicados a facturas que ya estaban "
        "vencidas al inicio ÷ saldo vencido al inicio del periodo × 100. Saldo vencido al inicio: "
        "facturas con vencimiento anterior al primer día, con su saldo al cierre del día anterior."
    ),
    "promise_kept": _(
        "Promesas cumplidas = promesas y prórrogas cumplidas ÷ promesas evaluadas (cumplidas, "
        "cumplidas en parte o incumplidas) con resolución en el periodo × 100, en todas las monedas; "
        "cuentan para el gestor asignado hoy al cliente."
    ),
    "disputed": _(
        "Cartera en disputa = saldo de las facturas con una disputa abierta a la fecha final ÷ cartera al cierre × 100."
    ),
    "new_delinquent": _(
        "Nuevos vencimientos: facturas que pasaron a vencidas en el periodo (vencían entre el día "
        "anterior al inicio y el día anterior al fin) con saldo pendiente el día de su vencimiento; "
        "importe = ese saldo."
    ),
    "roll": _(
        "Tasa de traspaso de un tramo al siguiente = de las facturas que estaban en el tramo al cierre "
        "del mes, lo que deben al cierre del mes siguiente estando ya en el tramo siguiente ÷ su saldo "
        "al cierre del mes × 100. Sigue a las mismas facturas: lo cobrado, lo castigado y lo que no "
        "cambió de tramo no se traspasa, y la tasa no pasa de 100 %."
    ),
    "aging": _("Antigüedad de saldos al cierre: días transcurridos desde el vencimiento, a la fecha final."),
}


# --- filters --------------------------------------------------------------------------------------


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def previous_month_end(day: dt.date) -> dt.date:
    return day.replace(day=1) - dt.timedelta(days=1)


def last_complete_month(today: dt.date) -> tuple[dt.date, dt.date]:
    end = previous_month_end(today)
    return end.replace(day=1), end


@dataclass(frozen=True)
class Filters:
    """What the dashboard looks at. ``collector="none"`` means clients without a collector."""

    currency: str
    start: dt.date
    end: dt.date
    segment: int | None = None
    collector: int | str | None = None
    profile: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def opening_date(self) -> dt.date:
        """The opening balance is the close of the day before the period starts."""
        return self.start - dt.timedelta(days=1)

    @classmethod
    def default(cls, *, today: dt.date | None = None, currency: str | None = None, **kwargs) -> Filters:
        today = today or clock.localdate()
        start, end = last_complete_month(today)
        return cls(currency=currency or main_currency(), start=start, end=end, **kwargs)


def main_currency() -> str:
    """The company's main currency: the most common client currency (MXN with no clients)."""
    return currency_options()[0]


def currency_options() -> list[str]:
    """Client currencies, most common first, then any other currency an open invoice uses
    (2 queries)."""
    by_clients = list(
        Client.objects.values("currency")
        .annotate(n=Count("id"))
        .order_by("-n", "currency")
        .values_list("currency", flat=True)
    )
    # Open balances only: the partial index of collectible invoices with a balance (client,
    # due date, currency) answers it without reading the table (~0.3 s less at 1M invoices).
    others = (
        Invoice.objects.filter(ledger.COLLECTIBLE)
        .exclude(currency__in=by_clients)
        .order_by("currency")
        .values_list("currency", flat=True)
        .distinct()
    )
    return by_clients + list(others) or ["MXN"]


def client_q(f: Filters | None, prefix: str = "client__") -> Q:
    """The filters on the client (segment, collector, profile), through ``prefix``."""
    q = Q()
    if f is None:
        return q
    if f.segment:
        q &= Q(**{f"{prefix}segment_id": f.segment})
    if f.collector == "none":
        q &= Q(**{f"{prefix}collector__isnull": True})
    elif f.collector:
        q &= Q(**{f"{prefix}collector_id": f.collector})
    if f.profile:
        q &= effective_profile_q(f.profile, f"{prefix}profile__")
    return q


def _day_end(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` in the site's time zone."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def _sum(expr, **filter_kw) -> Coalesce:
    return Coalesce(Sum(expr, **filter_kw), Value(ZERO), output_field=MONEY_FIELD)


def _cents(value) -> Decimal:
    """Sums to the cent (an average or a product has more decimals; an empty sum is zero)."""
    return Decimal(value or ZERO).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(num: Decimal, den: Decimal, scale: int = 100) -> Decimal | None:
    if not den or den <= 0:
        return None
    return (Decimal(num) / Decimal(den) * scale).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


# --- receivables as of a date ---------------------------------------------------------------------
#
# One set-based query serves every "receivables at D" number (closing, opening, breakdowns,
# month-end snapshots). Instead of a correlated subquery per invoice (what a payment received
# after D gave back), the allocations of payments received after D are summed once and
# hash-joined, and the invoices read are the union of three index-driven sets: open today (the
# partial index on collectible invoices), written off after D, and touched by a later payment.
# The rows come back grouped by the requested dimensions (a small cube), and Python adds the
# cube up for each view, so the dashboard reads the invoice table twice (closing and opening),
# not once per table it shows.

_DIMENSIONS_SQL = {
    "invoice": "i.id",
    "due_date": "i.due_date",
    "client": "i.client_id",
    "currency": "i.currency",
    "segment": "c.segment_id",
    "collector": "c.collector_id",
    "profile": effective_profile_sql("pr"),
}


def _tables() -> dict[str, str]:
    q = connection.ops.quote_name
    through = Dispute.invoices.through
    return {
        "invoice": q(Invoice._meta.db_table),
        "client": q(Client._meta.db_table),
        "payment": q(Payment._meta.db_table),
        "allocation": q(PaymentAllocation._meta.db_table),
        "dispute": q(Dispute._meta.db_table),
        "dispute_invoice": q(through._meta.db_table),
        "dispute_invoice_fk": q(through._meta.get_field("dispute").column),
        "dispute_invoice_inv": q(through._meta.get_field("invoice").column),
        "profile": q(ClientProfile._meta.db_table),
    }


def _date(day: dt.date):
    return connection.ops.adapt_datefield_value(day)


def _bucket_case(age_on: dt.date) -> tuple[str, list]:
    """SQL giving an invoice's bucket code on ``age_on`` (``accounts.rules``' aging rule)."""
    return ledger.aging_bucket_sql(age_on, "i.due_date")


def _client_filter(f: Filters | None) -> tuple[str, list]:
    """The dashboard's client filters as ``AND i.client_id IN (…)``, compiled by the ORM from
    ``client_q`` (one definition of what a segment, collector or profile filter means)."""
    q = client_q(f, prefix="")
    if not q:
        return "", []
    sql, params = Client.objects.filter(q).values("id").query.sql_with_params()
    return f" AND i.client_id IN ({sql})", list(params)


# What the receivables cube reads of an invoice (``_cube_sql``'s ``candidates``).
_CANDIDATE_COLUMNS = "i.id, i.client_id, i.due_date, i.status, i.open_balance, i.currency"


def _cube(
    f: Filters | None,
    as_of: dt.date,
    *,
    age_on: dt.date | None = None,
    dims: tuple[str, ...] = (),
    cash_between: tuple[dt.date, dt.date] | None = None,
) -> list[dict]:
    """Receivables at the close of ``as_of``, grouped by ``dims`` (see ``_DIMENSIONS_SQL``)
    and by aging bucket on ``age_on`` (default ``as_of``) and disputed-or-not at ``as_of``.
    Each row: the dimension values, ``bucket``, ``disputed``, ``amount`` and ``invoices``;
    with ``cash_between``, also ``cash``: cash received in that range and applied to those
    invoices (for the recovery rate). One query; see the module docstring for the definition."""
    sql, params = _cube_sql(f, as_of, age_on=age_on, dims=dims, cash_between=cash_between)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [col[0] for col in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _cube_sql(
    f: Filters | None,
    as_of: dt.date,
    *,
    age_on: dt.date | None = None,
    dims: tuple[str, ...] = (),
    cash_between: tuple[dt.date, dt.date] | None = None,
    client_ids: list[int] | None = None,
    invoice_ids: list[int] | None = None,
) -> tuple[str, list]:
    """The statement behind ``_cube`` and its parameters, for use as a subquery (the
    month-end snapshot inserts from it without the rows passing through Python).

    ``client_ids`` limits every part to the invoices and payments of those clients (a
    client's rows of the cube depend on its own invoices, payments and disputes only: the
    snapshot of the clients an import touched); ``invoice_ids`` to those invoices and their
    allocations (an invoice's row depends on its own allocations and disputes only)."""
    t = _tables()
    age_on = age_on or as_of
    day, day_end = _date(as_of), connection.ops.adapt_datetimefield_value(_day_end(as_of))
    bucket_sql, bucket_params = _bucket_case(age_on)
    where_client, client_params = _client_filter(f)
    dim_sql = [_DIMENSIONS_SQL[d] for d in dims]
    collectible = ledger.collectible_sql("i")
    written_off_after = "(i.status = %s AND i.updated_at >= %s)"
    # An allocation's payment belongs to its invoice's client (a rule of the ledger writer).
    scope_i, scope_p, scope = "", "", []
    if client_ids is not None:
        scope_i, scope_p = (
            " AND i.client_id IN (SELECT id FROM cube_ids)",
            " AND p.client_id IN (SELECT id FROM cube_ids)",
        )
    elif invoice_ids is not None:
        scope_i, scope_p = " AND i.id IN (SELECT id FROM cube_ids)", " AND a.invoice_id IN (SELECT id FROM cube_ids)"
    if scope_i:
        # The ids once, as one array literal: tens of thousands of them repeated in each part
        # (``= ANY(ARRAY[…])``) cost more to parse and plan than the statement takes to run.
        ids = client_ids if client_ids is not None else invoice_ids
        scope = ["{" + ",".join(str(int(pk)) for pk in ids) + "}"]

    ctes = [
        *(["cube_ids AS MATERIALIZED (SELECT DISTINCT unnest(%s::bigint[]) AS id)"] if scope else []),
        f"""late AS (
            SELECT a.invoice_id AS invoice_id, SUM(a.amount) AS paid_after
            FROM {t["allocation"]} a JOIN {t["payment"]} p ON p.id = a.payment_id
            WHERE p.received_on > %s{scope_p}
            GROUP BY a.invoice_id)""",
        # The invoices issued by the day that may have had a balance at its close, in three
        # disjoint parts read with no de-duplication: collectible now (from the covering index
        # alone), written off after the day, and the others paid after the day (not cancelled,
        # not written off: a write-off by the day ended the balance). The last part looks each
        # invoice up by its key (LATERAL … LIMIT 1 keeps the planner from hashing the whole
        # invoice table for the few thousand invoices paid after a month-end). That part needs
        # no scope of its own: ``late`` is scoped already (an allocation's invoice is of its
        # payment's client), and the scope there was a scan of the ids per invoice.
        f"""candidates AS (
            SELECT {_CANDIDATE_COLUMNS} FROM {t["invoice"]} i WHERE {collectible} AND i.issue_date <= %s{scope_i}
            UNION ALL SELECT {_CANDIDATE_COLUMNS} FROM {t["invoice"]} i
                WHERE {written_off_after} AND i.issue_date <= %s{scope_i}
            UNION ALL SELECT i.* FROM late CROSS JOIN LATERAL (
                SELECT {_CANDIDATE_COLUMNS} FROM {t["invoice"]} i
                WHERE i.id = late.invoice_id AND NOT {collectible} AND i.status NOT IN (%s, %s)
                  AND i.issue_date <= %s
                LIMIT 1) i)""",
        f"""disputed_then AS (
            SELECT DISTINCT di.{t["dispute_invoice_inv"]} AS invoice_id
            FROM {t["dispute_invoice"]} di JOIN {t["dispute"]} d ON d.id = di.{t["dispute_invoice_fk"]}
            WHERE d.opened_on <= %s AND (d.resolved_on IS NULL OR d.resolved_on > %s))""",
        f"""any_dispute AS (SELECT DISTINCT {t["dispute_invoice_inv"]} AS invoice_id FROM {t["dispute_invoice"]})""",
    ]
    cte_params = [
        *scope,
        day,
        day,
        Invoice.Status.WRITTEN_OFF.value,
        day_end,
        day,
        Invoice.Status.CANCELLED.value,
        Invoice.Status.WRITTEN_OFF.value,
        day,
        day,
        day,
    ]
    cash_select, cash_join = "", ""
    if cash_between:
        non_cash = ", ".join(["%s"] * len(NON_CASH_METHODS))
        ctes.append(
            f"""cash AS (
            SELECT a.invoice_id AS invoice_id, SUM(a.amount) AS amount
            FROM {t["allocation"]} a JOIN {t["payment"]} p ON p.id = a.payment_id
            WHERE p.received_on >= %s AND p.received_on <= %s AND p.method NOT IN ({non_cash})
            GROUP BY a.invoice_id)"""
        )
        cte_params += [_date(cash_between[0]), _date(cash_between[1]), *(m.value for m in NON_CASH_METHODS)]
        cash_select = ", SUM(COALESCE(cash.amount, 0)) AS cash"
        cash_join = "LEFT JOIN cash ON cash.invoice_id = i.id"
    # Per invoice, each candidate is one row already (disjoint parts, every joined relation at
    # most one row per invoice or client): no grouping, which the forecast and the profiles'
    # receivables would otherwise pay for on every open invoice.
    per_invoice = "invoice" in dims

    needs_client = any(d in ("segment", "collector", "profile") for d in dims)
    joins = [
        f"JOIN {t['client']} c ON c.id = i.client_id" if needs_client else "",
        f"LEFT JOIN {t['profile']} pr ON pr.client_id = i.client_id" if "profile" in dims else "",
    ]
    select = [*(f"{sql} AS {name}" for name, sql in zip(dims, dim_sql, strict=True))]
    balance = "(i.open_balance + COALESCE(late.paid_after, 0))"
    disputed = "CASE WHEN dt.invoice_id IS NOT NULL OR (i.status = %s AND ad.invoice_id IS NULL) THEN 1 ELSE 0 END"
    currency_sql, currency_params = ("AND i.currency = %s", [f.currency]) if f is not None else ("", [])
    group_by = "GROUP BY " + ", ".join(str(n) for n in range(1, len(dims) + 3))
    amount, invoices = f"SUM({balance})", "COUNT(*)"
    if per_invoice:
        group_by, amount, invoices = "", balance, "1"
        cash_select = cash_select.replace("SUM(COALESCE(cash.amount, 0))", "COALESCE(cash.amount, 0)")
    sql = f"""
        WITH {", ".join(ctes)}
        SELECT {"".join(s + ", " for s in select)}{bucket_sql} AS bucket, {disputed} AS disputed,
               {amount} AS amount, {invoices} AS invoices{cash_select}
        FROM candidates i
        {" ".join(joins)}
        LEFT JOIN late ON late.invoice_id = i.id
        LEFT JOIN disputed_then dt ON dt.invoice_id = i.id
        LEFT JOIN any_dispute ad ON ad.invoice_id = i.id
        {cash_join}
        WHERE {balance} > 0 {currency_sql}{where_client}
        {group_by}
    """
    params = [
        *cte_params,
        *bucket_params,
        Invoice.Status.DISPUTED.value,
        *currency_params,
        *client_params,
    ]
    return sql, params


@dataclass
class Aging:
    as_of: dt.date
    currency: str
    buckets: list[tuple[Bucket, Decimal, int]]  # (bucket, amount, invoices)
    disputed: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return sum((amount for _b, amount, _n in self.buckets), ZERO)

    @property
    def current(self) -> Decimal:
        return self.buckets[0][1]

    @property
    def overdue(self) -> Decimal:
        return self.total - self.current

    @property
    def count(self) -> int:
        return sum(n for _b, _a, n in self.buckets)

    @property
    def overdue_count(self) -> int:
        return self.count - self.buckets[0][2]

    def amount(self, code: str) -> Decimal:
        return next(amount for b, amount, _n in self.buckets if b.code == code)


def _aging_from(cube: list[dict], as_of: dt.date, currency: str) -> Aging:
    amounts = {b.code: ZERO for b in BUCKETS}
    counts = dict.fromkeys(amounts, 0)
    disputed = ZERO
    for row in cube:
        amount = Decimal(row["amount"] or 0)
        amounts[row["bucket"]] += amount
        counts[row["bucket"]] += row["invoices"]
        if row["disputed"]:
            disputed += amount
    return Aging(
        as_of=as_of,
        currency=currency,
        buckets=[(b, _cents(amounts[b.code]), counts[b.code]) for b in BUCKETS],
        disputed=_cents(disputed),
    )


def receivables_as_of(f: Filters, as_of: dt.date | None = None) -> Aging:
    """Receivables at the close of ``as_of`` (default: the period end) by aging bucket, with
    the disputed part (1 query)."""
    as_of = as_of or f.end
    return _aging_from(_cube(f, as_of), as_of, f.currency)


@dataclass
class Opening:
    """The position at the start of the period: balances at the close of the day before,
    aged on the first day (so "overdue" means due before the period starts)."""

    aging: Aging
    recovered: Decimal  # cash received in the period applied to the invoices overdue at start

    @property
    def total(self) -> Decimal:
        return self.aging.total

    @property
    def overdue(self) -> Decimal:
        return self.aging.overdue


def opening_position(f: Filters) -> Opening:
    """Opening receivables and what the period's cash recovered of the overdue part (1 query)."""
    cube = _cube(f, f.opening_date, age_on=f.start, cash_between=(f.start, f.end))
    recovered = sum((Decimal(r["cash"] or 0) for r in cube if r["bucket"] != BUCKETS[0].code), ZERO)
    return Opening(aging=_aging_from(cube, f.opening_date, f.currency), recovered=_cents(recovered))


# --- flows in the period --------------------------------------------------------------------------


def _sales_invoices(f: Filters) -> QuerySet[Invoice]:
    """The period's credit sales: invoices issued in it, cancelled ones left out."""
    return Invoice.objects.filter(
        client_q(f), currency=f.currency, issue_date__gte=f.start, issue_date__lte=f.end
    ).exclude(status=Invoice.Status.CANCELLED)


def _cash_payments(f: Filters) -> QuerySet[Payment]:
    return Payment.objects.filter(
        client_q(f), currency=f.currency, received_on__gte=f.start, received_on__lte=f.end
    ).exclude(method__in=NON_CASH_METHODS)


@dataclass
class Flows:
    """Credit sales and cash of the period grouped by segment, collector and profile
    (``segment``, ``collector``, ``profile`` keys; ``s`` the amount, ``n`` the payments)."""

    sales: list[dict]
    cash: list[dict]


def _by_dimensions(prefix: str = "client__") -> dict:
    return {dim: _dimension(dim, prefix)[0]["key"] for dim in DIMENSIONS}


def period_flows(f: Filters) -> Flows:
    """The period's credit sales and cash collected, grouped by the breakdown dimensions so
    the totals and every breakdown come from the same two queries."""
    dims = _by_dimensions()
    sales = _sales_invoices(f).annotate(**dims).values(*dims).annotate(s=Sum("amount")).order_by()
    cash = _cash_payments(f).annotate(**dims).values(*dims).annotate(s=Sum("amount"), n=Count("id")).order_by()
    return Flows(sales=list(sales), cash=list(cash))


# --- the promise-kept rate (docs/domain.md#promise-kept-rate) ------------------------------------
#
# ONE definition, read by the dashboard and the metrics API (``kpis``), the worklist
# (``cobranza.worklist.selectors.promise_kept_rates``) and the collector-performance page
# (``cobranza.performance.selectors.collector_performance``):
#
# - which commitments: promises to pay and term extensions (``cobranza.rules.PROMISE_KINDS``;
#   an extension is a promise of a new date). A payment plan is judged installment by
#   installment, not as one promise, so it is left out;
# - judged = kept + kept in part + broken; rate = kept ÷ judged (open and cancelled ones are
#   not judged);
# - window: judged (``resolved_on``) within the period, both ends included. Every page passes
#   and labels its own period: the worklist the last ``PROMISE_RATE_DAYS`` days, the
#   performance page and the dashboard the period chosen. The same period gives the same number;
# - attributed to the collector assigned to the client today (``PROMISE_ATTRIBUTION``), as the
#   dashboard's collector filter, the API and the money collected on the performance page are:
#   the collector who works the account answers for its promises, whoever typed them in (a
#   manager, a colleague covering, the client on the self-service portal);
# - every currency: it counts promises, it sums no money, and a collector's rate must not
#   change with the currency a page happens to report money in.


def promise_window_q(start: dt.date, end: dt.date) -> Q:
    """The commitments a promise-kept rate over ``[start, end]`` looks at."""
    return rules.promise_q() & rules.resolved_between_q(start, end)


def promise_kept_aggregates(within: Q | None = None) -> dict:
    """``kept`` and ``judged`` as aggregate expressions (``cobranza.rules``), so grouped
    queries use the very same rule; ``within`` narrows both (e.g. ``promise_window_q``)."""
    return rules.promise_kept_aggregates(within)


def promise_kept_counts(commitments: QuerySet[Commitment]) -> tuple[int, int]:
    """``(kept, judged)`` over any set of commitments (one query)."""
    row = commitments.aggregate(**promise_kept_aggregates())
    return row["kept"], row["judged"]


def promises_resolved_in(f: Filters) -> QuerySet[Commitment]:
    """The promises the dashboard's rate counts: the period's, the filters' clients."""
    return Commitment.objects.filter(client_q(f), promise_window_q(f.start, f.end))


def promise_kept_by_collector(
    *, start: dt.date, end: dt.date, clients: Q | None = None
) -> dict[int | None, tuple[int, int]]:
    """``{collector id (None: no collector): (kept, judged)}`` over ``[start, end]``, for the
    clients ``clients`` selects (a filter on Commitment, e.g. ``client__collector=…``). One
    query. Collectors without a judged promise in the window are absent."""
    rows = (
        Commitment.objects.filter(promise_window_q(start, end), clients or Q())
        .order_by()
        .values(PROMISE_ATTRIBUTION)
        .annotate(**promise_kept_aggregates())
    )
    return {row[PROMISE_ATTRIBUTION]: (row["kept"], row["judged"]) for row in rows}


def new_delinquencies(f: Filters) -> tuple[int, Decimal]:
    """Invoices that became overdue in the period with a balance the day they fell due:
    ``(count, amount)``. An invoice due on D is overdue from D + 1, so its due date falls
    between the day before the start and the day before the end. What was paid by the due
    date is one grouped join over those invoices' allocations (1 query)."""
    paid_by_due = Coalesce(
        Sum("allocations__amount", filter=Q(allocations__payment__received_on__lte=F("due_date"))),
        Value(ZERO),
        output_field=MONEY_FIELD,
    )
    row = (
        Invoice.objects.filter(
            client_q(f),
            currency=f.currency,
            due_date__gte=f.start - dt.timedelta(days=1),
            due_date__lte=f.end - dt.timedelta(days=1),
        )
        .exclude(status=Invoice.Status.CANCELLED)
        .exclude(status=Invoice.Status.WRITTEN_OFF, updated_at__date__lte=F("due_date"))
        .annotate(due_balance=ExpressionWrapper(F("amount") - paid_by_due, output_field=MONEY_FIELD))
        .filter(due_balance__gt=0)
        .aggregate(n=Count("id"), s=_sum("due_balance"))
    )
    return row["n"], _cents(row["s"])


# --- the KPI set of the period --------------------------------------------------------------------


@dataclass
class Kpis:
    filters: Filters
    closing: Aging
    opening: Opening
    credit_sales: Decimal
    collected: Decimal
    payments: int
    promises_kept: int
    promises_judged: int
    new_delinquent_count: int
    new_delinquent_amount: Decimal

    @property
    def receivable(self) -> Decimal:
        return self.closing.total

    @property
    def overdue(self) -> Decimal:
        return self.closing.overdue

    @property
    def overdue_pct(self) -> Decimal | None:
        return _ratio(self.closing.overdue, self.closing.total)

    @property
    def dso(self) -> Decimal | None:
        return _ratio(self.closing.total, self.credit_sales, self.filters.days)

    @property
    def best_dso(self) -> Decimal | None:
        return _ratio(self.closing.current, self.credit_sales, self.filters.days)

    @property
    def add(self) -> Decimal | None:
        """Average days delinquent, from the unrounded DSOs."""
        if not self.credit_sales:
            return None
        days = Decimal(self.filters.days)
        exact = (self.closing.total - self.closing.current) / self.credit_sales * days
        return exact.quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)

    @property
    def cei(self) -> Decimal | None:
        base = self.opening.total + self.credit_sales
        return _ratio(base - self.closing.total, base - self.closing.current)

    @property
    def recovery_rate(self) -> Decimal | None:
        return _ratio(self.opening.recovered, self.opening.overdue)

    @property
    def promise_kept_rate(self) -> Decimal | None:
        return _ratio(self.promises_kept, self.promises_judged)

    @property
    def disputed_pct(self) -> Decimal | None:
        return _ratio(self.closing.disputed, self.closing.total)


def kpis(f: Filters, *, closing: list[dict] | None = None, flows: Flows | None = None) -> Kpis:
    """Every KPI of the period (6 queries; 4 when the caller passes the closing cube and the
    period's flows)."""
    flows = flows or period_flows(f)
    kept, judged = promise_kept_counts(promises_resolved_in(f))
    new_count, new_amount = new_delinquencies(f)
    closing_aging = _aging_from(closing, f.end, f.currency) if closing is not None else receivables_as_of(f)
    return Kpis(
        filters=f,
        closing=closing_aging,
        opening=opening_position(f),
        credit_sales=_cents(sum((Decimal(r["s"] or 0) for r in flows.sales), ZERO)),
        collected=_cents(sum((Decimal(r["s"] or 0) for r in flows.cash), ZERO)),
        payments=sum(r["n"] for r in flows.cash),
        promises_kept=kept,
        promises_judged=judged,
        new_delinquent_count=new_count,
        new_delinquent_amount=new_amount,
    )


# --- trends and roll rates (the month-end snapshots they read: jobs) ------------------------------


def month_ends(last: dt.date, months: int) -> list[dt.date]:
    """``months`` month ends, oldest first, ending with the month of ``last``."""
    ends = [month_end(last)]
    for _i in range(months - 1):
        ends.append(previous_month_end(ends[-1]))
    return ends[::-1]


TREND_MIN_MONTHS, TREND_MAX_MONTHS = 12, 36


def trend_months(f: Filters) -> int:
    """The trend covers the period's months: 12 at least (a one-month period still shows a
    year), 36 at most (the longest period the filters take)."""
    spanned = (f.end.year * 12 + f.end.month) - (f.start.year * 12 + f.start.month) + 1
    return max(TREND_MIN_MONTHS, min(TREND_MAX_MONTHS, spanned))


def trend_month_ends(f: Filters) -> list[dt.date]:
    """The month ends the trend reads: its months and the close before the first (its opening)."""
    return month_ends(trend_last_month(f.end), trend_months(f) + 1)


def trend_last_month(end: dt.date) -> dt.date:
    """The trend ends with the month of ``end`` when ``end`` closes it, else the month before."""
    return end if end == month_end(end) else previous_month_end(end)


@dataclass
class TrendPoint:
    month_end: dt.date
    has_snapshot: bool
    receivable: Decimal | None
    current: Decimal | None
    overdue: Decimal | None
    buckets: dict[str, Decimal]
    credit_sales: Decimal
    opening: Decimal | None  # the previous month's closing receivables
    computed_at: dt.datetime | None

    @property
    def days(self) -> int:
        return self.month_end.day

    @property
    def dso(self) -> Decimal | None:
        if self.receivable is None:
            return None
        return _ratio(self.receivable, self.credit_sales, self.days)

    @property
    def cei(self) -> Decimal | None:
        if self.receivable is None or self.opening is None:
            return None
        base = self.opening + self.credit_sales
        return _ratio(base - self.receivable, base - self.current)


@dataclass
class RollRow:
    """From this month's close to the next one, per transition in ``ROLL_TRANSITIONS``: the
    bucket's balance at this close (``bases``), what those same invoices owe at the next close
    in the next bucket (``rolled``) and the rate (rolled ÷ base × 100; None without a base or
    without the next month's roll figures)."""

    month_end: dt.date
    next_month_end: dt.date
    rates: list[Decimal | None]
    bases: list[Decimal] = field(default_factory=list)
    rolled: list[Decimal] = field(default_factory=list)


ROLL_TRANSITIONS: list[tuple[Bucket, Bucket]] = list(zip(BUCKETS[:-1], BUCKETS[1:], strict=True))


@dataclass
class Trend:
    points: list[TrendPoint]
    roll: list[RollRow] = field(default_factory=list)

    @property
    def missing(self) -> list[dt.date]:
        """Months without snapshot rows after the first month that has some (or every month
        when none has): a gap to fill. Leading months without rows are taken as before the
        portfolio's history (a month with nothing receivable leaves no rows either)."""
        taken = [i for i, p in enumerate(self.points) if p.has_snapshot]
        first = taken[0] if taken else 0
        return [p.month_end for p in self.points[first:] if not p.has_snapshot]

    @property
    def computed_at(self) -> dt.datetime | None:
        stamps = [p.computed_at for p in self.points if p.computed_at]
        return max(stamps) if stamps else None


def trend(f: Filters, *, months: int = 12) -> Trend:
    """Month-end receivables, overdue, DSO and CEI for ``months`` months ending with
    ``trend_last_month(f.end)``, and the roll rates between consecutive months, from the
    aging snapshots and the credit sales of each month (3 queries).

    A month counts as taken when the snapshot has any row that month (any client or
    currency); within a taken month, a slice without rows has nothing receivable."""
    ends = month_ends(trend_last_month(f.end), months + 1)  # one more: the first month's opening
    columns = list(SNAPSHOT_COLUMNS.values())
    roll_columns = [*ROLL_BASE.values(), *ROLL_NEXT.values()]
    snap = {
        row["month_end"]: row
        for row in AgingSnapshot.objects.filter(client_q(f), currency=f.currency, month_end__in=ends)
        .values("month_end")
        .annotate(
            **{col: _sum(col) for col in columns + roll_columns},
            stamp=Max("computed_at"),
        )
        .order_by()
    }
    # Months with rows (any client or currency), and whether they all carry roll figures.
    taken_rolled = dict(
        AgingSnapshot.objects.filter(month_end__in=ends)
        .values("month_end")
        .annotate(ok=BoolAnd("has_roll"))
        .order_by()
        .values_list("month_end", "ok")
    )
    taken = set(taken_rolled)
    rolled_months = {month for month, ok in taken_rolled.items() if ok}
    sales = {
        (row["m"].date() if isinstance(row["m"], dt.datetime) else row["m"]): row["s"]
        for row in Invoice.objects.filter(
            client_q(f), currency=f.currency, issue_date__gte=ends[1].replace(day=1), issue_date__lte=ends[-1]
        )
        .exclude(status=Invoice.Status.CANCELLED)
        .annotate(m=TruncMonth("issue_date"))
        .values("m")
        .annotate(s=Sum("amount"))
        .order_by()
    }
    points = []
    for previous, end in zip(ends[:-1], ends[1:], strict=True):
        empty = dict.fromkeys(columns, ZERO) | {"stamp": None}
        row = snap.get(end, empty if end in taken else None)
        before = snap.get(previous, empty if previous in taken else None)
        buckets = {code: _cents(row[col]) for code, col in SNAPSHOT_COLUMNS.items()} if row else {}
        receivable = sum(buckets.values(), ZERO) if row else None
        points.append(
            TrendPoint(
                month_end=end,
                has_snapshot=row is not None,
                receivable=receivable,
                current=buckets.get("current") if row else None,
                overdue=(receivable - buckets["current"]) if row else None,
                buckets=buckets,
                credit_sales=_cents(sales.get(end.replace(day=1))),
                opening=_cents(sum((before[c] for c in columns), ZERO)) if before else None,
                computed_at=row["stamp"] if row else None,
            )
        )
    roll = []
    for this, nxt in zip(points[:-1], points[1:], strict=True):
        # The next close's rows carry the roll from this close (docs/domain.md#roll-rate).
        row = snap.get(nxt.month_end) if nxt.month_end in rolled_months else None
        if nxt.has_snapshot and nxt.month_end in rolled_months:
            bases = [_cents(row[ROLL_BASE[a.code]]) if row else ZERO for a, _b in ROLL_TRANSITIONS]
            rolled = [_cents(row[ROLL_NEXT[a.code]]) if row else ZERO for a, _b in ROLL_TRANSITIONS]
            rates = [_ratio(r, b) for r, b in zip(rolled, bases, strict=True)]
        else:
            bases, rolled, rates = [], [], [None] * len(ROLL_TRANSITIONS)
        roll.append(RollRow(this.month_end, nxt.month_end, rates, bases, rolled))
    return Trend(points=points, roll=roll)


# --- breakdowns -----------------------------------------------------------------------------------

DIMENSIONS = ("segment", "collector", "profile")


def _dimension(dimension: str, prefix: str = "client__") -> tuple[dict, list[str]]:
    """Annotations that group rows by the client's segment, collector or effective profile."""
    if dimension == "segment":
        return {"key": F(f"{prefix}segment_id")}, ["key"]
    if dimension == "collector":
        return {"key": F(f"{prefix}collector_id")}, ["key"]
    if dimension == "profile":
        return {"key": effective_profile_expr(f"{prefix}profile__")}, ["key"]
    raise ValueError(dimension)


@dataclass
class BreakdownRow:
    key: object
    label: str
    receivable: Decimal = ZERO
    current: Decimal = ZERO
    over_90: Decimal = ZERO
    credit_sales: Decimal = ZERO
    collected: Decimal = ZERO
    days: int = 0

    @property
    def overdue(self) -> Decimal:
        return self.receivable - self.current

    @property
    def overdue_pct(self) -> Decimal | None:
        return _ratio(self.overdue, self.receivable)

    @property
    def dso(self) -> Decimal | None:
        return _ratio(self.receivable, self.credit_sales, self.days)


OVER_90 = tuple(b for b in OVERDUE_BUCKETS if (b.min_days or 0) > 90)


def _labels(dimension: str, keys: set) -> dict[object, str]:
    """What each key of a breakdown is called (at most 1 query)."""
    if dimension == "segment":
        return {pk: seg.name for pk, seg in Segment.objects.in_bulk([k for k in keys if k is not None]).items()}
    if dimension == "collector":
        users = get_user_model().objects.in_bulk([k for k in keys if k is not None])
        labels = {pk: (f"{u.first_name} {u.last_name}".strip() or u.get_username()) for pk, u in users.items()}
        return {**labels, None: str(_("Sin gestor"))}
    return {k: (str(Profile(k).label) if k in Profile.values else str(k)) for k in keys}


def breakdown(
    f: Filters, dimension: str, *, closing: list[dict] | None = None, flows: Flows | None = None
) -> list[BreakdownRow]:
    """Receivables at the period end, credit sales, cash collected and DSO per segment,
    collector or profile, largest receivable first (3 queries and 1 for the names; only the
    names when the caller passes the closing cube and the flows)."""
    over_90 = {b.code for b in OVER_90}
    if closing is None:
        closing = _cube(f, f.end, dims=(dimension,))
    flows = flows or period_flows(f)
    rows: dict[object, BreakdownRow] = {}

    def get(key) -> BreakdownRow:
        if key not in rows:
            rows[key] = BreakdownRow(key=key, label="", days=f.days)
        return rows[key]

    for row in closing:
        item = get(row[dimension])
        amount = Decimal(row["amount"] or 0)
        item.receivable += amount
        if row["bucket"] == BUCKETS[0].code:
            item.current += amount
        elif row["bucket"] in over_90:
            item.over_90 += amount
    for row in flows.sales:
        get(row[dimension]).credit_sales += Decimal(row["s"] or 0)
    for row in flows.cash:
        get(row[dimension]).collected += Decimal(row["s"] or 0)
    labels = _labels(dimension, set(rows))
    for item in rows.values():
        for name in ("receivable", "current", "over_90", "credit_sales", "collected"):
            setattr(item, name, _cents(getattr(item, name)))
        item.label = labels.get(item.key, str(item.key))
    return sorted(rows.values(), key=lambda r: (-r.receivable, -r.credit_sales, r.label))


def kpis_and_breakdowns(f: Filters) -> tuple[Kpis, dict[str, list[BreakdownRow]]]:
    """The dashboard's KPI set and its breakdowns, reading the closing receivables once."""
    closing = _cube(f, f.end, dims=DIMENSIONS)
    flows = period_flows(f)
    k = kpis(f, closing=closing, flows=flows)
    return k, {dim: breakdown(f, dim, closing=closing, flows=flows) for dim in DIMENSIONS}


# --- the whole dashboard --------------------------------------------------------------------------


@dataclass
class Dashboard:
    """Everything the dashboard page, its exports, the PDF report and a stored summary hold."""

    filters: Filters
    kpis: Kpis
    trend: Trend
    breakdowns: dict[str, list[BreakdownRow]]
    # The cash expected in the coming weeks, from the day it was computed (not the period).
    forecast: Forecast | None = None


def dashboard(f: Filters, *, forecast: Forecast | None = None) -> Dashboard:
    """The dashboard's data (8 + 3 queries). ``forecast``: the cash forecast to show with it
    (``cobranza.forecast``, which builds on this module, computes it: see ``summaries``)."""
    kpis_, breakdowns = kpis_and_breakdowns(f)
    return Dashboard(
        filters=f, kpis=kpis_, trend=trend(f, months=trend_months(f)), breakdowns=breakdowns, forecast=forecast
    )
