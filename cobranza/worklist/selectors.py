# ruff: noqa: S608 - the worklist SQL interpolates identifiers and SQL compiled by Django; values are parameters
"""The collector's day: "Mi cartera hoy" (the worklist) and the calendar.

The worklist has one row per client that needs something done today:

- an open task due today or earlier (calls and reviews from the ladder, broken promises,
  missed installments, escalations, contacts to find…);
- a promised date to check: a pending installment of an open commitment dated today or
  yesterday (it is judged the day after; the collector checks the payment meanwhile);
- a next action agreed on an earlier interaction, due today or earlier, that nobody has
  followed up: it is done as soon as a later non-system interaction exists for the client;
- a reply from the client (an email, SMS or WhatsApp message) that nobody has read or answered
  (``cobranza.replies.selectors.unread_replies``).

Rows are ordered by a priority score computed in SQL, the same formula for every client, so
the order can be explained on the page (``SCORE_RULES``)::

    score = amount at risk + promised date + broken promises + tasks + next actions
            + unread replies + profile + segment

(docs/domain.md#worklist-ranking states the weights.) The clients are those with something
due today and those with an amount at risk the ladder would act on.

Who sees what (``Scope``): a collector sees the clients assigned to them and every open task
on those clients except the ones reserved for managers (tasks assigned to nobody — the
managers' queue — or to a manager). A manager picks one collector, all of them, the clients
without a collector, or the managers' queue (tasks only).

Every function here costs a fixed number of queries, whatever the number of rows
(tests/cobranza/test_worklist.py asserts it).
"""

from __future__ import annotations

