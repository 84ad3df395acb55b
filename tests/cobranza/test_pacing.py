"""Pacing (docs/domain.md#pacing): one ladder step per client per local day at the most, the
firmest when several are due, the others superseded or waiting; escalation spacing; a new or
edited step that does not sweep in the invoices already past it unless an administrator
confirms a catch-up. The 30-day scenario is tests/cobranza/test_scenario_pacing_30_days.py."""

import datetime as dt
import io
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.urls import reverse

from accounts import clock
from accounts import services as ledger
from cobranza.engine import contact_rules, dispatch
from cobranza.engine.planner import plan
from cobranza.ladders import selectors as ladder_selectors
from cobranza.ladders import services as ladder_services
from cobranza.models import LadderBump, MessageTemplate, MessageTemplateText, Notice, NoticeItem, Policy, PolicyStep
from tests.factories import make_client, make_invoice, segment, slot_of

pytestmark = pytest.mark.django_db
MX = ZoneInfo("America/Mexico_City")
MADRID = ZoneInfo("Europe/Madrid")
D = dt.date(2026, 3, 10)  # a Tuesday


def at(day: dt.date, hour: int = 10, minute: int = 0, tz=MX) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def _template(code, channel):
    tpl, created = MessageTemplate.objects.get_or_create(code=code, defaults={"name": code, "channel": channel})
    if created:
        MessageTemplateText.objects.create(
            template=tpl,
            language="es",
            subject="Saldo de {{ cliente }}",
            body="{{ cliente }}: {% for f in facturas %}{{ f.numero }} {% endfor %}Responda BAJA para no recibir más.",
        )
    return tpl


@pytest.fixture
def ladder(db):
    """Regular segment: -3 email, +1 email, +7 SMS, +15 call, +20 letter, +22 legal."""
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Ritmo", segment=segment("regular"), tolerance=Decimal("5.00"))
    for position, name, offset, channel in [
        (1, "Recordatorio previo", -3, "email"),
        (2, "Aviso de vencimiento", 1, "email"),
        (3, "SMS de seguimiento", 7, "sms"),
        (4, "Llamada", 15, "call"),
        (5, "Carta final", 20, "letter"),
        (6, "Vía judicial", 22, "legal"),
    ]:
        PolicyStep.objects.create(
            policy=policy,
            position=position,
            name=name,
            offset_days=offset,
            channel=channel,
            template=_template(f"t-{channel}", channel) if channel in ("email", "sms", "letter") else None,
        )
    return policy


def _step(policy, position) -> PolicyStep:
    return PolicyStep.objects.get(policy=policy, position=position)


def _planned(day, client=None):
    """(client, step position, invoices) of the notices planned on ``day`` that go out."""
    notices = Notice.objects.filter(planned_for=day).exclude(status="superseded").select_related("client", "step")
    if client is not None:
        notices = notices.filter(client=client)
    return sorted(
        (n.client.legal_name, n.step.position, sorted(n.items.values_list("invoice__number", flat=True)))
        for n in notices
    )


def _superseded(day):
    return sorted(
        (n.client.legal_name, n.step.position, sorted(n.items.values_list("invoice__number", flat=True)))
        for n in Notice.objects.filter(planned_for=day, status="superseded").select_related("client", "step")
    )


def _send(day, hour=10, tz=MX):
    """What dispatch does with the open notices, without the network."""
    Notice.objects.filter(status__in=Notice.OPEN_STATUSES).update(status="sent", sent_at=at(day, hour, tz=tz))


def _sent_notice(client, step, invoice, when):
    """A notice that went out at ``when`` listing ``invoice`` at ``step``."""
    notice = Notice.objects.create(
        client=client,
        step=step,
        channel=step.channel,
        planned_for=when.astimezone(MX).date(),
        scheduled_at=when,
        status="sent",
        sent_at=when,
    )
    NoticeItem.objects.create(
        notice=notice, invoice=invoice, step=step, open_balance=invoice.open_balance, days_overdue=0
    )
    return notice


# --- one step per client and day, the firmest ---------------------------------------------


