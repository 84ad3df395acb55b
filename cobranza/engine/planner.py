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
  whose minimum overdue amount the client's invoices at that step do not reach are left out;
- a step added or moved to other days applies only to invoices whose day for it comes on or
  after the change (``PolicyStep.applies_from``), unless an administrator confirmed a catch-up.

Pacing (docs/domain.md#pacing), in the same statements: a client gets at most one ladder step
per planning day — the firmest of its due steps (highest position) that its spacing allows —
and none while the last notice sent to it is closer than the policy's minimum days between
contacts (escalation steps: between escalations), by the client's local day. The invoices of
other steps wait for a later day. For the invoices planned, every active step between the last
one they reached and the planned one is recorded as a ``superseded`` notice listing them, so it
is never sent later (and dispatch supersedes an older notice still waiting whose invoices a
firmer one has since listed).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone, translation

from accounts import clock
from accounts.models import Client, Invoice
from accounts.rules import sql_in, sql_literal
from cobranza import rules, texts
from cobranza.engine.contact_rules import SPREAD_CHANNELS, spread_slot_sql, zone_named
from cobranza.models import (
    ESCALATION_CHANNELS,
    ClientDunning,
    ContactRules,
    LadderBump,
    Notice,
    NoticeItem,
    NoticeStatus,
    Policy,
    PolicyStep,
)

CANDIDATES = "cobranza_plan_candidates"
ZONES = "cobranza_plan_zones"
CHOSEN = "cobranza_plan_chosen"
PLANNED_ITEMS = "cobranza_plan_items"
SUPERSEDED = "cobranza_plan_superseded"
TEMP_TABLES = (CANDIDATES, ZONES, CHOSEN, PLANNED_ITEMS, SUPERSEDED)


def _candidate_sql() -> str:
    """Per invoice, its current step (the highest due) when not yet reached, with ``reached``:
    the position of the furthest step of that policy it was already listed at (NULL: none)."""
    t = {
        "client": Client._meta.db_table,
        "invoice": Invoice._meta.db_table,
        "dunning": ClientDunning._meta.db_table,
        "policy": Policy._meta.db_table,
        "step": PolicyStep._meta.db_table,
        "item": NoticeItem._meta.db_table,
        "bump": LadderBump._meta.db_table,
        "step_day_reached": rules.step_day_reached_sql("i", "s", "%(today)s"),
        "step_applies": rules.step_applies_sql("i", "s"),
        "stale_pre_due": rules.stale_pre_due_sql("i", "s", "%(today)s"),
        "dunnable": rules.dunnable_invoice_sql("i", "%(today)s"),
    }
    return """
    WITH {effective},
    inv AS MATERIALIZED (
        -- The collectible invoices above tolerance of clients the ladder may act on, first:
        -- then the steps are looked at once per invoice, the highest due one only.
        SELECT i.id, i.client_id, i.open_balance, i.due_date, e.policy_id
        FROM {invoice} i
        JOIN effective e ON e.client_id = i.client_id
        JOIN {policy} p ON p.id = e.policy_id AND p.is_active
        WHERE {dunnable}
          AND i.open_balance >= p.tolerance
    ),
    bump AS (
        -- A broken promise made a step (or a later one) due today: its highest position.
        SELECT b.invoice_id, bs.policy_id, MAX(bs.position) AS position
        FROM {bump} b JOIN {step} bs ON bs.id = b.step_id
        WHERE b.since <= %(today)s
        GROUP BY b.invoice_id, bs.policy_id
    )
    SELECT i.id AS invoice_id, i.client_id, s.id AS step_id, s.position, i.policy_id, s.min_overdue_amount,
           i.open_balance, i.due_date, r.reached
    FROM inv i
    LEFT JOIN bump bp ON bp.invoice_id = i.id AND bp.policy_id = i.policy_id
    CROSS JOIN LATERAL (
        SELECT s.id, s.position, s.min_overdue_amount FROM {step} s
        WHERE s.policy_id = i.policy_id AND s.is_active
          AND (({step_day_reached} AND {step_applies}) OR s.position <= bp.position)
          AND NOT {stale_pre_due}
        ORDER BY s.position DESC LIMIT 1
    ) s
    LEFT JOIN LATERAL (
        -- The invoice's few items by its index, once (an InitPlan of the subquery), then their
        -- steps: not one index probe per step of the policy.
        SELECT MAX(s2.position) AS reached FROM {step} s2
        WHERE s2.policy_id = i.policy_id
          AND s2.id = ANY(ARRAY(SELECT ni.step_id FROM {item} ni WHERE ni.invoice_id = i.id))
    ) r ON true
    WHERE r.reached IS NULL OR r.reached < s.position
    """.format(effective=effective_cte(), **t)


def _groups_sql() -> str:
    """The (client, step) pairs whose candidate invoices reach the step's minimum amount."""
    return f"""
        SELECT c.client_id, c.step_id
        FROM {CANDIDATES} c JOIN {PolicyStep._meta.db_table} s ON s.id = c.step_id
        GROUP BY c.client_id, c.step_id, s.min_overdue_amount
        HAVING SUM(c.open_balance) >= s.min_overdue_amount
    """


def _chosen_sql() -> str:
    """Per client, the one (client, step) to plan: of its steps whose invoices reach the
    step's minimum amount, the firmest its pacing allows — none when a notice planned for it
    today is still open or while its last sent notice is too recent (docs/domain.md#pacing)."""
    t = {
        "client": Client._meta.db_table,
        "step": PolicyStep._meta.db_table,
        "policy": Policy._meta.db_table,
        "notice": Notice._meta.db_table,
        "open": sql_in("o.status", Notice.OPEN_STATUSES),
        "escalation": sql_in("s.channel", ESCALATION_CHANNELS),
        "escalation_n": sql_in("n.channel", ESCALATION_CHANNELS),
        "sent": sql_literal(NoticeStatus.SENT),
    }
    last_day = "(ls.last_sent AT TIME ZONE z.tz_name)::date"
    last_escalation_day = "(ls.last_escalation AT TIME ZONE z.tz_name)::date"
    spaced = rules.spaced_sql(last_day, "z.local_today", rules.pacing_days_sql("p"))
    escalation_spaced = rules.spaced_sql(
        last_escalation_day, "z.local_today", rules.pacing_days_sql("p", "min_days_between_escalations")
    )
    return f"""
    WITH grp AS ({_groups_sql()})
    SELECT DISTINCT ON (g.client_id) g.client_id, g.step_id
    FROM grp g
    JOIN {t["step"]} s ON s.id = g.step_id
    JOIN {t["policy"]} p ON p.id = s.policy_id
    JOIN {t["client"]} cl ON cl.id = g.client_id
    JOIN {ZONES} z ON z.time_zone = cl.time_zone
    LEFT JOIN LATERAL (
        SELECT MAX(n.sent_at) AS last_sent,
               MAX(n.sent_at) FILTER (WHERE {t["escalation_n"]}) AS last_escalation
        FROM {t["notice"]} n WHERE n.client_id = g.client_id AND n.status = {t["sent"]}
    ) ls ON true
    WHERE NOT EXISTS (
        -- one new notice per client and planning day: the next hourly run adds nothing
        SELECT 1 FROM {t["notice"]} o
        WHERE o.client_id = g.client_id AND o.planned_for = %(today)s AND {t["open"]}
    )
      AND {spaced}
      AND (NOT {t["escalation"]} OR {escalation_spaced})
    ORDER BY g.client_id, s.position DESC
    """


def _scheduled_sql() -> str:
    """When a planned notice is due: a message at its client's slot in the window of its
    local planning day (``contact_rules.slot_moment``, docs/domain.md#spread), or now when
    the slot has passed; anything else (tasks, letters, a country without rules) now.
    Dispatch re-checks the rules (weekends, holidays, a window already closed) at that time.
    A country whose rules do not spread (``ContactRules.spread_sends``) gets now as well."""
    saturday = "EXTRACT(ISODOW FROM z.local_today) = 6 AND cr.saturday_start_time IS NOT NULL"
    start = f"CASE WHEN {saturday} THEN cr.saturday_start_time ELSE cr.start_time END"
    end = f"CASE WHEN {saturday} THEN cr.saturday_end_time ELSE cr.end_time END"
    slot = spread_slot_sql("ch.client_id", start, end)
    return f"""CASE WHEN {sql_in("s.channel", SPREAD_CHANNELS)} AND cr.spread_sends
        THEN GREATEST(%(now)s, (z.local_today + {slot}) AT TIME ZONE z.tz_name) ELSE %(now)s END"""


def effective_cte() -> str:
    """``effective AS (...)``: each client the ladder may act on on %(today)s (not written off,
    not with an agency or in legal, not paused) with its effective policy — its own, else its
    profile's (when that policy is active), else its segment's (``cobranza.rules``)."""
    return f"""effective AS (
        SELECT c.id AS client_id, {rules.effective_policy_sql(dunning="cd")} AS policy_id
        FROM {Client._meta.db_table} c
        {rules.effective_policy_joins_sql("c", dunning="cd", profile="cp")}
        WHERE {rules.ladder_client_sql("c", today="%(today)s")}
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
    # Steps passed over for a firmer one on this run (docs/domain.md#pacing).
    superseded: int = 0
    superseded_items: int = 0
    # Clients with steps due that pacing holds back today (a notice still open, or the last
    # one too recent), and (client, step) groups waiting behind their client's firmest step.
    held_clients: int = 0
    waiting: int = 0
    # Per step id: {"notices": n, "invoices": n} planned (not superseded).
    by_step: dict[int, dict[str, int]] = field(default_factory=dict)
    # With ``detail``: one row per planned or superseded notice (client, step, channel, invoices, totals).
    rows: list[dict] = field(default_factory=list)
    # With ``detail``: the messages planned per local hour of their client (docs/domain.md#spread).
    by_hour: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "today": self.today.isoformat(),
            "dry_run": self.dry_run,
            "notices_planned": self.notices,
            "invoices_listed": self.items,
            "by_channel": dict(sorted(self.by_channel.items())),
            "superseded": self.superseded,
            "superseded_invoices": self.superseded_items,
            "held_clients": self.held_clients,
            "waiting": self.waiting,
        }


def planning_moment(today: dt.date, now: dt.datetime) -> dt.datetime:
    """The moment pacing reads the clients' local days at: ``now``, on ``today`` (a replay or
    a dry run for another day keeps the time of day and takes the day asked for)."""
    tz = ZoneInfo(settings.TIME_ZONE)
    local = timezone.localtime(now, tz)
    if local.date() == today:
        return now
    return dt.datetime.combine(today, local.time(), tzinfo=tz)


def _fill_zones(cur, moment: dt.datetime) -> None:
    """Each time zone of a candidate client with its valid name and its local date at
    ``moment``: a few rows (one per distinct zone), computed by ``contact_rules.zone_named``
    as dispatch reads them."""
    cur.execute(
        f"SELECT DISTINCT cl.time_zone FROM {CANDIDATES} c JOIN {Client._meta.db_table} cl ON cl.id = c.client_id"
    )
    stored = [row[0] for row in cur.fetchall()]
    names, days = [], []
    for name in stored:
        tz = zone_named(name)
        names.append(tz.key)
        days.append(moment.astimezone(tz).date())
    cur.execute(
        f"CREATE TEMPORARY TABLE {ZONES} AS "
        "SELECT * FROM unnest(%s::text[], %s::text[], %s::date[]) AS z(time_zone, tz_name, local_today)",
        [stored, names, days],
    )


def _superseded_wording() -> str:
    """The Spanish wording of SUPERSEDED_SAME_DAY with ``{step}`` where the SQL puts the name."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(texts.SUPERSEDED_SAME_DAY.template) % {"step": "{step}"}


