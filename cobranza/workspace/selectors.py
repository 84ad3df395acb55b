"""Reads of the collector's workspace on the client page: commitments, disputes and the
client analysis (how important the client is, how it pays: docs/domain.md#client-analysis).

``client_workspace`` costs seven queries whatever the number of invoices, payments,
commitments and disputes: commitments (+ their installments, + their invoices), disputes
(+ their invoices), the open invoices the panel's forms offer, and one set-based SQL
statement for the analysis (``client_analysis``).

Definitions (the panel states them next to each number):

- **Billing, last 12 months**: the sum of the amounts of the invoices *issued* in the 12 months
  up to today (cancelled invoices left out), per currency. **Growth**: that sum against the
  12 months before, in percent (none when nothing was billed the year before).
- **Tenure**: since ``client_since``, else since the first invoice.
- **Past incidents**: commitments (promises, plans, extensions) broken or only partly kept,
  disputes and hand-offs to an agency or legal, ever.
- **Days late at settlement**: settlement date − due date, 0 when paid on time; the settlement
  date is the day of the last payment applied to an invoice now fully paid (credit notes and
  discounts settle too) — the same definition as the delinquency profiles. Averaged over the
  invoices settled in the last 12 months; **share paid late** is how many of them were settled
  after their due date. **Trend**: the average of the last 6 months against the 6 before.
- **Promise-kept rate**: promises kept ÷ promises judged (kept, partly kept or broken).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    IntegerField,
    OuterRef,
    Prefetch,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts import clock
from accounts.models import MONEY, ZERO, Client, Invoice, Payment, PaymentAllocation
from accounts.rules import OPEN_STATUSES, days_late_sql, open_invoice_q, settled_invoices_sql
from accounts.selectors import clients_visible_to
from cobranza.models import (
    Commitment,
    CommitmentStatus,
    Dispute,
    DisputeStatus,
    HandOff,
    Installment,
    InstallmentStatus,
)
from cobranza.profiles.jobs import months_ago
from cobranza.rules import open_commitment_exists, promise_judged_sql, promise_kept_sql

PANEL_COMMITMENTS = 30  # the open ones and the most recent closed ones
PANEL_HISTORY = 10
PANEL_DISPUTES = 20
ONE_DECIMAL = Decimal("0.1")
# A change of less than this many days of average delay is "stable", not a trend.
TREND_THRESHOLD_DAYS = Decimal("1.0")


def _ratio(num, den, scale: int = 1) -> Decimal | None:
    if not den:
        return None
    return (Decimal(num) * scale / Decimal(den)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


# --- the analysis -----------------------------------------------------------------------------


@dataclass
class Billing:
    currency: str
    last_12m: Decimal
    previous_12m: Decimal

    @property
    def growth_pct(self) -> Decimal | None:
        """Billing of the last 12 months against the 12 before, in percent."""
        if self.previous_12m <= 0:
            return None
        return ((self.last_12m - self.previous_12m) * 100 / self.previous_12m).quantize(
            ONE_DECIMAL, rounding=ROUND_HALF_UP
        )


@dataclass
class Window:
    """Invoices settled in a period: how many, how many late, the days late added up."""

    settled: int = 0
    late: int = 0
    days: int = 0

    @property
    def avg_days_late(self) -> Decimal | None:
        return _ratio(self.days, self.settled)

    @property
    def share_late_pct(self) -> Decimal | None:
        return _ratio(self.late, self.settled, 100)


@dataclass
class Analysis:
    today: dt.date
    billing: list[Billing]
    since: dt.date | None
    since_is_first_invoice: bool
    broken_commitments: int
    disputes: int
    handoffs: int
    promises_kept: int
    promises_judged: int
    recent: Window  # settled in the last 6 months
    previous: Window  # settled in the 6 months before

    @property
    def tenure_months(self) -> int | None:
        if self.since is None:
            return None
        months = (self.today.year - self.since.year) * 12 + self.today.month - self.since.month
        if self.today.day < self.since.day:
            months -= 1
        return max(months, 0)

    @property
    def tenure_years(self) -> int | None:
        months = self.tenure_months
        return None if months is None else months // 12

    @property
    def tenure_rest_months(self) -> int | None:
        months = self.tenure_months
        return None if months is None else months % 12

    @property
    def incidents(self) -> int:
        return self.broken_commitments + self.disputes + self.handoffs

    @property
    def year(self) -> Window:
        """The last 12 months: both halves together."""
        return Window(
            settled=self.recent.settled + self.previous.settled,
            late=self.recent.late + self.previous.late,
            days=self.recent.days + self.previous.days,
        )

    @property
    def trend_days(self) -> Decimal | None:
        """Average days late, last 6 months minus the 6 before (negative: pays sooner)."""
        recent, previous = self.recent.avg_days_late, self.previous.avg_days_late
        if recent is None or previous is None:
            return None
        return recent - previous

    @property
    def trend(self) -> str:
        """``better``, ``worse``, ``stable`` or ``""`` (not enough history)."""
        delta = self.trend_days
        if delta is None:
            return ""
        if delta <= -TREND_THRESHOLD_DAYS:
            return "better"
        if delta >= TREND_THRESHOLD_DAYS:
            return "worse"
        return "stable"

    @property
    def promise_kept_pct(self) -> Decimal | None:
        return _ratio(self.promises_kept, self.promises_judged, 100)


def _analysis_sql() -> str:
    t = {
        "invoice": Invoice._meta.db_table,
        "allocation": PaymentAllocation._meta.db_table,
        "payment": Payment._meta.db_table,
        "commitment": Commitment._meta.db_table,
        "dispute": Dispute._meta.db_table,
        "handoff": HandOff._meta.db_table,
    }
    broken = f"'{CommitmentStatus.BROKEN}', '{CommitmentStatus.PARTIAL}'"
    # One row per currency billed (at least one row: the facts are LEFT JOINed to them).
    return f"""
    WITH settled AS ({settled_invoices_sql(where="AND i.client_id = %(client)s")}),
    delays AS (
        SELECT settled_on, {days_late_sql("settled_on", "due_date")} AS days
        FROM settled
        WHERE settled_on > %(since_12m)s AND settled_on <= %(today)s
    ),
    behaviour AS (
        SELECT
            COALESCE(SUM(CASE WHEN settled_on > %(since_6m)s THEN 1 ELSE 0 END), 0) AS recent_n,
            COALESCE(SUM(CASE WHEN settled_on > %(since_6m)s AND days > 0 THEN 1 ELSE 0 END), 0) AS recent_late,
            COALESCE(SUM(CASE WHEN settled_on > %(since_6m)s THEN days ELSE 0 END), 0) AS recent_days,
            COALESCE(SUM(CASE WHEN settled_on <= %(since_6m)s THEN 1 ELSE 0 END), 0) AS previous_n,
            COALESCE(SUM(CASE WHEN settled_on <= %(since_6m)s AND days > 0 THEN 1 ELSE 0 END), 0) AS previous_late,
            COALESCE(SUM(CASE WHEN settled_on <= %(since_6m)s THEN days ELSE 0 END), 0) AS previous_days
        FROM delays
    ),
    incidents AS (
        SELECT
            (SELECT COUNT(*) FROM {t["commitment"]} m
              WHERE m.client_id = %(client)s AND m.status IN ({broken})) AS broken_n,
            (SELECT COUNT(*) FROM {t["commitment"]} m
              WHERE m.client_id = %(client)s AND {promise_kept_sql("m")}) AS kept_n,
            (SELECT COUNT(*) FROM {t["commitment"]} m
              WHERE m.client_id = %(client)s AND {promise_judged_sql("m")}) AS judged_n,
            (SELECT COUNT(*) FROM {t["dispute"]} d WHERE d.client_id = %(client)s) AS disputes_n,
            (SELECT COUNT(*) FROM {t["handoff"]} h WHERE h.client_id = %(client)s) AS handoffs_n
    ),
    billing AS (
        SELECT currency,
               COALESCE(SUM(CASE WHEN issue_date > %(since_12m)s AND issue_date <= %(today)s
                                 THEN amount ELSE 0 END), 0) AS last_12m,
               COALESCE(SUM(CASE WHEN issue_date > %(since_24m)s AND issue_date <= %(since_12m)s
                                 THEN amount ELSE 0 END), 0) AS previous_12m,
               MIN(issue_date) AS first_issue
        FROM {t["invoice"]}
        WHERE client_id = %(client)s AND status <> 'cancelled'
        GROUP BY currency
    )
    SELECT b.currency, b.last_12m, b.previous_12m, b.first_issue,
           f.recent_n, f.recent_late, f.recent_days, f.previous_n, f.previous_late, f.previous_days,
           x.broken_n, x.kept_n, x.judged_n, x.disputes_n, x.handoffs_n
    FROM behaviour f
    CROSS JOIN incidents x
    LEFT JOIN billing b ON 1 = 1
    ORDER BY b.currency
    """  # noqa: S608 - table names from model metadata; values are parameters


def client_analysis(client: Client, *, today: dt.date | None = None) -> Analysis:
    """Importance and payment behaviour of one client, in one query."""
    today = today or clock.localdate()
    params = {
        "client": client.pk,
        "today": today,
        "since_6m": months_ago(today, 6),
        "since_12m": months_ago(today, 12),
        "since_24m": months_ago(today, 24),
    }
    with connection.cursor() as cur:
        cur.execute(_analysis_sql(), params)
        rows = cur.fetchall()
    first = rows[0]
    billing = []
    first_issue = None
    for currency, last, previous, issued, *_rest in rows:
        if currency is None:
            continue
        billing.append(Billing(currency, Decimal(last).quantize(ZERO), Decimal(previous).quantize(ZERO)))
        first_issue = issued if first_issue is None else min(first_issue, issued)
    # The client's own currency first, then the others.
    billing.sort(key=lambda b: (b.currency != client.currency, b.currency))
    (r_n, r_late, r_days, p_n, p_late, p_days, broken, kept, judged, disputes, handoffs) = (int(v) for v in first[4:])
    return Analysis(
        today=today,
        billing=billing,
        since=client.client_since or first_issue,
        since_is_first_invoice=client.client_since is None and first_issue is not None,
        broken_commitments=broken,
        disputes=disputes,
        handoffs=handoffs,
        promises_kept=kept,
        promises_judged=judged,
        recent=Window(r_n, r_late, r_days),
        previous=Window(p_n, p_late, p_days),
    )


# --- commitments, disputes and the panel -------------------------------------------------------


@dataclass
class CommitmentRow:
    commitment: Commitment
    installments: list[Installment]
    paid: Decimal  # towards the commitment: live while open, as judged once closed

    @property
    def progress_pct(self) -> Decimal:
        total = self.commitment.total
        if total <= 0:
            return Decimal("0")
        return min(self.paid * 100 / total, Decimal(100)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)

    @property
    def is_open(self) -> bool:
        return self.commitment.status == CommitmentStatus.OPEN

    @property
    def next_installment(self) -> Installment | None:
        return next((i for i in self.installments if i.status == InstallmentStatus.PENDING), None)


@dataclass
class WorkspacePanel:
    client: Client
    today: dt.date
    open_commitments: list[CommitmentRow]
    past_commitments: list[CommitmentRow]
    open_disputes: list[Dispute]
    resolved_disputes: list[Dispute]
    open_invoices: list[Invoice]  # annotated: ``committed`` (in an open commitment)
    analysis: Analysis
    currencies: list[str] = field(default_factory=list)

    @property
    def free_invoices(self) -> list[Invoice]:
        """Open invoices not in an open commitment: what a new promise, plan or extension takes."""
        return [inv for inv in self.open_invoices if not inv.committed]

    @property
    def default_invoice_ids(self) -> set[int]:
        """Checked by default in the forms: the free invoices in the client's currency."""
        return {inv.pk for inv in self.free_invoices if inv.currency == self.client.currency}

    @property
    def default_total(self) -> Decimal:
        return sum((inv.open_balance for inv in self.free_invoices if inv.pk in self.default_invoice_ids), ZERO)


