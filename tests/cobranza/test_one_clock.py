"""Replaying days equals living them (docs/domain.md#one-clock).

The same forty days are run twice on the same portfolio: once by time travel — the morning's
work inside ``accounts.clock.running_at`` and ``run_dunning --today`` at 10:00, while the
machine's clock reads the real date — and once lived, with the machine's clock frozen at each
moment (time-machine) and ``run_dunning`` without ``--today``. Every row the runs write —
notices with their sent times, deferrals and reasons, the timeline, collector tasks, holds and
their created/updated stamps — must come out identical. Before the one clock, the replay
stamped ``sent_at`` and the timeline with the real time, so caps and "last contact" were
counted on the wrong days in every simulation.
"""

import datetime as dt
import re
from contextlib import contextmanager
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts import clock
from accounts import services as ledger
from accounts.demo import reset_ledger
from accounts.models import Client, Interaction
from cobranza.engine import dispatch
from cobranza.models import CollectorTask, Notice
from cobranza.ops import services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db(transaction=True)

MX = ZoneInfo("America/Mexico_City")
START = dt.date(2026, 6, 1)  # a Monday
DAYS = 40


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=MX)


@contextmanager
def replayed(moment: dt.datetime):
    with clock.running_at(moment):
        yield


@contextmanager
def lived(moment: dt.datetime):
    with time_machine.travel(moment, tick=False):
        yield


def _portfolio(gerente, gestora):
    def client(name, segment, tax_id, **kwargs):
        c = make_client(by=gerente, collector=gestora, segment_code=segment, legal_name=name, tax_id=tax_id, **kwargs)
        ledger.contact_create(
            by=gerente,
            client=c,
            name=f"Pagos de {name}",
            email=f"pagos@{name.split()[0].lower()}.example",
            phone="+52 55 5555 0100",
            whatsapp="+52 55 5555 0101",
        )
        return c

    a = client("A Regular S.A.", "regular", "TST000101AB1")
    d = client("D Riesgo S.A.", "alto-riesgo", "TST000102AB2")
    e = client("E Ibérica S.L.", "regular", "TST000103AB3", country="ES", time_zone="Europe/Madrid", currency="EUR")
    for c, number, due, amount, currency in (
        (a, "A1", dt.date(2026, 6, 4), "3000.00", "MXN"),
        (a, "A2", dt.date(2026, 6, 4), "1000.00", "MXN"),
        (d, "D1", dt.date(2026, 6, 8), "8000.00", "MXN"),
        (e, "E1", dt.date(2026, 6, 5), "2500.00", "EUR"),
    ):
        make_invoice(
            by=gerente,
            client=c,
            number=number,
            due_date=due,
            issue_date=START - dt.timedelta(days=20),
            amount=amount,
            currency=currency,
        )
    return {"A": a, "D": d, "E": e}


def _morning(today, clients, gerente, gestora):
    if today == dt.date(2026, 6, 10):
        services.client_pause(by=gestora, client=clients["E"], until=dt.date(2026, 6, 24), reason="Cierre de obra")
    elif today == dt.date(2026, 6, 12):
        ledger.payment_record(by=gestora, client=clients["A"], amount=Decimal("3000.00"), received_on=today)
    for notice in Notice.objects.filter(status=Notice.Status.AWAITING_APPROVAL):
        services.notice_approve(by=gerente, notice=notice)


def _scenario(mode, gerente, gestora):
    with mode(at(START, 8)):
        clients = _portfolio(gerente, gestora)
    for n in range(DAYS):
        today = START + dt.timedelta(days=n)
        with mode(at(today, 8)):
            _morning(today, clients, gerente, gestora)
        if mode is replayed:
            call_command("run_dunning", today=today.isoformat(), stdout=StringIO())
        else:
            with lived(at(today, 10)):
                call_command("run_dunning", stdout=StringIO())
            _dispatcher_through(today)
    return _rows()


