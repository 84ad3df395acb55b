"""Each ledger rule of ``accounts.rules`` gives the same answer in SQL, in the ORM and in
Python, on one fixture of edge cases (statuses, zero balance, every aging boundary)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from accounts import rules
from accounts.models import Invoice, Payment, PaymentAllocation
from tests.factories import make_client

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 5, 15)
# Days past due on TODAY: before the due date, on it, and both sides of every bucket limit.
AGES = (-10, -1, 0, 1, 30, 31, 60, 61, 90, 91, 120, 121, 400)
EXPECTED_BUCKET = {
    -10: "current", -1: "current", 0: "current", 1: "1_30", 30: "1_30", 31: "31_60", 60: "31_60",
    61: "61_90", 90: "61_90", 91: "91_120", 120: "91_120", 121: "120_plus", 400: "120_plus",
}  # fmt: skip


@pytest.fixture(name="ledger")
def ledger_fixture(gerente):
    client = make_client(by=gerente)
    n = 0

    def invoice(status="open", age=10, amount="100.00", paid="0.00"):
        nonlocal n
        n += 1
        due = TODAY - dt.timedelta(days=age)
        return Invoice.objects.create(
            number=f"R-{n}", client=client, issue_date=due - dt.timedelta(days=30), due_date=due,
            currency="MXN", amount=Decimal(amount), amount_paid=Decimal(paid), status=status,
        )  # fmt: skip

    def settle(inv, *days_after_due):
        for days in days_after_due:
            part = inv.amount / len(days_after_due)
            payment = Payment.objects.create(
                client=client, received_on=inv.due_date + dt.timedelta(days=days), amount=part, currency="MXN"
            )
            PaymentAllocation.objects.create(payment=payment, invoice=inv, amount=part)

    for age in AGES:
        invoice(age=age)
    invoice("partially_paid", paid="40.00")
    invoice("partially_paid", age=-3, paid="99.99")
    settle(invoice("paid", paid="100.00", age=20), -2)  # paid before its due date
    settle(invoice("paid", paid="100.00", age=20), 0)  # on the due date
    settle(invoice("paid", paid="100.00", age=20), 3, 9)  # late, in two payments
    invoice("cancelled")
    invoice("written_off")
    invoice("disputed")
    invoice("disputed", amount="50.00", paid="0.00", age=-2)
    return client


def _sql(expression: str, params=()) -> dict[int, object]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT i.id, {expression} FROM accounts_invoice i", list(params))
        return dict(cursor.fetchall())


def _orm(expression) -> dict[int, object]:
    return dict(Invoice.objects.annotate(v=expression).values_list("pk", "v"))


def _python(function) -> dict[int, object]:
    return {inv.pk: function(inv) for inv in Invoice.objects.prefetch_related("allocations__payment")}


def _matching(q) -> set[int]:
    return set(Invoice.objects.filter(q).values_list("pk", flat=True))


def _true(values: dict) -> set[int]:
    return {pk for pk, v in values.items() if v}


def test_open_invoice_is_one_rule(ledger):
    python = _python(rules.is_open_invoice)
    assert _true(_sql(rules.open_invoice_sql("i"))) == _matching(rules.open_invoice_q()) == _true(python)
    statuses = set(Invoice.objects.filter(pk__in=_true(python)).values_list("status", flat=True))
    assert statuses == {"open", "partially_paid"}


def test_collectible_invoice_is_one_rule(ledger):
    python = _python(rules.is_collectible)
    assert _true(_sql(rules.collectible_sql("i"))) == _matching(rules.COLLECTIBLE) == _true(python)
    statuses = set(Invoice.objects.filter(pk__in=_true(python)).values_list("status", flat=True))
    assert statuses == {"open", "partially_paid", "disputed"}


def test_settled_invoice_and_its_settlement_date_are_one_rule(ledger):
    python = _python(rules.is_settled)
    assert _true(_sql(rules.settled_sql("i"))) == _matching(rules.settled_q()) == _true(python)
    assert len(_true(python)) == 3
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.due_date, s.settled_on FROM ({rules.settled_invoices_sql()}) s ORDER BY 1, 2")
        in_sql = cursor.fetchall()
    in_python = sorted((inv.due_date, rules.settled_on(inv)) for inv in Invoice.objects.filter(status="paid"))
    assert in_sql == in_python
    due = TODAY - dt.timedelta(days=20)
    assert [s for _d, s in in_python] == [due - dt.timedelta(days=2), due, due + dt.timedelta(days=9)]


def test_days_late_is_one_rule(ledger):
    in_sql = _sql(rules.days_late_sql("%s", "i.due_date"), [TODAY])
    in_orm = _orm(rules.days_late_expr(TODAY))
    in_python = _python(lambda inv: rules.days_late(inv.due_date, TODAY))
    assert in_sql == in_orm == in_python
    by_due = {inv.due_date: in_python[inv.pk] for inv in Invoice.objects.all()}
    assert {age: by_due[TODAY - dt.timedelta(days=age)] for age in AGES} == {age: max(age, 0) for age in AGES}
    # A settlement date instead of today: the same rule (0 when paid on or before the due date).
    assert rules.days_late(TODAY, TODAY - dt.timedelta(days=1)) == 0
    assert Invoice(due_date=TODAY - dt.timedelta(days=7)).days_overdue(TODAY) == 7


def test_overdue_is_one_rule(ledger):
    in_sql = _true(_sql(rules.overdue_sql("%s", "i.due_date"), [TODAY]))
    in_python = _true(_python(lambda inv: rules.is_overdue(inv.due_date, TODAY)))
    assert in_sql == _matching(rules.overdue_q(TODAY)) == in_python
    assert not rules.is_overdue(TODAY, TODAY) and rules.is_overdue(TODAY - dt.timedelta(days=1), TODAY)


def test_aging_bucket_is_one_rule_at_every_boundary(ledger):
    sql, params = rules.aging_bucket_sql(TODAY, "i.due_date")
    in_sql = _sql(sql, params)
    in_orm = _orm(rules.aging_bucket_expr(TODAY))
    in_python = _python(lambda inv: rules.aging_bucket_of(inv.due_date, TODAY))
    assert in_sql == in_orm == in_python
    by_due = {inv.due_date: in_python[inv.pk] for inv in Invoice.objects.all()}
    assert {age: by_due[TODAY - dt.timedelta(days=age)] for age in AGES} == EXPECTED_BUCKET
    # The filter form (the client list's bucket filter) selects the same invoices.
    for bucket in rules.BUCKETS:
        in_bucket = {pk for pk, code in in_python.items() if code == bucket.code}
        assert _matching(rules.due_range(bucket, TODAY)) == in_bucket


def test_sql_literals_are_only_plain_choices():
    assert rules.sql_literal("partially_paid") == "'partially_paid'"
    with pytest.raises(ValueError):
        rules.sql_literal("x'; DROP TABLE y; --")
