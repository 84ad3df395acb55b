"""The dashboard's background work: the month-end aging snapshots that the trends and roll
rates read (``tasks.snapshot_aging`` on the 1st of each month; a manager can fill missing
months from the dashboard). A snapshot stores ``metrics.receivables_as_of`` at the month's
close, through the same query, so a KPI is still defined once, in ``metrics``.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.aggregates import BoolAnd
from django.db import connection, transaction

from accounts import clock
from accounts.rules import BUCKETS
from cobranza.dashboard.metrics import (
    ROLL_BASE,
    ROLL_NEXT,
    ROLL_TRANSITIONS,
    SNAPSHOT_COLUMNS,
    _cube_sql,
    month_end,
    month_ends,
    previous_month_end,
)
from cobranza.models import AgingSnapshot


def _later_codes(code: str) -> list[str]:
    codes = [bucket.code for bucket in BUCKETS]
    return codes[codes.index(code) + 1 :]


CUBE_DIMS = ("invoice", "client", "currency")


def snapshot_aging(
    *,
    month_end: dt.date,
    client_ids: list[int] | None = None,
    new_invoice_ids: list[int] | None = None,
    cubes: tuple[str, str] | None = None,
) -> int:
    """Store the receivables of every client and currency by aging bucket at the close of
    ``month_end`` (the same definition as ``receivables_as_of``), and the roll figures that
    follow the invoices from the previous month's close (docs/domain.md#roll-rate). One
    ``INSERT … SELECT`` from two invoice-level receivables cubes, in one transaction with the
    removal of the month's old rows: running it again replaces them. Returns the rows stored.

    ``client_ids``: only those clients' rows are replaced (a client's rows depend on its own
    ledger only), the others' are kept: after an import, the clients it touched.

    ``new_invoice_ids``: invoices written after the month was taken, with nothing else of the
    ledger changed since (an import of new invoices, with their own settlements and disputes):
    their part is added to the stored rows. Every column is a sum over invoices of what each
    owes by its own allocations and disputes, so the result is what a full close stores.

    ``cubes``: the temporary tables that already hold the full cubes of ``month_end`` and of the
    month before (``store_cube``), for a run of months (``snapshot_months``)."""
    previous = previous_month_end(month_end)
    q = connection.ops.quote_name
    if cubes is not None:
        if client_ids is not None or new_invoice_ids is not None:
            raise ValueError("stored cubes are whole months: no client or invoice scope")
        now_cube, then_cube = (f"SELECT * FROM {name}" for name in cubes)  # noqa: S608 - store_cube's names
        now_params, then_params = [], []
    else:
        scope = {"client_ids": client_ids, "invoice_ids": new_invoice_ids}
        now_cube, now_params = _cube_sql(None, month_end, dims=CUBE_DIMS, **scope)
        then_cube, then_params = _cube_sql(None, previous, dims=CUBE_DIMS, **scope)
    columns = list(SNAPSHOT_COLUMNS.values())
    # Each bucket summed to the cent like ``_cents`` (ROUND on numeric rounds half away from
    # zero: half up for these positive balances).
    sums = ", ".join(
        f"ROUND(COALESCE(SUM(n.amount) FILTER (WHERE n.bucket = %s), 0), 2) AS {column}" for column in columns
    )
    bases = ", ".join(
        f"ROUND(COALESCE(SUM(t.amount) FILTER (WHERE t.bucket = %s), 0), 2) AS {ROLL_BASE[a.code]}"
        for a, _b in ROLL_TRANSITIONS
    )
    # "Rolled" is the next bucket or further: an invoice due on a month's last day can skip one
    # in a 31-day month (docs/domain.md#roll-rate).
    nexts = ", ".join(
        f"ROUND(COALESCE(SUM(n.amount) FILTER (WHERE t.bucket = %s AND n.bucket = ANY(%s)), 0), 2) "
        f"AS {ROLL_NEXT[a.code]}"
        for a, _b in ROLL_TRANSITIONS
    )
    roll_columns = [
        *(ROLL_BASE[a.code] for a, _b in ROLL_TRANSITIONS),
        *(ROLL_NEXT[a.code] for a, _b in ROLL_TRANSITIONS),
    ]
    table = q(AgingSnapshot._meta.db_table)
    sql = f"""
        WITH n AS ({now_cube}),
             t AS ({then_cube}),
             aging AS (SELECT n.client, n.currency, {sums} FROM n GROUP BY n.client, n.currency),
             roll AS (SELECT t.client, t.currency, {bases}, {nexts}
                      FROM t LEFT JOIN n ON n.invoice = t.invoice
                      GROUP BY t.client, t.currency)
        INSERT INTO {table} (month_end, client_id, currency, {", ".join(map(q, columns + roll_columns))},
                             has_roll, computed_at)
        SELECT %s, COALESCE(aging.client, roll.client), COALESCE(aging.currency, roll.currency),
               {", ".join(f"COALESCE(aging.{c}, 0)" for c in columns)},
               {", ".join(f"COALESCE(roll.{c}, 0)" for c in roll_columns)}, TRUE, %s
        FROM aging FULL OUTER JOIN roll ON roll.client = aging.client AND roll.currency = aging.currency
    """  # noqa: S608 - identifiers from model metadata, values as parameters
    if new_invoice_ids is not None:
        added = ", ".join(f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in columns + roll_columns)
        sql += f"ON CONFLICT (month_end, client_id, currency) DO UPDATE SET {added}, computed_at = excluded.computed_at"
    params = [
        *now_params,
        *then_params,
        *SNAPSHOT_COLUMNS,
        *(a.code for a, _b in ROLL_TRANSITIONS),
        *(value for a, _b in ROLL_TRANSITIONS for value in (a.code, _later_codes(a.code))),
        month_end,
        clock.now(),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        if new_invoice_ids is not None:
            pass  # added to the month's rows
        elif client_ids is None:
            AgingSnapshot.objects.filter(month_end=month_end).delete()
        else:
            cursor.execute(
                f"DELETE FROM {table} WHERE month_end = %s AND client_id = ANY(%s)",  # noqa: S608 - model's table
                [month_end, list(client_ids)],
            )
        cursor.execute(sql, params)
        return cursor.rowcount


def store_cube(cursor, day: dt.date) -> str:
    """The full receivables cube (invoice, client, currency, bucket, amount) at the close of
    ``day`` in a temporary table dropped at the end of the transaction; returns its quoted name."""
    name = connection.ops.quote_name(f"snapshot_cube_{day:%Y%m%d}")
    sql, params = _cube_sql(None, day, dims=CUBE_DIMS)
    cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute(f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS {sql}", params)
    cursor.execute(f"ANALYZE {name}")  # joined on the invoice by the next month's roll figures
    return name


def snapshot_months(ends: list[dt.date]) -> dict[dt.date, int]:
    """Snapshots of the given month ends, oldest first (idempotent), in one transaction.

    A month's close needs its own receivables cube and the month before's (roll figures): each
    cube is computed once and kept for the next month, so a run of n consecutive months reads
    the ledger n + 1 times instead of 2n (the demo's thirteen months: 14 instead of 26)."""
    out: dict[dt.date, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        kept: dict[dt.date, str] = {}
        for end in sorted(set(ends)):
            previous = previous_month_end(end)
            for day in (previous, end):
                if day not in kept:
                    kept[day] = store_cube(cursor, day)
            out[end] = snapshot_aging(month_end=end, cubes=(kept[end], kept[previous]))
            for day in [day for day in kept if day < end]:
                cursor.execute(f"DROP TABLE {kept.pop(day)}")
    return out


def snapshot_history(
    *,
    since: dt.date,
    today: dt.date | None = None,
    limit: int = 120,
    client_ids: list[int] | None = None,
    new_invoice_ids: list[int] | None = None,
) -> dict[dt.date, int]:
    """Every month-end close from ``since``'s month to the last complete month before
    ``today`` (at most the last ``limit``): after an import of past invoices or payments, the
    trend and roll rates of those months without a shell command (docs/domain.md#trend).

    ``client_ids``: the clients whose ledger changed. A month already taken (it has snapshot
    rows) then gets those clients' rows replaced, the same rows a full close would store for
    them; a month not taken yet gets its full close (a partial one would count as taken).
    ``new_invoice_ids``, when all that changed is new invoices (with their own settlements and
    disputes): a taken month with roll figures gets their part added (``snapshot_aging``)."""
    today = today or clock.localdate()
    last = previous_month_end(today)
    first = month_end(since)
    if first > last:
        return {}
    count = (last.year * 12 + last.month) - (first.year * 12 + first.month) + 1
    ends = sorted(month_ends(last, min(count, limit)))
    if client_ids is None:
        return snapshot_months(ends)
    # Taken months, and whether all their rows carry roll figures (older rows are recomputed).
    taken = dict(
        AgingSnapshot.objects.filter(month_end__in=ends)
        .order_by()
        .values("month_end")
        .annotate(rolls=BoolAnd("has_roll"))
        .values_list("month_end", "rolls")
    )
    ids = sorted({int(pk) for pk in client_ids})
    new = sorted({int(pk) for pk in new_invoice_ids}) if new_invoice_ids is not None else None
    out = {}
    for end in ends:
        if end not in taken:
            out[end] = snapshot_aging(month_end=end)
        elif new is not None and taken[end]:
            out[end] = snapshot_aging(month_end=end, new_invoice_ids=new)
        else:
            out[end] = snapshot_aging(month_end=end, client_ids=ids)
    return out


def backfill_snapshots(*, months: int = 12, today: dt.date | None = None) -> dict[dt.date, int]:
    """Snapshots for the last ``months`` complete months before ``today`` (idempotent)."""
    today = today or clock.localdate()
    return snapshot_months(month_ends(previous_month_end(today), months))
