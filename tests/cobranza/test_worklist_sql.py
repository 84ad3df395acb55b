"""The set-based worklist query (``cobranza.worklist.selectors.Worklist``) against a reference
computed client by client in Python: on a portfolio with every kind of item, quiet balances at
risk and balances that must stay out, ties and scope, both give the same clients, in the same
order, with the same counts, points and score — for every scope, on several days, whole and
page by page."""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as ledger
from accounts.models import ZERO, Interaction, Invoice
from accounts.rules import is_collectible
from cobranza import rules
from cobranza.engine import contact_rules
from cobranza.models import ClientDunning, CollectorTask, InboundMessage, Installment, InvoiceHold, Policy, TaskKind
from cobranza.replies import services as replies
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


# --- the reference: the queue computed client by client in Python, from the rules' Python
# forms (``cobranza.rules``; test_rules.py checks they agree with the SQL forms) -------------


def _effective_policy(client, policies):
    own = client.dunning.policy if hasattr(client, "dunning") else None
    profile = rules.client_effective_profile(client)
    segment = next((p for p in policies if p.segment_id == client.segment_id), None)
    return rules.effective_policy(
        own=own, profile_policy=rules.profile_policy(policies, profile), segment_policy=segment
    )


def _risk_points(at_risk: Decimal) -> int:
    return math.floor(wl.RISK_POINTS_PER_DECADE * math.log10(at_risk)) if at_risk >= 1 else 0


class _Row:
    def __init__(self, client, **facts):
        self.pk = client.pk
        self.legal_name = client.legal_name
        for name, value in facts.items():
            setattr(self, name, value)


