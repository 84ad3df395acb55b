# ruff: noqa: S608 - table names from model metadata; values are parameters
"""The settlement behaviour the cash forecast reads, kept with the nightly profiles.

The forecast expects an invoice on its due date plus its client's median settlement offset, or
its segment's, or the portfolio's (docs/domain.md#cash-forecast). Each client's own figures are
written by the profile job (``SettlementOffset``, in its one statement); the medians of the
segments and of the portfolio cannot be put together from the clients' medians, so the full run
also stores them here (``SettlementNorm``), in one more statement. The forecast standing on the same
day reads these rows instead of every invoice settled in 24 months.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

from accounts.models import Client
from cobranza.forecast.selectors import MEDIAN, OFFSET_DAYS, settled_history_sql
from cobranza.models import SettlementNorm


def store_settlement_norms(*, as_of: dt.date) -> int:
    """Replace the stored segment and portfolio medians with those of the invoices settled in
    the 24 months before ``as_of`` (the forecast standing at the start of that day). Returns the
    rows written: one per segment with settled invoices, plus the portfolio's (always)."""
    table = SettlementNorm._meta.db_table
    settled, params = settled_history_sql(as_of)
    sql = f"""
    INSERT INTO {table} (as_of, segment_id, settled, median)
    WITH delays AS (
        SELECT c.segment_id, {OFFSET_DAYS} AS days
        FROM ({settled}) s JOIN {Client._meta.db_table} c ON c.id = s.client_id)
    SELECT %s, segment_id, COUNT(*), {MEDIAN} FROM delays GROUP BY segment_id
    UNION ALL
    SELECT %s, NULL, COUNT(*), {MEDIAN} FROM delays
    ON CONFLICT (segment_id) DO UPDATE
        SET as_of = excluded.as_of, settled = excluded.settled, median = excluded.median
    """
    # A segment left without settled invoices keeps its older row: the forecast reads only the
    # rows of its own day, so that segment takes the portfolio's median, as it should.
    with connection.cursor() as cur:
        cur.execute(sql, [*params, as_of, as_of])
        return cur.rowcount
