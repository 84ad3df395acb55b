"""Portfolio metrics: the one definition of every number the managers' dashboard shows.

The dashboard page, its CSV/XLSX exports, the PDF report and any API read these functions;
nothing else computes a KPI. Every function is a fixed number of SQL aggregate queries,
whatever the size of the portfolio, and returns plain data (dataclasses, Decimals, dates).

Conventions
-----------
- **One currency at a time.** Money is never summed across currencies: every function takes
  ``Filters.currency`` (the dashboard defaults to the company's main currency, the most common
  client currency) and counts only invoices, payments, promises and snapshots in it.
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
- **Aging** reuses ``accounts.selectors.BUCKETS`` and ``due_range``: an invoice due on D is
  current on D and 1–30 days overdue from D + 1.
- **Filters** by segment, collector and delinquency profile apply to the client's *current*
  attributes (also for past snapshots).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import MONEY, NON_CASH_METHODS, ZERO, Client, Invoice, Payment, PaymentAllocation
from accounts.selectors import BUCKETS, OVERDUE_BUCKETS, Bucket, due_range

from .models import AgingSnapshot, Commitment, CommitmentKind, CommitmentStatus, Dispute, Profile

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

# Commitments that count as promises for the promise-kept rate: a promise to pay and a term
# extension (a promise of a new date). Payment plans are judged installment by installment.
PROMISE_KINDS = (CommitmentKind.PROMISE, CommitmentKind.EXTENSION)
JUDGED_STATUSES = (CommitmentStatus.KEPT, CommitmentStatus.PARTIAL, CommitmentStatus.BROKEN)


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
        "cumplidas en parte o incumplidas) con resolución en el periodo × 100."
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
        "Tasa de traspaso = saldo de un tramo al cierre del mes siguiente ÷ saldo del tramo anterior "
        "al cierre del mes × 100 (fotos de antigüedad de fin de mes)."
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
        today = today or timezone.localdate()
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
    others = (
        Invoice.objects.filter(status__in=Invoice.COLLECTIBLE_STATUSES)
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
        p = f"{prefix}profile__"
        cond = Q(**{f"{p}override": f.profile}) | Q(**{f"{p}override": "", f"{p}computed": f.profile})
        if f.profile == Profile.NEW:  # a client never classified is "without enough history"
            cond |= Q(**{f"{prefix}profile__isnull": True})
        q &= cond
    return q


def _profile_key(prefix: str = "client__"):
    """The effective profile of the client (override wins), "new" without a profile row."""
    return Coalesce(
        NullIf(F(f"{prefix}profile__override"), Value("")), F(f"{prefix}profile__computed"), Value(Profile.NEW)
    )


def _day_end(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` in the site's time zone."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def _sum(expr, **filter_kw) -> Coalesce:
    return Coalesce(Sum(expr, **filter_kw), Value(ZERO), output_field=MONEY_FIELD)


def _cents(value) -> Decimal:
    """Sums to the cent: SQLite returns aggregates without the column's scale."""
    return Decimal(value or ZERO).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(num: Decimal, den: Decimal, scale: int = 100) -> Decimal | None:
    if not den or den <= 0:
        return None
    return (Decimal(num) / Decimal(den) * scale).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


# --- receivables as of a date ---------------------------------------------------------------------


def _allocations_sum(*, cash_only: bool = False, **filters) -> Coalesce:
    """Per invoice (correlated): the sum of its allocations matching ``filters``."""
    allocations = PaymentAllocation.objects.filter(invoice=OuterRef("pk"), **filters)
    if cash_only:
        allocations = allocations.exclude(payment__method__in=NON_CASH_METHODS)
    rows = allocations.order_by().values("invoice").annotate(s=Sum("amount")).values("s")
    return Coalesce(Subquery(rows, output_field=MONEY_FIELD), Value(ZERO), output_field=MONEY_FIELD)