def test_when_several_steps_are_due_the_firmest_goes_and_the_other_invoices_wait(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="OLD", amount="2000.00", due_date=D - dt.timedelta(days=7))
    make_invoice(by=gerente, client=acme, number="NEW", amount="900.00", due_date=D - dt.timedelta(days=1))

    result = plan(today=D, now=at(D))
    # OLD is at +7 (SMS), NEW at +1 (email): one message today, the firmer.
    assert _planned(D) == [("Acme", 3, ["OLD"])]
    assert (result.notices, result.items, result.waiting, result.held_clients) == (1, 1, 1, 0)
    # OLD passed over +1: recorded as superseded by the SMS, never to be sent.
    assert _superseded(D) == [("Acme", 2, ["OLD"])]
    (superseded,) = Notice.objects.filter(status="superseded")
    assert superseded.superseded_by == Notice.objects.get(step__position=3)
    assert superseded.reason == "Reemplazado por un paso más firme planeado el mismo día: «SMS de seguimiento»."
    assert (result.superseded, result.superseded_items) == (1, 1)

    # Nothing more the same day, even on the next hourly run.
    assert plan(today=D, now=at(D, 11)).notices == 0
    _send(D)
    # The next day NEW gets its own reminder; OLD's +1 is never sent.
    plan(today=D + dt.timedelta(days=1), now=at(D + dt.timedelta(days=1)))
    assert _planned(D + dt.timedelta(days=1)) == [("Acme", 2, ["NEW"])]
    assert NoticeItem.objects.filter(invoice__number="OLD", step__position=2).count() == 1


def test_an_older_notice_still_waiting_is_superseded_when_a_firmer_one_lists_its_invoices(
    ladder, gerente, gestora, smtp, outbox
):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    ledger.contact_create(by=gerente, client=acme, name="Pagos", email="pagos@acme.example", phone="+52 55 5555 0100")
    make_invoice(by=gerente, client=acme, number="A1", due_date=D - dt.timedelta(days=1))
    make_invoice(by=gerente, client=acme, number="A2", due_date=D - dt.timedelta(days=1))
    plan(today=D, now=at(D))
    # The hourly runs of the same day add nothing for that client.
    assert plan(today=D, now=at(D, 11)).notices == 0
    (older,) = Notice.objects.filter(client=acme)
    # Deferred (say, a week of caps) while A1 falls under a broken promise's bump: +7 is due now.
    bump_day = D + dt.timedelta(days=3)
    LadderBump.objects.create(
        invoice=older.items.get(invoice__number="A1").invoice, step=_step(ladder, 3), since=bump_day
    )
    plan(today=bump_day, now=at(bump_day))
    firmer = Notice.objects.get(client=acme, step__position=3)
    assert sorted(firmer.items.values_list("invoice__number", flat=True)) == ["A1"]
    # Dispatch sends the firmer one; the older goes out for A2 only, the next day.
    # (at 21:00, after the client's slot whichever it is: docs/domain.md#spread)
    with clock.running_at(at(bump_day, 21)):
        assert dispatch.dispatch(firmer.pk, now=at(bump_day, 21)).outcome == "sent"
        result = dispatch.dispatch(older.pk, now=at(bump_day, 21))
    assert result.outcome == "deferred" and "Un aviso por día como máximo" in result.reason
    next_slot = slot_of(acme, bump_day + dt.timedelta(days=1))  # the client's slot, not the window's opening
    assert Notice.objects.get(pk=older.pk).scheduled_at == next_slot
    with clock.running_at(next_slot):
        assert dispatch.dispatch(older.pk, now=next_slot).outcome == "sent"
    older.refresh_from_db()
    assert older.status == "sent" and "A2" in older.body and "A1" not in older.body
    assert len(smtp.messages) == 1
    # Had A2 moved on too, the older notice would not go at all.
    make_invoice(by=gerente, client=acme, number="B1", due_date=D - dt.timedelta(days=1))
    day2 = D + dt.timedelta(days=5)
    plan(today=day2, now=at(day2))
    waiting = Notice.objects.get(client=acme, planned_for=day2)
    LadderBump.objects.create(
        invoice=waiting.items.get().invoice, step=_step(ladder, 3), since=day2 + dt.timedelta(days=1)
    )
    plan(today=day2 + dt.timedelta(days=1), now=at(day2 + dt.timedelta(days=1)))
    with clock.running_at(at(day2 + dt.timedelta(days=2))):
        result = dispatch.dispatch(waiting.pk, now=at(day2 + dt.timedelta(days=2)))
    waiting.refresh_from_db()
    assert result.outcome == "superseded" and waiting.status == "superseded"
    assert waiting.superseded_by.step.position == 3 and "SMS de seguimiento" in waiting.reason


