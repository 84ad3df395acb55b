"""The planner: which steps are due, for which invoices, recorded exactly once."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts import services as ledger
from accounts.models import Invoice
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, InvoiceHold, MessageTemplate, Notice, NoticeItem, Policy, PolicyStep
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
DUE = dt.date(2026, 3, 2)  # a Monday


def _template(code, channel="email"):
    tpl, _ = MessageTemplate.objects.get_or_create(code=code, defaults={"name": code, "channel": channel})
    return tpl


@pytest.fixture
def ladder(db):
    """Regular segment: -3 email, +1 email, +7 SMS, +15 call, +30 final email (≥ 1,000), +45 review."""
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba regular", segment=segment("regular"), tolerance=Decimal("5.00"))
    steps = [
        (1, "Recordatorio previo", -3, "email", "pre"),
        (2, "Aviso de vencimiento", 1, "email", "due"),
        (3, "SMS de seguimiento", 7, "sms", "sms"),
        (4, "Llamada", 15, "call", None),
        (5, "Último aviso", 30, "email", "final"),
        (6, "Revisión del gerente", 45, "review", None),
    ]
    for position, name, offset, channel, code in steps:
        PolicyStep.objects.create(
            policy=policy,
            position=position,
            name=name,
            offset_days=offset,
            channel=channel,
            template=_template(code, channel) if code else None,
            min_overdue_amount=Decimal("1000.00") if position == 5 else Decimal("0"),
            requires_approval=position == 6,
        )
    return policy


def _steps_on(day, status=None):
    """The notices planned on ``day`` (superseded ones apart: ``status="superseded"``)."""
    notices = Notice.objects.filter(planned_for=day).select_related("client", "step")
    notices = notices.filter(status=status) if status else notices.exclude(status=Notice.Status.SUPERSEDED)
    return sorted(
        (n.client.legal_name, n.step.position, sorted(n.items.values_list("invoice__number", flat=True)))
        for n in notices
    )


def _send_planned(day):
    """What dispatch does with the day's planned notices, without the network: sent at 10:00."""
    at = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)
    Notice.objects.filter(status__in=Notice.OPEN_STATUSES).update(status=Notice.Status.SENT, sent_at=at)


def test_each_step_goes_out_on_its_day_and_only_once(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="A1", amount="2000.00", due_date=DUE)
    seen = {}
    for offset in range(-10, 60):
        day = DUE + dt.timedelta(days=offset)
        plan(today=day)
        plan(today=day)  # a repeated beat tick plans nothing more
        for _name, position, numbers in _steps_on(day):
            seen.setdefault(position, []).append((offset, numbers))
        if offset < 45:
            _send_planned(day)
    assert seen == {
        1: [(-3, ["A1"])],
        2: [(1, ["A1"])],
        3: [(7, ["A1"])],
        4: [(15, ["A1"])],
        5: [(30, ["A1"])],
        6: [(45, ["A1"])],
    }
    assert Notice.objects.get(step__position=6).status == Notice.Status.AWAITING_APPROVAL
    # On its day every step was the only one due: nothing was superseded.
    assert not Notice.objects.filter(status=Notice.Status.SUPERSEDED).exists()


