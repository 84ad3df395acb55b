"""Late fees and interest (*recargos*), agreed in advance per segment (docs/domain.md#late-fees):
the nightly accrual, a job like ``jobs.compute_profiles``. Waiving a fee and editing a
segment's rule are writes staff make, in ``cobranza.profiles.services``.

``accrue_late_fees`` runs nightly, in two set-based statements, for every invoice that is
open or partially paid (disputed, paid, written-off and cancelled invoices are left alone),
whose client is not written off and whose segment has an *active* ``LateFeeRule``:

- **Fixed fee**, once per invoice, when it is more than ``grace_days`` overdue:
  ``INSERT … ON CONFLICT DO NOTHING`` — a second run, or a later one, adds nothing.
- **Interest**, simple, recomputed each day on the open principal (never on fees, never
  compounded): ``open balance × monthly_rate / 100 × (days overdue − grace_days) / 30``,
  rounded to cents. ``INSERT … ON CONFLICT DO UPDATE`` keeps one row per invoice with the
  amount to date; running twice the same day writes the same amount.
- **Cap**: when ``max_percent`` > 0, fixed fee + interest ≤ ``max_percent`` % of the invoice
  amount (the fixed fee first, interest takes what is left). A waived fixed fee still counts
  against the cap, so waiving one charge never makes another grow.
- A **waived** row is never changed again (the upsert's ``WHERE NOT waived``).

Fees are shown apart from the principal: they are not added to the invoice's balance and
payments do not settle them. When an invoice is paid or disputed its rows stay as they were
on the last day it accrued.

The first time an invoice gets its fixed fee, the client's timeline says so (one entry per
invoice, written in bulk); daily interest updates are not written to the timeline.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import translation

from accounts import clock
from accounts.models import Client, ClientStatus, Interaction, Invoice
from accounts.rules import days_between_sql, open_invoice_sql, overdue_sql, sql_literal
from cobranza import texts
from cobranza.models import LateFee, LateFeeRule


def _eligible_cte() -> str:
    """``eligible AS (...)``: the invoices that accrue today, with their rule and cap."""
    days = days_between_sql("%(today)s", "i.due_date")
    return f"""eligible AS (
        SELECT i.id AS invoice_id, i.amount, i.open_balance, {days} AS days,
               r.grace_days, r.fixed_fee, r.monthly_rate,
               CASE WHEN r.max_percent > 0 THEN ROUND(i.amount * r.max_percent / 100.0, 2) END AS cap
        FROM {Invoice._meta.db_table} i
        JOIN {Client._meta.db_table} c ON c.id = i.client_id
        JOIN {LateFeeRule._meta.db_table} r ON r.segment_id = c.segment_id AND r.is_active
        WHERE {open_invoice_sql("i")}
          AND c.status <> {sql_literal(ClientStatus.WRITTEN_OFF)}
          AND {overdue_sql("%(today)s", "i.due_date")}
          AND {days} > r.grace_days
    )"""  # noqa: S608 - table names from model metadata; values are parameters


def _fixed_sql() -> str:
    fee = LateFee._meta.db_table
    return f"""
    INSERT INTO {fee} (invoice_id, kind, amount, computed_on, waived, waived_reason)
    WITH {_eligible_cte()}
    SELECT invoice_id, 'fixed',
           CASE WHEN cap IS NOT NULL AND cap < fixed_fee THEN cap ELSE fixed_fee END,
           %(today)s, FALSE, ''
    FROM eligible
    WHERE fixed_fee > 0 AND (cap IS NULL OR cap > 0)
    ON CONFLICT (invoice_id, kind) DO NOTHING
    RETURNING invoice_id, amount
    """  # noqa: S608 - table names from model metadata; values are parameters


def _interest_sql() -> str:
    fee = LateFee._meta.db_table
    return f"""
    INSERT INTO {fee} (invoice_id, kind, amount, computed_on, waived, waived_reason)
    WITH {_eligible_cte()},
    calc AS (
        SELECT e.invoice_id, e.cap,
               ROUND(e.open_balance * e.monthly_rate * (e.days - e.grace_days) / 3000.0, 2) AS interest,
               COALESCE((SELECT f.amount FROM {fee} f WHERE f.invoice_id = e.invoice_id AND f.kind = 'fixed'), 0)
                   AS fixed
        FROM eligible e
        WHERE e.monthly_rate > 0
    ),
    capped AS (
        SELECT invoice_id,
               CASE WHEN cap IS NULL THEN interest
                    WHEN cap - fixed <= 0 THEN 0
                    WHEN interest > cap - fixed THEN cap - fixed
                    ELSE interest END AS amount
        FROM calc
    )
    SELECT invoice_id, 'interest', amount, %(today)s, FALSE, ''
    FROM capped
    WHERE amount > 0
    ON CONFLICT (invoice_id, kind) DO UPDATE
        SET amount = excluded.amount, computed_on = excluded.computed_on
        WHERE {fee}.waived = FALSE
    """  # noqa: S608 - table names from model metadata; values are parameters


def accrue_late_fees(*, today: dt.date) -> dict:
    """Charge the fixed fees due and bring the interest up to ``today``.

    Returns ``{"today", "fixed_created", "interest_rows"}`` (interest rows inserted or
    updated: waived rows are not counted, they are not touched)."""
    params = {"today": today}
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_fixed_sql(), params)
            created = cur.fetchall()
            cur.execute(_interest_sql(), params)
            interest_rows = max(cur.rowcount, 0)
        if created:
            _log_fixed_fees(created)
    return {"today": today.isoformat(), "fixed_created": len(created), "interest_rows": interest_rows}


def _log_fixed_fees(created: list[tuple[int, Decimal]]) -> None:
    """One timeline entry per invoice that just got its fixed fee (bulk, same transaction)."""
    amounts = {invoice_id: Decimal(amount) for invoice_id, amount in created}
    invoices = list(Invoice.objects.filter(pk__in=amounts).only("pk", "number", "currency", "client_id"))
    now = clock.now()
    with translation.override(settings.LANGUAGE_CODE):
        entries = [
            Interaction(
                client_id=invoice.client_id,
                kind=Interaction.Kind.SYSTEM,
                direction=Interaction.Direction.INTERNAL,
                **texts.columns(
                    "summary",
                    texts.LATE_FEE_ADDED(
                        amount=texts.money(amounts[invoice.pk], invoice.currency), number=invoice.number
                    ),
                ),
                occurred_at=now,
            )
            for invoice in invoices
        ]
    Interaction.objects.bulk_create(entries)
    through = Interaction.invoices.through
    links = zip(entries, invoices, strict=True)
    through.objects.bulk_create(through(interaction_id=entry.pk, invoice_id=invoice.pk) for entry, invoice in links)
