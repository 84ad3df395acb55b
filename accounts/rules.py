"""The ledger's business rules, each defined once (docs/domain.md#ledger-rules).

Every rule comes in up to three forms built from the same constants (status lists from the
model's choices, the bucket limits), side by side, so a SQL job, an ORM selector and a model
property cannot drift apart:

- ``*_sql``: a fragment of raw SQL. It takes table aliases or column expressions and, for a
  runtime value (today), the placeholder the caller's statement uses (``%(today)s`` or
  ``%s``); values always travel as parameters. The only literals written into the text are
  the model's choices, checked to be plain identifiers (``sql_literal``).
- ``*_q`` / ``*_expr``: the ORM form (a ``Q`` or an expression).
- a plain function on values or model instances.

``tests/accounts/test_rules.py`` checks on one fixture of edge cases that the three forms agree.
The collections rules built on these are in ``cobranza.rules`` (``accounts`` never imports
``cobranza``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, CharField, DateField, F, Func, IntegerField, Q, Value, When
from django.db.models.functions import Greatest
from django.utils.translation import gettext_lazy as _

# The Python forms of the day rules live beside the model that uses them (Invoice.days_overdue):
# the models cannot import this module, which imports them.
from .models import Invoice, InvoiceStatus, Payment, PaymentAllocation, days_between, days_late  # noqa: F401

# --- SQL literals from constants ---------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[a-z0-9_]*$")


def sql_literal(value: str) -> str:
    """A model choice as a SQL string literal. Only plain identifiers pass: a choice is a
    constant of the code, never user input, and this keeps it so."""
    text = str(value)
    if not _IDENTIFIER.match(text):
        raise ValueError(f"not a plain choice value: {text!r}")
    return f"'{text}'"


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` from model choices."""
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})"


def _prefix(alias: str | None) -> str:
    return f"{alias}." if alias else ""


# --- invoice statuses ----------------------------------------------------------------------------

# Open: owed and not withheld; the statuses the payments move between (open ⇄ partially paid).
OPEN_STATUSES: tuple[str, ...] = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)
# Collectible: the open balance is still owed, disputed included (receivables, aging, balances).
COLLECTIBLE_STATUSES: tuple[str, ...] = tuple(Invoice.COLLECTIBLE_STATUSES)
SETTLED_STATUS: str = InvoiceStatus.PAID


# --- open invoice (docs/domain.md#open-invoice) ---------------------------------------------------
# Open or partially paid with a balance: what the ladder, the fees and the self-service portal
# act on. A disputed invoice is owed but withheld, so it is collectible, not open.


def open_invoice_sql(invoice: str | None = "i") -> str:
    p = _prefix(invoice)
    return f"({sql_in(f'{p}status', OPEN_STATUSES)} AND {p}open_balance > 0)"


def open_invoice_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}status__in": OPEN_STATUSES, f"{prefix}open_balance__gt": 0})


def is_open_invoice(invoice: Invoice) -> bool:
    return invoice.status in OPEN_STATUSES and invoice.open_balance > 0


# --- collectible invoice (docs/domain.md#collectible-invoice) -------------------------------------
# Owed: open, partially paid or disputed, with a balance. Receivables, aging and balances.


def collectible_sql(invoice: str | None = "i") -> str:
    p = _prefix(invoice)
    return f"({sql_in(f'{p}status', COLLECTIBLE_STATUSES)} AND {p}open_balance > 0)"


def collectible_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}status__in": COLLECTIBLE_STATUSES, f"{prefix}open_balance__gt": 0})


COLLECTIBLE = collectible_q()


def is_collectible(invoice: Invoice) -> bool:
    return invoice.status in COLLECTIBLE_STATUSES and invoice.open_balance > 0


# --- automatic allocation (docs/domain.md#automatic-allocation) ---------------------------------
# A payment without explicit amounts pays the client's open invoices in its currency, oldest
# due date first, each up to its open balance, until the money runs out; the rest stays as
# client credit. Disputed invoices wait for their resolution.

AUTO_ALLOCATION_ORDER: tuple[str, ...] = ("due_date", "id")


def auto_allocation_q(currency: str) -> Q:
    """The invoices (of one client) an automatic payment in ``currency`` may pay."""
    return Q(currency=currency, status__in=OPEN_STATUSES)


def auto_allocation(invoices: Iterable[Invoice], amount) -> list[tuple[Invoice, object]]:
    """``(invoice, amount)`` pairs: where ``amount`` goes among ``invoices`` (already filtered by
    ``auto_allocation_q`` and in ``AUTO_ALLOCATION_ORDER``)."""
    remaining = amount
    plan = []
    for invoice in invoices:
        if remaining <= 0:
            break
        take = min(invoice.amount - invoice.amount_paid, remaining)
        if take > 0:
            plan.append((invoice, take))
            remaining -= take
    return plan


# --- settled invoice (docs/domain.md#settled-invoice) ---------------------------------------------
# Paid in full; settled on the day of the last payment applied to it (credit notes and
# discounts included: they settle too).


def settled_sql(invoice: str | None = "i") -> str:
    return f"{_prefix(invoice)}status = {sql_literal(SETTLED_STATUS)}"


def settled_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}status": SETTLED_STATUS})


def is_settled(invoice: Invoice) -> bool:
    return invoice.status == SETTLED_STATUS