def test_the_spacing_counts_the_clients_local_day(ladder, gerente, gestora):
    # Sent at 23:30 in Mexico City on D-1: 06:30 on D in Madrid.
    late = at(D - dt.timedelta(days=1), 23, 30)
    clients = {}
    for name, tz in (("Madrid", "Europe/Madrid"), ("México", "America/Mexico_City")):
        client = make_client(by=gerente, collector=gestora, legal_name=name, time_zone=tz, country="ES")
        first = make_invoice(by=gerente, client=client, number=f"{name}-1", due_date=D + dt.timedelta(days=3))
        _sent_notice(client, _step(ladder, 1), first, late)
        make_invoice(by=gerente, client=client, number=f"{name}-2", due_date=D - dt.timedelta(days=1))
        clients[name] = client
    plan(today=D, now=at(D))
    # Mexico City's day D is a new day; in Madrid the last message came on D already.
    assert _planned(D) == [("México", 2, ["México-2"])]
    plan(today=D + dt.timedelta(days=1), now=at(D + dt.timedelta(days=1)))
    assert _planned(D + dt.timedelta(days=1)) == [("Madrid", 2, ["Madrid-2"])]


def test_a_policy_may_ask_for_more_days_between_contacts(ladder, gerente, gestora):
    Policy.objects.filter(pk=ladder.pk).update(min_days_between_contacts=3)
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    first = make_invoice(by=gerente, client=acme, number="A1", due_date=D + dt.timedelta(days=3))
    _sent_notice(acme, _step(ladder, 1), first, at(D))
    make_invoice(by=gerente, client=acme, number="A2", due_date=D)
    days = {}
    for n in range(1, 5):
        day = D + dt.timedelta(days=n)
        days[n] = plan(today=day, now=at(day)).notices
        _send(day)
    assert days == {1: 0, 2: 0, 3: 1, 4: 0}
    assert _planned(D + dt.timedelta(days=3)) == [("Acme", 2, ["A2"])]


# --- escalation spacing ---------------------------------------------------------------------


