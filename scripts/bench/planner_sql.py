# ruff: noqa: S608 - only table names from model metadata are interpolated; values are parameters
"""The dunning planner's selection and insert as ONE hand-tuned SQL statement: the yardstick
the application planner (``cobranza.engine.planner.plan``) is measured against.

Same rules as the planner (see its docstring): effective policy (own > profile's > segment's),
clients not written off / with an agency / in legal / paused, collectible invoices above the
policy's tolerance, the highest due step per invoice that applies to it (pre-due reminders
stale once overdue, a step's ``applies_from``, ladder bumps), nothing under an open commitment
or a hold, nothing already listed at that step or a later one, the step's minimum amount; then
pacing (docs/domain.md#pacing): per client the firmest step its spacing allows, none when a
notice planned for it today is open, and the steps its invoices pass over recorded as superseded.
Written as a single statement with data-modifying CTEs: the candidates are computed once and
feed every insert, with no temporary table. Simplifications against the planner: a notice
that a concurrent planner inserts between this statement's snapshot and its insert makes it
fail (foreign key) instead of joining that notice; the benchmark runs one planner at a time.
And the clients' stored time zones are used as they are (the planner falls back to the
company's zone for an invalid one): the benchmark's clients have valid zones.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils.translation import gettext as _

from cobranza.engine.planner import effective_cte, planning_moment
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
    SELECT inv.id AS invoice_id, inv.client_id, inv.policy_id, st.id AS step_id, st.position,
           inv.open_balance, inv.due_date, d.position AS reached
    FROM inv
    LEFT JOIN bump bp ON bp.invoice_id = inv.id AND bp.policy_id = inv.policy_id
    CROSS JOIN LATERAL (
        SELECT s.id, s.position FROM cobranza_policystep s
        WHERE s.policy_id = inv.policy_id AND s.is_active
          AND (((inv.due_date + s.offset_days) <= %(today)s
                AND (s.applies_from IS NULL OR (inv.due_date + s.offset_days) >= s.applies_from))
               OR s.position <= bp.position)
          AND NOT (s.offset_days < 0 AND inv.due_date < %(today)s)
        ORDER BY s.position DESC LIMIT 1
    ) st
    LEFT JOIN done d ON d.invoice_id = inv.id AND d.policy_id = inv.policy_id
    WHERE d.position IS NULL OR d.position < st.position
),
-- One row per (client, step) that reaches the step's minimum, with its invoices as arrays. The
-- items are then unnested from these rows: no join between CTEs (whose row estimates are guesses).
grp AS MATERIALIZED (
    SELECT c.client_id, c.step_id, c.position, s.channel, s.requires_approval, cl.language, cl.time_zone,
           array_agg(c.invoice_id) AS invoice_ids, array_agg(c.open_balance) AS balances,
           array_agg(%(today)s::date - c.due_date) AS days
    FROM cand c
    JOIN cobranza_policystep s ON s.id = c.step_id
    JOIN accounts_client cl ON cl.id = c.client_id
    GROUP BY c.client_id, c.step_id, c.position, s.channel, s.requires_approval, s.min_overdue_amount,
             cl.language, cl.time_zone
    HAVING SUM(c.open_balance) >= s.min_overdue_amount
),
-- Pacing, per client with a due step: its local day, its last sends' local days, an open notice.
gate AS MATERIALIZED (
    SELECT cs.client_id,
           (%(moment)s::timestamptz AT TIME ZONE cs.time_zone)::date AS local_today,
           (ls.last_sent AT TIME ZONE cs.time_zone)::date AS last_day,
           (ls.last_escalation AT TIME ZONE cs.time_zone)::date AS last_escalation_day,
           EXISTS (SELECT 1 FROM cobranza_notice o WHERE o.client_id = cs.client_id AND o.planned_for = %(today)s
                   AND o.status IN ('planned', 'awaiting_approval', 'sending')) AS busy
    FROM (SELECT DISTINCT client_id, time_zone FROM grp) cs
    LEFT JOIN LATERAL (
        SELECT MAX(n.sent_at) AS last_sent,
               MAX(n.sent_at) FILTER (WHERE n.channel IN ('letter', 'agency', 'legal')) AS last_escalation
        FROM cobranza_notice n WHERE n.client_id = cs.client_id AND n.status = 'sent'
    ) ls ON true
),
chosen AS MATERIALIZED (
    SELECT DISTINCT ON (g.client_id) g.client_id, g.step_id
    FROM grp g
    JOIN gate ga ON ga.client_id = g.client_id
    JOIN cobranza_policystep s ON s.id = g.step_id
    JOIN cobranza_policy p ON p.id = s.policy_id
    WHERE NOT ga.busy
      AND (ga.last_day IS NULL OR ga.local_today - ga.last_day >= GREATEST(p.min_days_between_contacts, 1))
      AND (g.channel NOT IN ('letter', 'agency', 'legal') OR ga.last_escalation_day IS NULL
           OR ga.local_today - ga.last_escalation_day >= GREATEST(p.min_days_between_escalations, 1))
    ORDER BY g.client_id, g.position DESC
),
-- The notice each chosen group goes on (today's existing one, or a new id drawn here), and
-- the groups that join a notice of today still open.
target AS MATERIALIZED (
    SELECT g.*, n.id AS existing_id, n.status AS existing_status,
           CASE WHEN n.id IS NULL THEN nextval(pg_get_serial_sequence('cobranza_notice', 'id')) END AS new_id
    FROM grp g
    LEFT JOIN chosen ch ON ch.client_id = g.client_id AND ch.step_id = g.step_id
    LEFT JOIN cobranza_notice n
           ON n.client_id = g.client_id AND n.step_id = g.step_id AND n.planned_for = %(today)s
    WHERE ch.client_id IS NOT NULL OR n.status IN ('planned', 'awaiting_approval')
),
new_notice AS (
    INSERT INTO cobranza_notice (id, client_id, step_id, channel, planned_for, scheduled_at, status, recipient,
        language, subject, body, attempts, deferrals, message_id, provider_ref, reason, created_at, updated_at)
    SELECT t.new_id, t.client_id, t.step_id, t.channel, %(today)s, %(now)s,
           CASE WHEN t.requires_approval THEN 'awaiting_approval' ELSE 'planned' END,
           '', t.language, '', '', 0, 0, '', '', '', %(now)s, %(now)s
    FROM target t WHERE t.new_id IS NOT NULL
    RETURNING id
),
new_item AS (
    INSERT INTO cobranza_noticeitem (notice_id, invoice_id, step_id, open_balance, days_overdue)
    SELECT COALESCE(t.new_id, t.existing_id), u.invoice_id, t.step_id, u.balance, u.days
    FROM target t
    CROSS JOIN LATERAL unnest(t.invoice_ids, t.balances, t.days) AS u(invoice_id, balance, days)
    WHERE t.new_id IS NOT NULL OR t.existing_status IN ('planned', 'awaiting_approval')
    ON CONFLICT (invoice_id, step_id) DO NOTHING
    RETURNING notice_id, invoice_id, step_id
),
-- The steps the invoices just listed pass over: recorded as superseded, never sent.
sup AS MATERIALIZED (
    SELECT c.client_id, ls.id AS step_id, ls.channel, ni.notice_id AS by_notice, ni.step_id AS by_step,
           c.invoice_id, c.open_balance, c.due_date
    FROM new_item ni
    JOIN cand c ON c.invoice_id = ni.invoice_id AND c.step_id = ni.step_id
    JOIN cobranza_policystep ls ON ls.policy_id = c.policy_id AND ls.is_active
                               AND ls.position < c.position AND (c.reached IS NULL OR ls.position > c.reached)
    WHERE (ls.applies_from IS NULL OR (c.due_date + ls.offset_days) >= ls.applies_from)
      AND NOT (ls.offset_days < 0 AND c.due_date < %(today)s)
),
sup_target AS MATERIALIZED (
    SELECT x.*, n.id AS existing_id, n.status AS existing_status,
           CASE WHEN n.id IS NULL THEN nextval(pg_get_serial_sequence('cobranza_notice', 'id')) END AS new_id
    FROM (
        SELECT client_id, step_id, channel, MIN(by_notice) AS by_notice,
               (array_agg(by_step ORDER BY by_notice))[1] AS by_step
        FROM sup GROUP BY client_id, step_id, channel
    ) x
    LEFT JOIN cobranza_notice n
           ON n.client_id = x.client_id AND n.step_id = x.step_id AND n.planned_for = %(today)s
),
sup_notice AS (
    INSERT INTO cobranza_notice (id, client_id, step_id, channel, planned_for, scheduled_at, status, recipient,
        language, subject, body, attempts, deferrals, message_id, provider_ref, reason, superseded_by_id,
        created_at, updated_at)
    SELECT t.new_id, t.client_id, t.step_id, t.channel, %(today)s, %(now)s, 'superseded',
           '', cl.language, '', '', 0, 0, '', '',
           LEFT(replace(%(superseded_reason)s, '{{step}}', bs.name), 255), t.by_notice, %(now)s, %(now)s
    FROM sup_target t
    JOIN accounts_client cl ON cl.id = t.client_id
    JOIN cobranza_policystep bs ON bs.id = t.by_step
    WHERE t.new_id IS NOT NULL
    RETURNING id
)
INSERT INTO cobranza_noticeitem (notice_id, invoice_id, step_id, open_balance, days_overdue)
SELECT COALESCE(t.new_id, t.existing_id), s.invoice_id, s.step_id, s.open_balance, %(today)s::date - s.due_date
FROM sup s
JOIN sup_target t ON t.client_id = s.client_id AND t.step_id = s.step_id
WHERE t.new_id IS NOT NULL OR t.existing_status = 'superseded'
ON CONFLICT (invoice_id, step_id) DO NOTHING
"""


def hand_sql() -> str:
    return HAND_SQL.format(effective=effective_cte(), in_commitment=open_commitment_sql("i"))


def plan_by_hand(*, today: dt.date, now: dt.datetime) -> int:
    """Run the one statement; returns the superseded notice items inserted."""
    params = {
        "today": today,
        "now": now,
        "moment": planning_moment(today, now),
        "superseded_reason": _("Reemplazado por un paso más firme planeado el mismo día: «{step}»."),
    }
    with transaction.atomic(), connection.cursor() as cur:
        # One statement cannot analyze its intermediate results: the CTEs' row estimates are
        # guesses (tens of rows for 150,000 candidate invoices), and a join between two CTEs
        # planned as a nested loop rescans one for every row of the other (10,260 × 7,799 rows
        # for the chosen notices: ~40 s). Hash joins throughout — the step lookup, a LATERAL,
        # stays a nested loop — is what a hand-tuned statement would ask for.
        cur.execute("SET LOCAL enable_nestloop = off")
        cur.execute(hand_sql(), params)
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
