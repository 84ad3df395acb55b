"""Aging, visibility and the client list: correct numbers at a fixed query cost."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts import selectors, services
from accounts.selectors import BUCKETS, bucket_for_days
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 6, 30)


def _due(days_overdue: int) -> dt.date:
    return TODAY - dt.timedelta(days=days_overdue)


@pytest.mark.parametrize(
    ("days", "code"),
    [
        (-5, "current"),
        (0, "current"),
        (1, "1_30"),
        (30, "1_30"),
        (31, "31_60"),
        (60, "31_60"),
        (61, "61_90"),
        (90, "61_90"),
        (91, "91_120"),
        (120, "91_120"),
        (121, "120_plus"),
        (900, "120_plus"),
    ],
)
def test_bucket_boundaries(days, code):
    assert bucket_for_days(days).code == code


def test_sql_and_python_buckets_agree(gerente, gestora):
    client = make_client(by=gerente, collector=gestora)
    days = [-10, 0, 1, 30, 31, 60, 61, 90, 91, 120, 121, 400]
    for d in days:
        make_invoice(
            by=gerente, client=client, due_date=_due(d), issue_date=_due(d) - dt.timedelta(days=30), number=f"D{d}"
        )
    rows = {inv.number: inv.bucket for inv in selectors.client_invoices(client, TODAY)}
    assert rows == {f"D{d}": bucket_for_days(d).code for d in days}


def test_client_summary_by_bucket_and_currency(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, credit_limit=Decimal("10000.00"))
    make_invoice(by=gerente, client=client, amount="1000.00", due_date=_due(-3), issue_date=_due(30))
    make_invoice(by=gerente, client=client, amount="2000.00", due_date=_due(45), issue_date=_due(80))
    make_invoice(by=gerente, client=client, amount="500.00", due_date=_due(200), issue_date=_due(230))
    make_invoice(by=gerente, client=client, amount="99.00", currency="USD", due_date=_due(10), issue_date=_due(40))
    services.payment_record(by=gestora, client=client, amount=Decimal("100.00"), received_on=TODAY)  # → oldest

    summary = selectors.client_summary(client, TODAY)
    mxn = summary.main
    assert mxn.currency == "MXN"
    by_code = {b.code: amount for b, amount, _n in mxn.buckets}
    assert by_code == {
        "current": Decimal("1000.00"),
        "1_30": 0,
        "31_60": Decimal("2000.00"),
        "61_90": 0,
        "91_120": 0,
        "120_plus": Decimal("400.00"),
    }
    assert mxn.open_balance == Decimal("3400.00")
    assert mxn.overdue == Decimal("2400.00")
    assert summary.credit_used_pct == Decimal("34.0")
    assert summary.max_days_overdue == 200
    assert [c.currency for c in summary.currencies] == ["MXN", "USD"]
    assert summary.currencies[1].overdue == Decimal("99.00")


def test_paid_cancelled_and_written_off_invoices_are_not_receivables(gerente, gestora):
    client = make_client(by=gerente, collector=gestora)
    a = make_invoice(by=gerente, client=client, amount="100.00", due_date=_due(10), issue_date=_due(40))
    b = make_invoice(by=gerente, client=client, amount="200.00", due_date=_due(10), issue_date=_due(40))
    make_invoice(by=gerente, client=client, amount="300.00", due_date=_due(10), issue_date=_due(40))
    services.invoice_set_status(by=gerente, invoice=a, status="cancelled", reason="Error de captura")
    services.invoice_set_status(by=gerente, invoice=b, status="written_off", reason="Incobrable")
    assert selectors.client_summary(client, TODAY).main.open_balance == Decimal("300.00")


def test_a_collector_sees_only_their_clients(gerente, gestora, gestor):
    mine = make_client(by=gerente, collector=gestora)
    theirs = make_client(by=gerente, collector=gestor)
    assert list(selectors.clients_visible_to(gestora)) == [mine]
    assert set(selectors.clients_visible_to(gerente)) == {mine, theirs}


def test_a_user_without_role_sees_nothing(gerente, nobody):
    make_client(by=gerente)
    assert not selectors.clients_visible_to(nobody).exists()


def test_client_list_search_filters_and_sort(gerente, gestora, gestor):
    big = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A.", tax_id="FEM900101AA1")
    small = make_client(by=gerente, collector=gestor, legal_name="Abarrotes Doña Lupe", segment_code="esporadico")
    make_invoice(by=gerente, client=big, amount="9000.00", due_date=_due(70), issue_date=_due(100), number="FM-77")
    make_invoice(by=gerente, client=small, amount="100.00", due_date=_due(5), issue_date=_due(35))

    def names(**kw):
        return [c.legal_name for c in selectors.client_list(user=gerente, today=TODAY, **kw)]

    assert names(q="martillo") == [big.legal_name]
    assert names(q="FM-77") == [big.legal_name]
    assert names(q="fem900101") == [big.legal_name]
    assert names(bucket="61_90") == [big.legal_name]
    assert names(bucket="1_30") == [small.legal_name]
    assert names(segment=small.segment_id) == [small.legal_name]
    assert names(collector=gestor.pk) == [small.legal_name]
    assert names(sort="-overdue") == [big.legal_name, small.legal_name]
    assert names(sort="balance") == [small.legal_name, big.legal_name]
    row = selectors.client_list(user=gerente, today=TODAY, q="martillo").get()
    assert row.open_balance_total == Decimal("9000.00") and row.oldest_due == _due(70)
    assert [c.legal_name for c in selectors.client_list(user=gestora, today=TODAY)] == [big.legal_name]


def test_portfolio_aging_totals_match_the_invoices(gerente, gestora, gestor):
    a = make_client(by=gerente, collector=gestora)
    b = make_client(by=gerente, collector=gestor)
    make_invoice(by=gerente, client=a, amount="100.00", due_date=_due(-1), issue_date=_due(29))
    make_invoice(by=gerente, client=a, amount="200.00", due_date=_due(95), issue_date=_due(125))
    make_invoice(by=gerente, client=b, amount="400.00", due_date=_due(15), issue_date=_due(45))
    [row] = selectors.portfolio_aging(user=gerente, today=TODAY)
    assert row.total == Decimal("700.00") and row.overdue == Decimal("600.00")
    assert row.clients_overdue == 2
    assert {b.code: (amt, n) for b, amt, n in row.buckets}["91_120"] == (Decimal("200.00"), 1)
    [mine] = selectors.portfolio_aging(user=gestora, today=TODAY)
    assert mine.total == Decimal("300.00")
    assert len(BUCKETS) == 6


def test_client_list_costs_the_same_queries_for_many_rows(gerente, gestora, django_assert_num_queries):
    def run():
        return [
            (c.legal_name, c.segment.name, c.collector and c.collector.username, c.open_balance_total)
            for c in selectors.client_list(user=gerente, today=TODAY)[:25]
        ]

    for _ in range(2):
        c = make_client(by=gerente, collector=gestora)
        make_invoice(by=gerente, client=c, due_date=_due(3), issue_date=_due(33))
    gerente._morosos_roles = None
    with django_assert_num_queries(2) as few:  # roles + list
        run()
    for _ in range(20):
        c = make_client(by=gerente, collector=gestora)
        make_invoice(by=gerente, client=c, due_date=_due(3), issue_date=_due(33))
    gerente._morosos_roles = None
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(run()) == 22
