# ruff: noqa: S608 - the SQL interpolates table names and SQL built in cobranza.worklist.selectors; values are parameters
"""The worklist's stored ranking facts (docs/domain.md#worklist-ranking), set-based.

``worklist_rank_refresh`` computes every client's facts as of a day in one statement: after
midnight (ages cross their buckets, broken promises leave the window, pauses and holds end) and
whenever a policy or a segment changed. ``worklist_rank_refresh_touched`` recomputes only those
of the clients written to since (through the day), so that the worklist has few to recompute as
it reads.

Each is one statement: it reads one snapshot, and forgets exactly the recorded writes that
snapshot saw — a write committed meanwhile stays recorded for the next run.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from accounts.models import Client, Segment
from cobranza.models import ClientProfile
from cobranza.worklist.selectors import (
    DIRTY_TABLE,
    FACT_COLUMNS,
    RANK_TABLE,
    STATE_TABLE,
    _fresh_sql,
    base_score_sql,
    ranking_facts_sql,
)

# One refresh at a time (two would recompute the same rows).
_LOCK = 0x574B524E  # "WKRN"


def _refresh(today: dt.date, *, touched_only: bool) -> dict:
    qn = connection.ops.quote_name
    if touched_only:
        facts_sql, facts_params = ranking_facts_sql(
            today, clients="{id} IN (SELECT client_id FROM seen_ids)", gate="(SELECT ok FROM fresh)"
        )
        seen = f"SELECT DISTINCT client_id FROM {DIRTY_TABLE} WHERE client_id IS NOT NULL"
        # Nothing when the stored facts are not today's: the full refresh is due.
        forget = (
            f"DELETE FROM {DIRTY_TABLE} WHERE (SELECT ok FROM fresh)"
            " AND client_id IN (SELECT client_id FROM seen_ids) RETURNING 1"
        )
        stale = (
            f"SELECT client_id FROM {RANK_TABLE} WHERE (SELECT ok FROM fresh)"
            " AND client_id IN (SELECT client_id FROM seen_ids)"
        )
        state = "SELECT 1"
        state_params: list = []
    else:
        facts_sql, facts_params = ranking_facts_sql(today)
        seen = "SELECT NULL::bigint WHERE FALSE"
        forget = f"DELETE FROM {DIRTY_TABLE} RETURNING 1"
        stale = f"SELECT client_id FROM {RANK_TABLE}"
        state = (
            f"INSERT INTO {STATE_TABLE} (id, computed_on) VALUES (1, %s)"
            " ON CONFLICT (id) DO UPDATE SET computed_on = EXCLUDED.computed_on RETURNING 1"
        )
        state_params = [today]
    score_sql, score_params = base_score_sql("f", "c", "s", "p")
    fresh_sql, fresh_params = _fresh_sql(today)
    columns = ", ".join(FACT_COLUMNS)
    extra = ("base_score", "collector_id", "country", "time_zone")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*FACT_COLUMNS[1:], *extra))
    sql = f"""WITH fresh AS ({fresh_sql}),
seen_ids AS ({seen}),
facts AS MATERIALIZED ({facts_sql}),
written AS (
    INSERT INTO {RANK_TABLE} ({columns}, {", ".join(extra)})
    SELECT {", ".join(f"f.{c}" for c in FACT_COLUMNS)}, {score_sql}, c.collector_id, c.country, c.time_zone
    FROM facts AS f
    JOIN {qn(Client._meta.db_table)} AS c ON c.id = f.client_id
    JOIN {qn(Segment._meta.db_table)} AS s ON s.id = c.segment_id
    LEFT JOIN {qn(ClientProfile._meta.db_table)} AS p ON p.client_id = c.id
    ON CONFLICT (client_id) DO UPDATE SET {updates}
    RETURNING 1),
removed AS (
    DELETE FROM {RANK_TABLE} WHERE client_id IN ({stale})
      AND client_id NOT IN (SELECT client_id FROM facts) RETURNING 1),
forgotten AS ({forget}),
dated AS ({state})
SELECT (SELECT COUNT(*) FROM written), (SELECT COUNT(*) FROM removed), (SELECT COUNT(*) FROM forgotten),
       (SELECT COUNT(*) FROM dated)"""
    params = [*fresh_params, *facts_params, *score_params, *state_params]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        cursor.execute(sql, params)
        written, removed, forgotten, _dated = cursor.fetchone()
        if not touched_only:
            # Fresh statistics for the worklist's plans (the table was rewritten).
            cursor.execute(f"ANALYZE {RANK_TABLE}")
    return {"clients": written, "removed": removed, "writes_forgotten": forgotten}


def worklist_rank_refresh(*, today: dt.date) -> dict:
    """Every client's ranking facts as of ``today`` (one statement)."""
    return _refresh(today, touched_only=False)


def worklist_rank_refresh_touched(*, today: dt.date) -> dict:
    """The facts of the clients written to since the last refresh, when the stored facts are
    today's (otherwise nothing: the next full refresh does it)."""
    return _refresh(today, touched_only=True)
