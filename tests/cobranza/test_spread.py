"""Sends spread over the allowed window at a stable slot per client (docs/domain.md#spread):
the slot's formula in Python and its SQL twin, where the planner schedules a message, how
dispatch and the rules defer to the slot, and what "Lo que sale" shows."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services as ledger
from accounts.models import Invoice
from cobranza.engine import contact_rules, dispatch
from cobranza.engine import jobs as engine
from cobranza.engine.contact_rules import (
    SPREAD_MARGIN_MINUTES,
    Window,
    decide,
    slot_moment,
    spread_slot,
    spread_slot_sql,
    spread_window,
)
from cobranza.engine.planner import plan
from cobranza.models import ContactRules, MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from tests.factories import make_client, make_invoice, segment, slot_of

MX = ZoneInfo("America/Mexico_City")
MADRID = ZoneInfo("Europe/Madrid")
BOGOTA = ZoneInfo("America/Bogota")
DUE = dt.date(2026, 3, 2)  # a Monday, no holiday in Mexico or Spain
DAY = DUE + dt.timedelta(days=1)
WINDOWS = [
    (dt.time(7), dt.time(22)),  # Mexico
    (dt.time(9), dt.time(21)),  # Spain
    (dt.time(8), dt.time(15)),  # Colombia's Saturday
    (dt.time(8), dt.time(8, 30)),  # a window shorter than the margin
    (dt.time(7, 15, 30), dt.time(19, 45)),  # odd minutes and seconds
]


def _minutes(t: dt.time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


# --- the formula, pure -----------------------------------------------------------------------


def test_a_clients_slot_is_the_same_every_time_and_inside_its_window_before_the_margin():
    for start, end in WINDOWS:
        length = _minutes(end) - _minutes(start)
        last = _minutes(end) - min(SPREAD_MARGIN_MINUTES, length // 2)
        for client_id in [1, 2, 3, 97, 1000, 65_535, 2**31 - 1, 10**12]:
            slot = spread_slot(client_id, start, end)
            assert slot == spread_slot(client_id, start, end)
            assert start <= slot < end
            assert _minutes(slot) < last or _minutes(slot) == _minutes(start)


def test_two_hundred_clients_are_spread_over_every_hour_of_the_window():
    """Mexico, 07:00–22:00: slots run 07:00–20:59, 14 hours; each holds about 1/14 (7 %)."""
    hours = Counter(spread_slot(client_id, dt.time(7), dt.time(22)).hour for client_id in range(1, 201))
    assert sorted(hours) == list(range(7, 21))
    assert max(hours.values()) <= 0.09 * 200, hours
    # Ids far from 1 (a database that has lived) spread as well.
    hours = Counter(spread_slot(client_id, dt.time(9), dt.time(21)).hour for client_id in range(48_000, 48_200))
    assert sorted(hours) == list(range(9, 20)) and max(hours.values()) <= 0.12 * 200, hours


@pytest.mark.django_db
def test_the_sql_twin_gives_the_same_slot_as_python():
    ids = [*range(1, 400), 65_535, 2**31 - 1, 10**12]
    with connection.cursor() as cur:
        for start, end in WINDOWS:
            cur.execute(
                f"SELECT i, {spread_slot_sql('i', 'w.s', 'w.e')} "
                "FROM unnest(%s::bigint[]) AS i, (SELECT %s::time AS s, %s::time AS e) AS w",
                [ids, start, end],
            )
            found = dict(cur.fetchall())
            assert found == {i: spread_slot(i, start, end) for i in ids}, (start, end)


def test_the_clients_window_starts_at_its_slot_with_saturdays_own_hours():
    window = Window(
        start=dt.time(7), end=dt.time(19), weekdays=frozenset(range(1, 7)), saturday=(dt.time(8), dt.time(15))
    )
    mine = spread_window(window, 4242)
    assert mine.start == spread_slot(4242, dt.time(7), dt.time(19)) and mine.end == dt.time(19)
    assert mine.saturday == (spread_slot(4242, dt.time(8), dt.time(15)), dt.time(15))
    assert mine.weekdays == window.weekdays


# --- the rules: before the slot it waits, after it the window is open ---------------------------


@pytest.fixture
def mexican(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@clavo.example", phone="+5255100")
    return client


@pytest.mark.django_db
def test_before_its_slot_a_message_waits_for_it_and_after_it_goes_while_the_window_is_open(mexican):
    slot = slot_of(mexican, DAY)
    opening = dt.datetime.combine(DAY, dt.time(7), tzinfo=MX)
    if slot > opening:
        early = decide(client=mexican, channel="email", at=opening, spread=True)
        assert not early.allowed and early.send_at == slot
        assert early.reason.startswith("Envíos repartidos en el horario (07:00–22:00)")
        assert timezone.localtime(slot, MX).strftime("%H:%M") in early.reason
    # A slot already passed today does not push the message to tomorrow.
    for late in (slot, slot + dt.timedelta(minutes=1), dt.datetime.combine(DAY, dt.time(21, 59), tzinfo=MX)):
        assert decide(client=mexican, channel="email", at=late, spread=True).allowed
    # Without spread (a portal confirmation), the window's opening as before.
    assert decide(client=mexican, channel="email", at=opening).allowed


@pytest.mark.django_db
def test_a_deferral_lands_on_the_next_allowed_days_slot(gerente, gestora):
    spanish = make_client(by=gerente, legal_name="Ibérica S.L.", country="ES", time_zone="Europe/Madrid")
    saturday = dt.datetime(2026, 3, 7, 10, 0, tzinfo=MADRID)
    decision = decide(client=spanish, channel="sms", at=saturday, spread=True)
    monday = dt.date(2026, 3, 9)
    assert not decision.allowed and decision.send_at == slot_of(spanish, monday)
    assert "Fin de semana" in decision.reason
    # After the window closes: the next day's slot, with the usual reason.
    night = dt.datetime(2026, 3, 9, 22, 0, tzinfo=MADRID)
    decision = decide(client=spanish, channel="email", at=night, spread=True)
    assert decision.send_at == slot_of(spanish, dt.date(2026, 3, 10))
    assert decision.reason.startswith("Fuera del horario permitido (09:00–21:00")


@pytest.mark.django_db
def test_a_clients_sends_deferred_at_different_moments_meet_at_one_slot_and_keep_their_order(mexican):
    moments = [dt.datetime.combine(DAY, dt.time(23), tzinfo=MX), dt.datetime.combine(DAY, dt.time(23, 50), tzinfo=MX)]
    moments.append(dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(3), tzinfo=MX))
    send_at = {
        decide(client=mexican, channel=channel, at=m, spread=True).send_at
        for m in moments
        for channel in ("email", "sms", "whatsapp")
    }
    assert send_at == {slot_of(mexican, DAY + dt.timedelta(days=1))}


@pytest.mark.django_db
def test_calls_and_letters_are_not_spread(mexican):
    opening = dt.datetime.combine(DAY, dt.time(7), tzinfo=MX)
    assert decide(client=mexican, channel="call", at=opening, spread=True).allowed
    assert decide(client=mexican, channel="letter", at=opening, spread=True).allowed


# --- the planner and dispatch ------------------------------------------------------------------


@pytest.fixture
def ladder(db):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Reparto", segment=segment("regular"))
    template = MessageTemplate.objects.create(code="t-reparto", name="Reparto", channel="email")
    MessageTemplateText.objects.create(
        template=template, language="es", subject="Saldo de {{ cliente }}", body="Le recordamos su saldo."
    )
    PolicyStep.objects.create(
        policy=policy, position=1, name="Recordatorio", offset_days=1, channel="email", template=template
    )
    PolicyStep.objects.create(policy=policy, position=2, name="Llamada", offset_days=10, channel="call")
    return policy


def _debtors(gerente, n, first=0, **fields):
    clients = []
    for k in range(first, first + n):
        c = make_client(by=gerente, legal_name=f"Cliente {k:03d}", **fields)
        ledger.contact_create(by=gerente, client=c, name="Pagos", email=f"pagos{k}@cliente.example")
        make_invoice(by=gerente, client=c, number=f"F-{k}", amount="1000.00", due_date=DUE)
        clients.append(c)
    return clients


@pytest.mark.django_db
def test_the_planner_schedules_each_message_at_its_clients_slot(ladder, gerente):
    clients = _debtors(gerente, 200)
    early = dt.datetime.combine(DAY, dt.time(0, 30), tzinfo=MX)
    assert plan(today=DAY, now=early).notices == 200
    window = Window(start=dt.time(7), end=dt.time(22))
    scheduled = dict(Notice.objects.values_list("client_id", "scheduled_at"))
    assert scheduled == {c.pk: slot_moment(c.pk, DAY, MX, window) for c in clients}
    hours = Counter(timezone.localtime(at, MX).hour for at in scheduled.values())
    assert set(hours) == set(range(7, 21)) and max(hours.values()) <= 0.09 * 200, hours


@pytest.mark.django_db
def test_a_slot_already_passed_is_planned_for_now_and_tasks_are_not_spread(ladder, gerente):
    [client] = _debtors(gerente, 1)
    late = dt.datetime.combine(DAY, dt.time(21, 30), tzinfo=MX)
    plan(today=DAY, now=late)
    assert Notice.objects.get(client=client).scheduled_at == late
    Notice.objects.update(status=Notice.Status.SENT, sent_at=late)
    call_day = DUE + dt.timedelta(days=10)
    early = dt.datetime.combine(call_day, dt.time(0, 30), tzinfo=MX)
    plan(today=call_day, now=early)
    assert Notice.objects.get(client=client, channel="call").scheduled_at == early


@pytest.mark.django_db
def test_on_saturday_the_planner_uses_saturdays_hours(ladder, gerente):
    clients = _debtors(gerente, 5, country="CO", time_zone="America/Bogota")
    saturday = dt.date(2026, 3, 7)
    plan(today=saturday, now=dt.datetime.combine(saturday, dt.time(0, 30), tzinfo=MX))
    window = contact_rules.window_of(contact_rules.rules_for("CO"), {})
    assert window.saturday is not None
    scheduled = dict(Notice.objects.values_list("client_id", "scheduled_at"))
    assert scheduled == {c.pk: slot_moment(c.pk, saturday, BOGOTA, window) for c in clients}
    assert all(dt.time(8) <= timezone.localtime(at, BOGOTA).time() < dt.time(15) for at in scheduled.values())


@pytest.mark.django_db
def test_dispatch_sends_at_the_slot_not_before(ladder, gerente, smtp, outbox):
    [client] = _debtors(gerente, 1)
    plan(today=DAY, now=dt.datetime.combine(DAY, dt.time(0, 30), tzinfo=MX))
    notice = Notice.objects.get(client=client)
    slot = slot_of(client, DAY)
    assert notice.scheduled_at == slot
    assert dispatch.due_notice_ids(now=slot - dt.timedelta(seconds=1)) == []
    assert dispatch.dispatch(notice.pk, now=slot).outcome == "sent"
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_a_days_replay_sends_each_message_at_its_slot(ladder, gerente, smtp, outbox):
    clients = _debtors(gerente, 12)
    summary = engine.run(today=DAY)
    assert summary["dispatched"]["sent"] == 12
    ten = dt.datetime.combine(DAY, dt.time(10), tzinfo=MX)
    sent = dict(Notice.objects.values_list("client_id", "sent_at"))
    # Slots before 10:00 (the replay's start) go at 10:00, the others at their slot.
    assert sent == {c.pk: max(ten, slot_of(c, DAY)) for c in clients}


# --- Lo que sale ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_outbox_shows_each_notices_local_time_and_the_messages_per_hour(ladder, gerente, client):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    def debtors(n, first):
        made = _debtors(gerente, n, first=first)
        Invoice.objects.filter(client__in=made).update(due_date=tomorrow - dt.timedelta(days=1))
        return made

    clients = debtors(30, 0)
    client.force_login(gerente)
    url = reverse("cobranza:outbox")
    with CaptureQueriesContext(connection) as first:
        response = client.get(url, {"day": tomorrow.isoformat()})
    assert response.status_code == 200
    data = response.context["outbox"]
    # Tomorrow's notices are planned by its first hourly run: each at its client's slot.
    slots = {c.pk: timezone.localtime(slot_of(c, tomorrow), MX).strftime("%H:%M") for c in clients}
    assert {row["client"].pk: row["local_time"] for row in data.new_rows} == slots
    expected = Counter(int(t[:2]) for t in slots.values())
    assert {h.hour: h.messages for h in data.by_hour if h.messages} == dict(expected)
    page = response.content.decode()
    assert 'data-testid="by-hour"' in page and f'data-messages="{max(expected.values())}"' in page
    assert f"{next(iter(slots.values()))} <span" in page
    # Thirty more clients cost no more queries.
    debtors(30, 30)
    with CaptureQueriesContext(connection) as second:
        assert client.get(url, {"day": tomorrow.isoformat()}).status_code == 200
    assert len(second) <= len(first)


@pytest.mark.django_db
def test_a_country_whose_rules_do_not_spread_sends_from_the_windows_opening(ladder, gerente):
    ContactRules.objects.filter(country="MX").update(spread_sends=False)
    [client] = _debtors(gerente, 1)
    early = dt.datetime.combine(DAY, dt.time(0, 30), tzinfo=MX)
    plan(today=DAY, now=early)
    assert Notice.objects.get(client=client).scheduled_at == early
    decision = decide(client=client, channel="email", at=early, spread=True)
    assert decision.send_at == dt.datetime.combine(DAY, dt.time(7), tzinfo=MX)