def settled_invoices_sql(*, join: str = "", where: str = "", having: str = "") -> str:
    """Settled invoices with their settlement date, as a subquery. Columns: ``client_id,
    due_date, settled_on``. ``join``/``where``/``having`` narrow it (``i`` is the invoice,
    ``p`` the payment)."""
    return f"""
        SELECT i.client_id, i.due_date, MAX(p.received_on) AS settled_on
        FROM {Invoice._meta.db_table} i
        JOIN {PaymentAllocation._meta.db_table} a ON a.invoice_id = i.id
        JOIN {Payment._meta.db_table} p ON p.id = a.payment_id
        {join}
        WHERE {settled_sql("i")} {where}
        GROUP BY i.id, i.client_id, i.due_date
        {"HAVING " + having if having else ""}
    """


def settled_on(invoice: Invoice) -> dt.date | None:
    """The settlement date of a settled invoice (None when it is not settled)."""
    if not is_settled(invoice):
        return None
    return max((a.payment.received_on for a in invoice.allocations.all()), default=None)


# --- days late / overdue (docs/domain.md#days-late) -----------------------------------------------
# An invoice due on D is overdue from D + 1. Days late on a day = that day − the due date,
# never below 0 (paid or looked at on or before the due date: 0 days late).


class _DaysBetween(Func):
    """Whole days from the second date to the first (PostgreSQL's date − date)."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = IntegerField()


def _date_value(value) -> Value | F:
    return value if hasattr(value, "resolve_expression") else Value(value, output_field=DateField())


def days_between_sql(later: str, earlier: str) -> str:
    """Whole days from ``earlier`` to ``later`` (both dates or date placeholders)."""
    return f"(CAST({later} AS date) - CAST({earlier} AS date))"


def days_between_expr(later, earlier) -> _DaysBetween:
    return _DaysBetween(_date_value(later), _date_value(earlier))


def days_late_sql(on: str = "%(today)s", due_date: str = "i.due_date") -> str:
    return f"GREATEST({days_between_sql(on, due_date)}, 0)"


def days_late_expr(on, due_date="due_date") -> Greatest:
    """``on`` is a date (a parameter) or an expression; ``due_date`` a field name or expression."""
    due = F(due_date) if isinstance(due_date, str) else due_date
    return Greatest(days_between_expr(on, due), Value(0), output_field=IntegerField())


def overdue_sql(on: str = "%(today)s", due_date: str = "i.due_date") -> str:
    return f"{due_date} < {on}"


def overdue_q(on: dt.date, field: str = "due_date") -> Q:
    return Q(**{f"{field}__lt": on})


def is_overdue(due_date: dt.date, on: dt.date) -> bool:
    return due_date < on


# --- aging buckets (docs/domain.md#aging-buckets) -------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    code: str
    label: str
    min_days: int | None  # days past due, inclusive; None = no lower bound
    max_days: int | None  # inclusive; None = no upper bound


BUCKETS: tuple[Bucket, ...] = (
    Bucket("current", _("Al corriente"), None, 0),
    Bucket("1_30", _("1–30 días"), 1, 30),
    Bucket("31_60", _("31–60 días"), 31, 60),
    Bucket("61_90", _("61–90 días"), 61, 90),
    Bucket("91_120", _("91–120 días"), 91, 120),
    Bucket("120_plus", _("Más de 120 días"), 121, None),
)
BUCKETS_BY_CODE = {b.code: b for b in BUCKETS}
CURRENT = BUCKETS[0]
OVERDUE_BUCKETS = tuple(b for b in BUCKETS if b is not CURRENT)


def bucket_for_days(days: int) -> Bucket:
    """The bucket of an invoice ``days`` past its due date (0 or less: current)."""
    for bucket in BUCKETS:
        if (bucket.min_days is None or days >= bucket.min_days) and (
            bucket.max_days is None or days <= bucket.max_days
        ):
            return bucket
    raise AssertionError(days)


def aging_bucket_of(due_date: dt.date, on: dt.date) -> str:
    return bucket_for_days(days_between(on, due_date)).code


def _oldest_first() -> list[tuple[Bucket, int]]:
    """Each overdue bucket with its lower limit, oldest first: the first match wins. The
    dates are computed in Python, so the SQL compares the due date with constants (index)."""
    return [(b, b.min_days) for b in reversed(OVERDUE_BUCKETS) if b.min_days is not None]


def aging_bucket_expr(on: dt.date, field: str = "due_date") -> Case:
    whens = [
        When(**{f"{field}__lte": on - dt.timedelta(days=min_days)}, then=Value(bucket.code))
        for bucket, min_days in _oldest_first()
    ]
    return Case(*whens, default=Value(CURRENT.code), output_field=CharField())


def aging_bucket_sql(on: dt.date, due_date: str = "i.due_date", placeholder: str = "%s") -> tuple[str, list]:
    """``(sql, params)``: the bucket code of ``due_date`` on ``on``, with positional
    placeholders (``placeholder``) for the limit dates and the codes."""
    whens, params = [], []
    for bucket, min_days in _oldest_first():
        whens.append(f"WHEN {due_date} <= {placeholder} THEN {placeholder}")
        params += [on - dt.timedelta(days=min_days), bucket.code]
    return f"CASE {' '.join(whens)} ELSE {placeholder} END", [*params, CURRENT.code]


def due_range(bucket: Bucket, on: dt.date, field: str = "due_date") -> Q:
    """The due dates that fall in ``bucket`` on ``on``, as a filter on ``field``."""
    q = Q()
    if bucket.min_days is not None:  # at least min_days overdue → due on or before on - min
        q &= Q(**{f"{field}__lte": on - dt.timedelta(days=bucket.min_days)})
    if bucket.max_days is not None:
        q &= Q(**{f"{field}__gte": on - dt.timedelta(days=bucket.max_days)})
    return q