def _dispatcher_through(today):
    """The every-minute dispatcher for the rest of the lived day: each notice goes at its
    client's slot (docs/domain.md#spread), as the replay walks its clock to it."""
    moment, end = at(today, 10), at(today + dt.timedelta(days=1), 0)
    while (moment := dispatch.next_due_at(after=moment, before=end)) is not None:
        with lived(moment):
            while ids := dispatch.due_notice_ids(now=moment):
                for notice_id in ids:
                    dispatch.dispatch(notice_id, now=moment)


def _rows():
    def local(moment):
        return timezone.localtime(moment, MX).isoformat() if moment else None

    notices = [
        (
            n.client.legal_name,
            n.step.offset_days,
            n.channel,
            n.status,
            n.planned_for,
            local(n.scheduled_at),
            local(n.sent_at),
            n.deferrals,
            n.reason,
            local(n.created_at),
            local(n.updated_at),
        )
        for n in Notice.objects.select_related("client", "step").order_by("planned_for", "client__legal_name", "id")
    ]

    def text(body):  # row ids differ between the two runs (the tables are emptied, not renumbered)
        body = re.sub(r"(aviso|notice) \d+", r"\1 #", body)
        # So do the client ids in portal links, and their signatures with them; the moment a
        # link was signed (long link) or issued (short link) must be the simulated one.
        body = re.sub(r"/portal/\d+\.(\d+):(\w+):[\w-]+", r"/portal/#.\1:\2:#", body)
        return re.sub(r"/p/[0-9a-z]+-([0-9a-z]+)-[0-9a-z]+", r"/p/#-\1-#", body)

    timeline = [
        (i.client.legal_name, i.kind, i.direction, i.summary, text(i.body), local(i.occurred_at), local(i.created_at))
        for i in Interaction.objects.select_related("client").order_by("occurred_at", "client__legal_name", "summary")
    ]
    tasks = [
        (t.client.legal_name, t.kind, t.title, t.due_on, t.status, local(t.created_at))
        for t in CollectorTask.objects.select_related("client").order_by("due_on", "client__legal_name", "title")
    ]
    return {"notices": notices, "timeline": timeline, "tasks": tasks}


def test_replaying_forty_days_writes_what_living_them_writes(gerente, gestora, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    replay = _scenario(replayed, gerente, gestora)
    first_id = Client.objects.order_by("pk").values_list("pk", flat=True).first()
    reset_ledger()
    # The same client ids, hence the same slots (docs/domain.md#spread), in the lived run.
    with connection.cursor() as cur:
        cur.execute("SELECT setval(pg_get_serial_sequence('accounts_client', 'id'), %s, false)", [first_id])
    living = _scenario(lived, gerente, gestora)

    sent = [n for n in replay["notices"] if n[3] == Notice.Status.SENT]
    # The scenario is not empty: reminders, follow-ups, a deferral over Spain's weekend.
    assert len(sent) >= 8 and any(n[7] for n in replay["notices"])
    # Every sent time is the simulated day (10:00 or a later window), not today's real date.
    assert {dt.date.fromisoformat(n[6][:10]) for n in sent} <= {START + dt.timedelta(days=k) for k in range(DAYS)}
    assert all(dt.date.fromisoformat(t[5][:10]) < START + dt.timedelta(days=DAYS) for t in replay["timeline"])
    for key in replay:
        extra = [row for row in replay[key] if row not in living[key]]
        missing = [row for row in living[key] if row not in replay[key]]
        assert (key, extra, missing) == (key, [], [])
    assert replay == living


def test_outside_a_run_the_clock_is_the_real_time():
    before = timezone.now()
    assert not clock.overridden()
    assert before <= clock.now() <= timezone.now()
    moment = at(START, 10)
    with clock.running_at(moment):
        assert clock.now() == moment and clock.localdate() == START and clock.overridden()
    assert not clock.overridden()
    with pytest.raises(ValueError), clock.running_at(dt.datetime(2026, 6, 1, 10)):
        pass
