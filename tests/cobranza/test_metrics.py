"""Every KPI of the managers' dashboard against a small portfolio computed by hand.

The clock is fixed at 10 April 2026 (time_machine), so the default period is March 2026
(31 days). All amounts MXN unless said otherwise. The portfolio:

    inv  client  issued      due         amount  what happens
    I1   A       2026-01-01  2026-01-31  1000    cash 400 on 02-15, cash 300 on 03-10
    I2   A       2026-02-10  2026-03-12  2000    nothing paid
    I3   B       2026-03-05  2026-04-04  1500    cash 500 on 03-20; dispute opened 03-25
    I4   B       2026-03-10  2026-03-20   800    credit note 800 on 03-18 (not cash)
    I5   B       2025-10-01  2025-10-31   500    cash 200 on 04-05 (after the period)
    I6   A       2026-03-25  2026-04-24   700    cancelled
    I7   B       2026-02-01  2026-02-28   300    cash 300 on 03-01
    I8   A       2025-12-01  2025-12-31   400    written off on 03-15
    E1   C(EUR)  2026-03-01  2026-03-31  5000    (another currency: never in MXN numbers)

Client A is in segment "regular" with collector gestora; B in "esporadico" without collector.
"""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import ZERO, Payment
from accounts.selectors import portfolio_aging
from accounts.services import AllocationRequest
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.dashboard import metrics
from cobranza.dashboard.metrics import Filters
from cobranza.models import AgingSnapshot, Commitment
from cobranza.workspace import services as workspace_services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

D = dt.date
TODAY = D(2026, 4, 10)
MARCH = {"start": D(2026, 3, 1), "end": D(2026, 3, 31)}


def pay(by, client, amount, day, invoice, method=Payment.Method.TRANSFER):
    return services.payment_record(
        by=by,
        client=client,
        amount=Decimal(amount),
        received_on=day,
        method=method,
        allocations=[AllocationRequest(invoice.pk, Decimal(amount))],
    )


