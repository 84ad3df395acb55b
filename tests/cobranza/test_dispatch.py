"""Dispatch: claim, re-check, send through a real SMTP server, record — at most once."""

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts import services as ledger
from accounts.models import Client, Contact, Interaction
from cobranza.engine import contact_rules, dispatch
from cobranza.engine import jobs as engine
from cobranza.engine.planner import plan
from cobranza.models import (
    CollectorTask,
    Holiday,
    MessageTemplate,
    MessageTemplateText,
    Notice,
    Policy,
    PolicyStep,
)
from cobranza.ops import services
from tests.factories import make_client, make_invoice, segment
from tests.smtp import SMTPServer

pytestmark = pytest.mark.django_db
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday, no holiday
# Inside the window (07:00–22:00) and after every client's slot (the latest is 20:59,
# docs/domain.md#spread): whichever id the debtor gets, its email is due at this moment.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)


def _template(code, channel, body, subject=""):
    tpl = MessageTemplate.objects.create(code=code, name=code, channel=channel)
    MessageTemplateText.objects.create(template=tpl, language="es", subject=subject, body=body)
    return tpl


BODY = (
    "Estimado(a) {{ contacto }}: le recordamos el saldo de {{ cliente }}.\n"
    "{% for f in facturas %}{{ f.numero }} {{ f.saldo|money:f.moneda }} ({{ f.dias_vencida }} días)\n{% endfor %}"
)


@pytest.fixture
def ladder(db):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba envío", segment=segment("regular"))
    email = _template("t-email", "email", BODY, subject="Saldo pendiente de {{ cliente }}")
    sms = _template("t-sms", "sms", "{{ cliente }}: saldo vencido. Responda BAJA para no recibir SMS.")
    letter = _template("t-letter", "letter", BODY, subject="Requerimiento de pago")
    steps = [
        (1, 1, "email", email),
        (2, 5, "sms", sms),
        (3, 10, "call", None),
        (4, 20, "letter", letter),
        (5, 30, "agency", None),
    ]
    for position, offset, channel, tpl in steps:
        PolicyStep.objects.create(
            policy=policy, position=position, name=f"Paso {position}", offset_days=offset, channel=channel, template=tpl
        )
    return policy


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@clavo.example", phone="+5255100")
    make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_date=DUE)
    make_invoice(by=gerente, client=client, number="FC-2", amount="500.00", due_date=DUE)
    return client


def _plan_and_dispatch(day, now):
    plan(today=day, now=now)
    return [dispatch.dispatch(i, now=now) for i in dispatch.due_notice_ids(now=now)]


def test_it_sends_one_email_per_client_listing_all_invoices(ladder, debtor, smtp, outbox):
    results = _plan_and_dispatch(DUE + dt.timedelta(days=1), AT_21)
    assert [r.outcome for r in results] == ["sent"]
    [msg] = smtp.messages
    assert msg["To"] == "rosa@clavo.example"
    assert msg["Subject"] == "Saldo pendiente de Ferretería El Clavo"
    assert msg["Message-ID"].startswith("<notice-") and "20260303" in msg["Message-ID"]
    text = msg.get_body(("plain",)).get_content()
    assert "FC-1 $1,500.00 (1 días)" in text and "FC-2 $500.00" in text
    notice = Notice.objects.get()
    assert (notice.status, notice.recipient, notice.message_id) == ("sent", "rosa@clavo.example", msg["Message-ID"])
    entry = Interaction.objects.get(client=debtor, kind="email")
    assert entry.direction == "outbound" and entry.outcome == "sent"
    assert set(entry.invoices.values_list("number", flat=True)) == {"FC-1", "FC-2"}
    assert "FC-1" in entry.body


def test_dispatching_again_sends_nothing(ladder, debtor, smtp, outbox):
    _plan_and_dispatch(DUE + dt.timedelta(days=1), AT_21)
    notice = Notice.objects.get()
    for _ in range(3):
        assert dispatch.dispatch(notice.pk, now=AT_21 + dt.timedelta(hours=1)).outcome == "not_claimed"
    assert len(smtp.messages) == 1


def test_a_payment_after_planning_stops_the_send(ladder, debtor, smtp, outbox, gestora):
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    ledger.payment_record(by=gestora, client=debtor, amount=Decimal("2000.00"), received_on=DUE)
    [result] = [dispatch.dispatch(i, now=AT_21) for i in dispatch.due_notice_ids(now=AT_21)]
    assert result.outcome == "skipped"
    assert smtp.messages == []
    assert Notice.objects.get().status == "skipped"
    assert Interaction.objects.filter(client=debtor, summary__contains="omitido").exists()


