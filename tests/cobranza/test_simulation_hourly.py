"""An hour-by-hour simulation of the beat across every preset country (docs/domain.md#contact-rules).

Thirty-four days, 1 December 2026 to 4 January 2027, one beat tick an hour (816 ticks): at each
tick the clock is frozen at that hour (docs/domain.md#one-clock) and the beat's own tasks run in
this process as a worker runs them — ``plan_dunning`` (planner and escalation), its
``enqueue_due`` and a ``dispatch_notice`` per due notice — with ``judge_commitments`` after the
company's midnight. Ten clients in each of the twelve preset countries, in time zones from
Honolulu to the Canaries, with one to three invoices each on the shipped default ladders; five
weekends, Christmas, New Year, the 8th of December where it is a holiday. Between ticks, staff
record full payments, promises (which pause the ladder) and disputes. Email goes to a real SMTP
server; no manager approves anything, so the steps that need approval stay waiting.

The assertions are computed from the database after the run, independently of the engine: the
hours, weekdays and caps from the preset table of docs/domain.md (checked against the rows), the
holidays from the ``holidays`` package — never by calling ``decide()``.

1. No message outside the client's local hours, on a forbidden weekday or on a national holiday.
2. No client over a channel's cap, or over the cap across channels, in any rolling 7 days.
3. Every deferral is logged with a reason, and every deferred notice was later sent, skipped or
   superseded, or is still planned past the end of the run with its reason.
4. No duplicates: one sent notice per client, step and invoice set; the SMTP server received each
   email once.
5. No send about an invoice already paid, disputed or under a promise at the send time.

The figures (sends per country and channel, deferrals by reason, sends by local hour) are written to
``tests/artifacts/simulation/figures.json`` and quoted in docs/simulation.md. The spread of sends
over the window (docs/domain.md#spread) is a separate test on the same run.

Calls in the ladders become tasks for a collector (``dispatch._dispatch_task``): they are paced like
every step, but their hours are checked when the collector logs the call (docs/domain.md#call-windows),
so properties 1 and 2 are about the messages the engine itself sends (email, SMS, WhatsApp).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from django.conf import settings

from accounts import clock
from accounts import services as ledger
from accounts.models import Interaction, Invoice, PaymentAllocation
from accounts.rules import open_invoice_q
from cobranza import tasks
from cobranza.models import Commitment, CommitmentKind, ContactRules, DisputeReason, Holiday, Notice
from cobranza.workspace import services as workspace
from morosos.celery import app
from tests.factories import make_client, make_invoice

# One worker runs both tests under xdist (--dist loadgroup): the spread test reads the sends the
# first test's run left in _SENDS instead of simulating the month again.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("hourly_simulation")]

UTC = dt.UTC
START = dt.datetime(2026, 12, 1, tzinfo=UTC)  # a Tuesday
DAYS = 34
END = START + dt.timedelta(days=DAYS)
TICKS = DAYS * 24
CLIENTS_PER_COUNTRY = 10
SEGMENTS = ("regular", "alto-riesgo", "esporadico", "cuenta-clave")
MESSAGES = ("email", "sms", "whatsapp")
RULED = (*MESSAGES, "call")
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "simulation" / "figures.json"

MON_FRI = frozenset({1, 2, 3, 4, 5})
MON_SAT = frozenset({1, 2, 3, 4, 5, 6})
EVERY_DAY = frozenset(range(1, 8))


def _t(hour: int) -> dt.time:
    return dt.time(hour)


# The preset table of docs/domain.md#contact-rules, typed in again: (weekdays, hours, Saturday's
# hours, per channel, calls, all channels) in 7 days.
PRESETS = {
    "MX": (EVERY_DAY, (_t(7), _t(22)), None, 3, 7, 6),
    "CO": (MON_SAT, (_t(7), _t(19)), (_t(8), _t(15)), 1, 1, 2),
    "CL": (MON_SAT, (_t(8), _t(20)), None, 1, 1, 2),
    "PE": (MON_FRI, (_t(7), _t(20)), None, 3, 3, None),
    "AR": (MON_FRI, (_t(8), _t(20)), None, 2, 3, 4),
    "EC": (MON_FRI, (_t(8), _t(20)), None, 2, 3, 4),
    "GT": (MON_SAT, (_t(8), _t(19)), (_t(8), _t(13)), 2, 3, 4),
    "CR": (MON_SAT, (_t(8), _t(19)), (_t(8), _t(13)), 2, 3, 4),
    "DO": (MON_SAT, (_t(8), _t(19)), (_t(8), _t(13)), 2, 3, 4),
    "UY": (MON_FRI, (_t(8), _t(20)), None, 2, 3, 4),
    "ES": (MON_FRI, (_t(9), _t(21)), None, 3, None, 6),
    "US": (EVERY_DAY, (_t(8), _t(21)), None, 3, 7, None),
}

# Country: time zones (clients take them in turn), currency, amount factor from MXN, language.
MARKETS = {
    "MX": (("America/Tijuana", "America/Mexico_City", "America/Cancun"), "MXN", "1", "es"),
    "CO": (("America/Bogota",), "COP", "200", "es"),
    "CL": (("America/Santiago", "America/Punta_Arenas"), "CLP", "50", "es"),
    "PE": (("America/Lima",), "PEN", "0.2", "es"),
    "AR": (("America/Argentina/Buenos_Aires", "America/Argentina/Mendoza"), "ARS", "60", "es"),
    "EC": (("America/Guayaquil", "Pacific/Galapagos"), "USD", "0.06", "es"),
    "GT": (("America/Guatemala",), "GTQ", "0.4", "es"),
    "CR": (("America/Costa_Rica",), "CRC", "30", "es"),
    "DO": (("America/Santo_Domingo",), "DOP", "3", "es"),
    "UY": (("America/Montevideo",), "UYU", "2", "es"),
    "ES": (("Europe/Madrid", "Atlantic/Canary"), "EUR", "0.06", "es"),
    "US": (("Pacific/Honolulu", "America/Los_Angeles", "America/Chicago", "America/New_York"), "USD", "0.06", "en"),
}

# What a reason logged with a deferral says, by its opening words (the engine's Spanish texts).
REASON_KINDS = (
    ("pacing", re.compile(r"^(Un aviso por día como máximo|Mínimo de \d+ días entre avisos)")),
    ("escalation spacing", re.compile(r"^Mínimo de \d+ días? entre escalamientos")),
    ("outside hours", re.compile(r"^Fuera del horario permitido")),
    ("weekend", re.compile(r"^Fin de semana")),
    ("forbidden weekday", re.compile(r"^Día no permitido para contactar")),
    ("holiday", re.compile(r"^Día festivo")),
    ("spread slot", re.compile(r"^Envíos repartidos en el horario")),
    ("cap across channels", re.compile(r"^Límite de \d+ contactos? en 7 días \(todos los canales\) alcanzado$")),
    ("channel cap", re.compile(r"^Límite de \d+ (correos?|SMS|mensajes? de WhatsApp|llamadas?) en 7 días alcanzado$")),
)
DEFERRAL = re.compile(r" aplazado hasta \d{4}-\d\d-\d\d \d\d:\d\d: (?P<reason>.*)$", re.S)

# Filled by the simulation for the spread test (the database is emptied between tests).
_SENDS: dict[str, list] = {}


def _reason_kinds(reason: str) -> list[str]:
    kinds = []
    for part in (p.strip() for p in reason.split("; ")):
        if not part:
            continue
        kinds.append(next((kind for kind, pattern in REASON_KINDS if pattern.match(part)), f"other: {part[:60]}"))
    return kinds


# --- the portfolio and what people do mid-run ----------------------------------------------------


def _portfolio(rng: random.Random, gerente, gestora) -> list:
    clients = []
    for country, (zones, currency, factor, language) in MARKETS.items():
        for n in range(CLIENTS_PER_COUNTRY):
            name = f"{country}{n:02d}"
            client = make_client(
                by=gerente,
                collector=gestora,
                segment_code=SEGMENTS[n % len(SEGMENTS)],
                legal_name=f"Cliente {name} S.A.",
                country=country,
                time_zone=zones[n % len(zones)],
                currency=currency,
                language=language,
            )
            ledger.contact_create(
                by=gerente,
                client=client,
                name=f"Pagos {name}",
                email=f"pagos-{name.lower()}@cliente.example",
                phone="+1 555 0100",
                whatsapp="+1 555 0101",
            )
            for k in range(rng.randint(1, 3)):
                due = START.date() + dt.timedelta(days=rng.randint(-25, 18))
                amount = (Decimal(rng.randint(8, 120) * 100) * Decimal(factor)).quantize(Decimal("1"))
                make_invoice(
                    by=gerente,
                    client=client,
                    number=f"{name}-{k + 1}",
                    due_date=due,
                    issue_date=min(due, START.date()) - dt.timedelta(days=30),
                    amount=amount,
                    currency=currency,
                )
            clients.append(client)
    return clients


def _events(rng: random.Random, clients) -> dict[dt.datetime, list]:
    """About a third of the clients: a full payment, a promise past the run's end, or a dispute,
    at a random half hour between two ticks (never on the first or last two days)."""
    events: dict[dt.datetime, list] = defaultdict(list)
    for client in clients:
        roll = rng.random()
        kind = "pay" if roll < 0.12 else "promise" if roll < 0.24 else "dispute" if roll < 0.34 else None
        if kind:
            moment = START + dt.timedelta(hours=rng.randrange(48, TICKS - 48), minutes=30)
            events[moment].append((kind, client))
    return events


def _act(kind: str, client, gestora) -> None:
    owed = list(client.invoices.filter(open_invoice_q()).order_by("due_date", "id"))
    if not owed:
        return
    if kind == "pay":
        ledger.payment_record(
            by=gestora,
            client=client,
            amount=sum(i.open_balance for i in owed),
            currency=client.currency,
            received_on=clock.localdate(),
            reference=f"pago-{client.pk}",
        )
    elif kind == "promise":
        workspace.commitment_create(
            by=gestora,
            client=client,
            kind=CommitmentKind.PROMISE,
            installments=[(dt.date(2027, 1, 29), sum(i.open_balance for i in owed))],
        )
    else:
        workspace.dispute_open(
            by=gestora,
            client=client,
            invoices=owed[:1],
            reason=DisputeReason.SERVICE,
            description="El cliente dice que el servicio no se prestó.",
        )


@pytest.fixture
def beat():
    """The beat's tasks run in this process, as a worker would run them (Celery's eager mode):
    ``plan_dunning`` plans and escalates, then ``enqueue_due`` hands each due notice to
    ``dispatch_notice`` once the transaction commits."""
    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def _simulate(gerente, gestora) -> dict:
    rng = random.Random(20261201)
    company = ZoneInfo(settings.TIME_ZONE)
    with clock.running_at(START - dt.timedelta(hours=2)):
        clients = _portfolio(rng, gerente, gestora)
    events = _events(rng, clients)
    for tick in range(TICKS):
        moment = START + dt.timedelta(hours=tick)
        for when in sorted(w for w in events if moment - dt.timedelta(hours=1) < w < moment):
            for kind, client in events[when]:
                with clock.running_at(when):
                    _act(kind, client, gestora)
        # The beat at this hour, with the clock frozen at it (docs/domain.md#one-clock).
        with clock.running_at(moment):
            if moment.astimezone(company).hour == 1:
                tasks.judge_commitments()  # nightly: promises whose dates passed
            tasks.plan_dunning()
    return {
        "clients": len(clients),
        "events": Counter(kind for batch in events.values() for kind, _client in batch),
    }


# --- reading the run back from the database ------------------------------------------------------


def _holidays(country: str) -> set[dt.date]:
    days = set(holidays.country_holidays(country, years=(START.year, END.year)))
    days |= set(Holiday.objects.filter(country=country).values_list("date", flat=True))
    return days


def _window(country: str, day: dt.date) -> tuple[dt.time, dt.time]:
    _weekdays, hours, saturday, *_caps = PRESETS[country]
    return saturday if saturday and day.isoweekday() == 6 else hours


def _outside_rules(country: str, local: dt.datetime, holiday_days: set[dt.date]) -> str:
    weekdays = PRESETS[country][0]
    if local.isoweekday() not in weekdays:
        return "weekday"
    if local.date() in holiday_days:
        return "holiday"
    start, end = _window(country, local.date())
    if not start <= local.time() < end:
        return "hours"
    return ""


def _stopped_at() -> dict[int, dt.datetime]:
    """When each invoice stopped being one to send about: fully paid, disputed or promised (the
    earliest), from the rows those actions wrote."""
    stopped: dict[int, dt.datetime] = {}

    def stop(invoice_id: int, when: dt.datetime) -> None:
        stopped[invoice_id] = min(when, stopped.get(invoice_id, when))

    amounts = dict(Invoice.objects.values_list("pk", "amount"))
    paid: dict[int, Decimal] = defaultdict(Decimal)
    for invoice_id, amount, when in PaymentAllocation.objects.order_by("created_at", "id").values_list(
        "invoice_id", "amount", "created_at"
    ):
        paid[invoice_id] += amount
        if paid[invoice_id] >= amounts[invoice_id]:
            stop(invoice_id, when)
    for entry in Interaction.objects.filter(outcome=Interaction.Outcome.DISPUTE).prefetch_related("invoices"):
        for invoice in entry.invoices.all():
            stop(invoice.pk, entry.occurred_at)
    for commitment in Commitment.objects.prefetch_related("invoices"):
        for invoice in commitment.invoices.all():
            stop(invoice.pk, commitment.created_at)
    return stopped


def test_a_month_of_hourly_ticks_in_every_preset_country_keeps_the_contact_rules(gerente, gestora, smtp, outbox, beat):
    # The rules the engine reads are the preset table typed in above.
    for country, (weekdays, hours, saturday, per_channel, calls, overall) in PRESETS.items():
        rules = ContactRules.objects.get(country=country)
        assert (
            frozenset(int(d) for d in rules.weekdays.split(",")),
            (rules.start_time, rules.end_time),
            (rules.saturday_start_time, rules.saturday_end_time) if rules.saturday_start_time else None,
            rules.max_per_channel_7d,
            rules.max_calls_7d,
            rules.max_contacts_7d,
            rules.skip_holidays,
        ) == (weekdays, hours, saturday, per_channel, calls, overall, True), country

    run = _simulate(gerente, gestora)

    notices = list(Notice.objects.select_related("client", "step").prefetch_related("items"))
    sent = [n for n in notices if n.status == Notice.Status.SENT]
    messages = [n for n in sent if n.channel in MESSAGES]
    holiday_days = {country: _holidays(country) for country in PRESETS}

    def local(client, when: dt.datetime) -> dt.datetime:
        return when.astimezone(ZoneInfo(client.time_zone))

    # 1. Hours, weekdays and holidays of the client's country, in the client's time zone.
    outside = [
        (n.client.legal_name, n.client.time_zone, local(n.client, n.sent_at).isoformat(), n.channel, why)
        for n in messages
        if (why := _outside_rules(n.client.country, local(n.client, n.sent_at), holiday_days[n.client.country]))
    ]
    assert outside == []

    # 2. Caps in any rolling 7 days, on the outbound timeline (what the debtor received); a
    # rolling week is at least as strict as a calendar one.
    contacts = defaultdict(list)
    for client_id, country, kind, when in Interaction.objects.filter(
        direction=Interaction.Direction.OUTBOUND, kind__in=RULED, corrects__isnull=True
    ).values_list("client_id", "client__country", "kind", "occurred_at"):
        contacts[client_id].append((when, kind, country))
    assert sum(len(rows) for rows in contacts.values()) == len(messages)  # one timeline entry per send
    over = []
    for client_id, rows in contacts.items():
        for when, kind, country in rows:
            _w, _h, _s, per_channel, calls, overall = PRESETS[country]
            week = [(w, k) for w, k, _c in rows if when - dt.timedelta(days=7) < w <= when]
            cap = calls if kind == "call" else per_channel
            if cap is not None and sum(1 for _w2, k in week if k == kind) > cap:
                over.append((client_id, kind, when.isoformat(), "channel"))
            if overall is not None and len(week) > overall:
                over.append((client_id, kind, when.isoformat(), "all channels"))
    assert over == []

    # 3. Deferrals: each one logged with its reason; each deferred notice accounted for.
    deferrals = list(
        Interaction.objects.filter(kind=Interaction.Kind.SYSTEM, summary__contains=" aplazado hasta ").values_list(
            "client__country", "summary", "body"
        )
    )
    assert len(deferrals) == sum(n.deferrals for n in notices)
    assert [summary for _c, summary, _b in deferrals if not DEFERRAL.search(summary)] == []
    # The reason is the summary's tail or, when the summary was cut, the entry's detail.
    reasons = [(country, body or DEFERRAL.search(summary)["reason"]) for country, summary, body in deferrals]
    assert [r for r in reasons if not r[1].strip()] == []
    unaccounted, pending = [], []
    for n in notices:
        if n.status in (Notice.Status.SENDING, Notice.Status.FAILED):
            unaccounted.append((n.pk, n.status, n.reason))
        elif n.status == Notice.Status.PLANNED:
            # Nothing due is left behind: a planned notice waits for a moment after the run.
            if not (n.reason and n.scheduled_at >= END):
                unaccounted.append((n.pk, n.status, n.scheduled_at.isoformat(), n.reason))
            else:
                pending.append(n)
    assert unaccounted == []
    # Every notice still planned at the end was deferred (it says why), and nothing else is open
    # but the steps waiting for a manager's approval.
    assert all(n.deferrals > 0 for n in pending)
    assert {n.status for n in notices} <= {"sent", "skipped", "superseded", "planned", "awaiting_approval"}

    # 4. No duplicates: one sent notice per client, step and invoice set, and each email once.
    keys = Counter((n.client_id, n.step_id, frozenset(i.invoice_id for i in n.items.all())) for n in sent)
    assert [key for key, count in keys.items() if count > 1] == []
    emails = [n for n in sent if n.channel == "email"]
    assert len(smtp.messages) == len(emails)
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(n.message_id for n in emails)

    # 5. Nothing sent about an invoice paid, disputed or promised by then: every message and every
    # task the ladder opened, with the invoices its timeline entry lists.
    stopped = _stopped_at()
    sends = Interaction.objects.filter(
        kind__in=(*MESSAGES, "letter"), direction=Interaction.Direction.OUTBOUND
    ) | Interaction.objects.filter(kind=Interaction.Kind.SYSTEM, summary__contains=": tarea creada para ")
    after_stop = [
        (entry.summary, invoice.number, entry.occurred_at.isoformat(), stopped[invoice.pk].isoformat())
        for entry in sends.prefetch_related("invoices")
        for invoice in entry.invoices.all()
        if invoice.pk in stopped and stopped[invoice.pk] <= entry.occurred_at
    ]
    assert after_stop == []
    assert sends.count() == len(sent)
    assert len(stopped) >= 20  # the mid-run payments, promises and disputes happened

    # Pacing, on the way: never two steps for one client on one of its local days.
    per_day = Counter((n.client_id, local(n.client, n.sent_at).date()) for n in sent)
    assert [key for key, count in per_day.items() if count > 1] == []

    # Not an empty month: every country heard from, deferrals of every kind the calendar brings.
    by_country = Counter(n.client.country for n in messages)
    assert set(by_country) == set(PRESETS)
    kinds = Counter(kind for _c, reason in reasons for kind in _reason_kinds(reason))
    assert {"pacing", "outside hours", "weekend", "holiday"} <= set(kinds)

    _SENDS["messages"] = [(n.client.country, n.client.time_zone, n.sent_at, n.channel) for n in messages]
    _write_figures(run, notices, sent, messages, reasons, pending, kinds, local)


def _by_hour(notices, local) -> dict[str, int]:
    hours = Counter(local(n.client, n.sent_at).hour for n in notices)
    return {f"{hour:02d}": hours[hour] for hour in sorted(hours)}


def _write_figures(run, notices, sent, messages, reasons, pending, kinds, local) -> None:
    countries = {}
    for country in PRESETS:
        mine = [n for n in messages if n.client.country == country]
        first_hour = Counter(
            local(n.client, n.sent_at).hour == _window(country, local(n.client, n.sent_at).date())[0].hour for n in mine
        )
        countries[country] = {
            "clients": CLIENTS_PER_COUNTRY,
            "clients_with_notices": len({n.client_id for n in notices if n.client.country == country}),
            "time_zones": list(MARKETS[country][0]),
            "messages_sent": len(mine),
            "by_channel": dict(Counter(n.channel for n in mine)),
            "tasks_and_hand_offs": sum(1 for n in sent if n.client.country == country and n.channel not in MESSAGES),
            "deferrals_by_reason": dict(
                Counter(kind for c, reason in reasons if c == country for kind in _reason_kinds(reason))
            ),
            "sends_by_local_hour": _by_hour(mine, local),
            "sends_by_time_zone_and_local_hour": {
                zone: _by_hour([n for n in mine if n.client.time_zone == zone], local) for zone in MARKETS[country][0]
            },
            "share_in_first_hour_of_window": round(first_hour[True] / len(mine), 3) if mine else None,
        }
    figures = {
        "period": {"from": START.isoformat(), "to": END.isoformat(), "hourly_ticks": TICKS},
        "clients": run["clients"],
        "mid_run": dict(run["events"]),
        "notices": dict(Counter(n.status for n in notices)),
        "messages_sent": len(messages),
        "messages_by_channel": dict(Counter(n.channel for n in messages)),
        "tasks_and_hand_offs_sent": len(sent) - len(messages),
        "deferrals": len(reasons),
        "deferred_notices_by_final_status": dict(Counter(n.status for n in notices if n.deferrals).most_common()),
        "deferrals_by_reason": dict(kinds.most_common()),
        "skipped_by_reason": dict(
            Counter(n.reason for n in notices if n.status == Notice.Status.SKIPPED).most_common()
        ),
        "still_planned_after_the_run": len(pending),
        "sends_by_local_hour": _by_hour(messages, local),
        "countries": countries,
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def test_the_sends_spread_over_the_window_in_every_country(gerente, gestora, smtp, outbox, beat):
    """No more than 40 % of a country's sends in the window's first hour — over the run, and on
    each day with at least five — and the last third of the window used (docs/domain.md#spread)."""
    if "messages" not in _SENDS:
        _simulate(gerente, gestora)
        _SENDS["messages"] = [
            (n.client.country, n.client.time_zone, n.sent_at, n.channel)
            for n in Notice.objects.select_related("client").filter(status=Notice.Status.SENT, channel__in=MESSAGES)
        ]
    per_day = defaultdict(list)
    for country, zone, sent_at, _channel in _SENDS["messages"]:
        moment = sent_at.astimezone(ZoneInfo(zone))
        per_day[(country, moment.date())].append(moment)
    crowded, late, first_hour, total = [], Counter(), Counter(), Counter()
    for (country, day), moments in per_day.items():
        start, end = (dt.datetime.combine(day, t) for t in _window(country, day))
        first = sum(1 for m in moments if m.replace(tzinfo=None) < start + dt.timedelta(hours=1))
        if len(moments) >= 5 and first > 0.4 * len(moments):
            crowded.append((country, day.isoformat(), first, len(moments)))
        last_third = start + (end - start) * 2 / 3
        late[country] += sum(1 for m in moments if m.replace(tzinfo=None) >= last_third)
        first_hour[country] += first
        total[country] += len(moments)
    assert crowded == []
    assert {c: (first_hour[c], total[c]) for c in PRESETS if first_hour[c] > 0.4 * total[c]} == {}
    assert [country for country in PRESETS if late[country] == 0] == []