def test_one_notice_per_client_and_step_lists_all_its_invoices(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    for n in ("A1", "A2", "A3"):
        make_invoice(by=gerente, client=acme, number=n, due_date=DUE)
    plan(today=DUE + dt.timedelta(days=1))
    assert _steps_on(DUE + dt.timedelta(days=1)) == [("Acme", 2, ["A1", "A2", "A3"])]
    assert Notice.objects.count() == 1


def test_a_late_start_sends_only_the_latest_step_not_the_whole_ladder(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="OLD", due_date=DUE)
    plan(today=DUE + dt.timedelta(days=20))
    assert _steps_on(DUE + dt.timedelta(days=20)) == [("Acme", 4, ["OLD"])]
    # The steps passed over are recorded as superseded by the one planned (the pre-due
    # reminder, stale once the invoice was overdue, was never due).
    assert _steps_on(DUE + dt.timedelta(days=20), "superseded") == [("Acme", 2, ["OLD"]), ("Acme", 3, ["OLD"])]
    planned = Notice.objects.get(step__position=4)
    for notice in Notice.objects.filter(status=Notice.Status.SUPERSEDED):
        assert notice.superseded_by == planned
        assert "Llamada" in notice.reason
    # The planner never goes back to skipped steps.
    plan(today=DUE + dt.timedelta(days=21))
    assert Notice.objects.count() == 3


def test_a_pre_due_reminder_is_not_sent_for_an_invoice_already_overdue(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="A1", due_date=DUE)
    PolicyStep.objects.filter(policy=ladder, position__gt=1).update(is_active=False)
    plan(today=DUE + dt.timedelta(days=2))
    assert Notice.objects.count() == 0


def test_paid_disputed_held_and_paused_are_left_out(ladder, gerente, gestora):
    day = DUE + dt.timedelta(days=1)
    paid = make_client(by=gerente, collector=gestora, legal_name="Pagado")
    inv = make_invoice(by=gerente, client=paid, number="P1", amount="100.00", due_date=DUE)
    ledger.payment_record(by=gestora, client=paid, amount=Decimal("100.00"), received_on=DUE)
    disputed = make_client(by=gerente, collector=gestora, legal_name="Disputa")
    inv = make_invoice(by=gerente, client=disputed, number="D1", due_date=DUE)
    ledger.invoice_set_status(by=gerente, invoice=inv, status=Invoice.Status.DISPUTED, reason="Producto dañado")
    held = make_client(by=gerente, collector=gestora, legal_name="Retenida")
    inv = make_invoice(by=gerente, client=held, number="H1", due_date=DUE)
    InvoiceHold.objects.create(invoice=inv, until=day, reason="Revisión interna")
    paused = make_client(by=gerente, collector=gestora, legal_name="Pausado")
    make_invoice(by=gerente, client=paused, number="Z1", due_date=DUE)
    ClientDunning.objects.create(client=paused, paused_until=day, pause_reason="Negociación en curso")
    tiny = make_client(by=gerente, collector=gestora, legal_name="Centavos")
    make_invoice(by=gerente, client=tiny, number="T1", amount="3.00", due_date=DUE)
    normal = make_client(by=gerente, collector=gestora, legal_name="Normal")
    make_invoice(by=gerente, client=normal, number="N1", due_date=DUE)

    plan(today=day)
    assert _steps_on(day) == [("Normal", 2, ["N1"])]
    # The day after the hold and pause end, those invoices join the ladder.
    plan(today=day + dt.timedelta(days=1))
    assert [row[0] for row in _steps_on(day + dt.timedelta(days=1))] == ["Pausado", "Retenida"]


def test_a_step_with_a_minimum_waits_until_the_amount_is_reached(ladder, gerente, gestora):
    small = make_client(by=gerente, collector=gestora, legal_name="Pequeño")
    make_invoice(by=gerente, client=small, number="S1", amount="400.00", due_date=DUE)
    make_invoice(by=gerente, client=small, number="S2", amount="400.00", due_date=DUE)
    plan(today=DUE + dt.timedelta(days=30))
    assert _steps_on(DUE + dt.timedelta(days=30)) == []
    big = make_client(by=gerente, collector=gestora, legal_name="Grande")
    make_invoice(by=gerente, client=big, number="B1", amount="600.00", due_date=DUE)
    make_invoice(by=gerente, client=big, number="B2", amount="600.00", due_date=DUE)
    plan(today=DUE + dt.timedelta(days=31))
    assert _steps_on(DUE + dt.timedelta(days=31)) == [("Grande", 5, ["B1", "B2"])]


def test_a_client_policy_overrides_the_segment(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="A1", due_date=DUE)
    own = Policy.objects.create(name="Solo llamada")
    PolicyStep.objects.create(policy=own, position=1, name="Llamar", offset_days=2, channel="call")
    ClientDunning.objects.create(client=acme, policy=own)
    plan(today=DUE + dt.timedelta(days=1))
    assert Notice.objects.count() == 0
    plan(today=DUE + dt.timedelta(days=2))
    assert [(n.step.name, n.channel) for n in Notice.objects.all()] == [("Llamar", "call")]


def test_dry_run_writes_nothing_and_reports_the_same(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="A1", due_date=DUE)
    make_invoice(by=gerente, client=acme, number="A2", due_date=DUE)
    preview = plan(today=DUE + dt.timedelta(days=1), dry_run=True)
    assert (preview.notices, preview.items, preview.by_channel) == (1, 2, {"email": 1})
    assert not Notice.objects.exists() and not NoticeItem.objects.exists()
    real = plan(today=DUE + dt.timedelta(days=1))
    assert (real.notices, real.items) == (1, 2)


@pytest.mark.django_db(transaction=True)
def test_two_planners_at_once_record_each_notice_once(ladder, gerente, gestora):
    for i in range(40):
        client = make_client(by=gerente, collector=gestora)
        make_invoice(by=gerente, client=client, number=f"C{i}", due_date=DUE)
    day = DUE + dt.timedelta(days=1)
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            plan(today=day)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Notice.objects.count() == 40
    assert NoticeItem.objects.count() == 40
