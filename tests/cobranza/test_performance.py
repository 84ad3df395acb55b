"""Collector performance and dunning effectiveness (docs/domain.md#kpis): every number
against a small hand-computed portfolio, period boundaries, the time zone of "sent on a day",
exports equal to the page, managers only, and a constant number of queries.

The clock is frozen on 2025-07-05 (Mexico City); the period under review is June 2025
(2025-06-01 … 2025-06-30, both days included) unless a test says otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from accounts import services as ledger
from accounts.services import AllocationRequest
from cobranza.dashboard import metrics as dashboard_metrics
from cobranza.models import (
    ClientProfile,
    CollectorTask,
    Commitment,
    MessageTemplate,
    Notice,
    NoticeItem,
    Policy,
    PolicyStep,
)
from cobranza.performance import selectors as metrics
from tests.factories import make_client, make_invoice, make_user

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
TODAY = dt.date(2025, 7, 5)
START, END = dt.date(2025, 6, 1), dt.date(2025, 6, 30)
D = Decimal


def day(month: int, d: int) -> dt.date:
    return dt.date(2025, month, d)


def at(d: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hour, minute), tzinfo=MX)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(at(TODAY, 12), tick=False):
        yield


# --- collector performance: the portfolio ----------------------------------------------------------


def _pay(by, client, amount, on, method="transfer", currency=None, invoice=None):
    allocations = [AllocationRequest(invoice_id=invoice.pk, amount=D(amount))] if invoice else []
    return ledger.payment_record(
        by=by,
        client=client,
        amount=D(amount),
        received_on=on,
        method=method,
        currency=currency,
        allocations=allocations,
    )


def _contact(by, client, kind, when, **kw):
    return ledger.interaction_log(by=by, client=client, kind=kind, summary=f"{kind} {when}", occurred_at=when, **kw)


def _promise(client, by, made_on, status="open", resolved_on=None, kind="promise"):
    return Commitment.objects.create(
        client=client,
        kind=kind,
        status=status,
        currency=client.currency,
        total=D("100.00"),
        made_on=made_on,
        created_by=by,
        resolved_on=resolved_on,
    )


def _task(client, assigned_to, due_on, status="open", completed_by=None):
    return CollectorTask.objects.create(
        client=client,
        kind="call",
        title="Llamar",
        assigned_to=assigned_to,
        due_on=due_on,
        status=status,
        completed_by=completed_by,
        completed_at=at(due_on) if status == "done" else None,
    )


@pytest.fixture
def team(gerente, gestora, gestor):
    """Lucía (gestora) has A (MXN) and C (USD); Mario (gestor) has B; D has no collector."""
    a = make_client(by=gerente, collector=gestora, legal_name="Abarrotes A", currency="MXN")
    b = make_client(by=gerente, collector=gestor, legal_name="Bodega B", currency="MXN", segment_code="cuenta-clave")
    c = make_client(by=gerente, collector=gestora, legal_name="Comercial C", currency="USD")
    d = make_client(by=gerente, collector=None, legal_name="Distribuidora D", currency="MXN")

    # Money (no invoices: the payments stay as client credit; collected is what came in).
    _pay(gerente, a, "1000.00", START)  # first day: in
    _pay(gerente, a, "500.00", END, method="cash")  # last day: in
    _pay(gerente, a, "300.00", day(5, 31))  # the day before: out
    _pay(gerente, a, "250.00", day(7, 1))  # the day after: out
    _pay(gerente, a, "200.00", day(6, 10), method="credit_note")  # not cash: out
    _pay(gerente, a, "80.00", day(6, 11), method="discount")  # not cash: out
    _pay(gerente, b, "700.00", day(6, 15))
    _pay(gerente, c, "400.00", day(6, 15), currency="USD")  # USD: only in the USD report
    _pay(gerente, d, "900.00", day(6, 20))  # unassigned client

    # Contacts (local time; the period is [06-01 00:00, 07-01 00:00) Mexico City).
    first = _contact(gestora, a, "call", at(START, 0, 0))  # in
    _contact(gestora, a, "email", at(END, 23, 59))  # in
    _contact(gestora, a, "call", at(day(5, 31), 23, 59))  # out
    _contact(gestora, a, "whatsapp", at(day(7, 1), 0, 0))  # out
    _contact(gestora, a, "note", at(day(6, 10)))  # a note is not a contact
    _contact(gestora, a, "call", at(day(6, 10)), corrects=first)  # a correction is not a new contact
    _contact(gestor, b, "visit", at(day(6, 15)))
    _contact(gestor, b, "sms", at(day(6, 16)))
    _contact(gestor, b, "letter", at(day(6, 17)))

    # Promises.
    _promise(a, gestora, day(6, 5), "kept", day(6, 20))  # made, judged, kept
    _promise(a, gestora, day(5, 20), "broken", day(6, 2))  # made before: judged in June
    _promise(a, gestora, day(6, 10), "partial", day(7, 2))  # made in June, judged in July
    _promise(a, gestora, day(6, 25))  # made, still open
    _promise(a, gestora, day(6, 3), "cancelled", day(6, 4))  # made; a cancelled one is not judged
    _promise(a, gestora, day(6, 5), "kept", day(6, 6), kind="plan")  # a plan is not a promise
    _promise(b, gestor, day(6, 1), "partial", day(6, 30))  # made, judged, not kept

    # Tasks.
    _task(a, gestora, day(6, 1), "done", completed_by=gestora)  # due, done by her
    _task(a, gestora, day(6, 30))  # due, still open
    _task(a, gestora, day(6, 15), "done", completed_by=make_user("jefa", "manager"))  # due, done by someone else
    _task(a, gestora, day(6, 20), "cancelled")  # cancelled: not counted
    _task(a, gestora, day(5, 31), "done", completed_by=gestora)  # before the period
    _task(a, gestora, day(7, 1))  # after the period
    _task(b, gestor, day(6, 10), "done", completed_by=gestor)
    return {"a": a, "b": b, "c": c, "d": d}


def _row(data, user):
    return next(r for r in data.rows if r.collector_id == user.pk)


def test_collector_performance_against_the_hand_computed_portfolio(team, gestora, gestor):
    data = metrics.collector_performance(start=START, end=END, currency="MXN")
    lucia, mario = _row(data, gestora), _row(data, gestor)

    # Collected (MXN, cash, 06-01…06-30, by the client's collector today):
    # Lucía: 1,000.00 (06-01) + 500.00 (06-30) = 1,500.00; the 300 (05-31), 250 (07-01),
    # the credit note (200) and the discount (80) are out. Mario: 700.00. D (no collector): 900.00.
    assert lucia.collected == D("1500.00")
    assert mario.collected == D("700.00")
    assert data.unassigned_collected == D("900.00")
    assert data.total.collected == D("2200.00")  # 1,500 + 700
    assert data.collected_all == D("3100.00")  # 2,200 + 900

    # Contacts: Lucía's call at 06-01 00:00 and email at 06-30 23:59 = 2 (not 05-31 23:59,
    # 07-01 00:00, the note, nor the correction). Mario: visit + SMS + letter = 3.
    assert (lucia.contacts, mario.contacts) == (2, 3)

    # Promises made in June: Lucía 06-05, 06-10, 06-25, 06-03 (cancelled) = 4 (the plan and
    # the 05-20 one are out). Judged in June: kept 06-20 + broken 06-02 = 2, kept 1 → 50.0 %.
    # Mario: 1 made, 1 judged (partial), 0 kept → 0.0 %.
    assert (lucia.promises_made, lucia.promises_kept, lucia.promises_judged) == (4, 1, 2)
    assert lucia.promise_kept_rate == D("50.0")
    assert (mario.promises_made, mario.promises_kept, mario.promises_judged) == (1, 0, 1)
    assert mario.promise_kept_rate == D("0.0")
    assert data.total.promise_kept_rate == D("33.3")  # (1 + 0) ÷ (2 + 1) = 33.33…

    # Tasks due in June, not cancelled: Lucía 06-01 (done by her), 06-30 (open), 06-15 (done
    # by another person) = 3, done by her 1 → 33.3 %. Mario 1 of 1 → 100.0 %.
    assert (lucia.tasks_due, lucia.tasks_done, lucia.completion_rate) == (3, 1, D("33.3"))
    assert (mario.tasks_due, mario.tasks_done, mario.completion_rate) == (1, 1, D("100.0"))
    assert data.total.completion_rate == D("50.0")  # 2 ÷ 4


def test_money_is_reported_per_currency(team, gestora, gestor):
    data = metrics.collector_performance(start=START, end=END, currency="USD")
    assert _row(data, gestora).collected == D("400.00")
    assert _row(data, gestor).collected == D("0.00")
    assert data.unassigned_collected == D("0.00")
    # Counts do not depend on the currency.
    assert _row(data, gestora).contacts == 2


def test_the_period_boundaries_move_the_numbers(team, gestora):
    # 05-31 … 05-31: the 300.00 payment, the call at 23:59, the task done on 05-31.
    data = metrics.collector_performance(start=day(5, 31), end=day(5, 31), currency="MXN")
    lucia = _row(data, gestora)
    assert (lucia.collected, lucia.contacts, lucia.tasks_due, lucia.tasks_done) == (D("300.00"), 1, 1, 1)
    # 07-01 … 07-05: the 250.00 payment, the WhatsApp at 00:00, the partial promise judged 07-02.
    data = metrics.collector_performance(start=day(7, 1), end=TODAY, currency="MXN")
    lucia = _row(data, gestora)
    assert (lucia.collected, lucia.contacts, lucia.promises_judged, lucia.promises_kept) == (D("250.00"), 1, 1, 0)


def test_the_segment_filter_slices_every_figure(team, gestora, gestor):
    key = team["b"].segment_id
    data = metrics.collector_performance(start=START, end=END, currency="MXN", segment=key)
    assert _row(data, gestor).collected == D("700.00") and _row(data, gestor).contacts == 3
    lucia = _row(data, gestora)
    assert (lucia.collected, lucia.contacts, lucia.promises_made, lucia.tasks_due) == (D("0.00"), 0, 0, 0)
    assert data.unassigned_collected == D("0.00")


def test_the_promise_counts_are_the_dashboards(team, gestora):
    counts = dashboard_metrics.promise_kept_by_collector(start=START, end=END)
    assert counts[gestora.pk] == (1, 2)


# --- dunning effectiveness: the portfolio ------------------------------------------------------------


@pytest.fixture
def ladder():
    """A test policy: 1. email (a message), 2. call (a task)."""
    policy = Policy.objects.create(name="Prueba de efectividad")
    template = MessageTemplate.objects.filter(channel="email").first()
    email = PolicyStep.objects.create(
        policy=policy, position=1, name="Recordatorio", offset_days=1, channel="email", template=template
    )
    call = PolicyStep.objects.create(policy=policy, position=2, name="Llamada", offset_days=15, channel="call")
    return policy, email, call


def _notice(client, step, planned_for, status="sent", sent_at=None, deferrals=0, items=()):
    notice = Notice.objects.create(
        client=client,
        step=step,
        channel=step.channel,
        planned_for=planned_for,
        scheduled_at=at(planned_for, 9),
        status=status,
        sent_at=sent_at if sent_at else (at(planned_for, 9) if status == "sent" else None),
        deferrals=deferrals,
    )
    for invoice, listed in items:
        NoticeItem.objects.create(notice=notice, invoice=invoice, step=step, open_balance=D(listed), days_overdue=1)
    return notice


@pytest.fixture
def dunning(gerente, ladder):
    policy, email, call = ladder
    a = make_client(by=gerente, legal_name="Abarrotes A", currency="MXN", segment_code="regular")
    b = make_client(by=gerente, legal_name="Bodega B", currency="MXN", segment_code="cuenta-clave")
    c = make_client(by=gerente, legal_name="Comercial C", currency="USD", segment_code="regular")
    ClientProfile.objects.create(client=a, computed="chronic", override="casual", override_reason="Paga siempre")
    due = day(5, 30)
    a1 = make_invoice(by=gerente, client=a, number="A-1", amount="1000.00", due_date=due)
    a2 = make_invoice(by=gerente, client=a, number="A-2", amount="500.00", due_date=due)
    a3 = make_invoice(by=gerente, client=a, number="A-3", amount="2000.00", due_date=due)
    b1 = make_invoice(by=gerente, client=b, number="B-1", amount="800.00", due_date=due)
    b2 = make_invoice(by=gerente, client=b, number="B-2", amount="600.00", due_date=due)
    c1 = make_invoice(by=gerente, client=c, number="C-1", amount="1000.00", due_date=due)

    # N1: sent on 06-01 at 23:30 Mexico City (06-02 05:30 UTC): its sent day is 06-01, so the
    # 7-day window is 06-02…06-08 and the 14-day one 06-02…06-15.
    _notice(a, email, START, sent_at=at(START, 23, 30), items=[(a1, "1000.00"), (a2, "500.00")])
    _pay(gerente, a, "100.00", day(6, 1), invoice=a1)  # the send day itself: not after it
    _pay(gerente, a, "50.00", day(6, 3), method="credit_note", invoice=a1)  # not cash
    _pay(gerente, a, "300.00", day(6, 8), invoice=a1)  # day 7: in both windows
    _pay(gerente, a, "200.00", day(6, 15), invoice=a1)  # day 14: 14-day window only
    _pay(gerente, a, "100.00", day(6, 16), invoice=a1)  # day 15: neither (in UTC it would be day 14)
    _pay(gerente, a, "500.00", day(6, 2), invoice=a2)  # day 1: both (in UTC it would be day 0)
    # N2: the last day of the period, sent 23:30; paid the next day, but neither window is over
    # on 07-05 (06-30 + 7 = 07-07): listed, not in the shares.
    _notice(b, email, END, sent_at=at(END, 23, 30), items=[(b1, "800.00")])
    _pay(gerente, b, "800.00", day(7, 1), invoice=b1)
    # N3: the day before the period: out, whatever happened.
    _notice(a, email, day(5, 31), items=[(a3, "2000.00")])
    _pay(gerente, a, "2000.00", day(6, 1), invoice=a3)
    # Not sent.
    _notice(b, email, day(6, 10), status="failed")
    _notice(b, email, day(6, 11), status="skipped", deferrals=2)
    _notice(a, email, day(6, 12), status="planned", deferrals=1)
    _notice(a, email, day(6, 13), status="cancelled")
    # N8: USD, paid in full the next day.
    _notice(c, email, day(6, 5), items=[(c1, "1000.00")])
    _pay(gerente, c, "1000.00", day(6, 6), currency="USD", invoice=c1)
    # N9: the call step, 06-20; paid on day 7.
    _notice(b, call, day(6, 20), items=[(b2, "600.00")])
    _pay(gerente, b, "600.00", day(6, 27), invoice=b2)
    return {"policy": policy, "email": email, "call": call, "a": a, "b": b, "c": c}


def _step(data, step):
    return next(r for r in data.steps if r.step_id == step.pk)


def test_dunning_effectiveness_per_step_against_the_hand_computed_portfolio(dunning):
    data = metrics.dunning_effectiveness(start=START, end=END, currency="MXN", today=TODAY, policy=dunning["policy"].pk)
    email, call = _step(data, dunning["email"]), _step(data, dunning["call"])
    assert [r.step_id for r in data.steps] == [dunning["email"].pk, dunning["call"].pk]

    # Email notices planned 06-01…06-30: N1, N2, failed, skipped, planned, cancelled, N8 (USD) = 7.
    assert (email.notices, email.sent, email.delivered) == (7, 3, 3)  # N1, N2, N8
    assert (email.failed, email.skipped, email.cancelled, email.pending) == (1, 1, 1, 1)
    assert email.deferred == 2  # the skipped one (2 deferrals) and the planned one (1)
    # MXN money of sent notices: N1 1,000 + 500, N2 800 → listed 2,300.00. Windows over by
    # 07-05: N1 only → listed 1,500.00 for 7 and 14 days.
    # Paid in 7 days (06-02…06-08): A-1 300 + A-2 500 = 800.00 → 800 ÷ 1,500 = 53.3 %.
    # Paid in 14 days (06-02…06-15): A-1 300 + 200, A-2 500 = 1,000.00 → 66.7 %.
    m = email.money
    assert (m.listed, m.listed_7, m.paid_7, m.listed_14, m.paid_14) == (
        D("2300.00"),
        D("1500.00"),
        D("800.00"),
        D("1500.00"),
        D("1000.00"),
    )
    assert (m.share_7, m.share_14) == (D("53.3"), D("66.7"))

    # The call step: 1 notice sent 06-20; a task, so nothing is "delivered" (None, not 0).
    # B-2 600 paid 06-27 (day 7): 600 ÷ 600 in both windows (06-20 + 14 = 07-04 ≤ 07-05).
    assert (call.notices, call.sent, call.delivered) == (1, 1, None)
    assert (call.money.listed_7, call.money.paid_7, call.money.share_7) == (D("600.00"), D("600.00"), D("100.0"))
    assert call.money.share_14 == D("100.0")

    # Total: 8 notices, 4 sent, 3 delivered; 7 days: 1,400 ÷ 2,100 = 66.7 %;
    # 14 days: 1,600 ÷ 2,100 = 76.2 %.
    t = data.total
    assert (t.notices, t.sent, t.delivered, t.failed, t.skipped, t.deferred, t.cancelled, t.pending) == (
        8,
        4,
        3,
        1,
        1,
        2,
        1,
        1,
    )
    assert (t.money.listed, t.money.paid_7, t.money.paid_14) == (D("2900.00"), D("1400.00"), D("1600.00"))
    assert (t.money.share_7, t.money.share_14) == (D("66.7"), D("76.2"))


def test_usd_money_is_reported_apart(dunning):
    data = metrics.dunning_effectiveness(start=START, end=END, currency="USD", today=TODAY, policy=dunning["policy"].pk)
    email = _step(data, dunning["email"])
    assert email.notices == 7  # counts are the same in every currency
    # N8: 1,000 USD listed, paid 06-06 (day 1) → 100 %.
    assert (email.money.listed_7, email.money.paid_7, email.money.share_14) == (D("1000.00"), D("1000.00"), D("100.0"))


def test_a_window_counts_only_once_it_is_over(dunning):
    # On 07-07 N2's 7-day window (07-01…07-07) is over: 800 listed and paid on 07-01.
    data = metrics.dunning_effectiveness(
        start=START, end=END, currency="MXN", today=day(7, 7), policy=dunning["policy"].pk
    )
    email = _step(data, dunning["email"])
    # 7 days: (800 + 800) ÷ (1,500 + 800) = 69.6 %; 14 days still N1 only: 66.7 %.
    assert (email.money.listed_7, email.money.paid_7, email.money.share_7) == (D("2300.00"), D("1600.00"), D("69.6"))
    assert email.money.share_14 == D("66.7")


def test_which_channel_works_for_which_segment_and_profile(dunning):
    data = metrics.dunning_effectiveness(start=START, end=END, currency="MXN", today=TODAY)
    by_segment = {(r.channel, r.label): r for r in data.by_segment}
    # email × Regular: N1 → 1,000 ÷ 1,500 = 66.7 %. email × Cuenta clave: N2, window not over.
    # call × Cuenta clave: N9 → 600 ÷ 600.
    assert set(by_segment) == {("email", "Regular"), ("email", "Cuenta clave"), ("call", "Cuenta clave")}
    assert by_segment["email", "Regular"].money.share_14 == D("66.7")
    assert by_segment["email", "Regular"].sent_notices == 1
    assert by_segment["email", "Cuenta clave"].money.share_14 is None
    assert by_segment["email", "Cuenta clave"].money.listed == D("800.00")
    assert by_segment["call", "Cuenta clave"].money.share_14 == D("100.0")
    # Profiles: A's override (casual) wins over its computed one (chronic); B has none → new.
    by_profile = {(r.channel, r.key): r for r in data.by_profile}
    assert set(by_profile) == {("email", "casual"), ("email", "new"), ("call", "new")}
    assert by_profile["email", "casual"].money.share_14 == D("66.7")
    assert by_profile["call", "new"].money.paid_14 == D("600.00")


def test_the_policy_and_segment_filters(dunning):
    key = dunning["b"].segment_id
    data = metrics.dunning_effectiveness(
        start=START, end=END, currency="MXN", today=TODAY, policy=dunning["policy"].pk, segment=key
    )
    email = _step(data, dunning["email"])
    # Bodega B only: N2 (sent), failed, skipped.
    assert (email.notices, email.sent, email.failed, email.skipped) == (3, 1, 1, 1)
    assert email.money.listed == D("800.00")
    # Without a policy only steps with notices in the period show (the default ladders sent
    # nothing); with one, its idle active steps show too, with zeros.
    data = metrics.dunning_effectiveness(start=START, end=END, currency="MXN", today=TODAY)
    assert [r.step_id for r in data.steps] == [dunning["email"].pk, dunning["call"].pk]
    assert data.total.notices == 8
    regular = Policy.objects.get(segment__code="regular")
    data = metrics.dunning_effectiveness(start=START, end=END, currency="MXN", today=TODAY, policy=regular.pk)
    assert len(data.steps) == regular.steps.filter(is_active=True).count() > 0
    assert data.total.notices == 0 and data.total.money.share_7 is None


# --- pages -------------------------------------------------------------------------------------------


class _Cells(HTMLParser):
    """The cells of one rendered performance table: [[(data-key, data-value), …], …]."""

    def __init__(self, name):
        super().__init__()
        self.name, self.inside, self.rows = name, False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.inside = attrs.get("data-table") == self.name
        elif self.inside and tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif self.inside and tag in ("td", "th") and "data-value" in attrs:
            self.rows[-1].append((attrs["data-key"], attrs["data-value"]))

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False


def page_cells(html: str, name: str) -> list[list[tuple[str, str]]]:
    parser = _Cells(name)
    parser.feed(html)
    return [row for row in parser.rows if row]


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _url(name, **params):
    from django.utils.http import urlencode

    return reverse(f"cobranza:{name}") + ("?" + urlencode(params) if params else "")


JUNE = {"start": "2025-06-01", "end": "2025-06-30", "currency": "MXN"}


def test_the_collector_page_shows_the_numbers_and_its_formulas(client, gerente, team, gestora):
    client.force_login(gerente)
    response = client.get(_url("collector_performance", **JUNE))
    assert response.status_code == 200
    html = response.content.decode()
    rows = {dict(r)["collector"]: dict(r) for r in page_cells(html, "collectors")}
    assert rows["Lucía Gestora"]["collected"] == "1500.00"
    assert rows["Lucía Gestora"]["promise_kept_rate"] == "50.0"
    assert rows["Clientes sin gestor asignado"]["collected"] == "900.00"
    assert rows["Total"]["collected"] == "3100.00"
    assert "$1,500.00" in html  # money in the user's locale
    assert "Cobrado = suma de los pagos recibidos" in html  # formula in the help panel and on hover
    assert 'id="collector-chart-data"' in html and "chart.umd.min.js" in html


def test_the_collector_export_equals_the_page_table(client, gerente, team):
    client.force_login(gerente)
    html = client.get(_url("collector_performance", **JUNE)).content.decode()
    cells = page_cells(html, "collectors")
    response = client.get(_url("collector_performance", export="csv", table="collectors", **JUNE))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response.content)
    assert rows[0][:3] == ["Gestor", "Cobrado", "Cobrado (moneda)"]
    for page_row, csv_row in zip(cells, rows[1:], strict=True):
        values = [value for _key, value in page_row]
        # CSV: the currency follows the money column (index 1).
        assert csv_row[:2] + csv_row[3:] == values
        assert csv_row[2] == "MXN"

    book = load_workbook(
        io.BytesIO(client.get(_url("collector_performance", export="xlsx", table="collectors", **JUNE)).content)
    )
    sheet = book.active
    xlsx = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True) if row[0]}
    assert D(str(xlsx["Total"][1])) == D("3100.00") and xlsx["Total"][2] == "MXN"


def test_the_dunning_exports_equal_the_page_tables(client, gerente, dunning):
    client.force_login(gerente)
    params = {**JUNE, "policy": dunning["policy"].pk}
    html = client.get(_url("dunning_effectiveness", **params)).content.decode()
    money_keys = {"listed", "listed_7", "paid_7", "listed_14", "paid_14"}
    for name in ("steps", "segments", "profiles"):
        cells = page_cells(html, name)
        assert cells, name
        rows = csv_rows(client.get(_url("dunning_effectiveness", export="csv", table=name, **params)).content)
        assert len(rows) == len(cells) + 1
        for page_row, csv_row in zip(cells, rows[1:], strict=True):
            expected = []
            for key, value in page_row:
                expected.append(value)
                if key in money_keys:
                    expected.append("MXN")
            assert csv_row == expected
    steps = {dict(r)["step"]: dict(r) for r in page_cells(html, "steps")}
    assert steps["1. Recordatorio"]["share_7"] == "53.3"
    assert steps["1. Recordatorio"]["delivered"] == "3"
    assert steps["2. Llamada"]["delivered"] == ""  # a task step delivers no message
    assert steps[""]["share_14"] == "76.2"  # the total row


def test_an_unknown_table_is_a_404(client, gerente):
    client.force_login(gerente)
    assert client.get(_url("collector_performance", export="csv", table="nope")).status_code == 404
    assert client.get(_url("dunning_effectiveness", export="xlsx", table="nope")).status_code == 404


def test_the_default_period_is_the_last_30_days_ending_today(client, gerente, team, gestora):
    client.force_login(gerente)
    response = client.get(_url("collector_performance"))
    # 06-06 … 07-05: 500 (06-30) + 250 (07-01) for Lucía.
    assert response.context["filters"]["start"] == day(6, 6)
    assert response.context["filters"]["end"] == TODAY
    assert response.context["filters"]["currency"] == "MXN"  # three MXN clients, one USD
    assert _row(response.context["data"], gestora).collected == D("750.00")


def test_a_bad_period_falls_back_to_the_default_with_a_warning(client, gerente):
    client.force_login(gerente)
    response = client.get(_url("dunning_effectiveness", start="2025-06-30", end="2025-06-01"))
    assert response.status_code == 200
    assert response.context["filters"]["start"] == day(6, 6)
    assert "posterior" in response.content.decode()


@pytest.mark.parametrize("name", ["collector_performance", "dunning_effectiveness"])
def test_only_managers_see_the_performance_pages(client, name, gestora, gerente, admin_user, nobody):
    for user, expected in ((gestora, 403), (nobody, 403), (gerente, 200), (admin_user, 200)):
        client.force_login(user)
        assert client.get(_url(name)).status_code == expected, user
        assert client.get(_url(name, export="csv", table="collectors" if "coll" in name else "steps")).status_code == (
            expected
        )
    client.logout()
    assert client.get(_url(name)).status_code == 302


def test_the_page_renders_in_english(client, gerente, team):
    client.force_login(gerente)
    response = client.get(_url("collector_performance", **JUNE), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200


# --- query counts ------------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_collector_page_costs_the_same_queries_for_1_or_many_collectors(client, gerente, gestora):
    client.force_login(gerente)
    a = make_client(by=gerente, collector=gestora)
    _pay(gerente, a, "10.00", day(6, 2))
    _contact(gestora, a, "call", at(day(6, 2)))
    url = _url("collector_performance", **JUNE)
    one = _queries(client, url)
    for n in range(6):
        user = make_user(f"gestor{n}", "collector")
        other = make_client(by=gerente, collector=user)
        _pay(gerente, other, "10.00", day(6, 3))
        _contact(user, other, "email", at(day(6, 3)))
        _promise(other, user, day(6, 4), "kept", day(6, 5))
        _task(other, user, day(6, 6), "done", completed_by=user)
    many = _queries(client, url)
    assert one == many
    # session, user, roles; currencies; payments, contacts, promises, tasks, people; segments.
    assert many == 10


def test_the_dunning_page_costs_the_same_queries_for_1_or_many_notices(client, gerente, ladder):
    client.force_login(gerente)
    policy, email, call = ladder
    url = _url("dunning_effectiveness", **JUNE)
    first = make_client(by=gerente)
    _notice(first, email, day(6, 2), items=[(make_invoice(by=gerente, client=first, due_date=day(5, 1)), "1000.00")])
    one = _queries(client, url)
    for n in range(5):
        other = make_client(by=gerente, segment_code="esporadico")
        ClientProfile.objects.create(client=other, computed="chronic")
        invoice = make_invoice(by=gerente, client=other, due_date=day(5, 1))
        _notice(other, email, day(6, 3 + n), items=[(invoice, "1000.00")])
        _notice(other, call, day(6, 10 + n), items=[(invoice, "1000.00")])
        _pay(gerente, other, "100.00", day(6, 12 + n), invoice=invoice)
    many = _queries(client, url)
    assert one == many
    # session, user, roles; currencies; notice counts, step money, steps, segment names,
    # channel × segment, channel × profile; segment and policy choices.
    assert many == 12