import calendar as pycalendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models import (
    Case,
    Count,
    Exists,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import clock
from accounts.models import ZERO, Client, Interaction, Invoice, Segment
from accounts.roles import GROUP_NAMES, Role, is_collector, is_manager
from accounts.rules import COLLECTIBLE, OVERDUE_BUCKETS, collectible_sql, days_between, overdue_q, sql_literal
from accounts.selectors import clients_visible_to
from accounts.utils import money_str
from cobranza import rules
from cobranza.dashboard import metrics
from cobranza.engine import contact_rules
from cobranza.models import (
    ClientProfile,
    CollectorTask,
    Commitment,
    CommitmentKind,
    CommitmentStatus,
    InboundMessage,
    Installment,
    InstallmentStatus,
    Policy,
    Profile,
    TaskKind,
    TaskStatus,
    WorklistRank,
    WorklistRankDirty,
    WorklistRankState,
)
from cobranza.replies.selectors import unread_replies
from cobranza.rules import effective_profile_sql, promise_not_kept_q

# --- the score (docs/domain.md#worklist-ranking) --------------------------------------------

# The amount at risk leads: the overdue balance weighted by how likely it is to be lost as it
# ages (``cobranza.rules.LOSS_WEIGHTS``: 5 % at 1–30 days … 75 % past 120), in the client's
# largest currency, log-scaled: 10 points per order of magnitude ($100 → 20, $1,000 → 30,
# $100,000 → 50; nothing below $1).
RISK_POINTS_PER_DECADE = 10
# Then what is due today, in this order of weight: a promised date to check, a promise broken
# in the last BROKEN_WINDOW_DAYS days, an open task (ladder calls, reviews, missed instalments…),
# a next action agreed with the client.
PROMISE_POINTS, PROMISE_CAP = 40, 40
BROKEN_WINDOW_DAYS = 90
BROKEN_POINTS, BROKEN_CAP = 20, 40
TASK_POINTS, TASK_CAP = 15, 30
NEXT_POINTS, NEXT_CAP = 10, 20
# A debtor who wrote back is waiting for an answer: their unread replies weigh like a task
# and more, once (docs/domain.md#replies).
REPLY_POINTS, REPLY_CAP = 25, 25
# The negligent and the chronic need close, early follow-up; a good payer can wait
# (docs/domain.md#late-payers).
PROFILE_POINTS = {
    Profile.NEGLIGENT: 15,
    Profile.CHRONIC: 10,
    Profile.INTENTIONAL: 5,
    Profile.GOOD: -10,
}
# The segment's priority weight: 5 points for each step above 1 (weight 3 → +10).
SEGMENT_POINTS_PER_WEIGHT = 5


def _loss_weights_text() -> str:
    return ", ".join(f"{bucket.label} {int(rules.LOSS_WEIGHTS[bucket.code] * 100)} %" for bucket in OVERDUE_BUCKETS)


class _ScoreRules:
    """The rules as the page states them, from the numbers above (read in the reader's language)."""

    def __iter__(self):
        yield _(
            "Importe en riesgo: el saldo vencido que la escalera cobraría (sin disputas, retenciones ni "
            "compromisos vigentes, desde el saldo mínimo de la política), ponderado por la probabilidad "
            "de perderlo según su antigüedad (%(weights)s), en la moneda de mayor importe: "
            "10 puntos por cada orden de magnitud (100 → 20, 1,000 → 30, 100,000 → 50)."
        ) % {"weights": _loss_weights_text()}
        yield _("Fecha prometida por revisar hoy: %(n)d puntos.") % {"n": PROMISE_POINTS}
        yield _("Promesas incumplidas en los últimos %(days)d días: %(n)d puntos cada una, hasta %(cap)d.") % {
            "days": BROKEN_WINDOW_DAYS,
            "n": BROKEN_POINTS,
            "cap": BROKEN_CAP,
        }
        yield _("Tareas de hoy (llamadas, revisiones, cuotas incumplidas…): %(n)d puntos cada una, hasta %(cap)d.") % {
            "n": TASK_POINTS,
            "cap": TASK_CAP,
        }
        yield _("Seguimientos acordados con el cliente: %(n)d puntos cada uno, hasta %(cap)d.") % {
            "n": NEXT_POINTS,
            "cap": NEXT_CAP,
        }
        yield _("Respuestas del cliente sin leer: %(n)d puntos.") % {"n": REPLY_POINTS}
        yield _(
            "Perfil de morosidad: negligente +15, crónico +10, moroso con intención +5, buen pagador −10, los demás 0."
        )
        yield _("Segmento: %(n)d puntos por cada grado de peso de prioridad sobre 1.") % {
            "n": SEGMENT_POINTS_PER_WEIGHT
        }
        yield _(
            "Sin saldo en riesgo, un cliente solo aparece si tiene algo pendiente hoy. A igual puntaje, "
            "primero la factura vencida más antigua."
        )


SCORE_RULES = _ScoreRules()

WORKLIST_PER_PAGE = 25


# --- scope -----------------------------------------------------------------------------------

ALL = "all"
COLLECTOR = "collector"
UNASSIGNED = "unassigned"
MANAGERS = "managers"


@dataclass(frozen=True)
class Scope:
    """Whose day: one collector's, everybody's, the clients without a collector, or the
    managers' queue (their tasks only: promised dates and next actions are the collectors')."""

    kind: str = ALL
    collector: object | None = None

    @classmethod
    def of_collector(cls, user) -> Scope:
        return cls(COLLECTOR, user)

    @property
    def followups(self) -> bool:
        return self.kind != MANAGERS


def _manager_ids():
    """Users whose tasks are the managers' (a subquery: no query of its own)."""
    names = [GROUP_NAMES[Role.MANAGER], GROUP_NAMES[Role.ADMIN]]
    return get_user_model().objects.filter(Q(is_superuser=True) | Q(groups__name__in=names)).values("pk")


def managers_task_q() -> Q:
    """Tasks reserved for managers: assigned to nobody (their queue) or to a manager."""
    return Q(assigned_to__isnull=True) | Q(assigned_to__in=_manager_ids())


def _assignment_q(scope: Scope) -> Q:
    """Which tasks of the scope's clients are the scope's work."""
    if scope.kind == COLLECTOR:
        # Everything on the collector's clients except the managers' work: a task left to a
        # former collector follows the client to the new one.
        return ~Q(assigned_to__isnull=True) & ~Q(assigned_to__in=_manager_ids())
    if scope.kind == MANAGERS:
        return managers_task_q()
    return Q()


def scope_clients(*, user, scope: Scope) -> QuerySet[Client]:
    """The clients of the scope that ``user`` may see (a collector only ever their own)."""
    qs = clients_visible_to(user)
    if scope.kind == COLLECTOR:
        qs = qs.filter(collector=scope.collector)
    elif scope.kind == UNASSIGNED:
        qs = qs.filter(collector__isnull=True)
    return qs


def scope_tasks(*, user, scope: Scope) -> QuerySet[CollectorTask]:
    return CollectorTask.objects.filter(_assignment_q(scope), client__in=scope_clients(user=user, scope=scope))


def tasks_visible_to(user) -> QuerySet[CollectorTask]:
    """Tasks ``user`` may open and complete: a manager every one; a collector those of their
    clients that are not reserved for managers."""
    if is_manager(user):
        return CollectorTask.objects.all()
    if is_collector(user):
        return scope_tasks(user=user, scope=Scope.of_collector(user))
    return CollectorTask.objects.none()


# --- what is due -----------------------------------------------------------------------------


def _due_tasks(today: dt.date) -> Q:
    return Q(status=TaskStatus.OPEN, due_on__lte=today)


def _promised(today: dt.date) -> Q:
    """Installments to check today: pending, of an open commitment, dated today or yesterday."""
    return Q(
        status=InstallmentStatus.PENDING,
        commitment__status=CommitmentStatus.OPEN,
        due_on__gte=today - dt.timedelta(days=1),
        due_on__lte=today,
    )


def _later_contact() -> QuerySet[Interaction]:
    """A later non-system entry of the same client (for an outer Interaction): it means the
    next action was followed up."""
    return (
        Interaction.objects.filter(client=OuterRef("client_id"))
        .exclude(kind=Interaction.Kind.SYSTEM)
        .filter(
            Q(occurred_at__gt=OuterRef("occurred_at")) | Q(occurred_at=OuterRef("occurred_at"), pk__gt=OuterRef("pk"))
        )
    )


def pending_next_actions(today: dt.date) -> QuerySet[Interaction]:
    """Next actions due by ``today`` that nobody has followed up yet."""
    return Interaction.objects.filter(next_action_on__lte=today).filter(~Exists(_later_contact()))


def _broken_q(today: dt.date) -> Q:
    """Promises (term extensions included: docs/domain.md#promise-kept-rate) broken or kept
    only in part within the window: they weigh on the score."""
    return promise_not_kept_q() & Q(resolved_on__gte=today - dt.timedelta(days=BROKEN_WINDOW_DAYS))


def _sql(qs: QuerySet) -> tuple[str, tuple]:
    """A queryset's SQL and parameters, to be used as a part of the worklist's query."""
    sql, params = qs.query.sql_with_params()
    return sql, tuple(params)


def _capped_sql(column: str, per: int, cap: int) -> str:
    return f"LEAST({column} * {per}, {cap})"


def _risk_points_sql(column: str) -> str:
    """10 points per order of magnitude of the amount at risk; nothing below 1. The logarithm in
    double precision: a NUMERIC logarithm costs tens of microseconds, once per due client."""
    return (
        f"CASE WHEN {column} >= 1 THEN CAST(FLOOR({RISK_POINTS_PER_DECADE} * LOG(CAST({column} AS DOUBLE PRECISION)))"
        " AS INTEGER) ELSE 0 END"
    )


def _profile_points_sql(column: str) -> tuple[str, list]:
    parts = " ".join(f"WHEN {column} = %s THEN {points}" for points in PROFILE_POINTS.values())
    return f"CASE {parts} ELSE 0 END", [str(profile) for profile in PROFILE_POINTS]


def _at_risk_invoices_sql(today: dt.date, *, where: str) -> tuple[str, list]:
    """``FROM … WHERE …`` over the invoices that weigh as *amount at risk* (alias ``i``, the
    client ``c`` with its ladder joins): dunnable, overdue, above the effective policy's
    tolerance (docs/domain.md#amount-at-risk). ``where`` narrows it (positional params after)."""
    qn = connection.ops.quote_name
    sql = f"""FROM {qn(Invoice._meta.db_table)} AS i
    JOIN {qn(Client._meta.db_table)} AS c ON c.id = i.client_id
    {rules.effective_policy_joins_sql("c", dunning="cd", profile="cp")}
    LEFT JOIN {qn(Policy._meta.db_table)} AS ep ON ep.id = {rules.effective_policy_sql(dunning="cd")}
    WHERE {rules.dunnable_invoice_sql("i", "%s")} AND i.due_date < %s AND {rules.above_tolerance_sql("i", "ep")}
      AND {where}"""
    return sql, [today, today]


def _attended_sql() -> str:
    """The clients attended on the day bounded by two placeholders (given twice): one of their
    tasks was marked done, or a conversation was logged (not a system entry). A set, read once
    from the partial indexes on the day's completions and contacts."""
    qn = connection.ops.quote_name
    return f"""SELECT t.client_id FROM {qn(CollectorTask._meta.db_table)} AS t
        WHERE t.status = {sql_literal(TaskStatus.DONE)} AND t.completed_at >= %s AND t.completed_at < %s
    UNION SELECT x.client_id FROM {qn(Interaction._meta.db_table)} AS x
        WHERE x.kind <> {sql_literal(Interaction.Kind.SYSTEM)} AND x.occurred_at >= %s AND x.occurred_at < %s"""


def attended_on(client: Client, day: dt.date) -> bool:
    """The Python form of ``_attended_sql``."""
    start, end = _day_bounds(day)
    done = CollectorTask.objects.filter(
        client=client, status=TaskStatus.DONE, completed_at__gte=start, completed_at__lt=end
    )
    talked = Interaction.objects.filter(client=client, occurred_at__gte=start, occurred_at__lt=end).exclude(
        kind=Interaction.Kind.SYSTEM
    )
    return done.exists() or talked.exists()


# The worklist's order (over ``ranked``: the score, then the ties; docs/domain.md#worklist-ranking).
def _order(p: str = "") -> str:
    return (
        f"ORDER BY {p}callable_now DESC, {p}score DESC, {p}oldest_overdue ASC NULLS LAST, {p}overdue_max DESC, "
        f"{p}legal_name ASC, {p}client_id ASC"
    )


# The client's counts and points, in this order after the client, segment and collector columns.
_ANNOTATIONS = (
    "task_count",
    "promise_count",
    "next_count",
    "reply_count",
    "overdue_max",
    "oldest_overdue",
    "at_risk",
    "at_risk_currency",
    "broken_count",
    "profile_effective",
    "risk_points",
    "promise_points",
    "broken_points",
    "task_points",
    "next_points",
    "reply_points",
    "profile_points",
    "segment_points",
    "score",
    "callable_now",
)
_DECIMALS = {"overdue_max", "at_risk"}
_TEXTS = {"profile_effective", "at_risk_currency"}
# Their types, for the converters of raw rows (Worklist._fetch).
_ANNOTATION_FIELDS = tuple(
    models.BooleanField()
    if name == "callable_now"
    else models.DecimalField(max_digits=18, decimal_places=2)
    if name in _DECIMALS
    else models.DateField()
    if name == "oldest_overdue"
    else models.CharField()
    if name in _TEXTS
    else models.IntegerField()
    for name in _ANNOTATIONS
)


def _convert(value, expression, converters):
    for converter in converters:
        value = converter(value, expression, connection)
    return value


# --- the ranking facts of a client (stored by cobranza.worklist.jobs, read here) -------------

RANK_TABLE = WorklistRank._meta.db_table
DIRTY_TABLE = WorklistRankDirty._meta.db_table
STATE_TABLE = WorklistRankState._meta.db_table

# What the queue ranks a client by besides what is due today, in this order.
FACT_COLUMNS = (
    "client_id",
    "at_risk",
    "at_risk_currency",
    "has_risk",
    "ladder",
    "overdue_max",
    "oldest_overdue",
    "broken_count",
)


def ranking_facts_sql(today: dt.date, *, clients: str = "TRUE", clients_params=(), gate: str = "TRUE"):
    """``(sql, params)``: ``SELECT FACT_COLUMNS`` for the clients whose id passes ``clients`` (a
    predicate on ``{id}``, with its ``clients_params``), those with any fact only: the amount at
    risk in the leading currency (``has_risk``: at least one invoice at risk), whether the ladder
    acts on the client today, the largest overdue balance of a currency and the oldest overdue
    invoice, the promises broken in the window. ``gate``, a condition on no row (e.g. whether the
    stored facts are fresh), is repeated in every part so that PostgreSQL skips all of them when
    it is false."""
    qn = connection.ops.quote_name

    def where(column: str) -> tuple[str, list]:
        return f"{gate} AND {clients.format(id=column)}", list(clients_params)

    weight_sql, weight_params = rules.loss_weight_sql(today, "i.due_date")
    risk_where, risk_where_params = where("i.client_id")
    risk_from, risk_params = _at_risk_invoices_sql(today, where=risk_where)
    overdue_where, overdue_params = where("o.client_id")
    broken_where, broken_params = where(f"{qn(Commitment._meta.db_table)}.{qn('client_id')}")
    broken = (
        Commitment.objects.filter(_broken_q(today))
        .filter(RawSQL(broken_where, broken_params, output_field=models.BooleanField()))  # noqa: S611 - SQL of this module
        .order_by()
        .values("client_id")
        .annotate(n=Count("pk"))
    )
    broken_sql, broken_params = _sql(broken)
    client_where, client_params = where("c.id")
    sql = f"""SELECT c.id AS client_id, r.amount AS at_risk, r.currency AS at_risk_currency,
       r.client_id IS NOT NULL AS has_risk, {rules.ladder_client_sql("c", today="%s")} AS ladder,
       COALESCE(o.overdue_max, 0) AS overdue_max, o.oldest_overdue,
       CAST(COALESCE(b.n, 0) AS INTEGER) AS broken_count
FROM {qn(Client._meta.db_table)} AS c
LEFT JOIN (
    SELECT DISTINCT ON (client_id) client_id, currency, amount FROM (
        SELECT i.client_id, i.currency, ROUND(SUM(i.open_balance * {weight_sql}), 2) AS amount {risk_from}
        GROUP BY i.client_id, i.currency) AS by_currency
    ORDER BY client_id, amount DESC, currency) AS r ON r.client_id = c.id
LEFT JOIN (
    SELECT client_id, MAX(t) AS overdue_max, MIN(d) AS oldest_overdue FROM (
        SELECT o.client_id, SUM(o.open_balance) AS t, MIN(o.due_date) AS d
        FROM {qn(Invoice._meta.db_table)} AS o
        WHERE {collectible_sql("o")} AND o.due_date < %s AND {overdue_where}
        GROUP BY o.client_id, o.currency) AS by_currency
    GROUP BY client_id) AS o ON o.client_id = c.id
LEFT JOIN ({broken_sql}) AS b (client_id, n) ON b.client_id = c.id
WHERE {client_where} AND (r.client_id IS NOT NULL OR o.client_id IS NOT NULL OR b.client_id IS NOT NULL)"""
    params = [
        today,
        *weight_params,
        *risk_params,
        *risk_where_params,
        today,
        *overdue_params,
        *broken_params,
        *client_params,
    ]
    return sql, params


def base_score_sql(facts: str, client: str, segment: str, profile: str) -> tuple[str, list]:
    """The score of a client with nothing due today, over its facts (alias ``facts``), client,
    segment and profile row (LEFT JOINed): what the stored facts are ordered by."""
    profile_sql, profile_params = _profile_points_sql(effective_profile_sql(profile))
    return (
        f"{_risk_points_sql(f'COALESCE({facts}.at_risk, 0)')}"
        f" + {_capped_sql(f'{facts}.broken_count', BROKEN_POINTS, BROKEN_CAP)}"
        f" + {profile_sql} + {SEGMENT_POINTS_PER_WEIGHT} * ({segment}.priority_weight - 1)",
        profile_params,
    )


def _fresh_sql(today: dt.date) -> tuple[str, list]:
    """One row, ``ok``: the stored facts are those of ``today`` and no write since touched every
    client's (the facts of the clients a write touched are recomputed as the queue is read)."""
    return (
        f"SELECT (EXISTS (SELECT 1 FROM {STATE_TABLE} WHERE computed_on = %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {DIRTY_TABLE} WHERE client_id IS NULL)) AS ok",
        [today],
    )


class Worklist:
    """Today's queue as one SQL statement, set-based at any scale.

    The clients with something due are found first, from the due items themselves (open
    tasks, promised dates, pending next actions, unread replies: each grouped by client,
    restricted to the scope's clients). The quiet clients at risk (nothing due, an amount at
    risk the ladder acts on, not attended today) may lead too; they are read from their stored
    ranking facts (``WorklistRank``, docs/domain.md#worklist-ranking), which hold the score a
    client has with nothing due. A due item only adds points, so the first N of the queue are
    among the clients with something due and the first N quiet ones in the stored order —
    the callable ones and the others, as the queue puts those first — read from an index in
    that order. Only those candidates are scored, in full, with the same formula.

    The stored facts are used only when computed for today; those of clients a write touched
    since (``WorklistRankDirty``) are recomputed in the same statement, from the ledger. When the
    stored facts are not today's, every client's are (the statement is then as slow as the
    portfolio is large, and as exact).

    Behaves like the queryset it replaces for its two readers: iterating (or ``list``) runs
    one query for every row; ``count()`` and a slice (what ``Paginator`` uses) one query each.
    Clients come with ``segment`` and ``collector`` loaded and the counts and points as
    attributes (``_ANNOTATIONS``).
    """

    ordered = True  # for Paginator: the order is total (ends with the client's id)

    def __init__(self, *, user, scope: Scope, today: dt.date):
        self.user = user
        self.scope = scope
        self.today = today
        self._cache: list[Client] | None = None
        # When each (country, time zone) of the scope may be called now (read once).
        self._windows: dict[tuple[str, str], contact_rules.CallWindow] | None = None
        # The due items per client (client, tasks, promised, next actions, replies), once
        # ``count()`` has read them: the page's query then starts from them instead of finding
        # them again.
        self._items: list[tuple] | None = None
        # Whether count() found the stored facts fresh: the page's query then has only the
        # parts for that case (None: both, each skipped by PostgreSQL when it does not apply).
        self._fresh: bool | None = None

    # -- the SQL --

    def _scope_sql(self, client: str) -> tuple[str, list] | None:
        """A condition on the clients row ``client``: it is in the scope. None: no client is."""
        clients = scope_clients(user=self.user, scope=self.scope)
        if clients.query.is_empty():
            return None
        if not clients.query.where:
            return "TRUE", []
        sql, params = _sql(clients.order_by().values("pk"))
        return f"{client} = ANY(ARRAY({sql}))", list(params)

    def _ctes(self) -> tuple[list[str], list] | None:
        """The WITH parts both statements share: ``items`` (the due items of the scope's
        clients, one row each: client, t, p, x, r), ``fresh``, ``dirty_ids``, ``live`` (the
        facts computed from the ledger: the touched clients', or every client's when the stored
        ones are not today's), ``risky_live`` (the quiet clients at risk among them) and
        ``callable_zones``. None when the user may see no client at all."""
        today, scope = self.today, self.scope
        in_scope_sql = self._scope_sql("c.id")
        if in_scope_sql is None:
            return None
        clients = scope_clients(user=self.user, scope=scope)
        # Restrict every source to the scope's clients early (nothing to do for a manager's
        # view of everybody: every client is in it).
        in_scope = Q(client__in=clients.values("pk")) if clients.query.where else Q()
        if self._items is not None:
            columns = list(zip(*self._items, strict=True)) if self._items else [(), (), (), (), ()]
            parts = [
                (
                    "items (client_id, t, p, x, r) AS",
                    (
                        "SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::integer[],"
                        " %s::integer[])",
                        # As array literals: one string each, not thousands of parameters to parse.
                        ["{" + ",".join(str(v) for v in column) + "}" for column in columns],
                    ),
                )
            ]
        else:
            tasks = (
                CollectorTask.objects.filter(_due_tasks(today), _assignment_q(scope), in_scope)
                .order_by()
                .values("client_id")
                .annotate(n=Count("pk"))
            )
            parts = [("tasks (client_id, n) AS", _sql(tasks))]
            union = "SELECT client_id, n AS t, 0 AS p, 0 AS x, 0 AS r FROM tasks"
            if scope.followups:
                promised = (
                    Installment.objects.filter(
                        _promised(today),
                        Q(commitment__client__in=clients.values("pk")) if clients.query.where else Q(),
                    )
                    .order_by()
                    .values("commitment__client_id")
                    .annotate(n=Count("pk"))
                )
                nexts = (
                    pending_next_actions(today).filter(in_scope).order_by().values("client_id").annotate(n=Count("pk"))
                )
                replies = unread_replies().filter(in_scope).order_by().values("client_id").annotate(n=Count("pk"))
                parts += [
                    ("promised (client_id, n) AS", _sql(promised)),
                    ("nexts (client_id, n) AS", _sql(nexts)),
                    ("replies (client_id, n) AS", _sql(replies)),
                ]
                union += (
                    " UNION ALL SELECT client_id, 0, n, 0, 0 FROM promised"
                    " UNION ALL SELECT client_id, 0, 0, n, 0 FROM nexts"
                    " UNION ALL SELECT client_id, 0, 0, 0, n FROM replies"
                )
            parts.append(("items AS", (union, ())))
        parts.append(("fresh AS", _fresh_sql(today)))
        parts.append(
            ("dirty_ids AS", (f"SELECT DISTINCT client_id FROM {DIRTY_TABLE} WHERE client_id IS NOT NULL", ()))
        )
        # Without today's stored facts: those of every client of the scope (the managers' queue:
        # of its tasks' clients, the only ones it shows); with them, of the touched clients.
        if scope.followups:
            everyone, everyone_params = self._scope_sql("{id}")
        else:
            everyone, everyone_params = "{id} IN (SELECT client_id FROM items)", []
        stale_sql, stale_params = ranking_facts_sql(
            today, clients=everyone, clients_params=everyone_params, gate="NOT (SELECT ok FROM fresh)"
        )
        touched_sql, touched_params = ranking_facts_sql(
            today, clients="{id} IN (SELECT client_id FROM dirty_ids)", gate="(SELECT ok FROM fresh)"
        )
        branches = []
        if self._fresh is not True:
            branches.append((stale_sql, stale_params))
        if self._fresh is not False:
            branches.append((touched_sql, touched_params))
        parts.append(
            (
                "live AS MATERIALIZED",
                ("\nUNION ALL\n".join(sql for sql, _p in branches), [p for _sql, ps in branches for p in ps]),
            )
        )
        callable_pairs = [pair for pair, window in self.call_windows().items() if window.allowed]
        parts.append(
            (
                "callable_zones (country, time_zone) AS",
                (
                    "SELECT * FROM unnest(%s::text[], %s::text[])",
                    ([country for country, _tz in callable_pairs], [tz for _country, tz in callable_pairs]),
                ),
            )
        )
        start, end = _day_bounds(today)
        parts.append(("attended (client_id) AS", (_attended_sql(), (start, end, start, end))))
        qn = connection.ops.quote_name
        if scope.followups:
            # Quiet clients at risk the ladder acts on that nobody attended today: a task done
            # or a conversation logged makes a client wait for tomorrow unless something else is
            # due (docs/domain.md#worklist-ranking).
            risky = f"""SELECT l.client_id FROM live AS l JOIN {qn(Client._meta.db_table)} AS c ON c.id = l.client_id
    WHERE l.has_risk AND l.ladder AND {in_scope_sql[0]}
      AND NOT EXISTS (SELECT 1 FROM attended AS w WHERE w.client_id = l.client_id)"""
            risky_params = tuple(in_scope_sql[1])
        else:
            risky, risky_params = "SELECT client_id FROM live WHERE FALSE", ()
        parts.append(("risky_live AS", (risky, risky_params)))
        sql, params = [], []
        for head, (part_sql, part_params) in parts:
            sql.append(f"{head} ({part_sql})")
            params.extend(part_params)
        return sql, params

    def _rank_scope_sql(self) -> tuple[str, list]:
        """The scope (``scope_clients``) as a condition on the stored facts (alias ``a``), by the
        collector kept with them: a collector sees their own clients, a manager everybody's or
        one collector's or nobody's. A client reassigned since is a touched one (not read here)."""
        conditions, params = ["TRUE"], []
        if not is_manager(self.user):
            conditions.append("a.collector_id = %s")
            params.append(self.user.pk)
        if self.scope.kind == COLLECTOR:
            conditions.append("a.collector_id = %s")
            params.append(self.scope.collector.pk)
        elif self.scope.kind == UNASSIGNED:
            conditions.append("a.collector_id IS NULL")
        return " AND ".join(conditions), params

    def _stored_risky_sql(self, *, limit: int | None) -> tuple[str, list]:
        """The quiet clients at risk of the scope from the stored facts (not touched since, and
        only when fresh): the first ``limit`` (all when None) of each call window (country and
        time zone) of the scope in the queue's order for clients with nothing due, read from the
        index in that order. The first ``limit`` of the queue's quiet clients — callable now
        first — are among them."""
        qn = connection.ops.quote_name
        in_scope, params = self._rank_scope_sql()
        where = f"""(SELECT ok FROM fresh) AND a.has_risk AND a.ladder AND {in_scope}
      AND NOT EXISTS (SELECT 1 FROM dirty_ids AS d WHERE d.client_id = a.client_id)
      AND NOT EXISTS (SELECT 1 FROM attended AS w WHERE w.client_id = a.client_id)"""
        zones = list(self.call_windows())
        sql = f"""SELECT first.client_id FROM unnest(%s::text[], %s::text[]) AS z (country, time_zone)
    CROSS JOIN LATERAL (
        SELECT a.client_id FROM {RANK_TABLE} AS a JOIN {qn(Client._meta.db_table)} AS c ON c.id = a.client_id
        WHERE a.country = z.country AND a.time_zone = z.time_zone AND {where}
        ORDER BY a.base_score DESC, a.oldest_overdue ASC NULLS LAST, a.overdue_max DESC,
                 c.legal_name ASC, c.id ASC{" LIMIT %s" if limit is not None else ""}) AS first"""
        params = [[country for country, _tz in zones], [tz for _country, tz in zones], *params]
        if limit is not None:
            params.append(limit)
        return sql, params

    def _zones(self) -> list[tuple[str, str]]:
        """The (country, time zone) pairs of the scope's clients, skipping from one to the next
        along the index on them (a few probes, not a pass over every client)."""
        qn = connection.ops.quote_name
        # ``scope_clients`` as conditions on the collector (as ``_rank_scope_sql``).
        conditions, condition_params = ["TRUE"], []
        if not is_manager(self.user):
            conditions.append("c.collector_id = %s")
            condition_params.append(self.user.pk)
        if self.scope.kind == COLLECTOR:
            conditions.append("c.collector_id = %s")
            condition_params.append(self.scope.collector.pk)
        elif self.scope.kind == UNASSIGNED:
            conditions.append("c.collector_id IS NULL")
        where = " AND ".join(conditions)
        where_params = condition_params
        table = qn(Client._meta.db_table)
        sql = f"""WITH RECURSIVE zones (country, time_zone) AS (
    (SELECT c.country, c.time_zone FROM {table} AS c WHERE {where} ORDER BY c.country, c.time_zone LIMIT 1)
    UNION ALL
    SELECT n.country, n.time_zone FROM zones AS z CROSS JOIN LATERAL (
        SELECT c.country, c.time_zone FROM {table} AS c
        WHERE (c.country, c.time_zone) > (z.country, z.time_zone) AND {where}
        ORDER BY c.country, c.time_zone LIMIT 1) AS n)
SELECT country, time_zone FROM zones"""
        with connection.cursor() as cursor:
            cursor.execute(sql, [*where_params, *where_params])
            return [tuple(row) for row in cursor.fetchall()]

    def call_windows(self) -> dict[tuple[str, str], contact_rules.CallWindow]:
        """The call window now of each (country, time zone) among the scope's clients
        (docs/domain.md#call-windows; three queries, whatever the number of clients)."""
        if self._windows is None:
            if self._scope_sql("c.id") is None:
                self._windows = {}
            else:
                self._windows = contact_rules.call_windows(self._zones(), clock.now())
        return self._windows

    def _rows_sql(self, ctes: tuple[list[str], list], limit: int | None, offset: int) -> tuple[str, list]:
        sql_parts, params = list(ctes[0]), list(ctes[1])
        qn = connection.ops.quote_name
        if self.scope.followups and self._fresh is not False:
            # The first limit + offset of the quiet clients of each call window: with the due
            # clients, every client that can be on the page is among them.
            n = None if limit is None else limit + offset
            first_sql, first_params = self._stored_risky_sql(limit=n)
            sql_parts.append(f"stored_first AS ({first_sql})")
            params += first_params
            quiet = (
                " UNION ALL SELECT client_id, 0, 0, 0, 0 FROM risky_live"
                " UNION ALL SELECT client_id, 0, 0, 0, 0 FROM stored_first"
            )
        elif self.scope.followups:
            quiet = " UNION ALL SELECT client_id, 0, 0, 0, 0 FROM risky_live"
        else:
            quiet = ""
        sql_parts.append(
            "due AS (SELECT client_id, CAST(SUM(t) AS INTEGER) AS task_count, "
            "CAST(SUM(p) AS INTEGER) AS promise_count, CAST(SUM(x) AS INTEGER) AS next_count, "
            f"CAST(SUM(r) AS INTEGER) AS reply_count FROM (SELECT client_id, t, p, x, r FROM items{quiet}) AS found "
            "GROUP BY client_id)"
        )
        keep = ""
        if limit is not None and self._fresh is not False:
            # A candidate whose facts are stored has its score without reading them in full: the
            # stored score with nothing due plus its items' points; only the first limit + offset
            # of those (in the queue's order) and the others are scored in full.
            items_sql = " + ".join(
                _capped_sql(f"d.{column}", points, cap)
                for column, points, cap in (
                    ("promise_count", PROMISE_POINTS, PROMISE_CAP),
                    ("task_count", TASK_POINTS, TASK_CAP),
                    ("next_count", NEXT_POINTS, NEXT_CAP),
                    ("reply_count", REPLY_POINTS, REPLY_CAP),
                )
            )
            stored = (
                "(SELECT ok FROM fresh) AND NOT EXISTS (SELECT 1 FROM dirty_ids AS x WHERE x.client_id = d.client_id)"
            )
            sql_parts.append(
                f"""keep AS (
    (SELECT d.client_id FROM due AS d
     JOIN {RANK_TABLE} AS a ON a.client_id = d.client_id
     JOIN {qn(Client._meta.db_table)} AS c ON c.id = d.client_id
     WHERE {stored}
     ORDER BY (a.country, a.time_zone) IN (SELECT country, time_zone FROM callable_zones) DESC,
              a.base_score + {items_sql} DESC, a.oldest_overdue ASC NULLS LAST, a.overdue_max DESC,
              c.legal_name ASC, c.id ASC
     LIMIT %s)
    UNION ALL
    SELECT d.client_id FROM due AS d
    WHERE NOT ({stored} AND EXISTS (SELECT 1 FROM {RANK_TABLE} AS a WHERE a.client_id = d.client_id)))"""
            )
            params.append(limit + offset)
            keep = "\n    WHERE due.client_id IN (SELECT client_id FROM keep)"
        profile_sql, profile_params = _profile_points_sql("profile_effective")
        cols = (
            [f"c.{qn(f.column)}" for f in Client._meta.concrete_fields]
            + [f"s.{qn(f.column)}" for f in Segment._meta.concrete_fields]
            + [f"u.{qn(f.column)}" for f in get_user_model()._meta.concrete_fields]
        )
        # A client's facts: recomputed (``live``) or stored, never both (``a`` only when fresh
        # and not touched; ``live`` then holds the touched clients only).
        sql = (
            "WITH "
            + ",\n".join(sql_parts)
            + f""",
counted AS (
    SELECT due.client_id, due.task_count, due.promise_count, due.next_count, due.reply_count,
           COALESCE(l.overdue_max, a.overdue_max, 0) AS overdue_max,
           COALESCE(l.oldest_overdue, a.oldest_overdue) AS oldest_overdue,
           COALESCE(l.at_risk, a.at_risk, 0) AS at_risk,
           COALESCE(l.at_risk_currency, a.at_risk_currency) AS at_risk_currency,
           COALESCE(l.broken_count, a.broken_count, 0) AS broken_count,
           {effective_profile_sql("profile")} AS profile_effective
    FROM due
    LEFT JOIN live AS l ON l.client_id = due.client_id
    LEFT JOIN {RANK_TABLE} AS a ON a.client_id = due.client_id AND (SELECT ok FROM fresh)
                                AND NOT EXISTS (SELECT 1 FROM dirty_ids AS d WHERE d.client_id = due.client_id)
    LEFT JOIN {qn(ClientProfile._meta.db_table)} AS profile ON profile.client_id = due.client_id{keep}),
pointed AS (
    SELECT counted.*, {_risk_points_sql("at_risk")} AS risk_points,
           {_capped_sql("promise_count", PROMISE_POINTS, PROMISE_CAP)} AS promise_points,
           {_capped_sql("broken_count", BROKEN_POINTS, BROKEN_CAP)} AS broken_points,
           {_capped_sql("task_count", TASK_POINTS, TASK_CAP)} AS task_points,
           {_capped_sql("next_count", NEXT_POINTS, NEXT_CAP)} AS next_points,
           {_capped_sql("reply_count", REPLY_POINTS, REPLY_CAP)} AS reply_points,
           {profile_sql} AS profile_points
    FROM counted),
scored AS (
    SELECT p.*, {SEGMENT_POINTS_PER_WEIGHT} * (s.{qn("priority_weight")} - 1) AS segment_points,
           s.id AS segment_pk, c.{qn("country")} AS country, c.{qn("time_zone")} AS time_zone,
           c.{qn("legal_name")} AS legal_name
    FROM pointed AS p
    JOIN {qn(Client._meta.db_table)} AS c ON c.id = p.client_id
    JOIN {qn(Segment._meta.db_table)} AS s ON s.id = c.{qn("segment_id")}),
ranked AS (
    SELECT p.*, p.risk_points + p.promise_points + p.broken_points + p.task_points + p.next_points
               + p.reply_points + p.profile_points + p.segment_points AS score,
           EXISTS (SELECT 1 FROM callable_zones z WHERE z.country = p.country
                                                   AND z.time_zone = p.time_zone) AS callable_now
    FROM scored AS p
    {_order()}{{page}})
SELECT {", ".join(cols)},
       p.task_count, p.promise_count, p.next_count, p.reply_count, p.overdue_max, p.oldest_overdue,
       p.at_risk, p.at_risk_currency, p.broken_count, p.profile_effective,
       p.risk_points, p.promise_points, p.broken_points, p.task_points, p.next_points,
       p.reply_points, p.profile_points, p.segment_points, p.score, p.callable_now
FROM ranked AS p
JOIN {qn(Client._meta.db_table)} AS c ON c.id = p.client_id
JOIN {qn(Segment._meta.db_table)} AS s ON s.id = p.segment_pk
LEFT JOIN {qn(get_user_model()._meta.db_table)} AS u ON u.id = c.{qn("collector_id")}
{_order("p.")}"""
        )
        params += [*profile_params]
        # Only the page's clients are joined for their columns: the order is decided on the
        # scores of the candidates, the wide rows are read for the page alone.
        page = ""
        if limit is not None:
            page += " LIMIT %s"
            params.append(limit)
        if offset:
            page += " OFFSET %s"
            params.append(offset)
        sql = sql.replace("{page}", page)
        return sql, params

    def _fetch(self, limit: int | None = None, offset: int = 0) -> list[Client]:
        ctes = self._ctes()
        if ctes is None:
            return []
        sql, params = self._rows_sql(ctes, limit, offset)
        user_model = get_user_model()
        client_fields = [f.attname for f in Client._meta.concrete_fields]
        segment_fields = [f.attname for f in Segment._meta.concrete_fields]
        user_fields = [f.attname for f in user_model._meta.concrete_fields]
        n_client, n_segment, n_user = len(client_fields), len(segment_fields), len(user_fields)
        segment_field = Client._meta.get_field("segment")
        collector_field = Client._meta.get_field("collector")
        db = connection.alias
        clients = []
        # Raw rows carry the database's own types; the ORM's converters make them what the
        # models (and the annotations) hold.
        columns = [
            *(f.get_col(Client._meta.db_table) for f in Client._meta.concrete_fields),
            *(f.get_col(Segment._meta.db_table) for f in Segment._meta.concrete_fields),
            *(f.get_col(user_model._meta.db_table) for f in user_model._meta.concrete_fields),
            *(Value(None, output_field=field) for field in _ANNOTATION_FIELDS),
        ]
        converters = [
            (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)) for col in columns
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for raw in cursor.fetchall():
                row = [_convert(value, col, funcs) for value, (col, funcs) in zip(raw, converters, strict=True)]
                client = Client.from_db(db, client_fields, row[:n_client])
                segment = Segment.from_db(db, segment_fields, row[n_client : n_client + n_segment])
                user_values = row[n_client + n_segment : n_client + n_segment + n_user]
                collector = user_model.from_db(db, user_fields, user_values) if user_values[0] is not None else None
                segment_field.set_cached_value(client, segment)
                collector_field.set_cached_value(client, collector)
                for name, value in zip(_ANNOTATIONS, row[n_client + n_segment + n_user :], strict=True):
                    setattr(client, name, value)
                client.call_window = self._windows.get((client.country, client.time_zone))
                clients.append(client)
        return clients

    # -- the queryset-like surface --

    def count(self) -> int:
        """How many clients are in the queue: those with something due and the quiet ones at risk
        (one query, which also keeps the due items for the page)."""
        if self._cache is not None:
            return len(self._cache)
        ctes = self._ctes()
        if ctes is None:
            self._items = []
            return 0
        sql_parts, params = list(ctes[0]), list(ctes[1])
        count = "(SELECT COUNT(*) FROM (SELECT client_id FROM items UNION SELECT client_id FROM risky_live) AS q)"
        if self.scope.followups:
            # The quiet clients at risk of the stored facts (S) not already counted: S minus
            # those touched, attended, due or recomputed — counted over S and over those few, not
            # client by client over S.
            in_scope, scope_params = self._rank_scope_sql()
            stored = f"{RANK_TABLE} AS a WHERE (SELECT ok FROM fresh) AND a.has_risk AND a.ladder AND {in_scope}"
            count += (
                f" + (SELECT COUNT(*) FROM {stored})"
                f" - (SELECT COUNT(*) FROM {stored} AND a.client_id IN (SELECT client_id FROM dirty_ids"
                " UNION SELECT client_id FROM attended UNION SELECT client_id FROM items"
                " UNION SELECT client_id FROM risky_live))"
            )
            params += [*scope_params, *scope_params]
        # The count and whether the stored facts were fresh first (no client), then the due
        # items per client.
        sql = (
            "WITH "
            + ",\n".join(sql_parts)
            + f"\nSELECT NULL, 0, 0, 0, (SELECT CAST(ok AS INTEGER) FROM fresh), {count}"
            "\nUNION ALL SELECT client_id, CAST(SUM(t) AS INTEGER), CAST(SUM(p) AS INTEGER), CAST(SUM(x) AS INTEGER),"
            " CAST(SUM(r) AS INTEGER), NULL FROM items GROUP BY client_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        head = next(row for row in rows if row[0] is None)
        total, self._fresh = head[5], bool(head[4])
        self._items = [tuple(row[:5]) for row in rows if row[0] is not None]
        return total

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self):
        return iter(self._all())

    def __bool__(self) -> bool:
        return bool(self._all())

    def _all(self) -> list[Client]:
        if self._cache is None:
            self._cache = self._fetch()
        return self._cache

    def __getitem__(self, key):
        if self._cache is not None:
            return self._cache[key]
        if isinstance(key, int):
            if key < 0:
                raise IndexError("negative indexing is not supported")
            rows = self._fetch(limit=1, offset=key)
            if not rows:
                raise IndexError(key)
            return rows[0]
        if not isinstance(key, slice) or key.step not in (None, 1) or (key.start or 0) < 0 or (key.stop or 0) < 0:
            raise TypeError("only forward slices without a step are supported")
        start = key.start or 0
        if key.stop is None:
            return self._fetch(offset=start)
        return self._fetch(limit=max(key.stop - start, 0), offset=start) if key.stop > start else []


def worklist(*, user, scope: Scope, today: dt.date | None = None) -> Worklist:
    """Today's queue: the clients of ``scope`` with something due, highest score first.

    Each client carries its counts and points (``overdue_max``, ``oldest_overdue``,
    ``broken_count``, ``profile_effective``, ``task_count``, ``promise_count``,
    ``next_count``, ``*_points``, ``score``). One query for the rows (one for the count);
    ``worklist_rows`` adds the details of a page. Ties: the oldest overdue invoice first,
    then the largest overdue amount, then the name."""
    return Worklist(user=user, scope=scope, today=today or clock.localdate())


# --- the rows of a page ----------------------------------------------------------------------


@dataclass
class Reason:
    text: str
    icon: str = "dot"
    detail: str = ""
    late: bool = False  # due before today and still pending
    task: CollectorTask | None = None  # a task can be marked done from the row
    reply: InboundMessage | None = None  # a reply can be read on the client page or marked read


@dataclass
class CurrencyTotals:
    currency: str
    open_balance: Decimal = ZERO
    overdue: Decimal = ZERO
    overdue_count: int = 0
    oldest_overdue: dt.date | None = None


@dataclass
class WorklistRow:
    client: Client
    score: int
    points: list[tuple[str, int]]
    weight: int
    todo: list[Reason]  # what to do today
    why: list[Reason]  # why the client ranks where it does
    tasks: list[CollectorTask]
    totals: list[CurrencyTotals]

    @property
    def formula(self) -> str:
        """The non-zero parts and their sum, e.g. "Importe en riesgo 50 + Tareas 15 = 65"."""
        parts = [(label, p) for label, p in self.points if p] or [(_("Importe en riesgo"), 0)]
        pieces = []
        for index, (label, points) in enumerate(parts):
            sign = ("−" if points < 0 else "") if index == 0 else ("−" if points < 0 else "+")
            pieces.append(f"{sign} {label} {abs(points)}".strip() if index else f"{label} {sign}{abs(points)}")
        return " ".join(pieces) + f" = {self.score}"

    @property
    def call(self) -> contact_rules.CallWindow | None:
        """When the debtor may be called now (their local time and window)."""
        return getattr(self.client, "call_window", None)

    @property
    def call_text(self) -> str:
        return call_window_text(self.call) if self.call is not None else ""

    @property
    def outcome_url(self) -> str:
        """One click from the queue to the quick "log an outcome" form of the client."""
        return reverse("cobranza:log_outcome", args=[self.client.pk])


def call_window_text(window: contact_rules.CallWindow) -> str:
    """ "Allí son las 08:10 · se puede llamar hasta las 22:00", or when calling opens again."""
    here = _("Allí son las %(time)s") % {"time": window.local_now.strftime("%H:%M")}
    if window.allowed:
        return _("%(here)s · se puede llamar hasta las %(time)s") % {
            "here": here,
            "time": window.until.strftime("%H:%M"),
        }
    if window.opens is None:
        return f"{here} · {window.reason}"
    if window.opens.date() == window.local_now.date():
        when = _("hoy a las %(time)s") % {"time": window.opens.strftime("%H:%M")}
    else:
        when = _("el %(date)s a las %(time)s") % {
            "date": date_format(window.opens.date(), "SHORT_DATE_FORMAT"),
            "time": window.opens.strftime("%H:%M"),
        }
    return _("%(here)s · no llamar ahora (%(reason)s); se puede desde %(when)s") % {
        "here": here,
        "reason": window.reason,
        "when": when,
    }


def _days(n: int) -> str:
    return ngettext("%(n)d día", "%(n)d días", n) % {"n": n}


def _money(amount, currency: str) -> str:
    return money_str(amount, currency)


def task_text(task: CollectorTask) -> str:
    """What the task asks for, in a short phrase (the title has the details)."""
    step = task.notice.step if task.notice_id and task.notice else None
    kind = task.kind
    if step is not None:
        position = {"n": step.position}
        if kind == TaskKind.CALL:
            return _("Llamada del paso %(n)d de la escalera") % position
        if kind == TaskKind.REVIEW:
            return _("Revisión del paso %(n)d de la escalera") % position
        if kind == TaskKind.AGENCY:
            return _("Envío a agencia de cobranza (paso %(n)d de la escalera)") % position
        if kind == TaskKind.LEGAL:
            return _("Envío a vía judicial (paso %(n)d de la escalera)") % position
    commitment = task.commitment if task.commitment_id else None
    if commitment is not None:
        amount = _money(commitment.total, commitment.currency)
        if kind == TaskKind.BROKEN_PROMISE:
            return _("Promesa incumplida de %(amount)s") % {"amount": amount}
        if kind == TaskKind.PLAN_MISSED:
            missed = getattr(task, "missed_amount", None)
            if missed is not None:
                # The instalment's own amount and date, not the plan's total and the judging day.
                return _("Cuota %(n)d del plan de pagos incumplida: %(amount)s, vencía el %(date)s") % {
                    "n": task.missed_number,
                    "amount": _money(missed, commitment.currency),
                    "date": date_format(task.missed_due_on, "SHORT_DATE_FORMAT"),
                }
            return _("Cuota incumplida del plan de pagos de %(amount)s") % {"amount": amount}
    if kind == TaskKind.CALL:
        return _("Llamada pendiente")
    return TaskKind(kind).label if kind in TaskKind.values else task.title_text


TASK_ICONS = {
    TaskKind.CALL: "telephone",
    TaskKind.REVIEW: "clipboard-check",
    TaskKind.AGENCY: "building",
    TaskKind.LEGAL: "bank",
    TaskKind.FIND_CONTACT: "person-plus",
    TaskKind.ESCALATION: "graph-up-arrow",
    TaskKind.APPROVAL: "patch-check",
    TaskKind.BROKEN_PROMISE: "hand-thumbs-down",
    TaskKind.PLAN_MISSED: "calendar-x",
    TaskKind.DISPUTE: "exclamation-diamond",
    TaskKind.DISCOUNT: "percent",
    TaskKind.FOLLOW_UP: "arrow-repeat",
    TaskKind.GOOD_PAYER_LOST: "award",
    TaskKind.PORTAL_PROPOSAL: "inbox",
}


def _task_reason(task: CollectorTask, today: dt.date) -> Reason:
    text = task_text(task)
    # A missed instalment is as late as its own due date, not as the day it was judged.
    since = getattr(task, "missed_due_on", None) or task.due_on
    late = since < today
    if late:
        text = _("%(what)s · pendiente desde hace %(days)s") % {"what": text, "days": _days((today - since).days)}
    detail = task.title_text if task.title and task.title_text != text else ""
    return Reason(text=text, icon=TASK_ICONS.get(task.kind, "check2-square"), detail=detail, late=late, task=task)


def installment_text(installment: Installment, today: dt.date) -> str:
    commitment = installment.commitment
    amount = _money(installment.amount, commitment.currency)
    when = installment.due_on
    if commitment.kind == CommitmentKind.PLAN:
        values = {"number": installment.number, "amount": amount}
        if when == today:
            return _("Cuota %(number)d del plan de pagos (%(amount)s) vence hoy") % values
        if when < today:
            return _("Cuota %(number)d del plan de pagos (%(amount)s) venció ayer: verificar el pago") % values
        return _("Cuota %(number)d del plan de pagos (%(amount)s)") % values
    if commitment.kind == CommitmentKind.EXTENSION:
        if when == today:
            return _("Prórroga de %(amount)s vence hoy") % {"amount": amount}
        if when < today:
            return _("Prórroga de %(amount)s venció ayer: verificar el pago") % {"amount": amount}
        return _("Prórroga de %(amount)s") % {"amount": amount}
    if when == today:
        return _("Promesa de %(amount)s vence hoy") % {"amount": amount}
    if when < today:
        return _("Promesa de %(amount)s venció ayer: verificar el pago") % {"amount": amount}
    return _("Promesa de %(amount)s") % {"amount": amount}


def next_action_text(entry: Interaction, today: dt.date) -> str:
    when = entry.next_action_on
    if when == today:
        return _("Seguimiento acordado para hoy")
    if when < today:
        return _("Seguimiento acordado para el %(date)s (hace %(days)s)") % {
            "date": date_format(when, "SHORT_DATE_FORMAT"),
            "days": _days((today - when).days),
        }
    return _("Seguimiento acordado para el %(date)s") % {"date": date_format(when, "SHORT_DATE_FORMAT")}


REPLY_ICONS = {"email": "envelope-open", "sms": "chat-left-text", "whatsapp": "whatsapp"}


def reply_reason(message: InboundMessage, today: dt.date) -> Reason:
    """An unread reply: what the client wrote, how and when (docs/domain.md#replies)."""
    received = timezone.localdate(message.received_at)
    values = {"channel": message.get_channel_display()}
    if received >= today:
        text = _("Respuesta del cliente por %(channel)s, sin leer") % values
    else:
        text = _("Respuesta del cliente por %(channel)s, sin leer desde hace %(days)s") % {
            **values,
            "days": _days((today - received).days),
        }
    detail = message.subject or " ".join(message.body.split())[:160]
    return Reason(
        text=text,
        icon=REPLY_ICONS.get(message.channel, "reply"),
        detail=detail,
        late=received < today,
        reply=message,
    )


def _invoice_reason(totals: list[CurrencyTotals], today: dt.date) -> Reason | None:
    count = sum(t.overdue_count for t in totals)
    oldest = min((t.oldest_overdue for t in totals if t.oldest_overdue), default=None)
    if not count or oldest is None:
        return None
    days = _days(days_between(today, oldest))
    text = ngettext(
        "%(n)d factura vencida con %(days)s",
        "%(n)d facturas vencidas, la más antigua con %(days)s",
        count,
    ) % {"n": count, "days": days}
    return Reason(text=text, icon="receipt")


def _totals_by_client(client_ids: list[int], today: dt.date, currency_of: dict[int, str]) -> dict[int, list]:
    """Open and overdue balances per client and currency, the client's currency first (1 query)."""
    rows = (
        Invoice.objects.filter(COLLECTIBLE, client_id__in=client_ids)
        .values("client_id", "currency")
        .annotate(
            open_total=Sum("open_balance"),
            overdue_total=Sum("open_balance", filter=overdue_q(today)),
            overdue_count=Count("pk", filter=overdue_q(today)),
            oldest=Min("due_date", filter=overdue_q(today)),
        )
        .order_by()
    )
    result: dict[int, list[CurrencyTotals]] = {}
    for row in rows:
        result.setdefault(row["client_id"], []).append(
            CurrencyTotals(
                currency=row["currency"],
                open_balance=row["open_total"] or ZERO,
                overdue=row["overdue_total"] or ZERO,
                overdue_count=row["overdue_count"],
                oldest_overdue=row["oldest"],
            )
        )
    for client_id, totals in result.items():
        main = currency_of.get(client_id)
        totals.sort(key=lambda t: (t.currency != main, t.currency))
    return result


def _points(client) -> list[tuple[str, int]]:
    """The score's parts, as the row explains them (labels in the reader's language)."""
    return [
        (_("Importe en riesgo"), client.risk_points),
        (_("Fecha prometida"), client.promise_points),
        (_("Promesas incumplidas"), client.broken_points),
        (_("Tareas"), client.task_points),
        (_("Seguimientos"), client.next_points),
        (_("Respuestas"), client.reply_points),
        (_("Perfil"), client.profile_points),
        (_("Segmento"), client.segment_points),
    ]


def _missed_installment() -> dict:
    """For a missed-instalment task: the instalment judged on the task's day (its number,
    amount and due date), as subqueries of the task query."""
    missed = Installment.objects.filter(
        commitment=OuterRef("commitment"),
        judged_on=OuterRef("due_on"),
        status__in=(InstallmentStatus.MISSED, InstallmentStatus.PARTIAL),
    ).order_by("number")
    when_missed = Q(kind=TaskKind.PLAN_MISSED)
    return {
        "missed_number": Case(When(when_missed, then=Subquery(missed.values("number")[:1])), default=None),
        "missed_amount": Case(When(when_missed, then=Subquery(missed.values("amount")[:1])), default=None),
        "missed_due_on": Case(When(when_missed, then=Subquery(missed.values("due_on")[:1])), default=None),
    }


def worklist_rows(clients, *, user, scope: Scope, today: dt.date | None = None) -> list[WorklistRow]:
    """The page's rows with their reasons, tasks and totals (5 queries, whatever the rows)."""
    today = today or clock.localdate()
    clients = list(clients)
    ids = [c.pk for c in clients]
    tasks: dict[int, list[CollectorTask]] = {}
    promised: dict[int, list[Installment]] = {}
    nexts: dict[int, list[Interaction]] = {}
    replies: dict[int, list[InboundMessage]] = {}
    totals: dict[int, list[CurrencyTotals]] = {}
    if ids:
        for task in (
            CollectorTask.objects.filter(_due_tasks(today), _assignment_q(scope), client_id__in=ids)
            .select_related("notice__step", "commitment", "assigned_to")
            .annotate(**_missed_installment())
            .order_by("due_on", "id")
        ):
            tasks.setdefault(task.client_id, []).append(task)
        if scope.followups:
            for inst in (
                Installment.objects.filter(_promised(today), commitment__client_id__in=ids)
                .select_related("commitment")
                .order_by("due_on", "number")
            ):
                promised.setdefault(inst.commitment.client_id, []).append(inst)
            for entry in (
                pending_next_actions(today)
                .filter(client_id__in=ids)
                .select_related("author")
                .order_by("next_action_on", "occurred_at", "id")
            ):
                nexts.setdefault(entry.client_id, []).append(entry)
            for message in unread_replies().filter(client_id__in=ids).order_by("received_at", "id"):
                replies.setdefault(message.client_id, []).append(message)
        totals = _totals_by_client(ids, today, {c.pk: c.currency for c in clients})
    rows = []
    for client in clients:
        client_totals = totals.get(client.pk, [])
        todo = [_task_reason(t, today) for t in tasks.get(client.pk, [])]
        todo += [
            Reason(text=installment_text(i, today), icon="calendar-check", late=i.due_on < today)
            for i in promised.get(client.pk, [])
        ]
        todo += [
            Reason(
                text=next_action_text(e, today),
                icon="arrow-repeat",
                detail=e.summary_text,
                late=e.next_action_on < today,
            )
            for e in nexts.get(client.pk, [])
        ]
        todo += [reply_reason(m, today) for m in replies.get(client.pk, [])]
        why = []
        if client.at_risk:
            why.append(
                Reason(
                    text=_("%(amount)s en riesgo de perderse por la antigüedad del saldo vencido")
                    % {"amount": _money(client.at_risk, client.at_risk_currency)},
                    icon="exclamation-triangle",
                )
            )
        invoice_reason = _invoice_reason(client_totals, today)
        if invoice_reason:
            why.append(invoice_reason)
        if client.broken_count:
            why.append(
                Reason(
                    text=ngettext(
                        "%(n)d promesa incumplida en los últimos %(days)d días",
                        "%(n)d promesas incumplidas en los últimos %(days)d días",
                        client.broken_count,
                    )
                    % {"n": client.broken_count, "days": BROKEN_WINDOW_DAYS},
                    icon="hand-thumbs-down",
                )
            )
        if client.profile_points:
            why.append(
                Reason(
                    text=_("Perfil: %(profile)s") % {"profile": Profile(client.profile_effective).label},
                    icon="person-badge",
                )
            )
        weight = client.segment.priority_weight
        if client.segment_points:
            why.append(
                Reason(
                    text=_("Segmento %(segment)s (peso de prioridad %(weight)d)")
                    % {"segment": client.segment.name, "weight": weight},
                    icon="diagram-3",
                )
            )
        rows.append(
            WorklistRow(
                client=client,
                score=client.score,
                points=_points(client),
                weight=weight,
                todo=todo,
                why=why,
                tasks=tasks.get(client.pk, []),
                totals=client_totals,
            )
        )
    return rows


# --- the day's progress ----------------------------------------------------------------------


@dataclass
class Progress:
    done: int
    pending: int

    @property
    def total(self) -> int:
        return self.done + self.pending

    @property
    def percent(self) -> int:
        return round(self.done * 100 / self.total) if self.total else 0


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


def day_progress(*, user, scope: Scope, today: dt.date | None = None) -> Progress:
    """Tasks attended today against those due: done today + still open and due (1 query)."""
    today = today or clock.localdate()
    start, end = _day_bounds(today)
    counts = scope_tasks(user=user, scope=scope).aggregate(
        done=Count("pk", filter=Q(status=TaskStatus.DONE, completed_at__gte=start, completed_at__lt=end)),
        pending=Count("pk", filter=_due_tasks(today)),
    )
    return Progress(done=counts["done"], pending=counts["pending"])


# --- the calendar ----------------------------------------------------------------------------


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


@dataclass
class CalendarEntry:
    kind: str  # "task", "promise" or "next_action"
    day: dt.date
    client: Client
    text: str
    icon: str
    detail: str = ""
    done: bool = False
    late: bool = False
    task: CollectorTask | None = None
    who: object | None = None  # the collector (or the assignee of a task)
    for_managers: bool = False  # a task in the managers' queue

    @property
    def url(self) -> str:
        return reverse("client_detail", args=[self.client.pk]) + "?tab=historial#registrar"


@dataclass
class CalendarDay:
    day: dt.date
    entries: list[CalendarEntry] = field(default_factory=list)
    is_today: bool = False

    @property
    def open_count(self) -> int:
        return sum(1 for e in self.entries if not e.done)


@dataclass
class MonthCell:
    day: dt.date
    count: int
    in_month: bool
    in_week: bool
    is_today: bool


@dataclass
class Calendar:
    start: dt.date
    days: list[CalendarDay]
    month: dt.date  # first day of the month shown in the overview
    month_weeks: list[list[MonthCell]]
    late_tasks: int  # open tasks due before this week

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=6)

    @property
    def previous(self) -> dt.date:
        return self.start - dt.timedelta(days=7)

    @property
    def next(self) -> dt.date:
        return self.start + dt.timedelta(days=7)

    @property
    def previous_month(self) -> dt.date:
        return (self.month - dt.timedelta(days=1)).replace(day=1)

    @property
    def next_month(self) -> dt.date:
        return (self.month + dt.timedelta(days=32)).replace(day=1)

    @property
    def total(self) -> int:
        return sum(len(d.entries) for d in self.days)