def invoices_open_as_of(f: Filters | None, as_of: dt.date) -> QuerySet[Invoice]:
    """Invoices with a balance at the close of ``as_of``, annotated with ``balance`` (that
    balance). See the module docstring for the definition and its approximations."""
    late = PaymentAllocation.objects.filter(invoice=OuterRef("pk"), payment__received_on__gt=as_of)
    qs = Invoice.objects.filter(client_q(f), issue_date__lte=as_of)
    if f is not None:
        qs = qs.filter(currency=f.currency)
    return (
        qs.exclude(status=Invoice.Status.CANCELLED)
        .exclude(status=Invoice.Status.WRITTEN_OFF, updated_at__lt=_day_end(as_of))
        .filter(Q(open_balance__gt=0) | Exists(late))
        .annotate(
            balance=ExpressionWrapper(
                F("open_balance") + _allocations_sum(payment__received_on__gt=as_of), output_field=MONEY_FIELD
            )
        )
        .filter(balance__gt=0)
    )


def disputed_at(day: dt.date) -> Q:
    """An invoice is disputed at the close of ``day`` when a dispute covering it was open then;
    an invoice put in dispute by hand (no dispute record, no date) counts while it is so."""
    through = Dispute.invoices.through
    open_then = through.objects.filter(invoice_id=OuterRef("pk"), dispute__opened_on__lte=day).filter(
        Q(dispute__resolved_on__isnull=True) | Q(dispute__resolved_on__gt=day)
    )
    any_record = through.objects.filter(invoice_id=OuterRef("pk"))
    return Q(Exists(open_then)) | (Q(status=Invoice.Status.DISPUTED) & ~Q(Exists(any_record)))


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


def _bucket_aggregates(age_on: dt.date) -> dict:
    aggregates = {}
    for bucket in BUCKETS:
        aggregates[f"a_{bucket.code}"] = _sum("balance", filter=due_range(bucket, age_on))
        aggregates[f"n_{bucket.code}"] = Count("id", filter=due_range(bucket, age_on))
    return aggregates


def _aging_from(row: dict, as_of: dt.date, currency: str) -> Aging:
    return Aging(
        as_of=as_of,
        currency=currency,
        buckets=[(b, _cents(row[f"a_{b.code}"]), row[f"n_{b.code}"] or 0) for b in BUCKETS],
        disputed=_cents(row.get("disputed")),
    )


def receivables_as_of(f: Filters, as_of: dt.date | None = None) -> Aging:
    """Receivables at the close of ``as_of`` (default: the period end) by aging bucket, with
    the disputed part (1 query)."""
    as_of = as_of or f.end
    # Annotated first: a correlated subquery cannot sit inside an aggregate's FILTER.
    disputed_balance = Case(When(disputed_at(as_of), then=F("balance")), default=Value(ZERO), output_field=MONEY_FIELD)
    row = (
        invoices_open_as_of(f, as_of)
        .annotate(disputed_balance=disputed_balance)
        .aggregate(**_bucket_aggregates(as_of), disputed=_sum("disputed_balance"))
    )
    return _aging_from(row, as_of, f.currency)


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
    overdue_at_start = Q(due_date__lt=f.start)
    row = (
        invoices_open_as_of(f, f.opening_date)
        .annotate(
            cash_in_period=_allocations_sum(
                cash_only=True, payment__received_on__gte=f.start, payment__received_on__lte=f.end
            )
        )
        .aggregate(**_bucket_aggregates(f.start), recovered=_sum("cash_in_period", filter=overdue_at_start))
    )
    return Opening(aging=_aging_from(row, f.opening_date, f.currency), recovered=_cents(row["recovered"]))


# --- flows in the period --------------------------------------------------------------------------


def credit_sales(f: Filters) -> Decimal:
    """Invoices issued in the period, cancelled ones left out (1 query)."""
    return _cents(
        Invoice.objects.filter(client_q(f), currency=f.currency, issue_date__gte=f.start, issue_date__lte=f.end)
        .exclude(status=Invoice.Status.CANCELLED)
        .aggregate(s=_sum("amount"))["s"]
    )


def _cash_payments(f: Filters) -> QuerySet[Payment]:
    return Payment.objects.filter(
        client_q(f), currency=f.currency, received_on__gte=f.start, received_on__lte=f.end
    ).exclude(method__in=NON_CASH_METHODS)


def cash_collected(f: Filters) -> tuple[Decimal, int]:
    """Money received in the period (amount, payments), without credit notes or negotiated
    discounts (1 query)."""
    row = _cash_payments(f).aggregate(s=_sum("amount"), n=Count("id"))
    return _cents(row["s"]), row["n"]


