"""The cash-collection forecast (docs/domain.md#cash-forecast): against a plain computation over
the same rows, against the naive "paid on the due date" forecast on a realistic two-year history,
the promises it counts first, the dashboard card and the API."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import statistics
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts import clock
from accounts.models import Invoice, PaymentAllocation
from accounts.rules import days_between
from accounts.services import AllocationRequest
from accounts.services_bulk import NewInvoice, NewPayment, invoices_bulk_create, payments_bulk_record
from cobranza.dashboard import metrics
from cobranza.forecast import selectors as fs
from cobranza.imports import services as imports
from cobranza.imports.services import Options
from cobranza.models import ImportJob, SettlementNorm, SettlementOffset
from cobranza.profiles import jobs as profiles
from cobranza.rules import loss_weight
from cobranza.workspace.services import commitment_create, dispute_open
from scripts.bench import report
from tests.factories import make_client, make_invoice

HABITS = ("punctual", "late_20", "late_45", "partial")
CENT = Decimal("0.01")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def build_history(by, *, today: dt.date, clients: int = 60, seed: int = 14) -> dict[int, str]:
    """Two years of invoices every two weeks (30 days' credit) for ``clients`` clients with four
    habits — punctual, about 20 days late, about 45 days late, half paid early and half late — and
    now and then an invoice paid very late. Payments after yesterday have not happened yet.
    Returns each client's habit."""
    rng = random.Random(seed)
    start = today - dt.timedelta(days=730)
    habit_of: dict[int, str] = {}
    specs, pay_plan = [], []
    for n in range(clients):
        habit = HABITS[n % len(HABITS)]
        client = make_client(by=by, legal_name=f"Cliente {habit} {n}", payment_terms_days=30)
        habit_of[client.pk] = habit
        issue = start + dt.timedelta(days=rng.randint(0, 13))
        while issue < today - dt.timedelta(days=1):
            amount = Decimal(rng.randint(200_000, 3_000_000)) / 100
            due = issue + dt.timedelta(days=30)
            specs.append(NewInvoice(client=client, number=f"H{n:03d}-{issue:%Y%m%d}", issue_date=issue, amount=amount))
            if habit == "punctual":
                parts = [(1, rng.randint(-3, 2))]
            elif habit == "late_20":
                parts = [(1, round(rng.gauss(20, 4)))]
            elif habit == "late_45":
                parts = [(1, round(rng.gauss(45, 7)))]
            else:
                parts = [(Decimal("0.5"), round(rng.gauss(8, 3))), (None, round(rng.gauss(40, 6)))]
            if rng.random() < 0.05:  # now and then one goes badly
                parts = [(1, rng.randint(80, 150))]
            pay_plan.append((len(specs) - 1, client, due, amount, parts))
            issue += dt.timedelta(days=14 + rng.randint(-2, 2))
    invoices = invoices_bulk_create(by=by, invoices=specs)
    payments = []
    for index, client, due, amount, parts in pay_plan:
        invoice, left = invoices[index], amount
        for share, delay in parts:
            paid = left if share is None or share == 1 else _cents(amount * share)
            left -= paid
            on = max(due + dt.timedelta(days=delay), invoice.issue_date)
            if on < today:
                payments.append(
                    NewPayment(
                        client=client,
                        amount=paid,
                        received_on=on,
                        allocations=[AllocationRequest(invoice_id=invoice.pk, amount=paid)],
                    )
                )
    payments.sort(key=lambda p: p.received_on)
    payments_bulk_record(by=by, payments=payments)
    return habit_of


def plain_forecast(as_of: dt.date, weeks: int, currency: str) -> list[Decimal]:
    """The behaviour forecast written plainly over the same rows (no commitments, no disputes in
    this history): balance at the close of the day before; each client's median days from due
    date to settlement (negative: early) over the invoices it settled in the 24 months before,
    the portfolio's with fewer than 3; the loss weight at the age it is expected at; an invoice
    already past its expected day spread over the first 4 weeks."""
    before = as_of - dt.timedelta(days=1)
    paid_by: dict[int, Decimal] = defaultdict(Decimal)
    last_payment: dict[int, dt.date] = {}
    for a in PaymentAllocation.objects.select_related("payment"):
        if a.payment.received_on <= before:
            paid_by[a.invoice_id] += a.amount
        last_payment[a.invoice_id] = max(last_payment.get(a.invoice_id, a.payment.received_on), a.payment.received_on)
    invoices = list(Invoice.objects.filter(currency=currency, issue_date__lte=before))
    since = as_of - dt.timedelta(days=730)
    delays: dict[int, list[int]] = defaultdict(list)
    for inv in invoices:
        settled_on = last_payment.get(inv.pk) if inv.status == Invoice.Status.PAID else None
        if settled_on and since <= settled_on <= before:
            delays[inv.client_id].append(days_between(settled_on, inv.due_date))
    everyone = [d for ds in delays.values() for d in ds]
    totals = [Decimal(0)] * weeks
    spread = min(4, weeks)
    for inv in invoices:
        balance = inv.amount - paid_by[inv.pk]
        if balance <= 0:
            continue
        own = delays[inv.client_id]
        median = statistics.median(own if len(own) >= fs.MIN_SETTLED else everyone)
        expected = inv.due_date + dt.timedelta(days=int(Decimal(str(median)).quantize(1, ROUND_HALF_UP)))
        expected_money = balance * (1 - loss_weight(inv.due_date, max(expected, as_of)))
        if expected < as_of:
            for week in range(spread):
                totals[week] += expected_money / spread
        elif (expected - as_of).days < 7 * weeks:
            totals[(expected - as_of).days // 7] += expected_money
    return [_cents(t) for t in totals]


@pytest.mark.django_db
def test_the_forecast_matches_a_plain_computation_and_beats_the_naive_one_by_30_pct(gerente, django_assert_num_queries):
    today = clock.localdate()
    habits = build_history(gerente, today=today)
    assert len(habits) == 60
    currency = metrics.main_currency()

    # (a) One stand date, against the plain computation over the same rows.
    as_of = today - dt.timedelta(days=200)
    with django_assert_num_queries(1):  # one statement, whatever the size of the ledger
        fc = fs.forecast(as_of, weeks=8)[currency]
    assert [w.committed for w in fc.weeks] == [Decimal("0.00")] * 8
    plain = plain_forecast(as_of, 8, currency)
    assert all(abs(w.behaviour - p) <= CENT for w, p in zip(fc.weeks, plain, strict=True)), (fc.weeks, plain)
    assert fc.total > 0 and fc.weeks[0].start == as_of and fc.weeks[-1].end == as_of + dt.timedelta(days=55)

    # (b) The backtest over a year and a half of stand dates.
    f = metrics.Filters.default(today=today, currency=currency)
    dates = fs.stand_dates(today - dt.timedelta(days=460), today - dt.timedelta(days=57), 4)
    with django_assert_num_queries(2 * len(dates)):  # two statements per stand date
        result = fs.backtest(f, dates, weeks=8)
    mae = result.mae()
    assert mae["forecast"] is not None and mae["naive"] > 0
    assert result.improvement_pct() >= 30, (mae, result.improvement_pct())

    # The command prints the same figures, and its JSON carries them.
    out = io.StringIO()
    call_command(
        "backtest",
        "--from",
        dates[0].isoformat(),
        "--to",
        dates[-1].isoformat(),
        "--step-weeks",
        "4",
        "--currency",
        currency,
        "--json",
        "-",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert Decimal(data["mae"]["forecast"]) == mae["forecast"]
    assert Decimal(data["mae"]["naive"]) == mae["naive"]
    assert Decimal(data["improvement_pct"]) == result.improvement_pct()
    assert len(data["stand_dates"]) == len(dates)


@pytest.mark.django_db
def test_an_open_promise_counts_on_its_date_weighted_and_its_invoices_are_not_counted_again(gerente):
    today = clock.localdate()
    client = make_client(by=gerente)
    promised = make_invoice(by=gerente, client=client, amount="5000.00", due_date=today - dt.timedelta(days=20))
    other = make_invoice(by=gerente, client=client, amount="3000.00", due_date=today + dt.timedelta(days=3))
    commitment_create(
        by=gerente,
        client=client,
        kind="promise",
        installments=[(today + dt.timedelta(days=9), Decimal("5000.00"))],
        invoices=[promised],
        made_on=today,
    )
    # Standing tomorrow (the promise was made today): no judged promise anywhere, so the rate is
    # the default, smoothed; the other invoice comes on its due date (no history: 0 days late).
    as_of = today + dt.timedelta(days=1)
    fc = fs.forecast(as_of, weeks=8)[client.currency]
    rate = (0 + fs.PROMISE_PRIOR * fs.PROMISE_DEFAULT_RATE) / (0 + fs.PROMISE_PRIOR)
    week_of = (today + dt.timedelta(days=9) - as_of).days // 7
    assert fc.weeks[week_of].committed == _cents(Decimal("5000.00") * rate)
    assert fc.committed == fc.weeks[week_of].committed
    assert fc.weeks[(other.due_date - as_of).days // 7].behaviour == Decimal("3000.00")
    assert fc.behaviour == Decimal("3000.00")
    # Standing before the promise was made, the promised invoice is behaviour: overdue, past
    # its expected day, spread over the first weeks at its loss weight.
    before = fs.forecast(today, weeks=8)[client.currency]
    assert before.committed == 0
    spread = _cents(Decimal("5000.00") * (1 - loss_weight(promised.due_date, today)) / fs.OVERDUE_SPREAD_WEEKS)
    assert before.weeks[0].behaviour == spread + Decimal("3000.00")  # and the other one, due in 3 days


@pytest.mark.django_db
def test_a_disputed_invoice_is_not_forecast(gerente):
    today = clock.localdate()
    client = make_client(by=gerente)
    invoice = make_invoice(by=gerente, client=client, amount="700.00", due_date=today + dt.timedelta(days=2))
    dispute_open(by=gerente, client=client, invoices=[invoice], reason="product", description="Llegó incompleto.")
    # Opened today: standing today (yesterday's close) it was not in dispute yet; tomorrow it is.
    assert fs.forecast(today, weeks=8)[client.currency].total == Decimal("700.00")
    assert fs.forecast(today + dt.timedelta(days=1), weeks=8) == {}


@pytest.mark.django_db
def test_the_api_returns_the_weeks_and_names_a_bad_as_of(client, gerente, gestora):
    today = clock.localdate()
    debtor = make_client(by=gerente)
    make_invoice(by=gerente, client=debtor, amount="1200.00", due_date=today + dt.timedelta(days=10))
    url = reverse("api:metrics-forecast")
    client.force_login(gerente)
    body = client.get(url, {"as_of": today.isoformat()}).json()
    assert body["as_of"] == today.isoformat() and body["currency"] == "MXN"
    assert len(body["weeks"]) == 8
    assert body["weeks"][1]["behaviour"] == "1200.00" and body["total"] == "1200.00"
    for bad in ("06/12/2026", "2026-13-01", "mañana", (today + dt.timedelta(days=1)).isoformat()):
        response = client.get(url, {"as_of": bad})
        assert response.status_code == 400 and "as_of" in response.json()
    client.force_login(gestora)
    assert client.get(url).status_code == 403


def test_the_bench_report_states_the_backtest_figures_of_the_demo_data():
    """docs/benchmarks.md is written by scripts/bench/report.py: its forecast section comes from
    the JSON `backtest --json` wrote on the demo data (docs/forecast-backtest.json)."""
    data = report._forecast_file()
    assert data is not None and Decimal(data["improvement_pct"]) >= 30
    lines = "\n".join(report.forecast_lines(data))
    assert "## 7. Cash forecast backtest" in lines
    assert f"| {data['mae_by_actual']['received_open']['improvement_pct']} % |" in lines
    assert report.forecast_lines(None) == []


@pytest.mark.django_db
def test_the_dashboard_card_and_its_export_show_the_api_figures(client, gerente):
    today = clock.localdate()
    debtor = make_client(by=gerente)
    make_invoice(by=gerente, client=debtor, amount="1200.00", due_date=today + dt.timedelta(days=10))
    promised = make_invoice(by=gerente, client=debtor, amount="800.00", due_date=today - dt.timedelta(days=3))
    commitment_create(
        by=gerente,
        client=debtor,
        kind="promise",
        installments=[(today + dt.timedelta(days=2), Decimal("800.00"))],
        invoices=[promised],
        made_on=today - dt.timedelta(days=1),
    )
    client.force_login(gerente)
    page = client.get(reverse("cobranza:dashboard"))
    fc = page.context["forecast"]
    api = client.get(reverse("api:metrics-forecast")).json()
    assert [(w["committed"], w["behaviour"]) for w in api["weeks"]] == [
        (f"{w.committed:.2f}", f"{w.behaviour:.2f}") for w in fc.weeks
    ]
    assert fc.committed == Decimal("400.00") and fc.behaviour == Decimal("1200.00")  # 800 × 50 %
    html = page.content.decode()
    assert "Cobranza esperada (8 semanas)" in html and 'id="forecast-chart"' in html
    assert page.context["chart_data"]["forecast"]["committed"][0] == 400.0
    assert 'data-testid="table-forecast"' in html
    csv = client.get(reverse("cobranza:dashboard"), {"export": "csv", "table": "forecast"})
    assert csv.status_code == 200
    body = csv.content.decode("utf-8-sig")
    assert "Comprometido" in body and "400.00" in body and "1600.00" in body


@pytest.mark.django_db
def test_after_an_imported_two_year_history_the_forecast_is_filled_in_and_agrees(gerente, settings, tmp_path):
    """A ledger export with English headers (invoices with the day each was paid) through the
    import job: the forecast from today has figures, and they are the plain computation's."""
    settings.MEDIA_ROOT = tmp_path / "media"
    today = clock.localdate()
    rng = random.Random(7)
    lines = ["Invoice No,Customer ID,Invoice Date,Due Date,Amount,Currency,Date Paid\n"]
    for n in range(12):
        tax_id = f"IMP{n:06d}AB{n % 10}"
        make_client(by=gerente, tax_id=tax_id, currency="MXN")
        habit = (0, 20, 45)[n % 3]
        issued = today - dt.timedelta(days=730 - rng.randint(0, 10))
        while issued < today - dt.timedelta(days=1):
            due = issued + dt.timedelta(days=30)
            paid_on = due + dt.timedelta(days=habit + rng.randint(-4, 4))
            paid = paid_on.isoformat() if paid_on < today else ""
            amount = Decimal(rng.randint(50_000, 900_000)) / 100
            lines.append(f"IMP-{n:02d}-{issued:%Y%m%d},{tax_id},{issued},{due},{amount},MXN,{paid}\n")
            issued += dt.timedelta(days=15)
    job = imports.job_create(
        by=gerente,
        kind="invoices",
        file_name="ledger.csv",
        data="".join(lines).encode(),
        options=Options(kind="invoices", columns={}),  # {}: guessed from the English headers
        dry_run=False,
    )
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors

    fc = fs.forecast(today, weeks=8)["MXN"]
    assert fc.total > 0 and all(w.total > 0 for w in fc.weeks[:4])
    assert [w.behaviour for w in fc.weeks] == plain_forecast(today, 8, "MXN")


def _settled_once(by, client, *, due: dt.date, offset: int, number: str) -> None:
    """One invoice of ``client`` due on ``due`` and paid in full ``offset`` days after it."""
    (invoice,) = invoices_bulk_create(
        by=by,
        invoices=[
            NewInvoice(client=client, number=number, issue_date=due - dt.timedelta(days=30), amount=Decimal("800"))
        ],
    )
    payments_bulk_record(
        by=by,
        payments=[
            NewPayment(
                client=client,
                amount=Decimal("800"),
                received_on=due + dt.timedelta(days=offset),
                allocations=[AllocationRequest(invoice_id=invoice.pk, amount=Decimal("800"))],
            )
        ],
    )


@pytest.mark.django_db
def test_the_stored_settlement_figures_give_the_forecast_computed_from_scratch(gerente, django_assert_num_queries):
    """The profile job keeps each client's settlement offsets and the segments' and portfolio's
    medians; standing on the same day, the forecast reads them instead of the settled history and
    must say exactly what it says computed from the ledger."""
    today = clock.localdate()
    build_history(gerente, today=today, clients=8, seed=3)  # segment "regular", long histories
    # "esporadico": three clients with one settled invoice each (their segment's median);
    # "cuenta-clave": one client with two (a segment below 3: the portfolio's median).
    due = today - dt.timedelta(days=90)
    for n, offset in enumerate((-6, 11, 33)):
        client = make_client(by=gerente, segment_code="esporadico", payment_terms_days=30)
        _settled_once(gerente, client, due=due, offset=offset, number=f"E{n}")
        make_invoice(by=gerente, client=client, amount="1500.00", due_date=today + dt.timedelta(days=4 + n))
    key = make_client(by=gerente, segment_code="cuenta-clave", payment_terms_days=30)
    for n, offset in enumerate((2, 70)):
        _settled_once(gerente, key, due=due - dt.timedelta(days=30 * n), offset=offset, number=f"K{n}")
    make_invoice(by=gerente, client=key, amount="2500.00", due_date=today + dt.timedelta(days=1))
    fresh = make_client(by=gerente, segment_code="regular")  # no history: the segment's median
    make_invoice(by=gerente, client=fresh, amount="900.00", due_date=today - dt.timedelta(days=3))
    # A settlement on the stand date itself is not history yet, for either path.
    _settled_once(gerente, fresh, due=today - dt.timedelta(days=10), offset=10, number="F0")

    from_scratch = fs.forecast(today, weeks=8)
    assert not SettlementNorm.objects.exists()
    profiles.compute_profiles(today=today)
    assert SettlementNorm.objects.get(segment=None).as_of == today
    with django_assert_num_queries(1):
        stored = fs.forecast(today, weeks=8)
    assert stored == from_scratch and stored[key.currency].behaviour > 0

    # A client the job has no figures for on that day (added since): its own, from the ledger.
    SettlementOffset.objects.filter(client__segment__code="regular").exclude(client=fresh).update(
        as_of=today - dt.timedelta(days=1)
    )
    assert fs.forecast(today, weeks=8) == from_scratch
    # Standing on another day the stored rows do not apply: the backtest's past stand dates.
    other_day = today - dt.timedelta(days=28)
    assert fs.forecast(other_day, weeks=8) != fs.forecast(today, weeks=8)
    SettlementNorm.objects.update(as_of=other_day)
    assert fs.forecast(today, weeks=8) == from_scratch

    # And the stored path does read the stored rows (other days move the money).
    profiles.compute_profiles(today=today)
    SettlementOffset.objects.update(days=-200)
    assert fs.forecast(today, weeks=8) != from_scratch

    # After midnight, before the nightly run: the rows kept the day before (up to KEPT_DAYS
    # before) are read, not the whole settled history; older ones are not.
    yesterday = today - dt.timedelta(days=1)
    SettlementNorm.objects.update(as_of=yesterday)
    SettlementOffset.objects.update(as_of=yesterday)
    assert fs.forecast(today, weeks=8) != from_scratch  # the kept days (-200) are read
    too_old = today - dt.timedelta(days=fs.KEPT_DAYS)
    SettlementNorm.objects.update(as_of=too_old)
    SettlementOffset.objects.update(as_of=too_old)
    assert fs.forecast(today, weeks=8) == from_scratch