def _reference(*, user, scope, today):
    policies = list(Policy.objects.all())
    now = timezone.now()
    rows = []
    clients = wl.scope_clients(user=user, scope=scope).select_related("segment", "dunning__policy", "profile")
    for client in clients:
        tasks = CollectorTask.objects.filter(wl._due_tasks(today), wl._assignment_q(scope), client=client).count()
        promised = nexts = replies = 0
        if scope.followups:
            promised = Installment.objects.filter(wl._promised(today), commitment__client=client).count()
            nexts = wl.pending_next_actions(today).filter(client=client).count()
            replies = sum(
                1
                for message in InboundMessage.objects.filter(client=client)
                if message.read_at is None
                and not Interaction.objects.filter(
                    client=client, author__isnull=False, occurred_at__gt=message.received_at
                )
                .exclude(kind="system")
                .exists()
            )
        invoices = list(Invoice.objects.filter(client=client).select_related("hold").prefetch_related("commitments"))
        overdue: dict[str, Decimal] = {}
        oldest = None
        for invoice in invoices:
            if is_collectible(invoice) and invoice.due_date < today:
                overdue[invoice.currency] = overdue.get(invoice.currency, ZERO) + invoice.open_balance
                oldest = min(oldest or invoice.due_date, invoice.due_date)
        policy = _effective_policy(client, policies)
        risky = [
            i
            for i in invoices
            if rules.is_dunnable_invoice(i, today) and i.due_date < today and rules.is_above_tolerance(i, policy)
        ]
        risk: dict[str, Decimal] = {}
        for invoice in risky:
            risk[invoice.currency] = risk.get(invoice.currency, ZERO) + invoice.open_balance * rules.loss_weight(
                invoice.due_date, today
            )
        risk = {cur: amount.quantize(Decimal("0.01"), ROUND_HALF_UP) for cur, amount in risk.items()}
        at_risk_currency = min(risk, key=lambda cur: (-risk[cur], cur)) if risk else None
        at_risk = risk[at_risk_currency] if risk else ZERO
        quiet = (
            scope.followups
            and bool(risky)
            and rules.is_ladder_client(client, today)
            and not wl.attended_on(client, today)
        )
        if not (tasks or promised or nexts or replies or quiet):
            continue
        broken = wl.Commitment.objects.filter(wl._broken_q(today), client=client).count()
        profile = rules.client_effective_profile(client)
        points = {
            "risk_points": _risk_points(at_risk),
            "promise_points": min(promised * wl.PROMISE_POINTS, wl.PROMISE_CAP),
            "broken_points": min(broken * wl.BROKEN_POINTS, wl.BROKEN_CAP),
            "task_points": min(tasks * wl.TASK_POINTS, wl.TASK_CAP),
            "next_points": min(nexts * wl.NEXT_POINTS, wl.NEXT_CAP),
            "reply_points": min(replies * wl.REPLY_POINTS, wl.REPLY_CAP),
            "profile_points": wl.PROFILE_POINTS.get(profile, 0),
            "segment_points": wl.SEGMENT_POINTS_PER_WEIGHT * (client.segment.priority_weight - 1),
        }
        window = contact_rules.call_windows([(client.country, client.time_zone)], now)
        rows.append(
            _Row(
                client,
                callable_now=window[(client.country, client.time_zone)].allowed,
                task_count=tasks,
                promise_count=promised,
                next_count=nexts,
                reply_count=replies,
                overdue_max=max(overdue.values(), default=ZERO),
                oldest_overdue=oldest,
                at_risk=at_risk,
                at_risk_currency=at_risk_currency,
                broken_count=broken,
                profile_effective=profile,
                **points,
                score=sum(points.values()),
            )
        )
    rows.sort(
        key=lambda r: (
            not r.callable_now,
            -r.score,
            r.oldest_overdue is None,
            r.oldest_overdue or today,
            -r.overdue_max,
            r.legal_name,
            r.pk,
        )
    )
    return rows


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
    # Replies: two unread (one from a client with nothing else due), one read, one answered
    # with a logged call, one from nobody known.
    for n, (name, collector) in enumerate(
        (("Escribió Dos Veces", gestora), ("Escribió", gestor), ("Leída", gestora), ("Contestada", gestora))
    ):
        writer = make_client(by=gerente, collector=collector, legal_name=name)
        for k in range(2 if n == 0 else 1):
            message, _ = replies.inbound_record(
                channel="email",
                provider_id=f"<w{n}-{k}@x>",
                sender=f"w{n}@example.com",
                body="Ya pagué",
                token_client_id=writer.pk,
            )
        if name == "Leída":
            replies.reply_mark_read(by=gestora, message=message)
        if name == "Contestada":
            ledger.interaction_log(by=gestora, client=writer, kind="call", outcome="reached", summary="Hablamos")
    replies.inbound_record(channel="sms", provider_id="sms-1", sender="+525500000000", body="¿Quién es?")
    # Quiet balances at risk (nothing due): in the queue by their amount at risk alone…
    big = make_client(by=gerente, collector=gestora, legal_name="Quieto Grande")
    make_invoice(by=gerente, client=big, amount="50000.00", due_date=_days_ago(100))
    mixed_money = make_client(by=gerente, collector=gestor, legal_name="Quieto Dólares")
    make_invoice(by=gerente, client=mixed_money, amount="3000.00", currency="USD", due_date=_days_ago(95))
    make_invoice(by=gerente, client=mixed_money, amount="1000.00", due_date=_days_ago(10))
    own = make_client(by=gerente, collector=None, legal_name="Política Propia")
    strict = Policy.objects.create(name="Solo saldos grandes", tolerance=Decimal("10000.00"))
    ClientDunning.objects.create(client=own, policy=strict)
    make_invoice(by=gerente, client=own, amount="5000.00", due_date=_days_ago(50))  # under its tolerance
    make_invoice(by=gerente, client=own, amount="20000.00", due_date=_days_ago(35))
    # …and those that stay out: under the tolerance, disputed, on hold, promised, paused, with
    # an agency.
    tiny = make_client(by=gerente, collector=gestor, legal_name="Bajo Tolerancia")
    make_invoice(by=gerente, client=tiny, amount="5.00", due_date=_days_ago(60))
    disputed = make_client(by=gerente, collector=gestora, legal_name="En Disputa")
    invoice = make_invoice(by=gerente, client=disputed, amount="7000.00", due_date=_days_ago(45))
    ledger.invoice_set_status(by=gerente, invoice=invoice, status="disputed", reason="Precio")
    held = make_client(by=gerente, collector=gestora, legal_name="Retenida")
    invoice = make_invoice(by=gerente, client=held, amount="7000.00", due_date=_days_ago(45))
    InvoiceHold.objects.create(invoice=invoice, reason="Revisión")
    promised = make_client(by=gerente, collector=gestora, legal_name="Prometida")
    invoice = make_invoice(by=gerente, client=promised, amount="7000.00", due_date=_days_ago(45))
    _commitment(promised, total="7000.00", dates=((TODAY + dt.timedelta(days=10), None),)).invoices.add(invoice)
    paused = make_client(by=gerente, collector=gestor, legal_name="Pausada")
    make_invoice(by=gerente, client=paused, amount="7000.00", due_date=_days_ago(45))
    ClientDunning.objects.create(client=paused, paused_until=TODAY + dt.timedelta(days=10), pause_reason="Negocia")
    agency = make_client(by=gerente, collector=None, legal_name="Con Agencia")
    make_invoice(by=gerente, client=agency, amount="7000.00", due_date=_days_ago(45))
    type(agency).objects.filter(pk=agency.pk).update(status="agency")


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
    reference = _reference(user=user, scope=scope, today=today)
    expected = _facts(reference)
    assert expected, "the fixture must give every scope a queue"
    names = {row.legal_name for row in reference}
    out = {"Bajo Tolerancia", "En Disputa", "Retenida", "Prometida", "Pausada", "Con Agencia"}
    assert not names & out
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
    # 2,500 × 5 % → 20 points leads; the other three score 18 + 15 + 5: 20 days before 5 days;
    # same day and amount, by name.
    ties = [n for n in names if n.startswith("Tie")]
    assert ties == ["Tie C", "Tie A", "Tie B", "Tie Newer"]
    his = [c.legal_name for c in wl.worklist(user=gestor, scope=wl.Scope.of_collector(gestor))]
    assert his.index("Nada Vencido A") + 1 == his.index("Nada Vencido Z")


def test_rows_come_with_segment_and_collector_loaded_in_one_query(mixed, gerente):
    with CaptureQueriesContext(connection) as ctx:
        clients = list(wl.worklist(user=gerente, scope=wl.Scope()))
        labels = [(c.segment.name, c.collector.username if c.collector else None) for c in clients]
    # One for the rows, three for the call windows of the scope's countries and time zones.
    assert len(ctx.captured_queries) == 4
    assert ("Regular", None) in labels and any(collector == "gestora" for _s, collector in labels)


def test_nobody_without_a_role_gets_an_empty_queue_without_querying_clients(mixed, nobody):
    with CaptureQueriesContext(connection) as ctx:
        queue = wl.worklist(user=nobody, scope=wl.Scope())
        assert list(queue) == [] and queue.count() == 0 and queue[0:25] == []
    assert [q["sql"] for q in ctx.captured_queries if "accounts_client" in q["sql"]] == []  # only the role lookup
