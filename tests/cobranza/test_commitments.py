"""Promises to pay, payment plans, extensions and disputes: reminders pause and resume."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import services as ledger
from accounts.models import Interaction, Invoice, Payment
from cobranza.engine import dispatch, escalation
from cobranza.engine.planner import plan
from cobranza.models import (
    ClientProfile,
    CollectorTask,
    Commitment,
    Installment,
    LadderBump,
    Notice,
    Policy,
    PolicyStep,
    TaskKind,
)
from cobranza.workspace import jobs as commitments
from cobranza.workspace import services as workspace_services
from tests.factories import make_client, make_invoice, slot_of

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday; regular ladder: -3 email, +1 email, +7 SMS, +15 call, +30, +45, +60


def day(n: int) -> dt.date:
    return DUE + dt.timedelta(days=n)


def at(d: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hour), tzinfo=MX)


@pytest.fixture
def clock():
    with time_machine.travel(at(DUE), tick=False) as traveller:
        yield lambda d, hour=10: traveller.move_to(at(d, hour))


@pytest.fixture
def debtor(clock, gerente, gestora):
    client = make_client(by=gerente, collector=gestora, segment_code="regular")
    ledger.contact_create(by=gerente, client=client, name="Ana Pagos", email="ana@cliente.example", phone="+525555")
    a = make_invoice(by=gerente, client=client, number="P-1", due_date=DUE, issue_date=day(-30), amount="6000.00")
    b = make_invoice(by=gerente, client=client, number="P-2", due_date=DUE, issue_date=day(-30), amount="4000.00")
    return client, a, b


def _planned_steps(client, d):
    return sorted(
        (n.step.offset_days, sorted(i.invoice.number for i in n.items.all()))
        for n in Notice.objects.filter(client=client, planned_for=d).prefetch_related("items__invoice")
    )


def test_a_promise_pauses_the_ladder_and_a_kept_one_resumes_nothing(debtor, clock, gestora):
    client, a, b = debtor
    clock(day(1))
    plan(today=day(1))
    assert _planned_steps(client, day(1)) == [(1, ["P-1", "P-2"])]
    promise = workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(5), Decimal("10000.00"))]
    )
    # The +1 notice planned this morning no longer goes out: the invoices are promised.
    notice = Notice.objects.get(client=client, planned_for=day(1))
    # at the moment it is due: the client's slot, or the planning moment once the slot has passed
    assert dispatch.dispatch(notice.pk, now=notice.scheduled_at).outcome == "skipped"
    clock(day(7))
    plan(today=day(7))  # the +7 SMS day: nothing for promised invoices
    assert _planned_steps(client, day(7)) == []

    clock(day(5), 12)
    ledger.payment_record(by=gestora, client=client, amount=Decimal("10000.00"), received_on=day(5))
    clock(day(6))
    assert commitments.judge(today=day(6))["paid_off"] == 1
    promise.refresh_from_db()
    assert promise.status == "kept" and promise.paid_amount == Decimal("10000.00")
    assert Interaction.objects.filter(client=client, summary__startswith="Promesa de pago cumplida").count() == 1
    assert not CollectorTask.objects.filter(kind=TaskKind.BROKEN_PROMISE).exists()


def test_a_broken_promise_resumes_the_ladder_one_step_firmer_with_a_task(debtor, clock, gestora):
    client, a, b = debtor
    clock(day(1))
    plan(today=day(1))  # +1 email planned (step 2)
    promise = workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(3), Decimal("10000.00"))]
    )
    clock(day(4))
    assert commitments.judge(today=day(3)) == {"paid_off": 0, "kept": 0, "partial": 0, "missed": 0, "broken": 0}
    result = commitments.judge(today=day(4))
    assert result["missed"] == 1 and result["broken"] == 1
    promise.refresh_from_db()
    assert promise.status == "broken" and promise.resolved_on == day(4)
    assert commitments.judge(today=day(4))["missed"] == 0  # judged once

    # The next step (+7 SMS) is due today, on day 4, not on day 7.
    sms = PolicyStep.objects.get(policy__segment__code="regular", offset_days=7)
    assert set(LadderBump.objects.values_list("invoice__number", "step")) == {("P-1", sms.pk), ("P-2", sms.pk)}
    plan(today=day(4))
    assert _planned_steps(client, day(4)) == [(7, ["P-1", "P-2"])]
    task = CollectorTask.objects.get(kind=TaskKind.BROKEN_PROMISE)
    assert task.client == client and task.assigned_to == gestora and task.due_on == day(4)
    assert "un paso más firme" in task.title


def test_a_partly_kept_promise_is_partial_and_also_resumes(debtor, clock, gestora):
    client, a, b = debtor
    promise = workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(3), Decimal("10000.00"))]
    )
    clock(day(2))
    ledger.payment_record(by=gestora, client=client, amount=Decimal("6000.00"), received_on=day(2))
    clock(day(4))
    commitments.judge(today=day(4))
    promise.refresh_from_db()
    inst = promise.installments.get()
    assert promise.status == "partial" and inst.status == "partial" and inst.covered == Decimal("6000.00")
    assert LadderBump.objects.filter(invoice=b).exists() and not LadderBump.objects.filter(invoice=a).exists()


def test_a_plan_tolerates_its_allowed_misses_and_counts_catch_up_payments(debtor, clock, gestora):
    client, a, b = debtor
    plan_ = workspace_services.commitment_create(
        by=gestora,
        client=client,
        kind="plan",
        installments=[(day(10), Decimal("4000")), (day(20), Decimal("3000")), (day(30), Decimal("3000"))],
        grace_days=2,
        missed_allowed=1,
    )
    clock(day(9))
    ledger.payment_record(by=gestora, client=client, amount=Decimal("4000.00"), received_on=day(9))
    clock(day(13))
    assert commitments.judge(today=day(12))["kept"] == 0  # still inside the grace days
    assert commitments.judge(today=day(13))["kept"] == 1
    clock(day(23))
    assert commitments.judge(today=day(23))["missed"] == 1  # installment 2 missed: tolerated
    plan_.refresh_from_db()
    assert plan_.status == "open" and plan_.missed_count == 1
    assert CollectorTask.objects.filter(kind=TaskKind.PLAN_MISSED, commitment=plan_).count() == 1
    # Reminders stay paused while the plan is in good standing.
    plan(today=day(23))
    assert _planned_steps(client, day(23)) == []
    # A catch-up payment covers installments 2 and 3 together.
    clock(day(29))
    ledger.payment_record(by=gestora, client=client, amount=Decimal("6000.00"), received_on=day(29))
    clock(day(33))
    commitments.judge(today=day(33))
    plan_.refresh_from_db()
    assert plan_.status == "kept"
    # Installment 2 stays missed in the history; the plan as a whole was kept.
    assert list(plan_.installments.values_list("status", flat=True)) == ["kept", "missed", "kept"]


def test_a_plan_breaks_after_one_miss_too_many(debtor, clock, gestora):
    client, a, b = debtor
    plan_ = workspace_services.commitment_create(
        by=gestora,
        client=client,
        kind="plan",
        installments=[(day(10), Decimal("5000")), (day(20), Decimal("5000"))],
        grace_days=0,
        missed_allowed=0,
    )
    clock(day(11))
    commitments.judge(today=day(11))
    plan_.refresh_from_db()
    assert plan_.status == "broken"
    assert plan_.installments.get(number=2).status == "pending"  # never judged: the plan ended
    assert CollectorTask.objects.filter(commitment=plan_, kind=TaskKind.BROKEN_PROMISE).count() == 1


def test_commitments_refuse_bad_input_with_field_errors(debtor, clock, gestora, gestor, gerente):
    client, a, b = debtor
    cases = [
        (dict(installments=[(day(-1), Decimal("100"))]), "installments"),
        (dict(installments=[(day(5), Decimal("0"))]), "installments"),
        (dict(installments=[(day(5), Decimal("10000.01"))]), "installments"),
        (dict(installments=[]), "installments"),
        (dict(installments=[(day(5), Decimal("1")), (day(6), Decimal("1"))], kind="extension"), "installments"),
        (dict(installments=[(day(5), Decimal("1"))], invoices=[]), "invoices"),
    ]
    for extra, field in cases:
        kwargs = {"kind": "promise", **extra}
        with pytest.raises(ValidationError) as err:
            workspace_services.commitment_create(by=gestora, client=client, **kwargs)
        assert field in err.value.message_dict, (extra, err.value.message_dict)
    other = make_client(by=gerente, collector=gestor)
    foreign = make_invoice(by=gerente, client=other, due_date=DUE, amount="10")
    with pytest.raises(ValidationError) as err:
        workspace_services.commitment_create(
            by=gestora, client=client, kind="promise", installments=[(day(5), Decimal("5"))], invoices=[a, foreign]
        )
    assert "invoices" in err.value.message_dict
    workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(5), Decimal("5"))]
    )
    with pytest.raises(ValidationError) as err:
        workspace_services.commitment_create(
            by=gestora, client=client, kind="extension", installments=[(day(9), Decimal("5"))]
        )
    assert "Ya hay un compromiso vigente" in str(err.value)
    assert Commitment.objects.count() == 1


def test_cancelling_resumes_the_ladder_without_a_bump(debtor, clock, gestora):
    client, a, b = debtor
    promise = workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(20), Decimal("100"))]
    )
    workspace_services.commitment_cancel(by=gestora, commitment=promise, reason="Se registró por error")
    promise.refresh_from_db()
    assert promise.status == "cancelled" and not LadderBump.objects.exists()
    clock(day(1))
    plan(today=day(1))
    assert _planned_steps(client, day(1)) == [(1, ["P-1", "P-2"])]


def test_escalation_waits_while_a_commitment_is_open(debtor, clock, gestora):
    client, a, b = debtor
    for n in (1, 7, 15, 30, 45, 60):
        clock(day(n))
        plan(today=day(n))
    workspace_services.commitment_create(
        by=gestora, client=client, kind="extension", installments=[(day(90), Decimal("10000"))]
    )
    assert escalation.escalate(today=day(70)) == []


def test_each_installment_is_reminded_once_by_email(debtor, clock, gestora, smtp):
    client, a, b = debtor
    workspace_services.commitment_create(
        by=gestora,
        client=client,
        kind="plan",
        installments=[(day(10), Decimal("5000")), (day(20), Decimal("5000"))],
    )
    clock(day(6))
    assert commitments.remind_installments(now=at(day(6)))["sent"] == 0  # 4 days before: not yet
    clock(day(7), 21)  # after the client's slot, whichever it is (docs/domain.md#spread)
    assert commitments.remind_installments(now=at(day(7), 21))["sent"] == 1
    assert commitments.remind_installments(now=at(day(7), 21) + dt.timedelta(minutes=30))["sent"] == 0
    (msg,) = smtp.messages
    assert msg["To"] == "ana@cliente.example" and "cuota 1 de 2" in msg["Subject"]
    assert "$5,000.00" in msg.get_body(("plain",)).get_content()
    assert Installment.objects.filter(reminded_at__isnull=False).count() == 1
    assert Interaction.objects.filter(client=client, kind="email", summary=msg["Subject"].strip()).count() == 1


def test_a_held_reminder_is_logged_once_with_its_reason_and_sent_when_allowed(debtor, clock, gestora, smtp):
    client, a, b = debtor
    workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(10), Decimal("10"))]
    )
    # 23:00 in Mexico City is outside 07:00–22:00: held until the client's slot the next day
    # (docs/domain.md#spread), said once however often the beat looks (before, 227 such checks
    # in a month left no trace at all).
    for minute in (0, 15, 30, 45):
        late = at(day(7), 23) + dt.timedelta(minutes=minute)
        clock(day(7), 23)
        assert commitments.remind_installments(now=late)["deferred"] == (1 if minute == 0 else 0)
    (entry,) = Interaction.objects.filter(client=client, summary__startswith="Recordatorio de la cuota")
    slot = slot_of(client, day(8))
    assert entry.summary == (
        f"Recordatorio de la cuota del 12/03/2026 aplazado hasta 2026-03-10 {timezone.localtime(slot, MX):%H:%M}: "
        "Fuera del horario permitido (07:00–22:00, America/Mexico_City)"
    )
    assert smtp.messages == []
    assert commitments.remind_installments(now=slot)["sent"] == 1
    assert len(smtp.messages) == 1


def test_a_reminder_without_an_email_address_says_so_on_the_timeline(debtor, clock, gestora):
    client, a, b = debtor
    client.contacts.update(email="")
    workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(10), Decimal("10"))]
    )
    assert commitments.remind_installments(now=at(day(7)))["no_contact"] == 1
    assert commitments.remind_installments(now=at(day(7), 11))["no_contact"] == 0  # looked at again tomorrow
    assert (
        Interaction.objects.filter(
            client=client, summary__contains="el cliente no tiene un correo activo para recibirlo"
        ).count()
        == 1
    )


def test_a_reminder_that_fails_transiently_is_released_for_the_next_run(debtor, clock, gestora, settings):
    client, a, b = debtor
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: connection refused
    workspace_services.commitment_create(
        by=gestora, client=client, kind="promise", installments=[(day(2), Decimal("10"))]
    )
    assert commitments.remind_installments(now=at(DUE, 21))["failed"] == 1  # after every slot
    assert Installment.objects.get().reminded_at is None


# --- disputes ------------------------------------------------------------------------------


def test_a_dispute_pauses_its_invoices_and_a_credit_note_resolves_it(debtor, clock, gestora, gerente):
    client, a, b = debtor
    dispute = workspace_services.dispute_open(
        by=gestora, client=client, invoices=[a], reason="product", description="Llegaron 10 cajas dañadas"
    )
    a.refresh_from_db()
    assert a.status == Invoice.Status.DISPUTED
    task = CollectorTask.objects.get(kind=TaskKind.DISPUTE)
    assert task.assigned_to == gestora and task.dispute == dispute
    clock(day(1))
    plan(today=day(1))
    assert _planned_steps(client, day(1)) == [(1, ["P-2"])]  # P-1 is out of the ladder

    with pytest.raises(ValidationError) as err:
        workspace_services.dispute_resolve(
            by=gestora, dispute=dispute, resolution="credit_note", amount=Decimal("7000"), notes="x"
        )
    assert "supera" in str(err.value)
    a.refresh_from_db()
    assert a.status == Invoice.Status.DISPUTED  # the refused resolution changed nothing
    workspace_services.dispute_resolve(
        by=gestora, dispute=dispute, resolution="credit_note", amount=Decimal("1500"), notes="NC por 10 cajas"
    )
    a.refresh_from_db()
    dispute.refresh_from_db()
    assert dispute.status == "resolved" and dispute.resolution_amount == Decimal("1500")
    assert a.status == Invoice.Status.PARTIALLY_PAID and a.open_balance == Decimal("4500.00")
    credit = Payment.objects.get(client=client)
    assert credit.method == "credit_note" and credit.amount == Decimal("1500.00")
    task.refresh_from_db()
    assert task.status == "done"
    # Back in the ladder: the next day's plan lists P-1 at its current step; its +1, passed
    # over while disputed, is recorded as superseded (docs/domain.md#pacing).
    clock(day(7))
    plan(today=day(7))
    assert _planned_steps(client, day(7)) == [(1, ["P-1"]), (7, ["P-1", "P-2"])]
    assert Notice.objects.get(client=client, planned_for=day(7), step__offset_days=1).status == "superseded"


def test_a_rejected_dispute_returns_the_invoice_in_full(debtor, clock, gestora, gestor):
    client, a, b = debtor
    dispute = workspace_services.dispute_open(
        by=gestora, client=client, invoices=[a, b], reason="price", description="Dice que el precio era otro"
    )
    with pytest.raises(ValidationError):
        workspace_services.dispute_resolve(
            by=gestora, dispute=dispute, resolution="rejected", amount=Decimal("5"), notes="x"
        )
    with pytest.raises(ValidationError) as err:
        workspace_services.dispute_resolve(by=gestora, dispute=dispute, resolution="rejected", notes="")
    assert "notes" in err.value.message_dict
    workspace_services.dispute_resolve(
        by=gestora, dispute=dispute, resolution="rejected", notes="El precio es el de la orden"
    )
    assert set(Invoice.objects.filter(client=client).values_list("status", flat=True)) == {"open"}
    assert not Payment.objects.filter(client=client).exists()


def test_disputes_refuse_bad_input(debtor, clock, gestora):
    client, a, b = debtor
    with pytest.raises(ValidationError) as err:
        workspace_services.dispute_open(by=gestora, client=client, invoices=[], reason="nope", description=" ")
    assert set(err.value.message_dict) == {"invoices", "reason", "description"}


# --- profile ladders -----------------------------------------------------------------------


def test_a_profile_with_its_own_ladder_wins_over_the_segment(debtor, clock, gestora, gerente):
    client, a, b = debtor
    negligent = Policy.objects.create(name="Negligentes", profile="negligent")
    PolicyStep.objects.create(policy=negligent, position=1, name="Llamada inmediata", offset_days=1, channel="call")
    ClientProfile.objects.create(client=client, computed="casual", override="negligent", override_reason="No responde")
    clock(day(1))
    plan(today=day(1))
    (notice,) = Notice.objects.filter(client=client)
    assert notice.step.policy == negligent and notice.channel == "call"
