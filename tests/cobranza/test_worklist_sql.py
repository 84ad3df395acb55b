"""The set-based worklist query (``selectors_worklist.Worklist``) against the per-client
queryset it replaced, kept here as the reference: on a portfolio with every kind of item,
ties and scope, both give the same clients, in the same order, with the same counts, points
and score — for every scope, on several days, whole and page by page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as ledger
from accounts.models import MONEY, ZERO, Invoice
from accounts.selectors import COLLECTIBLE, OVERDUE_BUCKETS
from cobranza.models import CollectorTask, Installment, Profile, TaskKind
from cobranza.worklist import selectors as wl
from tests.cobranza.test_worklist import (
    _broken,
    _busy_clients,
    _commitment,
    _days_ago,
    _next_action,
    _profile,
    _task,
)
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


# --- the reference: the per-client queryset the SQL replaced (one correlated subquery per
# client and measure), unchanged but for its name --------------------------------------------


def _count(qs, client_field):
    rows = qs.order_by().values(client_field).annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0), output_field=IntegerField())


def _capped(name, per, cap):
    return Case(
        When(**{f"{name}__gte": cap // per}, then=Value(cap)),
        default=ExpressionWrapper(F(name) * Value(per), output_field=IntegerField()),
        output_field=IntegerField(),
    )


def _reference(*, user, scope, today):
    overdue = Invoice.objects.filter(COLLECTIBLE, client=OuterRef("pk"), due_date__lt=today).order_by()
    overdue_max = overdue.values("currency").annotate(t=Sum("open_balance")).order_by("-t").values("t")[:1]
    oldest = overdue.values("client").annotate(d=Min("due_date")).values("d")[:1]
    broken = wl.Commitment.objects.filter(wl._broken_q(today), client=OuterRef("pk"))
    tasks = CollectorTask.objects.filter(wl._due_tasks(today), wl._assignment_q(scope), client=OuterRef("pk"))
    if scope.followups:
        promised = _count(
            Installment.objects.filter(wl._promised(today), commitment__client=OuterRef("pk")), "commitment__client"
        )
        next_actions = _count(wl.pending_next_actions(today).filter(client=OuterRef("pk")), "client")
    else:
        promised = next_actions = Value(0, output_field=IntegerField())
    money = DecimalField(**MONEY)
    amount = [When(overdue_max__gte=Decimal(step), then=Value(points)) for step, points in wl.AMOUNT_STEPS]
    amount.append(When(overdue_max__gt=ZERO, then=Value(wl.AMOUNT_ANY)))
    age = [
        When(oldest_overdue__lte=today - dt.timedelta(days=b.min_days), then=Value(i * wl.AGE_POINTS_PER_BUCKET))
        for i, b in reversed(list(enumerate(OVERDUE_BUCKETS, start=1)))
    ]
    profile = [When(profile_effective=p, then=Value(points)) for p, points in wl.PROFILE_POINTS.items()]
    return (
        wl.scope_clients(user=user, scope=scope)
        .annotate(
            overdue_max=Coalesce(Subquery(overdue_max, output_field=money), Value(ZERO), output_field=money),
            oldest_overdue=Subquery(oldest),
            broken_count=_count(broken, "client"),
            # No profile row: "new" (cobranza.rules' effective profile; it used to be NULL here).
            profile_effective=Coalesce(
                NullIf(F("profile__override"), Value("")), F("profile__computed"), Value(Profile.NEW)
            ),
            task_count=_count(tasks, "client"),
            promise_count=promised,
            next_count=next_actions,
        )
        .filter(Q(task_count__gt=0) | Q(promise_count__gt=0) | Q(next_count__gt=0))
        .annotate(item_count=F("task_count") + F("promise_count") + F("next_count"))
        .annotate(
            amount_points=Case(*amount, default=Value(0), output_field=IntegerField()),
            age_points=Case(*age, default=Value(0), output_field=IntegerField()),
            broken_points=_capped("broken_count", wl.BROKEN_POINTS, wl.BROKEN_CAP),
            profile_points=Case(*profile, default=Value(0), output_field=IntegerField()),
            item_points=_capped("item_count", wl.ITEM_POINTS, wl.ITEM_CAP),
        )
        .annotate(
            score=ExpressionWrapper(
                (F("amount_points") + F("age_points") + F("broken_points") + F("profile_points") + F("item_points"))
                * F("segment__priority_weight"),
                output_field=IntegerField(),
            )
        )
        .order_by(
            F("score").desc(), F("oldest_overdue").asc(nulls_last=True), F("overdue_max").desc(), "legal_name", "id"
        )
    )


def _facts(clients) -> list[tuple]:
    return [(c.pk, *(getattr(c, name) for name in wl._ANNOTATIONS)) for c in clients]


# --- a portfolio with every case -----------------------------------------------------------------


@pytest.fixture
def mixed(gerente, gestora, gestor):
    """Busy clients of both collectors and of nobody, plus ties the order must break the
    same way: equal scores (oldest overdue first), equal oldest (largest amount first), equal
    everything (by name), nothing overdue (last among equals), managers' tasks, a task left to a
    former collector, a next action followed only by a system entry, a profile override."""
    _busy_clients(6, by=gerente, collectors=[gestora, gestor, None], tag="Ocupado")
    for name, amount, days in (("Tie B", "1500.00", 20), ("Tie A", "1500.00", 20), ("Tie C", "2500.00", 20)):
        debtor = make_client(by=gerente, collector=gestora, legal_name=name)
        make_invoice(by=gerente, client=debtor, amount=amount, due_date=_days_ago(days))
        _task(debtor)
    newer = make_client(by=gerente, collector=gestora, legal_name="Tie Newer")
    make_invoice(by=gerente, client=newer, amount="1500.00", due_date=_days_ago(5))
    _task(newer)
    for name in ("Nada Vencido Z", "Nada Vencido A"):
        clean = make_client(by=gerente, collector=gestor, legal_name=name)
        make_invoice(by=gerente, client=clean, amount="800.00", due_date=TODAY + dt.timedelta(days=9))
        _task(clean, due_on=_days_ago(3))
    managers = make_client(by=gerente, collector=gestor, legal_name="Para Gerencia", segment_code="cuenta-clave")
    make_invoice(by=gerente, client=managers, amount="2000000.00", due_date=_days_ago(400))
    make_invoice(by=gerente, client=managers, amount="100.00", currency="USD", due_date=_days_ago(2))
    _task(managers, TaskKind.ESCALATION, assigned_to=None)
    _task(managers, TaskKind.APPROVAL, assigned_to=gerente)
    _profile(managers, "chronic", override="negligent")
    former = make_client(by=gerente, collector=gestor, legal_name="Heredado")
    _task(former, due_on=_days_ago(4))
    ledger.clients_assign_collector(by=gerente, client_ids=[former.pk], collector=gestora)
    quiet = make_client(by=gerente, collector=gestora, legal_name="Solo Sistema")
    _next_action(quiet, gestora, on=_days_ago(2))
    ledger.interaction_log(by=None, client=quiet, kind="system", direction="internal", summary="Recordatorio")
    followed = make_client(by=gerente, collector=gestora, legal_name="Ya Seguido")
    _next_action(followed, gestora, on=_days_ago(2))
    ledger.interaction_log(by=gestora, client=followed, kind="call", outcome="no_answer", summary="No contesta")
    plan = make_client(by=gerente, collector=None, legal_name="Plan Sin Gestor", segment_code="esporadico")
    _commitment(plan, kind="plan", total="900.00", dates=((TODAY - dt.timedelta(days=1), "300.00"), (TODAY, "600.00")))
    for days in (5, 20, 40, 80):
        _broken(plan, days_ago=days)


SCOPES = {
    "everybody": ("gerente", lambda users: wl.Scope()),
    "hers, as herself": ("gestora", lambda users: wl.Scope.of_collector(users["gestora"])),
    "his, as a manager": ("gerente", lambda users: wl.Scope.of_collector(users["gestor"])),
    "unassigned": ("gerente", lambda users: wl.Scope(wl.UNASSIGNED)),
    "managers' queue": ("gerente", lambda users: wl.Scope(wl.MANAGERS)),
}


@pytest.mark.parametrize("day_offset", [0, 1, 3])
@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_the_set_based_queue_equals_the_per_client_reference(mixed, gerente, gestora, gestor, scope_name, day_offset):
    users = {"gerente": gerente, "gestora": gestora, "gestor": gestor}
    who, make_scope = SCOPES[scope_name]
    user, scope = users[who], make_scope(users)
    today = TODAY + dt.timedelta(days=day_offset)
    expected = _facts(_reference(user=user, scope=scope, today=today))
    assert expected, "the fixture must give every scope a queue"
    queue = wl.worklist(user=user, scope=scope, today=today)
    assert _facts(queue) == expected
    assert queue.count() == len(expected)
    # As the paginator reads it: the count first (which keeps the due clients), then a page.
    paged = wl.worklist(user=user, scope=scope, today=today)
    assert paged.count() == len(expected)
    assert _facts(paged[0 : len(expected) + 5]) == expected


def test_pages_are_slices_of_the_same_order(mixed, gerente):
    today = TODAY
    expected = _facts(_reference(user=gerente, scope=wl.Scope(), today=today))
    assert len(expected) > 7
    fresh = wl.worklist(user=gerente, scope=wl.Scope(), today=today)
    assert fresh.count() == len(expected)
    pages = [_facts(fresh[i : i + 4]) for i in range(0, len(expected), 4)]
    assert [row for page in pages for row in page] == expected
    assert _facts([fresh[2]]) == expected[2:3]
    assert _facts(fresh[5:]) == expected[5:]
    assert fresh[len(expected) : len(expected) + 4] == []
    with pytest.raises(IndexError):
        fresh[len(expected)]


def test_ties_break_by_oldest_overdue_then_amount_then_name_with_nothing_overdue_last(mixed, gestora, gestor):
    names = [c.legal_name for c in wl.worklist(user=gestora, scope=wl.Scope.of_collector(gestora))]
    # All four score (10 + 5|0 + 0 + 0 + 10) × 2: 20 days before 5 days; same day, more money first; then names.
    ties = [n for n in names if n.startswith("Tie")]
    assert ties == ["Tie C", "Tie A", "Tie B", "Tie Newer"]
    his = [c.legal_name for c in wl.worklist(user=gestor, scope=wl.Scope.of_collector(gestor))]
    assert his.index("Nada Vencido A") + 1 == his.index("Nada Vencido Z")


def test_rows_come_with_segment_and_collector_loaded_in_one_query(mixed, gerente):
    with CaptureQueriesContext(connection) as ctx:
        clients = list(wl.worklist(user=gerente, scope=wl.Scope()))
        labels = [(c.segment.name, c.collector.username if c.collector else None) for c in clients]
    assert len(ctx.captured_queries) == 1
    assert ("Regular", None) in labels and any(collector == "gestora" for _s, collector in labels)


def test_nobody_without_a_role_gets_an_empty_queue_without_querying_clients(mixed, nobody):
    with CaptureQueriesContext(connection) as ctx:
        queue = wl.worklist(user=nobody, scope=wl.Scope())
        assert list(queue) == [] and queue.count() == 0 and queue[0:25] == []
    assert [q["sql"] for q in ctx.captured_queries if "accounts_client" in q["sql"]] == []  # only the role lookup