def _calendar_sources(*, user, scope: Scope, start: dt.date, end: dt.date, today: dt.date):
    """Tasks, installments and next actions dated in [start, end] (querysets, not run)."""
    clients = scope_clients(user=user, scope=scope)
    tasks = CollectorTask.objects.filter(
        _assignment_q(scope),
        client__in=clients,
        due_on__gte=start,
        due_on__lte=end,
        status__in=[TaskStatus.OPEN, TaskStatus.DONE],
    )
    if scope.followups:
        installments = Installment.objects.filter(
            commitment__client__in=clients, due_on__gte=start, due_on__lte=end
        ).exclude(Q(status=InstallmentStatus.CANCELLED) | Q(commitment__status=CommitmentStatus.CANCELLED))
        nexts = Interaction.objects.filter(client__in=clients, next_action_on__gte=start, next_action_on__lte=end)
    else:
        installments = Installment.objects.none()
        nexts = Interaction.objects.none()
    return tasks, installments, nexts


def calendar_week(*, user, scope: Scope, day: dt.date | None = None, today: dt.date | None = None) -> Calendar:
    """The week of ``day`` (Monday to Sunday) with its entries per day, and the month
    overview with counts per day (7 queries, whatever the entries)."""
    today = today or clock.localdate()
    start = week_start(day or today)
    end = start + dt.timedelta(days=6)
    days = {start + dt.timedelta(days=i): CalendarDay(start + dt.timedelta(days=i)) for i in range(7)}
    for d in days.values():
        d.is_today = d.day == today

    tasks, installments, nexts = _calendar_sources(user=user, scope=scope, start=start, end=end, today=today)
    for task in tasks.select_related("client__collector", "notice__step", "commitment", "assigned_to").order_by(
        "due_on", "id"
    ):
        done = task.status == TaskStatus.DONE
        days[task.due_on].entries.append(
            CalendarEntry(
                kind="task",
                day=task.due_on,
                client=task.client,
                text=task_text(task),
                icon=TASK_ICONS.get(task.kind, "check2-square"),
                detail=task.title_text,
                done=done,
                late=not done and task.due_on < today,
                task=task,
                who=task.assigned_to,
                for_managers=task.assigned_to_id is None,
            )
        )
    for inst in installments.select_related("commitment__client__collector").order_by("due_on", "number"):
        client = inst.commitment.client
        days[inst.due_on].entries.append(
            CalendarEntry(
                kind="promise",
                day=inst.due_on,
                client=client,
                text=installment_text(inst, today),
                icon="calendar-check",
                detail=inst.get_status_display(),
                done=inst.status != InstallmentStatus.PENDING,
                late=inst.status == InstallmentStatus.PENDING and inst.due_on < today - dt.timedelta(days=1),
                who=client.collector,
            )
        )
    followed = Exists(_later_contact())
    for entry in (
        nexts.annotate(followed=followed).select_related("client__collector").order_by("next_action_on", "occurred_at")
    ):
        days[entry.next_action_on].entries.append(
            CalendarEntry(
                kind="next_action",
                day=entry.next_action_on,
                client=entry.client,
                text=_("Seguimiento acordado"),
                icon="arrow-repeat",
                detail=entry.summary_text,
                done=entry.followed,
                late=not entry.followed and entry.next_action_on < today,
                who=entry.client.collector,
            )
        )
    for d in days.values():
        d.entries.sort(key=lambda e: (e.done, e.client.legal_name, e.kind))

    # The month overview: the month of the week's Thursday (where most of the week falls).
    month = (start + dt.timedelta(days=3)).replace(day=1)
    month_end = month.replace(day=pycalendar.monthrange(month.year, month.month)[1])
    grid_start = week_start(month)
    grid_end = week_start(month_end) + dt.timedelta(days=6)
    m_tasks, m_installments, m_nexts = _calendar_sources(
        user=user, scope=scope, start=grid_start, end=grid_end, today=today
    )
    counts: dict[dt.date, int] = {}
    for qs, date_field in ((m_tasks, "due_on"), (m_installments, "due_on"), (m_nexts, "next_action_on")):
        for when, n in qs.order_by().values(date_field).annotate(n=Count("pk")).values_list(date_field, "n"):
            counts[when] = counts.get(when, 0) + n
    weeks = []
    cursor = grid_start
    while cursor <= grid_end:
        weeks.append(
            [
                MonthCell(
                    day=cursor + dt.timedelta(days=i),
                    count=counts.get(cursor + dt.timedelta(days=i), 0),
                    in_month=(cursor + dt.timedelta(days=i)).month == month.month,
                    in_week=start <= cursor + dt.timedelta(days=i) <= end,
                    is_today=cursor + dt.timedelta(days=i) == today,
                )
                for i in range(7)
            ]
        )
        cursor += dt.timedelta(days=7)

    late_tasks = (
        scope_tasks(user=user, scope=scope).filter(status=TaskStatus.OPEN, due_on__lt=min(start, today)).count()
    )
    return Calendar(start=start, days=list(days.values()), month=month, month_weeks=weeks, late_tasks=late_tasks)