@pytest.fixture(name="clock")
def clock_fixture():
    with time_machine.travel(dt.datetime(2026, 2, 15, 12, tzinfo=dt.UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture(name="book")
def book_fixture(clock, gerente, gestora):
    """The portfolio of the module docstring, each event recorded on its own day."""
    a = make_client(by=gerente, collector=gestora, segment_code="regular", legal_name="Alfa")
    b = make_client(by=gerente, segment_code="esporadico", legal_name="Beta")
    c = make_client(by=gerente, segment_code="regular", legal_name="Euro", currency="EUR", country="ES")

    def inv(client, number, issued, due, amount):
        return make_invoice(by=gerente, client=client, number=number, issue_date=issued, due_date=due, amount=amount)

    i1 = inv(a, "I1", D(2026, 1, 1), D(2026, 1, 31), "1000")
    i2 = inv(a, "I2", D(2026, 2, 10), D(2026, 3, 12), "2000")
    i5 = inv(b, "I5", D(2025, 10, 1), D(2025, 10, 31), "500")
    i7 = inv(b, "I7", D(2026, 2, 1), D(2026, 2, 28), "300")
    i8 = inv(a, "I8", D(2025, 12, 1), D(2025, 12, 31), "400")
    pay(gerente, a, "400", D(2026, 2, 15), i1)

    clock.move_to(dt.datetime(2026, 3, 1, 18, tzinfo=dt.UTC))
    pay(gerente, b, "300", D(2026, 3, 1), i7)
    i3 = inv(b, "I3", D(2026, 3, 5), D(2026, 4, 4), "1500")
    i4 = inv(b, "I4", D(2026, 3, 10), D(2026, 3, 20), "800")
    e1 = inv(c, "E1", D(2026, 3, 1), D(2026, 3, 31), "5000")

    clock.move_to(dt.datetime(2026, 3, 10, 18, tzinfo=dt.UTC))
    pay(gerente, a, "300", D(2026, 3, 10), i1)
    clock.move_to(dt.datetime(2026, 3, 15, 18, tzinfo=dt.UTC))
    services.invoice_set_status(by=gerente, invoice=i8, status="written_off", reason="Incobrable")
    clock.move_to(dt.datetime(2026, 3, 18, 18, tzinfo=dt.UTC))
    pay(gerente, b, "800", D(2026, 3, 18), i4, method=Payment.Method.CREDIT_NOTE)
    clock.move_to(dt.datetime(2026, 3, 20, 18, tzinfo=dt.UTC))
    pay(gerente, b, "500", D(2026, 3, 20), i3)
    clock.move_to(dt.datetime(2026, 3, 25, 18, tzinfo=dt.UTC))
    i6 = inv(a, "I6", D(2026, 3, 25), D(2026, 4, 24), "700")
    services.invoice_set_status(by=gerente, invoice=i6, status="cancelled", reason="Error de captura")
    workspace_services.dispute_open(by=gerente, client=b, invoices=[i3], reason="product", description="Llegó dañado")

    clock.move_to(dt.datetime(2026, 4, 5, 18, tzinfo=dt.UTC))
    pay(gerente, b, "200", D(2026, 4, 5), i5)
    clock.move_to(dt.datetime(2026, 4, 10, 18, tzinfo=dt.UTC))

    def promise(client, status, resolved, kind="promise", currency="MXN"):
        Commitment.objects.create(
            client=client, kind=kind, status=status, currency=currency, total=Decimal("100"),
            made_on=resolved - dt.timedelta(days=10), resolved_on=resolved,
        )  # fmt: skip

    promise(a, "kept", D(2026, 3, 10))
    promise(a, "broken", D(2026, 3, 20))
    promise(b, "partial", D(2026, 3, 28), kind="extension")
    promise(b, "kept", D(2026, 4, 2))  # resolved after the period
    promise(a, "kept", D(2026, 3, 15), kind="plan")  # plans are not promises
    promise(a, "cancelled", D(2026, 3, 16))  # not judged
    promise(c, "kept", D(2026, 3, 16), currency="EUR")  # another currency: a promise all the same
    return {"a": a, "b": b, "c": c, "invoices": {i.number: i for i in (i1, i2, i3, i4, i5, i6, i7, i8, e1)}}


def mxn(**kwargs) -> Filters:
    return Filters(currency="MXN", **{**MARCH, **kwargs})


def test_the_default_period_is_the_last_complete_month_in_the_main_currency(book):
    f = Filters.default(today=TODAY)
    # Two clients in MXN, one in EUR.
    assert f == Filters(currency="MXN", start=D(2026, 3, 1), end=D(2026, 3, 31))
    assert f.days == 31
    assert metrics.currency_options() == ["MXN", "EUR"]


def test_receivables_at_the_period_end_by_aging_bucket(book):
    aging = metrics.receivables_as_of(mxn())
    # At 03-31: I1 1000-400-300 = 300, due 01-31 → 59 days (31–60)
    #           I2 2000, due 03-12 → 19 days (1–30)
    #           I3 1500-500 = 1000, due 04-04 → current (and disputed since 03-25)
    #           I4 800-800 = 0; I7 300-300 = 0 (gone)
    #           I5 500: the 200 paid on 04-05 is after the close; due 2025-10-31 → 151 days (120+)
    #           I6 cancelled; I8 written off on 03-15 (gone)
    amounts = {b.code: (amount, n) for b, amount, n in aging.buckets}
    assert amounts == {
        "current": (Decimal("1000.00"), 1),
        "1_30": (Decimal("2000.00"), 1),
        "31_60": (Decimal("300.00"), 1),
        "61_90": (Decimal("0.00"), 0),
        "91_120": (Decimal("0.00"), 0),
        "120_plus": (Decimal("500.00"), 1),
    }
    assert aging.total == Decimal("3800.00")  # 1000 + 2000 + 300 + 500
    assert aging.overdue == Decimal("2800.00")  # 3800 - 1000
    assert aging.disputed == Decimal("1000.00")  # I3


def test_at_today_the_receivables_agree_with_the_client_list_aging(book, gerente):
    aging = metrics.receivables_as_of(mxn(end=TODAY))
    live = next(row for row in portfolio_aging(user=gerente, today=TODAY) if row.currency == "MXN")
    assert aging.total == live.total
    assert [(b.code, amount, n) for b, amount, n in aging.buckets] == [
        (b.code, amount, n) for b, amount, n in live.buckets
    ]


def test_every_kpi_of_the_period(book):
    k = metrics.kpis(mxn())
    # Opening = close of 02-28: I1 600, I2 2000, I5 500, I7 300, I8 400 (written off later) = 3800.
    assert k.opening.total == Decimal("3800.00")
    # Overdue at the start (due before 03-01): I1 600 + I5 500 + I7 300 + I8 400 = 1800.
    assert k.opening.overdue == Decimal("1800.00")
    # Cash of March applied to those: I1 300 (03-10) + I7 300 (03-01) = 600 (I5's 200 is in April).
    assert k.opening.recovered == Decimal("600.00")
    # Credit sales in March: I3 1500 + I4 800 (I6 cancelled) = 2300.
    assert k.credit_sales == Decimal("2300.00")
    # Cash collected in March: 300 + 300 + 500 = 1100 (the 800 credit note is not cash).
    assert (k.collected, k.payments) == (Decimal("1100.00"), 3)
    assert k.receivable == Decimal("3800.00")
    assert k.overdue == Decimal("2800.00")
    assert k.overdue_pct == Decimal("73.7")  # 2800 / 3800 = 73.68 %
    assert k.dso == Decimal("51.2")  # 3800 / 2300 × 31 = 51.22
    assert k.best_dso == Decimal("13.5")  # 1000 / 2300 × 31 = 13.48
    assert k.add == Decimal("37.7")  # 2800 / 2300 × 31 = 37.74 (= 51.22 - 13.48)
    assert k.cei == Decimal("45.1")  # (3800 + 2300 - 3800) / (3800 + 2300 - 1000) = 2300 / 5100 = 45.10 %
    assert k.recovery_rate == Decimal("33.3")  # 600 / 1800
    # Promises resolved in March, promise or extension, any currency (the rate counts promises,
    # not money): kept (A), broken (A), partial (B), kept (C, in EUR).
    assert (k.promises_kept, k.promises_judged) == (2, 4)
    assert k.promise_kept_rate == Decimal("50.0")
    assert k.disputed_pct == Decimal("26.3")  # 1000 / 3800 = 26.32 %
    # Fell due between 02-28 and 03-30 with a balance that day: I7 300 (paid 03-01), I2 2000.
    # I4 was settled by the credit note on 03-18, before its due date 03-20.
    assert (k.new_delinquent_count, k.new_delinquent_amount) == (2, Decimal("2300.00"))


def test_promise_kept_counts_is_the_shared_definition(book):
    every = Commitment.objects.all()
    # kept: the 3 MXN/EUR promises kept (a plan is not a promise); judged adds the broken and
    # the partial one = 5.
    assert metrics.promise_kept_counts(every) == (3, 5)
    assert metrics.promise_kept_counts(Commitment.objects.none()) == (0, 0)


def test_filters_change_the_numbers(book, gestora):
    regular = metrics.kpis(mxn(segment=book["a"].segment_id))
    # Client A only: close = I1 300 + I2 2000 = 2300, nothing current; no credit sales in March.
    assert regular.receivable == Decimal("2300.00")
    assert regular.closing.current == Decimal("0.00")
    assert regular.credit_sales == Decimal("0.00")
    assert regular.dso is None and regular.cei is not None
    # Opening A: I1 600 + I2 2000 + I8 400 = 3000; CEI = (3000 + 0 - 2300) / (3000 + 0 - 0) = 23.3 %.
    assert regular.cei == Decimal("23.3")
    assert metrics.kpis(mxn(collector=gestora.pk)).receivable == Decimal("2300.00")
    # Without a collector: client B: I3 1000 + I5 500 = 1500.
    assert metrics.kpis(mxn(collector="none")).receivable == Decimal("1500.00")
    # Nobody has a profile row yet: every client is "without enough history".
    assert metrics.kpis(mxn(profile="new")).receivable == Decimal("3800.00")
    assert metrics.kpis(mxn(profile="chronic")).receivable == Decimal("0.00")
    euro = metrics.kpis(Filters(currency="EUR", **MARCH))
    assert euro.receivable == Decimal("5000.00") and euro.closing.current == Decimal("5000.00")
    assert euro.promises_judged == 4  # the same promises as in MXN: a count, not money


def test_a_shorter_range_moves_opening_and_close(book):
    k = metrics.kpis(mxn(start=D(2026, 3, 11), end=D(2026, 3, 20)))
    # Close of 03-10: I1 300, I2 2000, I3 1500, I4 800, I5 500, I8 400 = 5500.
    assert k.opening.total == Decimal("5500.00")
    # Close of 03-20: I1 300, I2 2000, I3 1000, I4 0, I5 500, I8 written off = 3800.
    assert k.receivable == Decimal("3800.00")
    # Sales 03-11..03-20: none; cash: I3 500 on 03-20.
    assert k.credit_sales == Decimal("0.00") and k.collected == Decimal("500.00")
    # Became overdue (due 03-10..03-19): I2 (due 03-12) 2000.
    assert (k.new_delinquent_count, k.new_delinquent_amount) == (1, Decimal("2000.00"))


def test_snapshots_are_idempotent_and_feed_trend_and_roll_rates(book):
    filled = dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    assert list(filled)[0] == D(2025, 3, 31) and list(filled)[-1] == D(2026, 3, 31)
    rows = AgingSnapshot.objects.count()
    assert dashboard_jobs.snapshot_aging(month_end=D(2026, 3, 31)) == filled[D(2026, 3, 31)]
    assert AgingSnapshot.objects.count() == rows

    trend = metrics.trend(mxn())
    # Months before the first invoice (October 2025) have nothing to photograph: no gap.
    assert len(trend.points) == 12 and trend.missing == []
    assert [p.has_snapshot for p in trend.points] == [False] * 6 + [True] * 6
    feb, mar = trend.points[-2], trend.points[-1]
    # February close: I1 600 (28 days: 1–30), I2 2000 (current), I5 500 (120 days: 91–120),
    # I7 300 (due that day: current), I8 400 (59 days: 31–60) = 3800.
    assert feb.buckets == {
        "current": Decimal("2300.00"), "1_30": Decimal("600.00"), "31_60": Decimal("400.00"),
        "61_90": Decimal("0.00"), "91_120": Decimal("500.00"), "120_plus": Decimal("0.00"),
    }  # fmt: skip
    # February sales: I7 300 + I2 2000 = 2300; DSO = 3800 / 2300 × 28 = 46.26.
    assert feb.credit_sales == Decimal("2300.00") and feb.dso == Decimal("46.3")
    # January close: I1 1000 (current), I5 500, I8 400 = 1900;
    # CEI Feb = (1900 + 2300 - 3800) / (1900 + 2300 - 2300) = 400 / 1900 = 21.05 %.
    assert feb.opening == Decimal("1900.00") and feb.cei == Decimal("21.1")
    # March agrees with the period's cards.
    k = metrics.kpis(mxn())
    assert (mar.receivable, mar.overdue, mar.dso, mar.cei) == (k.receivable, k.overdue, k.dso, k.cei)

    # Roll Feb → Mar: current 2300 → 1–30 2000 = 87.0 %; 1–30 600 → 31–60 300 = 50.0 %;
    # 31–60 400 → 61–90 0 = 0.0 %; 61–90 0 → (no base); 91–120 500 → 120+ 500 = 100.0 %.
    assert trend.roll[-1].month_end == D(2026, 2, 28)
    assert trend.roll[-1].rates == [Decimal("87.0"), Decimal("50.0"), Decimal("0.0"), None, Decimal("100.0")]

    only_a = metrics.trend(mxn(segment=book["a"].segment_id))
    assert only_a.points[-1].receivable == Decimal("2300.00")


def test_roll_rates_follow_the_same_invoices_and_never_pass_100(clock, gerente):
    """Balances of invoices that were not in the bucket before never count as rolled into the
    next one (docs/domain.md#roll-rate). Between the January and February closes:

        Y  due 01-31, 1000: current at 01-31, 1–30 at 02-28, 400 paid 02-20       → 600 rolled
        X  due 01-15, 100: 1–30 at 01-31 (16 days), 31–60 at 02-28 (44 days)      → rolled
        W  due 01-20, 300: 1–30 at 01-31, paid in full 02-05                      → not rolled
        V  due 12-20, 200: 31–60 at 01-31, written off 02-10                      → not rolled
        R  due 10-15, 800: 91–120 at 01-31 (108 days), 120+ at 02-28              → rolled
        Z  due 06-01, 5000: 120+ at both closes (it was never in 91–120 then)

    The bucket-balance ratio of before (120+ at 02-28 ÷ 91–120 at 01-31) would read 5800 ÷ 800
    = 725 %; following the invoices, 91–120 → 120+ is 800 ÷ 800 = 100 %. Between the February
    and March closes, P (due 02-28, 700: current at 02-28, 31 days late at 03-31) skips 1–30:
    it counts as rolled from current."""
    clock.move_to(dt.datetime(2025, 11, 25, 18, tzinfo=dt.UTC))
    debtor = make_client(by=gerente, legal_name="Traspasos")

    def inv(number, issued, due, amount):
        return make_invoice(by=gerente, client=debtor, number=number, issue_date=issued, due_date=due, amount=amount)

    v = inv("V", D(2025, 11, 20), D(2025, 12, 20), "200")
    inv("R", D(2025, 9, 15), D(2025, 10, 15), "800")
    inv("Z", D(2025, 5, 1), D(2025, 6, 1), "5000")
    clock.move_to(dt.datetime(2026, 1, 5, 18, tzinfo=dt.UTC))
    inv("X", D(2026, 1, 1), D(2026, 1, 15), "100")
    y = inv("Y", D(2026, 1, 2), D(2026, 1, 31), "1000")
    w = inv("W", D(2026, 1, 3), D(2026, 1, 20), "300")
    clock.move_to(dt.datetime(2026, 2, 5, 18, tzinfo=dt.UTC))
    pay(gerente, debtor, "300", D(2026, 2, 5), w)
    clock.move_to(dt.datetime(2026, 2, 10, 18, tzinfo=dt.UTC))
    inv("P", D(2026, 2, 10), D(2026, 2, 28), "700")
    services.invoice_set_status(by=gerente, invoice=v, status="written_off", reason="Incobrable")
    clock.move_to(dt.datetime(2026, 2, 20, 18, tzinfo=dt.UTC))
    pay(gerente, debtor, "400", D(2026, 2, 20), y)
    clock.move_to(dt.datetime(2026, 4, 10, 18, tzinfo=dt.UTC))
    for end in (D(2026, 1, 31), D(2026, 2, 28), D(2026, 3, 31)):
        dashboard_jobs.snapshot_aging(month_end=end)

    trend = metrics.trend(Filters(currency="MXN", start=D(2026, 3, 1), end=D(2026, 3, 31)))
    jan_feb, feb_mar = trend.roll[-2], trend.roll[-1]
    assert (jan_feb.month_end, feb_mar.month_end) == (D(2026, 1, 31), D(2026, 2, 28))
    # Bases at 01-31: current Y 1000; 1–30 X 100 + W 300; 31–60 V 200; 91–120 R 800.
    assert jan_feb.bases == [Decimal("1000.00"), Decimal("400.00"), Decimal("200.00"), ZERO, Decimal("800.00")]
    assert jan_feb.rolled == [Decimal("600.00"), Decimal("100.00"), ZERO, ZERO, Decimal("800.00")]
    assert jan_feb.rates == [Decimal("60.0"), Decimal("25.0"), Decimal("0.0"), None, Decimal("100.0")]
    # The bucket balances themselves: 120+ at 02-28 = R 800 + Z 5000.
    assert trend.points[-2].buckets["120_plus"] == Decimal("5800.00")
    # Feb → Mar: current P 700 → 31–60 (skipped 1–30); 1–30 Y 600 → 31–60; 31–60 X 100 → 61–90.
    assert feb_mar.bases[:3] == [Decimal("700.00"), Decimal("600.00"), Decimal("100.00")]
    assert feb_mar.rates[:3] == [Decimal("100.0"), Decimal("100.0"), Decimal("100.0")]
    for row in trend.roll:
        assert all(rate is None or rate <= 100 for rate in row.rates)


def _stored_rows() -> list[tuple]:
    fields = [f.name for f in AgingSnapshot._meta.concrete_fields if f.name not in ("id", "computed_at")]
    return list(AgingSnapshot.objects.order_by("month_end", "client_id", "currency").values_list(*fields))


def test_a_run_of_months_reads_each_close_once_and_stores_what_month_by_month_stores(book):
    with CaptureQueriesContext(connection) as ctx:
        filled = dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    cubes = [q for q in ctx.captured_queries if q["sql"].startswith("CREATE TEMPORARY TABLE")]
    assert len(cubes) == 14  # 13 closes and the one before the first, each once
    together = _stored_rows()
    assert together and {row[0] for row in together} <= set(filled)

    for end in sorted(filled):
        dashboard_jobs.snapshot_aging(month_end=end)  # each close and the month before, afresh
    assert _stored_rows() == together


def test_rows_stored_before_roll_figures_show_no_rate_until_computed_again(book):
    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    AgingSnapshot.objects.filter(month_end=D(2026, 3, 31)).update(has_roll=False)
    trend = metrics.trend(mxn())
    assert trend.roll[-1].rates == [None] * 5 and trend.points[-1].has_snapshot
    dashboard_jobs.snapshot_aging(month_end=D(2026, 3, 31))
    assert metrics.trend(mxn()).roll[-1].rates[0] == Decimal("87.0")


def test_the_trend_says_which_months_have_no_snapshot(book):
    assert metrics.trend(mxn()).missing == metrics.month_ends(D(2026, 3, 31), 12)  # none taken
    dashboard_jobs.snapshot_aging(month_end=D(2026, 1, 31))
    dashboard_jobs.snapshot_aging(month_end=D(2026, 3, 31))
    trend = metrics.trend(mxn())
    assert trend.missing == [D(2026, 2, 28)]
    assert trend.points[-1].has_snapshot and trend.points[-1].cei is None  # no February opening
    assert trend.points[-1].dso == Decimal("51.2")  # 3800 / 2300 × 31, as on the card


def test_breakdowns_by_segment_collector_and_profile(book, gestora):
    by_segment = {row.label: row for row in metrics.breakdown(mxn(), "segment")}
    assert set(by_segment) == {"Regular", "Esporádico"}
    regular, sporadic = by_segment["Regular"], by_segment["Esporádico"]
    assert (regular.receivable, regular.current, regular.over_90) == (Decimal("2300.00"), 0, 0)
    # B: I3 1000 current, I5 500 over 90 days; sales I3 1500 + I4 800; cash 300 + 500.
    assert (sporadic.receivable, sporadic.current, sporadic.over_90) == (
        Decimal("1000.00") + Decimal("500.00"), Decimal("1000.00"), Decimal("500.00"),
    )  # fmt: skip
    assert sporadic.credit_sales == Decimal("2300.00") and sporadic.collected == Decimal("800.00")
    assert sporadic.dso == Decimal("20.2")  # 1500 / 2300 × 31 = 20.22
    assert regular.collected == Decimal("300.00") and regular.dso is None
    by_collector = {row.label: row.receivable for row in metrics.breakdown(mxn(), "collector")}
    assert by_collector == {"Lucía Gestora": Decimal("2300.00"), "Sin gestor": Decimal("1500.00")}
    by_profile = metrics.breakdown(mxn(), "profile")
    assert [(r.key, r.receivable) for r in by_profile] == [("new", Decimal("3800.00"))]
    # The breakdowns add up to the portfolio.
    assert sum(r.receivable for r in by_segment.values()) == metrics.kpis(mxn()).receivable


def test_each_metric_costs_a_fixed_number_of_queries(book, gerente):
    def count(fn):
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    few = (count(lambda: metrics.kpis(mxn())), count(lambda: metrics.trend(mxn())),
           count(lambda: metrics.breakdown(mxn(), "collector")),
           count(lambda: metrics.kpis_and_breakdowns(mxn())))  # fmt: skip
    # The dashboard reads the closing receivables and the period's flows once for the KPIs
    # and all three breakdowns: 8 queries (+ 2 for the segment and collector names).
    assert few == (6, 3, 4, 8)
    for n in range(15):  # many more clients, invoices and payments
        client = make_client(by=gerente, segment_code="regular")
        invoice = make_invoice(by=gerente, client=client, issue_date=D(2026, 3, 1), due_date=D(2026, 3, 5))
        pay(gerente, client, "10", D(2026, 3, 6 + n % 5), invoice)
    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    many = (count(lambda: metrics.kpis(mxn())), count(lambda: metrics.trend(mxn())),
            count(lambda: metrics.breakdown(mxn(), "collector")),
            count(lambda: metrics.kpis_and_breakdowns(mxn())))  # fmt: skip
    assert many == few
