"""The dashboard's background work: the month-end aging snapshots that the trends and roll
rates read (``tasks.snapshot_aging`` on the 1st of each month; a manager can fill missing
months from the dashboard). A snapshot stores ``metrics.receivables_as_of`` at the month's
close, through the same query, so a KPI is still defined once, in ``metrics``.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from accounts import clock
from cobranza.dashboard.metrics import SNAPSHOT_COLUMNS, _cube_sql, month_ends, previous_month_end
from cobranza.models import AgingSnapshot


def snapshot_aging(*, month_end: dt.date) -> int:
    """Store the receivables of every client and currency by aging bucket at the close of
    ``month_end`` (the same definition as ``receivables_as_of``). One ``INSERT … SELECT`` from
    the receivables cube, in one transaction with the removal of the month's old rows: running
    it again replaces them. Returns the number of rows stored."""
    cube, cube_params = _cube_sql(None, month_end, dims=("client", "currency"))
    columns = list(SNAPSHOT_COLUMNS.values())
    # Each bucket summed to the cent like ``_cents`` (ROUND on numeric rounds half away from
    # zero: half up for these positive balances).
    sums = ", ".join(
        "ROUND(COALESCE(SUM(cube.amount) FILTER (WHERE cube.bucket = %s), 0), 2)" for _bucket in SNAPSHOT_COLUMNS
    )
    q = connection.ops.quote_name
    table = q(AgingSnapshot._meta.db_table)
    sql = f"""
        INSERT INTO {table} (month_end, client_id, currency, {", ".join(map(q, columns))}, computed_at)
        SELECT %s, cube.client, cube.currency, {sums}, %s
        FROM ({cube}) cube
        GROUP BY cube.client, cube.currency
    """  # noqa: S608 - identifiers from model metadata, values as parameters
    params = [month_end, *SNAPSHOT_COLUMNS, clock.now(), *cube_params]
    with transaction.atomic(), connection.cursor() as cursor:
        AgingSnapshot.objects.filter(month_end=month_end).delete()
        cursor.execute(sql, params)
        return cursor.rowcount


def backfill_snapshots(*, months: int = 12, today: dt.date | None = None) -> dict[dt.date, int]:
    """Snapshots for the last ``months`` complete months before ``today`` (idempotent)."""
    today = today or clock.localdate()
    return {end: snapshot_aging(month_end=end) for end in month_ends(previous_month_end(today), months)}
