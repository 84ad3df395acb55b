"""Escalation when the ladder ends unpaid: once per client, set-based, dry-run writes nothing."""

import datetime as dt

import pytest

from accounts.models import Client, Interaction
from cobranza.engine import escalation
from cobranza.models import CollectorTask, Notice, NoticeItem, PolicyStep, TaskKind
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db

DUE = dt.date(2026, 3, 2)


@pytest.fixture
def ladder_ran(gerente, gestora):
    """A regular client whose invoice was listed on the ladder's first notice."""
    client = make_client(by=gerente, collector=gestora, segment_code="regular")
    invoice = make_invoice(by=gerente, client=client, due_date=DUE, amount="5000.00")
    step = PolicyStep.objects.filter(policy__segment=segment("regular")).order_by("position").first()
    notice = Notice.objects.create(
        client=client,
        step=step,
        channel=step.channel,
        planned_for=DUE,
        scheduled_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )
    NoticeItem.objects.create(
        notice=notice, invoice=invoice, step=step, open_balance=invoice.open_balance, days_overdue=0
    )
    last = PolicyStep.objects.filter(policy=step.policy, is_active=True).order_by("-offset_days").first()
    return client, invoice, DUE + dt.timedelta(days=last.offset_days + escalation.grace_days())


def test_escalates_on_the_day_the_grace_ends_and_only_once(ladder_ran, gestora):
    client, _invoice, day = ladder_ran
    assert escalation.escalate(today=day - dt.timedelta(days=1)) == []
    assert escalation.escalate(today=day, dry_run=True) == [client.pk]
    assert Client.objects.get(pk=client.pk).status == "active"  # dry run wrote nothing

    assert escalation.escalate(today=day) == [client.pk]
    assert escalation.escalate(today=day) == []  # the status changed: a second run finds nobody
    assert escalation.escalate(today=day + dt.timedelta(days=3)) == []
    client.refresh_from_db()
    assert client.status == "in_collection"
    tasks = CollectorTask.objects.filter(client=client, kind=TaskKind.ESCALATION)
    assert sorted(t.assigned_to_id or 0 for t in tasks) == [0, gestora.pk]
    assert Interaction.objects.filter(client=client, summary__startswith="Escalamiento").count() == 1


def test_paid_held_or_never_dunned_invoices_do_not_escalate(ladder_ran, gerente, gestora):
    from accounts import services as ledger
    from cobranza.ops import services

    client, invoice, day = ladder_ran
    services.invoice_hold(by=gestora, invoice=invoice, until=None, reason="Aclaración")
    assert escalation.escalate(today=day) == []
    services.invoice_release(by=gestora, invoice=invoice)
    ledger.payment_record(by=gestora, client=client, amount=invoice.open_balance, received_on=DUE)
    assert escalation.escalate(today=day) == []
    # An overdue invoice the ladder never acted on (imported today, say) is the planner's job first.
    other = make_client(by=gerente, collector=gestora, segment_code="regular")
    make_invoice(by=gerente, client=other, due_date=DUE, amount="900.00")
    assert escalation.escalate(today=day) == []