def _paid_since_made() -> Coalesce:
    """Applied to the commitment's invoices from the day it was made (as ``judge`` counts)."""
    paid = (
        PaymentAllocation.objects.filter(
            invoice__commitments=OuterRef("pk"), payment__received_on__gte=OuterRef("made_on")
        )
        .order_by()
        .values("invoice__commitments")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(paid, output_field=DecimalField(**MONEY)), Value(ZERO), output_field=DecimalField(**MONEY))


def _installments_with_coverage(commitment: Commitment, paid: Decimal) -> list[Installment]:
    """Pending installments get a live ``covered_now`` (payments cover them in order, as
    ``judge`` will count them); judged ones keep what was judged."""
    before = ZERO
    rows = list(commitment.installments.all())
    for inst in rows:
        if inst.status == InstallmentStatus.PENDING:
            inst.covered_now = min(max(paid - before, ZERO), inst.amount)
        else:
            inst.covered_now = inst.covered
        before += inst.amount
    return rows


def client_workspace(client: Client, *, today: dt.date | None = None) -> WorkspacePanel:
    """Everything the workspace panel of the client page shows: seven queries."""
    today = today or clock.localdate()
    open_first = Case(When(status=CommitmentStatus.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())
    invoice_fields = ("id", "number", "currency", "amount", "open_balance", "due_date", "status", "client_id")
    commitments = list(
        Commitment.objects.filter(client=client)
        .select_related("contact", "created_by")
        .annotate(paid_now=_paid_since_made())
        .prefetch_related(
            Prefetch("installments", queryset=Installment.objects.order_by("number")),
            Prefetch("invoices", queryset=Invoice.objects.only(*invoice_fields).order_by("due_date", "id")),
        )
        .order_by(open_first, "-made_on", "-id")[:PANEL_COMMITMENTS]
    )
    open_rows, past_rows = [], []
    for commitment in commitments:
        if commitment.status == CommitmentStatus.OPEN:
            paid = min(commitment.paid_now, commitment.total)
            open_rows.append(CommitmentRow(commitment, _installments_with_coverage(commitment, paid), paid))
        elif len(past_rows) < PANEL_HISTORY:
            paid = commitment.paid_amount
            past_rows.append(CommitmentRow(commitment, _installments_with_coverage(commitment, paid), paid))

    dispute_first = Case(When(status=DisputeStatus.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())
    disputes = list(
        Dispute.objects.filter(client=client)
        .select_related("owner", "resolved_by")
        .prefetch_related(
            Prefetch("invoices", queryset=Invoice.objects.only(*invoice_fields).order_by("due_date", "id"))
        )
        .order_by(dispute_first, "-opened_on", "-id")[:PANEL_DISPUTES]
    )
    open_invoices = list(open_invoices_for_commitment(client))
    return WorkspacePanel(
        client=client,
        today=today,
        open_commitments=open_rows,
        past_commitments=past_rows,
        open_disputes=[d for d in disputes if d.status == DisputeStatus.OPEN],
        resolved_disputes=[d for d in disputes if d.status != DisputeStatus.OPEN],
        open_invoices=open_invoices,
        analysis=client_analysis(client, today=today),
        currencies=sorted({inv.currency for inv in open_invoices}),
    )


def commitments_visible_to(user):
    """Commitments of the clients ``user`` may work (another collector's: none)."""
    return Commitment.objects.filter(client__in=clients_visible_to(user).values("pk")).select_related("client")


def disputes_visible_to(user):
    return Dispute.objects.filter(client__in=clients_visible_to(user).values("pk")).select_related("client", "owner")


def open_invoices_for_commitment(client: Client):
    """The invoices a promise, plan or extension may take (open, owed), each annotated with
    ``committed``: already in an open commitment (the service refuses those)."""
    return (
        Invoice.objects.filter(open_invoice_q(), client=client)
        .annotate(committed=open_commitment_exists())
        .order_by("due_date", "id")
    )


def open_invoices_for_dispute(client: Client):
    """The invoices a dispute may take: open or partly paid (not paid, cancelled or disputed)."""
    return Invoice.objects.filter(client=client, status__in=OPEN_STATUSES).order_by("due_date", "id")