# --- promise-kept rate per collector ---------------------------------------------------------

PROMISE_RATE_DAYS = 90


@dataclass
class PromiseRate:
    collector: object | None
    kept: int
    judged: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.kept / self.judged) if self.judged else None


def promise_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The worklist's window: the last PROMISE_RATE_DAYS days, today included."""
    return today - dt.timedelta(days=PROMISE_RATE_DAYS - 1), today


def promise_kept_rates(*, scope: Scope, today: dt.date | None = None) -> list[PromiseRate]:
    """The promise-kept rate (``metrics.promise_kept_by_collector``, its one definition) over
    the last PROMISE_RATE_DAYS days, per collector: the scope's collector, or every collector
    for a manager's view of all. Two queries (the rates, the collectors' names)."""
    start, end = promise_window(today or clock.localdate())
    if scope.kind == COLLECTOR:
        clients = Q(client__collector=scope.collector)
    elif scope.kind == ALL:
        clients = Q()
    else:
        return []
    counts = metrics.promise_kept_by_collector(start=start, end=end, clients=clients)
    people = {u.pk: u for u in get_user_model().objects.filter(pk__in=[pk for pk in counts if pk is not None])}
    return sorted(
        (PromiseRate(people.get(pk), kept, judged) for pk, (kept, judged) in counts.items()),
        key=lambda r: (-(r.percent or 0), str(r.collector or "")),
    )