def test_escalation_steps_keep_their_spacing_and_a_gentler_step_may_go_meanwhile(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    due = D - dt.timedelta(days=22)
    old = make_invoice(by=gerente, client=acme, number="OLD", amount="9000.00", due_date=due)
    _sent_notice(acme, _step(ladder, 5), old, at(due + dt.timedelta(days=20)))  # the final letter
    make_invoice(by=gerente, client=acme, number="NEW", due_date=D - dt.timedelta(days=1))

    # +22: the legal hand-off is due, two days after the letter: it waits 7; NEW's reminder goes.
    plan(today=D, now=at(D))
    assert _planned(D) == [("Acme", 2, ["NEW"])]
    _send(D)
    for n in range(1, 5):
        day = D + dt.timedelta(days=n)
        plan(today=day, now=at(day))
        assert _planned(day) == [], day
    day = due + dt.timedelta(days=27)  # seven days after the letter
    plan(today=day, now=at(day))
    assert _planned(day) == [("Acme", 6, ["OLD"])]


def test_dispatch_rechecks_the_spacing_whoever_planned_the_notice(ladder, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme", time_zone="Europe/Madrid")
    invoice = make_invoice(by=gerente, client=acme, number="A1", due_date=D - dt.timedelta(days=22))
    letter = _sent_notice(acme, _step(ladder, 5), invoice, at(D - dt.timedelta(days=2), 9))
    # A legal hand-off planned (or approved, or retried) anyway.
    legal = Notice.objects.create(
        client=acme, step=_step(ladder, 6), channel="legal", planned_for=D, scheduled_at=at(D), status="planned"
    )
    pacing = contact_rules.pacing_for(legal)
    # Seven local days in Madrid after the letter's local day.
    assert pacing.frees_at == at(D + dt.timedelta(days=5), 0, tz=MADRID)
    assert "Mínimo de 7 días entre escalamientos" in pacing.reason and "2026-03-08" in pacing.reason
    decision = contact_rules.decide(client=acme, channel="legal", at=at(D), pacing=pacing)
    assert not decision.allowed and decision.send_at == pacing.frees_at
    assert decision.reason == pacing.reason
    # Any other step: the floor of one a day only.
    call = Notice(client=acme, step=_step(ladder, 4), channel="call", pk=letter.pk + 100)
    assert contact_rules.pacing_for(call).frees_at == at(D - dt.timedelta(days=1), 0, tz=MADRID)
    assert contact_rules.decide(client=acme, channel="call", at=at(D), pacing=contact_rules.pacing_for(call)).allowed


def test_a_midnight_in_a_daylight_saving_gap_opens_the_day_at_its_first_real_instant():
    # America/Santiago jumps from 00:00 to 01:00 on 2026-09-06.
    tz = ZoneInfo("America/Santiago")
    last = dt.datetime(2026, 9, 5, 15, 0, tzinfo=tz)
    frees = contact_rules.spacing_frees_at(last, 1, tz)
    assert frees.astimezone(tz).date() == dt.date(2026, 9, 6)
    assert frees - dt.timedelta(seconds=1) < frees
    assert (frees - dt.timedelta(seconds=1)).astimezone(tz).date() == dt.date(2026, 9, 5)


# --- a new or edited step -------------------------------------------------------------------


@pytest.fixture
def one_step_ladder(db):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Corta", segment=segment("regular"), tolerance=Decimal("5.00"))
    PolicyStep.objects.create(policy=policy, position=1, name="Llamada", offset_days=1, channel="call")
    return policy


def _catch_up_portfolio(policy, gerente, gestora):
    """Two clients whose +1 call went out; at D one is 12 days late, the other 10."""
    day = D - dt.timedelta(days=9)
    for name, due in (("Vieja", D - dt.timedelta(days=12)), ("Justa", D - dt.timedelta(days=10))):
        client = make_client(by=gerente, collector=gestora, legal_name=name)
        make_invoice(by=gerente, client=client, number=name, due_date=due)
    plan(today=day, now=at(day))
    _send(day)
    with clock.running_at(at(D, 8)):
        return ladder_services.step_create(
            by=gerente, policy=policy, name="Aviso firme", offset_days=10, channel="call"
        )


def test_a_new_step_does_not_sweep_in_invoices_already_past_it(one_step_ladder, gerente, gestora):
    step = _catch_up_portfolio(one_step_ladder, gerente, gestora)
    assert step.applies_from == D
    plan(today=D, now=at(D))
    # Justa reaches +10 today; Vieja passed it two days ago: not swept in.
    assert _planned(D) == [("Justa", 2, ["Justa"])]
    plan(today=D + dt.timedelta(days=1), now=at(D + dt.timedelta(days=1)))
    assert _planned(D + dt.timedelta(days=1)) == []


def test_an_administrator_confirms_a_catch_up_stating_what_it_creates(one_step_ladder, gerente, gestora, admin_user):
    step = _catch_up_portfolio(one_step_ladder, gerente, gestora)
    with clock.running_at(at(D, 9)):
        preview = ladder_selectors.catch_up_preview(step)
        assert (preview.notices, preview.clients, preview.invoices, preview.superseded) == (1, 1, 1, 0)
        assert (preview.total_without, preview.total_with) == (1, 2)
        assert not Notice.objects.filter(planned_for=D).exists()  # a simulation
        with pytest.raises(PermissionDenied):
            ladder_services.step_catch_up_confirm(by=gerente, step=step, expected=preview)
        wrong = ladder_selectors.CatchUp(D, notices=5, invoices=5, superseded=0, total_without=0, total_with=0)
        with pytest.raises(ValidationError, match="ahora serían 1 avisos"):
            ladder_services.step_catch_up_confirm(by=admin_user, step=step, expected=wrong)
        confirmed = ladder_services.step_catch_up_confirm(by=admin_user, step=step, expected=preview)
    assert confirmed.applies_from is None
    assert confirmed.catch_up_confirmed_by == admin_user and confirmed.catch_up_confirmed_at == at(D, 9)
    plan(today=D, now=at(D))
    assert _planned(D) == [("Justa", 2, ["Justa"]), ("Vieja", 2, ["Vieja"])]


def test_moving_a_step_to_other_days_or_reactivating_it_limits_it_again(ladder, gerente):
    step = _step(ladder, 3)
    assert step.applies_from is None
    with clock.running_at(at(D)):
        moved = ladder_services.step_update(by=gerente, step=step, offset_days=8)
    assert moved.applies_from == D
    PolicyStep.objects.filter(pk=step.pk).update(applies_from=None, is_active=False)
    with clock.running_at(at(D + dt.timedelta(days=1))):
        again = ladder_services.step_update(by=gerente, step=moved, is_active=True)
        renamed = ladder_services.step_update(by=gerente, step=_step(ladder, 2), name="Vencida")
    assert again.applies_from == D + dt.timedelta(days=1)
    assert renamed.applies_from is None  # a new name changes nobody's days


def test_the_catch_up_page_is_for_administrators_and_states_figures(
    client, one_step_ladder, gerente, gestora, admin_user
):
    today = clock.localdate()
    for name, late in (("Vieja", 12), ("Justa", 10)):
        debtor = make_client(by=gerente, collector=gestora, legal_name=name)
        make_invoice(by=gerente, client=debtor, number=name, due_date=today - dt.timedelta(days=late))
    Notice.objects.all().delete()
    plan(today=today - dt.timedelta(days=9))
    _send(today - dt.timedelta(days=9))
    step = ladder_services.step_create(
        by=gerente, policy=one_step_ladder, name="Aviso firme", offset_days=10, channel="call"
    )
    url = reverse("cobranza:step_catch_up", args=[step.pk])

    client.force_login(gerente)
    assert client.get(url).status_code == 403
    assert client.post(url, {"notices": 1, "invoices": 1, "superseded": 0}).status_code == 403
    html = client.get(reverse("cobranza:policy_edit", args=[one_step_ladder.pk])).content.decode()
    assert "step-applies-from" in html and url not in html  # managers see the limit, not the link

    client.force_login(admin_user)
    html = client.get(reverse("cobranza:policy_edit", args=[one_step_ladder.pk])).content.decode()
    assert url in html
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-notices="1" data-invoices="1"' in html
    assert "creará <strong>1 aviso</strong> más de este paso" in html
    # Figures that are not today's are refused, with the new ones.
    response = client.post(url, {"notices": 3, "invoices": 3, "superseded": 0}, follow=True)
    assert any("ahora serían 1 avisos" in m for m in map(str, get_messages(response.wsgi_request)))
    step.refresh_from_db()
    assert step.applies_from is not None
    assert client.post(url, {"notices": "x"}).status_code == 200  # a bad form: a message, no 500
    response = client.post(url, {"notices": 1, "invoices": 1, "superseded": 0})
    assert response.status_code == 302
    step.refresh_from_db()
    assert step.applies_from is None and step.catch_up_confirmed_by == admin_user
    assert "Puesta al día confirmada por" in client.get(url).content.decode()


def test_the_policy_form_sets_the_spacing_with_field_errors(client, ladder, gerente):
    client.force_login(gerente)
    url = reverse("cobranza:policy_edit", args=[ladder.pk])
    data = {"name": ladder.name, "segment": ladder.segment_id, "tolerance": "5.00", "is_active": "on"}
    response = client.post(url, {**data, "min_days_between_contacts": "0", "min_days_between_escalations": "7"})
    assert response.status_code == 200 and "min_days_between_contacts" in response.context["form"].errors
    response = client.post(url, {**data, "min_days_between_contacts": "2", "min_days_between_escalations": "10"})
    assert response.status_code == 302
    ladder.refresh_from_db()
    assert (ladder.min_days_between_contacts, ladder.min_days_between_escalations) == (2, 10)
    with pytest.raises(ValidationError) as exc:
        ladder_services.policy_update(by=gerente, policy=ladder, min_days_between_escalations=0)
    assert "min_days_between_escalations" in exc.value.message_dict


# --- what goes out tomorrow and the dry run --------------------------------------------------


def test_the_dry_run_and_the_outbox_show_the_superseded_and_the_waiting(client, ladder, gerente, gestora):
    today = clock.localdate()
    tomorrow = today + dt.timedelta(days=1)
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme")
    make_invoice(by=gerente, client=acme, number="OLD", amount="2000.00", due_date=tomorrow - dt.timedelta(days=7))
    make_invoice(by=gerente, client=acme, number="NEW", amount="900.00", due_date=tomorrow - dt.timedelta(days=1))
    out = io.StringIO()
    call_command("run_dunning", "--today", tomorrow.isoformat(), "--dry-run", "--json", stdout=out)
    planned = json.loads(out.getvalue())["planned"]
    assert (planned["notices_planned"], planned["superseded"], planned["superseded_invoices"], planned["waiting"]) == (
        1,
        1,
        1,
        1,
    )
    text = io.StringIO()
    call_command("run_dunning", "--today", tomorrow.isoformat(), "--dry-run", stdout=text)
    assert "Pasos reemplazados por uno más firme: 1 (1 facturas; no se enviarán)" in text.getvalue()
    assert not Notice.objects.exists()

    client.force_login(gerente)
    response = client.get(reverse("cobranza:outbox"), {"day": tomorrow.isoformat()})
    outbox = response.context["outbox"]
    assert [(r["step"].position, r["status"]) for r in outbox.new_rows] == [(3, "planned")]
    assert [(r["step"].position, r["status"]) for r in outbox.superseded_rows] == [(2, "superseded")]
    assert response.context["plan"].as_dict() == {**planned, "dry_run": True}
    html = response.content.decode()
    assert 'data-superseded="1" data-held-clients="0" data-waiting="1"' in html
    assert "Reemplazado (simulado): no sale" in html
