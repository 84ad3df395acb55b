"""The dunning planner: which ladder steps are due, recorded once, in a few SQL statements.

For every collectible invoice of a client whose policy is active, the *current* step is the
highest step whose day (due date + offset) has come. It is planned when no notice has listed
that invoice at that step or a later one. Invoices are grouped per client and step into one
Notice for the day; the unique constraints (client, step, day) and (invoice, step) make a
second planner — concurrent or repeated — insert nothing.

Rules in the SQL, so they hold for a million invoices without a Python loop:
- a pre-due reminder (negative offset) is stale once the invoice is overdue;
- an invoice skipped past several steps (imported late, planner down) gets only the latest;
- a broken commitment's ``LadderBump`` makes the next step due today, whatever its offset;
- paused clients, held invoices, invoices under an open promise, plan or extension, disputed,
  paid, cancelled and written-off invoices, balances under the policy's tolerance, and steps
  whose minimum overdue amount the client's invoices at that step do not reach are left out.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum

from accounts import clock
from accounts.models import Client, Invoice
from cobranza import rules
from cobranza.models import (
    ClientDunning,
    LadderBump,
    Notice,
    NoticeItem,
    Policy,
    PolicyStep,
)

CANDIDATES = "cobranza_plan_candidates"


def _candidate_sql() -> str:
    t = {
        "client": Client._meta.db_table,
        "invoice": Invoice._meta.db_table,
        "dunning": ClientDunning._meta.db_table,
        "policy": Policy._meta.db_table,
        "step": PolicyStep._meta.db_table,
        "item": NoticeItem._meta.db_table,
        "bump": LadderBump._meta.db_table,
        "step_day_reached": rules.step_day_reached_sql("i", "s", "%(today)s"),
        "stale_pre_due": rules.stale_pre_due_sql("i", "s", "%(today)s"),
        "dunnable": rules.dunnable_invoice_sql("i", "%(today)s"),
    }
    return """
    WITH {effective},
    due AS (
        SELECT i.id AS invoice_id, i.client_id, s.id AS step_id, s.position, s.policy_id,
               s.min_overdue_amount, i.open_balance, i.due_date,
               ROW_NUMBER() OVER (PARTITION BY i.id ORDER BY s.position DESC) AS rank
        FROM {invoice} i
        JOIN effective e ON e.client_id = i.client_id
        JOIN {policy} p ON p.id = e.policy_id AND p.is_active
        JOIN {step} s ON s.policy_id = p.id AND s.is_active
        WHERE {dunnable}
          AND i.open_balance >= p.tolerance
          AND ({step_day_reached} OR EXISTS (
              -- a broken promise made this step (or a later one) due today: one step firmer
              SELECT 1 FROM {bump} b JOIN {step} bs ON bs.id = b.step_id
              WHERE b.invoice_id = i.id AND b.since <= %(today)s
                AND bs.policy_id = s.policy_id AND bs.position >= s.position
          ))
          AND NOT {stale_pre_due}
    )
    SELECT d.invoice_id, d.client_id, d.step_id, d.min_overdue_amount, d.open_balance, d.due_date
    FROM due d
    WHERE d.rank = 1
      AND NOT EXISTS (
          SELECT 1 FROM {item} ni JOIN {step} s2 ON s2.id = ni.step_id
          WHERE ni.invoice_id = d.invoice_id AND s2.policy_id = d.policy_id AND s2.position >= d.position
      )
    """.format(effective=effective_cte(), **t)


def effective_cte() -> str:
    """``effective AS (...)``: each client the ladder may act on on %(today)s (not written off,
    not with an agency or in legal, not paused) with its effective policy — its own, else its
    profile's (when that policy is active), else its segment's (``cobranza.rules``)."""
    return f"""effective AS (
        SELECT c.id AS client_id, {rules.effective_policy_sql(dunning="cd")} AS policy_id
        FROM {Client._meta.db_table} c
        {rules.effective_policy_joins_sql("c", dunning="cd", profile="cp")}
        WHERE {rules.ladder_client_sql("c", dunning="cd", today="%(today)s")}
    )"""


def effective_policy_of(client_ids) -> dict[int, int | None]:
    """The effective policy id of each client (own > profile's > segment's), pauses ignored."""
    clients = Client.objects.filter(pk__in=list(client_ids)).annotate(policy_id=rules.effective_policy_expr())
    return dict(clients.values_list("pk", "policy_id"))


@dataclass
class PlanResult:
    today: dt.date
    notices: int = 0
    items: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    # With ``detail``: one row per planned notice (client, step, channel, invoices, totals).
    rows: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "today": self.today.isoformat(),
            "dry_run": self.dry_run,
            "notices_planned": self.notices,
            "invoices_listed": self.items,
            "by_channel": dict(sorted(self.by_channel.items())),
        }


def plan(*, today: dt.date, now: dt.datetime | None = None, dry_run: bool = False, detail: int = 0) -> PlanResult:
    """Record every notice due on ``today``. With ``dry_run`` nothing is written (the
    transaction is rolled back) and the result says what would have been planned.
    ``detail=N`` also returns the first N planned notices as rows (for the browser)."""
    now = now or clock.now()
    result = PlanResult(today=today, dry_run=dry_run)
    params = {"today": today, "now": now}
    notice_t, item_t, step_t = Notice._meta.db_table, NoticeItem._meta.db_table, PolicyStep._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {CANDIDATES}")
            cur.execute(f"CREATE TEMPORARY TABLE {CANDIDATES} AS {_candidate_sql()}", params)
            # One notice per client and step, when the invoices at that step reach the
            # step's minimum amount. Approval steps wait for a person.
            cur.execute(
                f"""
                INSERT INTO {notice_t} (client_id, step_id, channel, planned_for, scheduled_at, status,
                    recipient, language, subject, body, attempts, deferrals, message_id, provider_ref,
                    reason, created_at, updated_at)
                SELECT c.client_id, c.step_id, s.channel, %(today)s, %(now)s,
                       CASE WHEN s.requires_approval THEN 'awaiting_approval' ELSE 'planned' END,
                       '', cl.language, '', '', 0, 0, '', '', '', %(now)s, %(now)s
                FROM {CANDIDATES} c
                JOIN {step_t} s ON s.id = c.step_id
                JOIN {Client._meta.db_table} cl ON cl.id = c.client_id
                GROUP BY c.client_id, c.step_id, s.channel, s.requires_approval, s.min_overdue_amount, cl.language
                HAVING SUM(c.open_balance) >= s.min_overdue_amount
                ON CONFLICT (client_id, step_id, planned_for) DO NOTHING
                RETURNING id, channel
                """,
                params,
            )
            # Only the rows this run inserted come back: a notice planned earlier is not counted.
            inserted = cur.fetchall()
            result.notices = len(inserted)
            cur.execute(
                f"""
                INSERT INTO {item_t} (notice_id, invoice_id, step_id, open_balance, days_overdue)
                SELECT n.id, c.invoice_id, c.step_id, c.open_balance, (%(today)s::date - c.due_date)
                FROM {CANDIDATES} c
                JOIN {notice_t} n ON n.client_id = c.client_id AND n.step_id = c.step_id
                                 AND n.planned_for = %(today)s
                WHERE n.status IN ('planned', 'awaiting_approval')
                ON CONFLICT (invoice_id, step_id) DO NOTHING
                """,
                params,
            )
            result.items = max(cur.rowcount, 0)
            result.by_channel = dict(Counter(channel for _id, channel in inserted))
            cur.execute(f"DROP TABLE IF EXISTS {CANDIDATES}")
        if detail:
            result.rows = _rows([notice_id for notice_id, _channel in inserted], limit=detail)
        if dry_run:
            transaction.set_rollback(True)
    return result


def _rows(notice_ids: list[int], *, limit: int) -> list[dict]:
    """The notices this run planned, biggest amounts first: two queries, whatever the count."""
    notices = list(
        Notice.objects.filter(pk__in=notice_ids)
        .select_related("client", "client__collector", "step", "step__policy")
        .annotate(invoice_count=Count("items"), amount=Sum("items__open_balance"))
        .order_by("-amount", "client__legal_name")[:limit]
    )
    totals: dict[int, dict[str, Decimal]] = {}
    for notice_id, currency, amount in (
        NoticeItem.objects.filter(notice__in=[n.pk for n in notices])
        .values_list("notice_id", "invoice__currency")
        .annotate(total=Sum("open_balance"))
        .values_list("notice_id", "invoice__currency", "total")
    ):
        totals.setdefault(notice_id, {})[currency] = amount
    return [
        {
            "client": n.client,
            "step": n.step,
            "policy": n.step.policy,
            "channel": n.channel,
            "status": n.status,
            "language": n.language,
            "invoice_count": n.invoice_count,
            "totals": dict(sorted(totals.get(n.pk, {}).items())),
        }
        for n in notices
    ]