def test_a_partly_paid_notice_lists_only_what_is_still_due(ladder, debtor, smtp, outbox, gestora):
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    inv = debtor.invoices.get(number="FC-2")
    ledger.payment_record(
        by=gestora,
        client=debtor,
        amount=Decimal("500.00"),
        received_on=DUE,
        allocations=[ledger.AllocationRequest(inv.pk, Decimal("500.00"))],
    )
    _ = [dispatch.dispatch(i, now=AT_21) for i in dispatch.due_notice_ids(now=AT_21)]
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "FC-1" in text and "FC-2" not in text


def test_an_opted_out_contact_is_passed_over_and_without_any_a_task_is_created(ladder, debtor, smtp, outbox):
    rosa = debtor.contacts.get()
    ledger.contact_update(by=None, contact=rosa, opt_out_email=True)
    [result] = _plan_and_dispatch(DUE + dt.timedelta(days=1), AT_21)
    assert result.outcome == "skipped"
    task = CollectorTask.objects.get(kind="find_contact")
    assert task.client == debtor and task.assigned_to == debtor.collector
    ledger.contact_create(
        by=None, client=debtor, name="Luis Backup", email="luis@clavo.example", role=Contact.Role.BACKUP
    )
    # The next step goes to the contact that accepts it.
    assert smtp.messages == []


def test_guarantors_never_get_automated_reminders(ladder, gerente, gestora, smtp, outbox):
    client = make_client(by=gerente, collector=gestora)
    ledger.contact_create(by=gerente, client=client, name="Aval", email="aval@x.example", role=Contact.Role.GUARANTOR)
    make_invoice(by=gerente, client=client, due_date=DUE)
    [result] = _plan_and_dispatch(DUE + dt.timedelta(days=1), AT_21)
    assert result.outcome == "skipped" and smtp.messages == []


def test_outside_contact_hours_the_send_is_deferred_not_dropped(ladder, debtor, smtp, outbox):
    late = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(23, 30), tzinfo=MX)
    [result] = _plan_and_dispatch(DUE + dt.timedelta(days=1), late)
    assert result.outcome == "deferred"
    notice = Notice.objects.get()
    assert notice.status == "planned" and notice.deferrals == 1
    # Deferred to the client's slot the next day, not to the window's opening (docs/domain.md#spread).
    window = contact_rules.Window(start=dt.time(7), end=dt.time(22))
    assert notice.scheduled_at == contact_rules.slot_moment(debtor.pk, DUE + dt.timedelta(days=2), MX, window)
    entry = Interaction.objects.get(client=debtor, summary__contains="aplazado")
    assert entry.body == ""  # the summary holds the whole reason: not said twice
    assert dispatch.due_notice_ids(now=late) == []
    morning = notice.scheduled_at
    assert dispatch.dispatch(notice.pk, now=morning).outcome == "sent"
    assert len(smtp.messages) == 1


def test_a_deferral_keeps_its_whole_reason_in_the_timeline(ladder, debtor, smtp, outbox):
    # A long step name and a long holiday name make the timeline summary longer than its 255
    # characters: the entry's detail keeps the whole reason (docs/domain.md#contact-rules).
    PolicyStep.objects.filter(policy=ladder, position=1).update(name="Primer recordatorio " + "x" * 100)
    holiday = "Fiesta patronal de la colonia Santa María de Guadalupe de los Ángeles del Valle y sus barrios"
    Holiday.objects.create(country="MX", date=AT_21.date(), name=holiday)
    [result] = _plan_and_dispatch(AT_21.date(), AT_21)
    assert result.outcome == "deferred"
    entry = Interaction.objects.get(client=debtor, summary__contains="aplazado")
    assert len(entry.summary) == 255
    assert entry.body == result.reason == Notice.objects.get().reason == f"Día festivo: {holiday}"


def test_smtp_down_is_retried_with_backoff_then_sent(ladder, debtor, smtp, outbox, settings):
    port = settings.EMAIL_PORT
    smtp.stop()
    [result] = _plan_and_dispatch(DUE + dt.timedelta(days=1), AT_21)
    assert result.outcome == "retry"
    notice = Notice.objects.get()
    assert notice.status == "planned" and notice.scheduled_at == AT_21 + dt.timedelta(minutes=2)
    assert notice.message_id == ""
    server = SMTPServer(port=port, recorder=smtp.recorder).start()
    smtp.controller = server.controller  # the fixture stops whichever is running
    assert dispatch.dispatch(notice.pk, now=AT_21 + dt.timedelta(minutes=3)).outcome == "sent"
    assert len(server.messages) == 1


def test_a_refused_address_is_a_recorded_permanent_failure(ladder, debtor, smtp, outbox):
    smtp.recorder.refuse_with = "550 5.1.1 No such user"
    [result] = _plan_and_dispatch(DUE + dt.timedelta(days=1), AT_21)
    assert result.outcome == "failed"
    notice = Notice.objects.get()
    assert notice.status == "failed" and "550" in notice.reason
    assert Interaction.objects.filter(client=debtor, outcome="failed").exists()