def promise_kept_aggregates(within: Q | None = None) -> dict:
    """THE definition of the promise-kept rate's parts, as aggregate expressions (so grouped
    queries — per collector, per client — use the very same rule): ``kept`` and ``judged``,
    where judged = kept + partially kept + broken (open and cancelled ones are not judged).
    Rate = kept ÷ judged. ``within`` narrows both (e.g. resolved in a period)."""
    within = within or Q()
    return {
        "kept": Count("id", filter=within & Q(status=CommitmentStatus.KEPT)),
        "judged": Count("id", filter=within & Q(status__in=JUDGED_STATUSES)),
    }


def promise_kept_counts(commitments: QuerySet[Commitment]) -> tuple[int, int]:
    """``(kept, judged)`` over any set of commitments (one query)."""
    row = commitments.aggregate(**promise_kept_aggregates())
    return row["kept"], row["judged"]


def promises_resolved_in(f: Filters) -> QuerySet[Commitment]:
    return Commitment.objects.filter(
        client_q(f),
        currency=f.currency,
        kind__in=PROMISE_KINDS,
        resolved_on__gte=f.start,
        resolved_on__lte=f.end,
    )


def new_delinquencies(f: Filters) -> tuple[int, Decimal]:
    """Invoices that became overdue in the period with a balance the day they fell due:
    ``(count, amount)``. An invoice due on D is overdue from D + 1, so its due date falls
    between the day before the start and the day before the end (1 query)."""
    paid_by_due = Subquery(
        PaymentAllocation.objects.filter(invoice=OuterRef("pk"), payment__received_on__lte=OuterRef("due_date"))
        .order_by()
        .values("invoice")
        .annotate(s=Sum("amount"))
        .values("s"),
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
        .annotate(
            due_balance=ExpressionWrapper(
                F("amount") - Coalesce(paid_by_due, Value(ZERO), output_field=MONEY_FIELD), output_field=MONEY_FIELD
            )
        )
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


def kpis(f: Filters) -> Kpis:
    """Every KPI of the period (6 queries)."""
    collected, payments = cash_collected(f)
    kept, judged = promise_kept_counts(promises_resolved_in(f))
    new_count, new_amount = new_delinquencies(f)
    return Kpis(
        filters=f,
        closing=receivables_as_of(f),
        opening=opening_position(f),
        credit_sales=credit_sales(f),
        collected=collected,
        payments=payments,
        promises_kept=kept,
        promises_judged=judged,
        new_delinquent_count=new_count,
        new_delinquent_amount=new_amount,
    )


# --- month-end snapshots, trends and roll rates ---------------------------------------------------


def snapshot_aging(*, month_end: dt.date) -> int:
    """Store the receivables of every client and currency by aging bucket at the close of
    ``month_end`` (the same definition as ``receivables_as_of``). One aggregate query and a
    bulk insert in one transaction; running it again replaces the month's rows. Returns the
    number of rows stored."""
    aggregates = {SNAPSHOT_COLUMNS[b.code]: _sum("balance", filter=due_range(b, month_end)) for b in BUCKETS}
    rows = invoices_open_as_of(None, month_end).values("client_id", "currency").annotate(**aggregates).order_by()
    now = timezone.now()
    snapshots = [
        AgingSnapshot(
            month_end=month_end,
            client_id=row["client_id"],
            currency=row["currency"],
            computed_at=now,
            **{col: row[col] for col in SNAPSHOT_COLUMNS.values()},
        )
        for row in rows
    ]
    with transaction.atomic():
        AgingSnapshot.objects.filter(month_end=month_end).delete()
        AgingSnapshot.objects.bulk_create(snapshots, batch_size=2000)
    return len(snapshots)


def month_ends(last: dt.date, months: int) -> list[dt.date]:
    """``months`` month ends, oldest first, ending with the month of ``last``."""
    ends = [month_end(last)]
    for _i in range(months - 1):
        ends.append(previous_month_end(ends[-1]))
    return ends[::-1]


def backfill_snapshots(*, months: int = 12, today: dt.date | None = None) -> dict[dt.date, int]:
    """Snapshots for the last ``months`` complete months before ``today`` (idempotent)."""
    today = today or timezone.localdate()
    return {end: snapshot_aging(month_end=end) for end in month_ends(previous_month_end(today), months)}


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
    month_end: dt.date  # from this month's close to the next one
    next_month_end: dt.date
    rates: list[Decimal | None]  # one per transition in ROLL_TRANSITIONS


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
    snap = {
        row["month_end"]: row
        for row in AgingSnapshot.objects.filter(client_q(f), currency=f.currency, month_end__in=ends)
        .values("month_end")
        .annotate(**{col: _sum(col) for col in columns}, stamp=Max("computed_at"))
        .order_by()
    }
    taken = set(AgingSnapshot.objects.filter(month_end__in=ends).values_list("month_end", flat=True).distinct())
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
        if this.has_snapshot and nxt.has_snapshot:
            rates = [_ratio(nxt.buckets[b.code], this.buckets[a.code]) for a, b in ROLL_TRANSITIONS]
        else:
            rates = [None] * len(ROLL_TRANSITIONS)
        roll.append(RollRow(this.month_end, nxt.month_end, rates))
    return Trend(points=points, roll=roll)


# --- breakdowns -----------------------------------------------------------------------------------

DIMENSIONS = ("segment", "collector", "profile")


def _dimension(dimension: str, prefix: str = "client__") -> tuple[dict, list[str]]:
    """Annotations and value keys that group rows by the client's segment, collector or
    effective profile."""
    if dimension == "segment":
        return {"key": F(f"{prefix}segment_id"), "label": F(f"{prefix}segment__name")}, ["key", "label"]
    if dimension == "collector":
        return {
            "key": F(f"{prefix}collector_id"),
            "first": F(f"{prefix}collector__first_name"),
            "last": F(f"{prefix}collector__last_name"),
            "username": F(f"{prefix}collector__username"),
        }, ["key", "first", "last", "username"]
    if dimension == "profile":
        return {"key": _profile_key(prefix)}, ["key"]
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


def _label(dimension: str, row: dict) -> str:
    if dimension == "collector":
        if row["key"] is None:
            return str(_("Sin gestor"))
        return f"{row['first']} {row['last']}".strip() or row["username"]
    if dimension == "profile":
        return str(Profile(row["key"]).label) if row["key"] in Profile.values else row["key"]
    return row["label"]


def breakdown(f: Filters, dimension: str) -> list[BreakdownRow]:
    """Receivables at the period end, credit sales, cash collected and DSO per segment,
    collector or profile (3 queries), largest receivable first."""
    annotations, keys = _dimension(dimension)
    over_90 = Q()
    for bucket in OVER_90:
        over_90 |= due_range(bucket, f.end)
    balances = (
        invoices_open_as_of(f, f.end)
        .annotate(**annotations)
        .values(*keys)
        .annotate(
            receivable=_sum("balance"),
            current=_sum("balance", filter=due_range(BUCKETS[0], f.end)),
            over_90=_sum("balance", filter=over_90),
        )
        .order_by()
    )
    sales = (
        Invoice.objects.filter(client_q(f), currency=f.currency, issue_date__gte=f.start, issue_date__lte=f.end)
        .exclude(status=Invoice.Status.CANCELLED)
        .annotate(**annotations)
        .values(*keys)
        .annotate(s=Sum("amount"))
        .order_by()
    )
    cash = _cash_payments(f).annotate(**annotations).values(*keys).annotate(s=Sum("amount")).order_by()
    rows: dict[object, BreakdownRow] = {}

    def get(row: dict) -> BreakdownRow:
        if row["key"] not in rows:
            rows[row["key"]] = BreakdownRow(key=row["key"], label=_label(dimension, row), days=f.days)
        return rows[row["key"]]

    for row in balances:
        item = get(row)
        item.receivable, item.current, item.over_90 = (_cents(row[k]) for k in ("receivable", "current", "over_90"))
    for row in sales:
        get(row).credit_sales = _cents(row["s"])
    for row in cash:
        get(row).collected = _cents(row["s"])
    return sorted(rows.values(), key=lambda r: (-r.receivable, -r.credit_sales, r.label))
