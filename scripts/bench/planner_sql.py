# ruff: noqa: S608 - only table names from model metadata are interpolated; values are parameters
"""The dunning planner's selection and insert as ONE hand-tuned SQL statement: the yardstick
the application planner (``cobranza.engine.planner.plan``) is measured against.

Same rules as the planner (see its docstring): effective policy (own > profile's > segment's),
clients not written off / with an agency / in legal / paused, collectible invoices above the
policy's tolerance, the highest due step per invoice (pre-due reminders stale once overdue,
ladder bumps), nothing under an open commitment or a hold, nothing already listed at that step
or a later one, one notice per client and step when the step's minimum amount is reached.
Written as a single statement with data-modifying CTEs: the candidates are computed once and
feed both inserts, with no temporary table. One simplification against the planner: a notice
that a concurrent planner inserts between this statement's snapshot and its insert makes it
fail (foreign key) instead of joining that notice; the benchmark runs one planner at a time.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from cobranza.engine.planner import effective_cte
from cobranza.rules import open_commitment_sql

HAND_SQL = """
WITH {effective},
-- A broken promise's bump: the highest bumped position per invoice and policy (few rows).
bump AS (
    SELECT b.invoice_id, bs.policy_id, MAX(bs.position) AS position
    FROM cobranza_ladderbump b JOIN cobranza_policystep bs ON bs.id = b.step_id
    WHERE b.since <= %(today)s
    GROUP BY b.invoice_id, bs.policy_id
),
-- Collectible invoices of clients the ladder may act on, first: the steps are looked at once
-- per invoice (LATERAL, highest due step only) instead of joining every step and ranking.
inv AS MATERIALIZED (
    SELECT i.id, i.client_id, i.open_balance, i.due_date, e.policy_id
    FROM accounts_invoice i
    JOIN effective e ON e.client_id = i.client_id
    JOIN cobranza_policy p ON p.id = e.policy_id AND p.is_active
    WHERE i.status IN ('open', 'partially_paid')
      AND i.open_balance > 0
      AND i.open_balance >= p.tolerance
      AND NOT {in_commitment}
      AND NOT EXISTS (SELECT 1 FROM cobranza_invoicehold h
                      WHERE h.invoice_id = i.id AND (h.until IS NULL OR h.until >= %(today)s))
),
-- The furthest step each invoice was already listed at, per policy: one pass over the items.
done AS MATERIALIZED (
    SELECT ni.invoice_id, s2.policy_id, MAX(s2.position) AS position
    FROM cobranza_noticeitem ni JOIN cobranza_policystep s2 ON s2.id = ni.step_id
    GROUP BY ni.invoice_id, s2.policy_id
),
cand AS MATERIALIZED (
    SELECT inv.id AS invoice_id, inv.client_id, st.id AS step_id, inv.open_balance, inv.due_date
    FROM inv
    LEFT JOIN bump bp ON bp.invoice_id = inv.id AND bp.policy_id = inv.policy_id
    CROSS JOIN LATERAL (
        SELECT s.id, s.position FROM cobranza_policystep s
        WHERE s.policy_id = inv.policy_id AND s.is_active
          AND ((inv.due_date + s.offset_days) <= %(today)s OR s.position <= bp.position)
          AND NOT (s.offset_days < 0 AND inv.due_date < %(today)s)
        ORDER BY s.position DESC LIMIT 1
    ) st
    LEFT JOIN done d ON d.invoice_id = inv.id AND d.policy_id = inv.policy_id
    WHERE d.position IS NULL OR d.position < st.position
),
-- One row per (client, step) that reaches the step's minimum, with its invoices as arrays, and
-- the notice it goes on: today's existing one, or a new id drawn here. The items are then
-- unnested from these rows: no join between CTEs (whose row estimates are guesses).
grp AS MATERIALIZED (
    SELECT c.client_id, c.step_id, s.channel, s.requires_approval, cl.language,
           array_agg(c.invoice_id) AS invoice_ids, array_agg(c.open_balance) AS balances,
           array_agg(%(today)s::date - c.due_date) AS days
    FROM cand c
    JOIN cobranza_policystep s ON s.id = c.step_id
    JOIN accounts_client cl ON cl.id = c.client_id
    GROUP BY c.client_id, c.step_id, s.channel, s.requires_approval, s.min_overdue_amount, cl.language
    HAVING SUM(c.open_balance) >= s.min_overdue_amount
),
target AS MATERIALIZED (
    SELECT g.*, n.id AS existing_id, n.status AS existing_status,
           CASE WHEN n.id IS NULL THEN nextval(pg_get_serial_sequence('cobranza_notice', 'id')) END AS new_id
    FROM grp g
    LEFT JOIN cobranza_notice n
           ON n.client_id = g.client_id AND n.step_id = g.step_id AND n.planned_for = %(today)s
),
new_notice AS (
    INSERT INTO cobranza_notice (id, client_id, step_id, channel, planned_for, scheduled_at, status, recipient,
        language, subject, body, attempts, deferrals, message_id, provider_ref, reason, created_at, updated_at)
    SELECT t.new_id, t.client_id, t.step_id, t.channel, %(today)s, %(now)s,
           CASE WHEN t.requires_approval THEN 'awaiting_approval' ELSE 'planned' END,
           '', t.language, '', '', 0, 0, '', '', '', %(now)s, %(now)s
    FROM target t WHERE t.new_id IS NOT NULL
    RETURNING id
)
INSERT INTO cobranza_noticeitem (notice_id, invoice_id, step_id, open_balance, days_overdue)
SELECT COALESCE(t.new_id, t.existing_id), u.invoice_id, t.step_id, u.balance, u.days
FROM target t
CROSS JOIN LATERAL unnest(t.invoice_ids, t.balances, t.days) AS u(invoice_id, balance, days)
WHERE t.new_id IS NOT NULL OR t.existing_status IN ('planned', 'awaiting_approval')
ON CONFLICT (invoice_id, step_id) DO NOTHING
"""


def hand_sql() -> str:
    return HAND_SQL.format(effective=effective_cte(), in_commitment=open_commitment_sql("i"))


def plan_by_hand(*, today: dt.date, now: dt.datetime) -> int:
    """Run the one statement; returns the notice items inserted."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(hand_sql(), {"today": today, "now": now})
        return cur.rowcount


def planned_rows(*, today: dt.date) -> tuple[list, list]:
    """What is planned for ``today``, in a comparable form."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT client_id, step_id, channel, status, language FROM cobranza_notice "
            "WHERE planned_for = %s ORDER BY 1, 2",
            [today],
        )
        notices = cur.fetchall()
        cur.execute(
            "SELECT n.client_id, ni.invoice_id, ni.step_id, ni.open_balance, ni.days_overdue "
            "FROM cobranza_noticeitem ni JOIN cobranza_notice n ON n.id = ni.notice_id "
            "WHERE n.planned_for = %s ORDER BY 2, 3",
            [today],
        )
        items = cur.fetchall()
    return notices, items


def reset_day(*, today: dt.date) -> None:
    """Forget what was planned for ``today`` (between repeats)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "DELETE FROM cobranza_collectortask WHERE notice_id IN "
            "(SELECT id FROM cobranza_notice WHERE planned_for = %s)",
            [today],
        )
        cur.execute(
            "DELETE FROM cobranza_noticeitem WHERE notice_id IN "
            "(SELECT id FROM cobranza_notice WHERE planned_for = %s)",
            [today],
        )
        cur.execute("DELETE FROM cobranza_notice WHERE planned_for = %s", [today])
