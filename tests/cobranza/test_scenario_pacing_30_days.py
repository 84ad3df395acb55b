"""Thirty days of pacing (docs/domain.md#pacing), two dunning runs a day with the clock at each
moment (time-machine): ``run_dunning --today`` at 10:00 and a lived run at 18:00 Mexico City
time, when it is already the next day in Madrid. The shipped default ladders, with a step added
on the way, over clients in five time zones and four countries' contact rules:

- P (regular, Mexico City): paused until 20 June; the pause ends with several steps due.
- M (regular, Tijuana): two invoices at different steps on the first day.
- N (esporádico, Bogotá): Colombia's rules (no Sundays, one message per channel a week).
- J (alto riesgo, New York): the final letter, then old invoices imported whose legal hand-off
  falls due four days after the letter.
- I (alto riesgo, Madrid): old invoices imported on 10 June, 21 days overdue.
- K1, K2 (cuenta clave, Mexico City): a +45 final email added to their ladder on 12 June; K1 is
  already past it (not swept in) until an administrator confirms the catch-up on 15 June.

A manager approves, each morning, the notices waiting for approval. The test asserts the
rules for every client and day — never two messages on one local day, catch-ups send the
firmest step and record the others as superseded, escalation steps at least 7 days apart,
nothing sent twice, every notice accounted for — and the catch-ups' own facts.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from accounts import services as ledger
from cobranza.engine.contact_rules import client_time_zone
from cobranza.ladders import selectors as ladder_selectors
from cobranza.ladders import services as ladder_services
from cobranza.models import ESCALATION_CHANNELS, MessageTemplate, Notice, NoticeItem, Policy, PolicyStep
from cobranza.ops import services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db(transaction=True)

MX = ZoneInfo("America/Mexico_City")
START = dt.date(2026, 6, 1)  # a Monday
DAYS = 30
END = dt.datetime.combine(START + dt.timedelta(days=DAYS), dt.time(0), tzinfo=MX)


def day(d: int) -> dt.date:
    return dt.date(2026, 6, d)


def at(when: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(when, dt.time(hour), tzinfo=MX)


def _client(gerente, gestora, name, segment, tz, country, currency="MXN"):
    client = make_client(
        by=gerente,
        collector=gestora,
        segment_code=segment,
        legal_name=name,
        time_zone=tz,
        country=country,
        currency=currency,
    )
    ledger.contact_create(
        by=gerente,
        client=client,
        name=f"Pagos de {name}",
        email=f"pagos-{client.pk}@cliente.example",
        phone="+52 55 5555 0100",
        whatsapp="+52 55 5555 0101",
    )
    return client


def _invoice(gerente, client, number, due, amount, currency="MXN"):
    return make_invoice(
        by=gerente,
        client=client,
        number=number,
        due_date=due,
        issue_date=due - dt.timedelta(days=30),
        amount=amount,
        currency=currency,
    )


@pytest.fixture
def portfolio(gerente, gestora):
    with time_machine.travel(at(START, 8), tick=False):
        c = {
            "P": _client(gerente, gestora, "P Pausada S.A.", "regular", "America/Mexico_City", "MX"),
            "M": _client(gerente, gestora, "M Multicanal S.A.", "regular", "America/Tijuana", "MX"),
            "N": _client(gerente, gestora, "N Bogotá S.A.S.", "esporadico", "America/Bogota", "CO", "COP"),
            "J": _client(gerente, gestora, "J Nueva York Inc.", "alto-riesgo", "America/New_York", "US", "USD"),
            "I": _client(gerente, gestora, "I Ibérica S.L.", "alto-riesgo", "Europe/Madrid", "ES", "EUR"),
            "K1": _client(gerente, gestora, "K1 Clave Vieja S.A.", "cuenta-clave", "America/Mexico_City", "MX"),
            "K2": _client(gerente, gestora, "K2 Clave Nueva S.A.", "cuenta-clave", "America/Mexico_City", "MX"),
        }
        _invoice(gerente, c["P"], "P1", day(1), "4000.00")
        _invoice(gerente, c["M"], "M1", dt.date(2026, 5, 25), "3000.00")  # +7 SMS today
        _invoice(gerente, c["M"], "M2", dt.date(2026, 5, 31), "1000.00")  # +1 email today
        _invoice(gerente, c["N"], "N1", day(3), "2500000.00", "COP")
        _invoice(gerente, c["J"], "J1", dt.date(2026, 5, 12), "8000.00", "USD")  # +20 letter today
        _invoice(gerente, c["K1"], "K1", dt.date(2026, 4, 20), "50000.00")  # +42: the review
        _invoice(gerente, c["K2"], "K2", dt.date(2026, 5, 5), "30000.00")  # +27: the +20 call
        services.client_pause(by=gerente, client=c["P"], until=day(20), reason="Cierre contable del cliente")
    return c


def _morning(today, c, gerente, admin_user, notes):
    # The manager works the approval queue first thing.
    for notice in Notice.objects.filter(status=Notice.Status.AWAITING_APPROVAL, planned_for__lt=today):
        services.notice_approve(by=gerente, notice=notice)
    if today == day(5):
        # Imported from the accounting system: 31 days overdue, legal hand-off territory.
        _invoice(gerente, c["J"], "J2", dt.date(2026, 5, 5), "6000.00", "USD")
    elif today == day(10):
        _invoice(gerente, c["I"], "I1", dt.date(2026, 5, 20), "9000.00", "EUR")
        _invoice(gerente, c["I"], "I2", dt.date(2026, 5, 20), "500.00", "EUR")
    elif today == day(12):
        ladder = Policy.objects.get(segment__code="cuenta-clave")
        step = ladder_services.step_create(
            by=gerente,
            policy=ladder,
            name="Último aviso por correo",
            offset_days=45,
            channel="email",
            template=MessageTemplate.objects.get(code="ultimo-aviso"),
            tone="final",
        )
        ladder_services.step_move(by=gerente, step=step, direction="up")  # before the +60 letter
        notes["new_step"] = step
    elif today == day(15):
        step = PolicyStep.objects.get(pk=notes["new_step"].pk)
        preview = ladder_selectors.catch_up_preview(step)
        notes["preview"] = preview
        ladder_services.step_catch_up_confirm(by=admin_user, step=step, expected=preview)


def test_thirty_days_of_paced_dunning(portfolio, gerente, admin_user, smtp, outbox):
    c = portfolio
    notes = {}
    for n in range(DAYS):
        today = START + dt.timedelta(days=n)
        with time_machine.travel(at(today, 9), tick=False):
            _morning(today, c, gerente, admin_user, notes)
        with time_machine.travel(at(today, 10), tick=False):
            call_command("run_dunning", today=today.isoformat(), stdout=StringIO())
        with time_machine.travel(at(today, 18), tick=False):
            call_command("run_dunning", stdout=StringIO())

    notices = list(Notice.objects.select_related("client", "step", "step__policy").prefetch_related("items__invoice"))
    sent = [n for n in notices if n.status == Notice.Status.SENT]
    code = {client.pk: name for name, client in c.items()}

    def local_day(notice):
        return notice.sent_at.astimezone(client_time_zone(notice.client)).date()

    def facts(notice):
        return (notice.planned_for, notice.step.offset_days, notice.channel, notice.status)

    # 1. No client hears from us twice on one of its local days, whatever the channel.
    per_day = defaultdict(list)
    for notice in sent:
        per_day[(code[notice.client_id], local_day(notice))].append(facts(notice))
    assert {k: v for k, v in per_day.items() if len(v) > 1} == {}
    assert len(sent) >= 20  # not an empty month

    # 2. Escalation steps (final letter, agency, legal) at least 7 local days apart.
    escalations = defaultdict(list)
    for notice in sorted(sent, key=lambda n: n.sent_at):
        if notice.channel in ESCALATION_CHANNELS:
            escalations[code[notice.client_id]].append(local_day(notice))
    for name, days in escalations.items():
        assert all((b - a).days >= 7 for a, b in zip(days, days[1:], strict=False)), (name, days)

    # 3. Nothing sent twice: each invoice reaches each step once (a constraint), and the SMTP
    # server received exactly the emails the notices say were sent, once each.
    pairs = list(NoticeItem.objects.values_list("invoice_id", "step_id"))
    assert len(pairs) == len(set(pairs))
    sent_emails = [n for n in sent if n.channel == "email"]
    assert len(smtp.messages) == len(sent_emails)
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(n.message_id for n in sent_emails)

    # 4. Nothing lost: every notice ended sent, superseded (by a firmer notice of the same client,
    # planned that day or — an older notice still waiting — later, every invoice of it listed at
    # a later step), skipped with a reason, or is still open for a stated reason (waiting for
    # approval, or deferred past the last run with its reason).
    for notice in notices:
        if notice.status == Notice.Status.SUPERSEDED:
            # A notice superseded at dispatch may itself be superseded later: follow the chain.
            firmer, chain = notice.superseded_by, 0
            while firmer is not None and firmer.status == Notice.Status.SUPERSEDED and chain < 10:
                firmer, chain = firmer.superseded_by, chain + 1
            assert firmer is not None and firmer.status != Notice.Status.SUPERSEDED, facts(notice)
            assert firmer.client_id == notice.client_id and firmer.planned_for >= notice.planned_for
            assert firmer.step.position > notice.step.position
            for item in notice.items.all():
                assert NoticeItem.objects.filter(
                    invoice_id=item.invoice_id,
                    step__policy=notice.step.policy,
                    step__position__gt=notice.step.position,
                    notice__status__in=["sent", "planned", "awaiting_approval", "sending"],
                ).exists(), facts(notice)
            assert notice.reason.startswith("Reemplazado por un paso más firme")
        elif notice.status == Notice.Status.SKIPPED:
            assert notice.reason, facts(notice)
        elif notice.status == Notice.Status.AWAITING_APPROVAL:
            assert notice.step.requires_approval
        elif notice.status == Notice.Status.PLANNED:
            assert notice.reason and notice.scheduled_at >= END, facts(notice)
        else:
            assert notice.status == Notice.Status.SENT, facts(notice)

    def going(name, when=None):
        rows = [
            facts(n)
            for n in notices
            if code[n.client_id] == name and n.status != "superseded" and (when is None or n.planned_for == when)
        ]
        return sorted(rows)

    def superseded(name, when):
        return sorted(
            (n.step.offset_days, sorted(i.invoice.number for i in n.items.all()))
            for n in notices
            if code[n.client_id] == name and n.status == "superseded" and n.planned_for == when
        )

    # 5. The catch-ups send the firmest step only.
    # P's pause ended: on 21 June, 20 days late, the +15 call; +1 and +7 are superseded.
    assert going("P") == [(day(21), 15, "call", "sent")]
    assert superseded("P", day(21)) == [(1, ["P1"]), (7, ["P1"])]
    # I's invoices imported 21 days late: the final letter, the four steps before it superseded.
    assert going("I", day(10)) == [(day(10), 20, "letter", "sent")]
    assert superseded("I", day(10)) == [(0, ["I1", "I2"]), (3, ["I1", "I2"]), (7, ["I1", "I2"]), (12, ["I1", "I2"])]
    # The legal hand-off (>= 5,000) falls due on 19 June; approved the next morning.
    assert going("I", day(19)) == [(day(19), 30, "legal", "sent")]
    # J: the letter on 1 June; J2, imported on 5 June 31 days late, is at the legal step, which
    # waits seven days after the letter: planned on 8 June, approved and handed off on 9 June.
    assert going("J", day(1)) == [(day(1), 20, "letter", "sent")]
    assert [f for f in going("J") if f[0] != day(1)] == [(day(8), 30, "legal", "sent")]
    assert [(n.sent_at.astimezone(MX).date()) for n in sent if n.channel == "legal" and code[n.client_id] == "J"] == [
        day(9)
    ]
    # M: two invoices at two steps on the first day: the SMS goes, M2's reminder the next day.
    assert going("M", day(1)) == [(day(1), 7, "sms", "sent")]
    assert superseded("M", day(1)) == [(1, ["M1"])]
    assert going("M", day(2)) == [(day(2), 1, "email", "sent")]

    # 6. The step added on 12 June did not sweep in K1 (past it); K2 reached it on its day.
    new_step = notes["new_step"]
    assert [n.planned_for for n in notices if n.step_id == new_step.pk and code[n.client_id] == "K2"] == [day(19)]
    # The catch-up stated one notice for one client and one invoice, and made exactly that.
    preview = notes["preview"]
    assert (preview.notices, preview.clients, preview.invoices) == (1, 1, 1)
    assert [
        (code[n.client_id], n.planned_for) for n in notices if n.step_id == new_step.pk and n.planned_for == day(15)
    ] == [("K1", day(15))]
    step = PolicyStep.objects.get(pk=new_step.pk)
    assert step.applies_from is None and step.catch_up_confirmed_by == admin_user

    # The Bogotá client: Colombia's rules defer, pacing spaces, nothing is lost.
    assert going("N")
    assert Decimal(0) < sum(i.open_balance for n in notices if code[n.client_id] == "N" for i in n.items.all())