def test_a_send_interrupted_by_a_dead_worker_is_not_repeated(ladder, debtor, smtp, outbox):
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    notice = Notice.objects.get()
    # A worker claimed it, stored the message and died before recording the result.
    assert dispatch.claim(notice.pk, now=AT_21)
    Notice.objects.filter(pk=notice.pk).update(message_id="<notice-x@y>", body="...", recipient="rosa@clavo.example")
    after_lease = AT_21 + dispatch.lease() + dt.timedelta(seconds=1)
    assert dispatch.due_notice_ids(now=after_lease) == [notice.pk]
    assert dispatch.dispatch(notice.pk, now=after_lease).outcome == "failed"
    assert smtp.messages == []
    assert CollectorTask.objects.filter(kind="review", notice=notice).exists()


def test_a_claim_dies_before_sending_is_taken_over_after_the_lease(ladder, debtor, smtp, outbox):
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    notice = Notice.objects.get()
    assert dispatch.claim(notice.pk, now=AT_21)
    assert dispatch.dispatch(notice.pk, now=AT_21 + dt.timedelta(minutes=1)).outcome == "not_claimed"
    after_lease = AT_21 + dispatch.lease() + dt.timedelta(seconds=1)
    assert dispatch.dispatch(notice.pk, now=after_lease).outcome == "sent"
    assert len(smtp.messages) == 1


def test_sms_goes_through_the_configured_backend(ladder, debtor, smtp, outbox):
    day = DUE + dt.timedelta(days=5)
    results = _plan_and_dispatch(day, dt.datetime.combine(day, dt.time(21), tzinfo=MX))  # after every slot
    assert [r.outcome for r in results] == ["sent"]
    [line] = (outbox / "outbox" / "sms.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["recipient"] == "+5255100" and "BAJA" in record["body"]


def test_call_and_agency_steps_create_tasks_and_hand_off(ladder, debtor, smtp, outbox):
    day = DUE + dt.timedelta(days=10)
    _plan_and_dispatch(day, dt.datetime.combine(day, dt.time(10), tzinfo=MX))
    call = CollectorTask.objects.get(kind="call")
    assert call.assigned_to == debtor.collector and "FC-1" in call.title
    day = DUE + dt.timedelta(days=30)
    _plan_and_dispatch(day, dt.datetime.combine(day, dt.time(10), tzinfo=MX))
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.AGENCY
    assert CollectorTask.objects.filter(kind="agency", client=debtor).exists()


def test_a_letter_is_rendered_to_pdf(ladder, debtor, smtp, outbox):
    day = DUE + dt.timedelta(days=20)
    [result] = _plan_and_dispatch(day, dt.datetime.combine(day, dt.time(10), tzinfo=MX))
    assert result.outcome == "sent"
    notice = Notice.objects.get(channel="letter")
    pdf = outbox / "media" / notice.provider_ref
    assert pdf.read_bytes().startswith(b"%PDF")
    assert Interaction.objects.filter(client=debtor, kind="letter").exists()


def test_a_paused_client_gets_nothing_until_the_pause_ends(ladder, gerente, gestora, smtp, outbox):
    # A pause is set for the future, so this test runs on real dates.
    due = timezone.localdate() + dt.timedelta(days=10)
    client = make_client(by=gerente, collector=gestora)
    ledger.contact_create(by=gerente, client=client, name="Rosa", email="rosa@pausa.example")
    make_invoice(by=gerente, client=client, due_date=due)
    services.client_pause(by=gestora, client=client, until=due + dt.timedelta(days=3), reason="Convenio en revisión")

    def at(day):
        return dt.datetime.combine(day, dt.time(21), tzinfo=MX)  # after every client's slot

    assert _plan_and_dispatch(due + dt.timedelta(days=1), at(due + dt.timedelta(days=1))) == []
    results = _plan_and_dispatch(due + dt.timedelta(days=4), at(due + dt.timedelta(days=4)))
    assert [r.outcome for r in results] == ["sent"]


def test_run_summary_counts_outcomes_with_reasons(ladder, debtor, gerente, gestora, smtp, outbox):
    other = make_client(by=gerente, collector=gestora, legal_name="Sin correo")
    make_invoice(by=gerente, client=other, due_date=DUE)
    summary = engine.run(today=DUE + dt.timedelta(days=1))
    assert summary["planned"]["notices_planned"] == 2
    assert summary["dispatched"]["sent"] == 1 and summary["dispatched"]["skipped"] == 1
    assert summary["reasons"][0]["outcome"] == "skipped"
    again = engine.run(today=DUE + dt.timedelta(days=1))
    assert again["planned"]["notices_planned"] == 0 and again["dispatched"]["sent"] == 0