def plan(*, today: dt.date, now: dt.datetime | None = None, dry_run: bool = False, detail: int = 0) -> PlanResult:
    """Record every notice due on ``today``. With ``dry_run`` nothing is written (the
    transaction is rolled back) and the result says what would have been planned.
    ``detail=N`` also returns the first N planned and superseded notices as rows (for the browser)."""
    now = now or clock.now()
    result = PlanResult(today=today, dry_run=dry_run)
    params = {
        "today": today,
        "now": now,
        # Stored in Spanish with its code, like every reason the engine writes (docs/domain.md#texts).
        "superseded_reason": _superseded_wording(),
        "superseded_code": texts.SUPERSEDED_SAME_DAY.code,
    }
    notice_t, item_t, step_t = Notice._meta.db_table, NoticeItem._meta.db_table, PolicyStep._meta.db_table
    client_t = Client._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cur:
            for table in TEMP_TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TEMPORARY TABLE {CANDIDATES} AS {_candidate_sql()}", params)
            _fill_zones(cur, planning_moment(today, now))
            cur.execute(f"CREATE TEMPORARY TABLE {CHOSEN} AS {_chosen_sql()}", params)
            # One notice per chosen client and step. Approval steps wait for a person.
            cur.execute(
                f"""
                INSERT INTO {notice_t} (client_id, step_id, channel, planned_for, scheduled_at, status,
                    recipient, language, subject, body, attempts, deferrals, message_id, provider_ref,
                    reason, created_at, updated_at)
                SELECT ch.client_id, ch.step_id, s.channel, %(today)s, {_scheduled_sql()},
                       CASE WHEN s.requires_approval THEN 'awaiting_approval' ELSE 'planned' END,
                       '', cl.language, '', '', 0, 0, '', '', '', %(now)s, %(now)s
                FROM {CHOSEN} ch
                JOIN {step_t} s ON s.id = ch.step_id
                JOIN {client_t} cl ON cl.id = ch.client_id
                JOIN {ZONES} z ON z.time_zone = cl.time_zone
                LEFT JOIN {ContactRules._meta.db_table} cr ON cr.country = cl.country
                ON CONFLICT (client_id, step_id, planned_for) DO NOTHING
                RETURNING id, channel, step_id
                """,
                params,
            )
            # Only the rows this run inserted come back: a notice planned earlier is not counted.
            inserted = cur.fetchall()
            result.notices = len(inserted)
            # The invoices go on today's open notice of their client and step: the one just
            # planned, or one planned earlier today (invoices that became due since join it).
            cur.execute(
                f"""
                CREATE TEMPORARY TABLE {PLANNED_ITEMS} (notice_id bigint, invoice_id bigint, step_id bigint);
                WITH ins AS (
                    INSERT INTO {item_t} (notice_id, invoice_id, step_id, open_balance, days_overdue)
                    SELECT n.id, c.invoice_id, c.step_id, c.open_balance, (%(today)s::date - c.due_date)
                    FROM {CANDIDATES} c
                    JOIN {notice_t} n ON n.client_id = c.client_id AND n.step_id = c.step_id
                                     AND n.planned_for = %(today)s
                    WHERE n.status IN ('planned', 'awaiting_approval')
                    ON CONFLICT (invoice_id, step_id) DO NOTHING
                    RETURNING notice_id, invoice_id, step_id
                )
                INSERT INTO {PLANNED_ITEMS} SELECT notice_id, invoice_id, step_id FROM ins
                """,
                params,
            )
            result.items = max(cur.rowcount, 0)
            result.by_channel = dict(Counter(channel for _id, channel, _step in inserted))
            # The steps these invoices pass over: every active step between the furthest they
            # reached and the one planned now (a catch-up after a pause, an import of old
            # invoices, a planner that was down). Recorded, never sent.
            cur.execute(
                f"""
                CREATE TEMPORARY TABLE {SUPERSEDED} AS
                SELECT c.client_id, ls.id AS step_id, ls.channel, pi.notice_id AS by_notice,
                       c.invoice_id, c.open_balance, c.due_date
                FROM {PLANNED_ITEMS} pi
                JOIN {CANDIDATES} c ON c.invoice_id = pi.invoice_id AND c.step_id = pi.step_id
                JOIN {step_t} ls ON ls.policy_id = c.policy_id AND ls.is_active
                                AND ls.position < c.position
                                AND (c.reached IS NULL OR ls.position > c.reached)
                JOIN {Invoice._meta.db_table} i ON i.id = c.invoice_id
                WHERE {rules.step_applies_sql("i", "ls")}
                  -- a stale pre-due reminder was never due: nothing to supersede
                  AND NOT {rules.stale_pre_due_sql("i", "ls", "%(today)s")}
                """,
                params,
            )
            cur.execute(
                f"""
                INSERT INTO {notice_t} (client_id, step_id, channel, planned_for, scheduled_at, status,
                    recipient, language, subject, body, attempts, deferrals, message_id, provider_ref,
                    reason, reason_code, reason_params, superseded_by_id, created_at, updated_at)
                SELECT sp.client_id, sp.step_id, sp.channel, %(today)s, %(now)s, 'superseded',
                       '', cl.language, '', '', 0, 0, '', '',
                       LEFT(replace(%(superseded_reason)s, '{{step}}', bs.name), 255),
                       %(superseded_code)s, jsonb_build_object('step', bs.name),
                       sp.by_notice, %(now)s, %(now)s
                FROM (SELECT client_id, step_id, channel, MIN(by_notice) AS by_notice
                      FROM {SUPERSEDED} GROUP BY client_id, step_id, channel) sp
                JOIN {client_t} cl ON cl.id = sp.client_id
                JOIN {notice_t} bn ON bn.id = sp.by_notice
                JOIN {step_t} bs ON bs.id = bn.step_id
                ON CONFLICT (client_id, step_id, planned_for) DO NOTHING
                RETURNING id
                """,
                params,
            )
            superseded_ids = [row[0] for row in cur.fetchall()]
            result.superseded = len(superseded_ids)
            cur.execute(
                f"""
                INSERT INTO {item_t} (notice_id, invoice_id, step_id, open_balance, days_overdue)
                SELECT n.id, sp.invoice_id, sp.step_id, sp.open_balance, (%(today)s::date - sp.due_date)
                FROM {SUPERSEDED} sp
                JOIN {notice_t} n ON n.client_id = sp.client_id AND n.step_id = sp.step_id
                                 AND n.planned_for = %(today)s AND n.status = 'superseded'
                ON CONFLICT (invoice_id, step_id) DO NOTHING
                """,
                params,
            )
            result.superseded_items = max(cur.rowcount, 0)
            cur.execute(
                f"""
                WITH grp AS ({_groups_sql()})
                SELECT COUNT(DISTINCT g.client_id) FILTER (WHERE ch.client_id IS NULL),
                       COUNT(*) FILTER (WHERE ch.client_id IS NOT NULL AND ch.step_id <> g.step_id)
                FROM grp g LEFT JOIN {CHOSEN} ch ON ch.client_id = g.client_id
                """
            )
            result.held_clients, result.waiting = cur.fetchone()
            cur.execute(f"SELECT step_id, COUNT(*) FROM {PLANNED_ITEMS} GROUP BY step_id")
            invoices_by_step = dict(cur.fetchall())
            for step_id, n in Counter(step for _id, _channel, step in inserted).items():
                result.by_step[step_id] = {"notices": n, "invoices": invoices_by_step.get(step_id, 0)}
            for table in TEMP_TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        if detail:
            planned_ids = [notice_id for notice_id, _channel, _step in inserted]
            result.rows = _rows(planned_ids, limit=detail) + _rows(superseded_ids, limit=detail)
            result.by_hour = messages_by_local_hour(Notice.objects.filter(pk__in=planned_ids))
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
            "reason": n.reason_text,
            "language": n.language,
            "invoice_count": n.invoice_count,
            "totals": dict(sorted(totals.get(n.pk, {}).items())),
            # when it goes, in the client's local time (docs/domain.md#spread)
            "scheduled_at": n.scheduled_at,
            "local_time": n.scheduled_at.astimezone(zone_named(n.client.time_zone)).strftime("%H:%M"),
        }
        for n in notices
    ]


def messages_by_local_hour(notices) -> dict[int, int]:
    """How many of ``notices`` are messages (email, SMS, WhatsApp) due in each hour of their
    client's local day (0–23), by ``scheduled_at``. One query, grouped by zone and minute (a
    zone may be off UTC by a part of an hour); the local hour is read as dispatch reads zones."""
    counts: Counter[int] = Counter()
    rows = (
        notices.filter(channel__in=SPREAD_CHANNELS)
        .annotate(minute=TruncMinute("scheduled_at", tzinfo=dt.UTC))
        .values("client__time_zone", "minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["minute"].astimezone(zone_named(row["client__time_zone"])).hour] += row["n"]
    return dict(sorted(counts.items()))
