"""The ledger's one bulk writer (accounts.services_bulk.ledger_bulk_insert): each rule of the
single-row services, broken by one row of a batch, is refused with an error naming that row
and field, and nothing of the batch is written. Imports, seed_demo and the benchmark loader
all write through it."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.utils import timezone

from accounts import services_bulk as bulk
from accounts.models import Client, Contact, Interaction, Invoice, Payment, PaymentAllocation
from accounts.services_bulk import (
    AllocationRow,
    ClientRow,
    ContactRow,
    InteractionRow,
    InvoiceRow,
    LedgerRows,
    LedgerRowsError,
    NewInvoice,
    PaymentRow,
)
from scripts.bench import loader
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db

D = Decimal
DAY = dt.date(2025, 3, 1)
AT = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def stored(gerente):
    """A stored client with a stored open invoice of 100.00 MXN, and another client."""
    uno = make_client(by=gerente, tax_id="UNO010101AAA", currency="MXN")
    otro = make_client(by=gerente, tax_id="OTR020202BBB", currency="MXN")
    invoice = make_invoice(by=gerente, client=uno, number="S-1", amount="100.00")
    return uno, otro, invoice


def _client(**kw) -> ClientRow:
    return ClientRow(**{"legal_name": "Nueva S.A.", "segment_id": segment().pk, "tax_id": "NUE030303CCC", **kw})


def _invoice(client, **kw) -> InvoiceRow:
    values = {"number": "N-1", "issue_date": DAY, "due_date": DAY, "currency": "MXN", "amount": D("50.00")}
    return InvoiceRow(client=client, **{**values, **kw})


def _payment(client, **kw) -> PaymentRow:
    values = {"received_on": DAY, "amount": D("50.00"), "currency": "MXN", "unallocated": D("50.00")}
    return PaymentRow(client=client, **{**values, **kw})


def _paid_invoice(client, paid: str, pay: str, *, status="paid", unallocated="0.00", **kw) -> LedgerRows:
    """A new invoice of 50.00 with a payment of ``pay`` allocating ``paid`` to it."""
    inv = _invoice(client, amount_paid=D(paid), status=status, **kw)
    payment = _payment(client, amount=D(pay), unallocated=D(unallocated))
    return LedgerRows(invoices=[inv], payments=[payment], allocations=[AllocationRow(payment, inv, D(paid))])


def _counts() -> tuple[int, ...]:
    models = (Client, Contact, Invoice, Payment, PaymentAllocation, Interaction, Interaction.invoices.through)
    return tuple(m.objects.count() for m in models)


# Each case: the batch (built from the stored client, the other client and the stored invoice)
# and the (table, index, field) the writer must name.
CASES = {
    "currency_not_iso": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, currency="pesos")]),
        "invoices",
        "currency",
    ),
    "client_currency_not_iso": (lambda u, o, s: LedgerRows(clients=[_client(currency="mx")]), "clients", "currency"),
    "country_not_iso": (lambda u, o, s: LedgerRows(clients=[_client(country="Mex")]), "clients", "country"),
    "time_zone_unknown": (
        lambda u, o, s: LedgerRows(clients=[_client(time_zone="Marte/Olympus")]),
        "clients",
        "time_zone",
    ),
    "negative_credit_limit": (
        lambda u, o, s: LedgerRows(clients=[_client(credit_limit=D("-1"))]),
        "clients",
        "credit_limit",
    ),
    "client_without_segment": (lambda u, o, s: LedgerRows(clients=[_client(segment_id=None)]), "clients", "segment"),
    "tax_id_taken": (lambda u, o, s: LedgerRows(clients=[_client(tax_id="UNO010101AAA")]), "clients", "tax_id"),
    "tax_id_repeated": (lambda u, o, s: LedgerRows(clients=[_client(), _client()]), "clients", "tax_id"),
    "client_status_unknown": (lambda u, o, s: LedgerRows(clients=[_client(status="moroso")]), "clients", "status"),
    "contact_email_invalid": (
        lambda u, o, s: LedgerRows(contacts=[ContactRow(client=u.pk, name="Ana", email="ana@")]),
        "contacts",
        "email",
    ),
    "contact_role_unknown": (
        lambda u, o, s: LedgerRows(contacts=[ContactRow(client=u.pk, name="Ana", role="jefa")]),
        "contacts",
        "role",
    ),
    "invoice_amount_zero": (lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, amount=D("0"))]), "invoices", "amount"),
    "invoice_amount_not_to_the_cent": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, amount=D("1.005"))]),
        "invoices",
        "amount",
    ),
    "due_before_issue": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, due_date=DAY - dt.timedelta(days=1))]),
        "invoices",
        "due_date",
    ),
    "invoice_number_taken": (lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, number="S-1")]), "invoices", "number"),
    "invoice_number_repeated": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk), _invoice(u.pk)]),
        "invoices",
        "number",
    ),
    "amount_paid_without_allocations": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, amount_paid=D("50.00"), status="paid")]),
        "invoices",
        "amount_paid",
    ),
    "amount_paid_above_amount": (lambda u, o, s: _paid_invoice(u.pk, "60.00", "60.00"), "invoices", "amount_paid"),
    "status_not_derived_from_payments": (
        lambda u, o, s: _paid_invoice(u.pk, "20.00", "20.00", status="paid"),
        "invoices",
        "status",
    ),
    "open_status_with_payments": (
        lambda u, o, s: _paid_invoice(u.pk, "50.00", "50.00", status="open"),
        "invoices",
        "status",
    ),
    "cancelled_with_payments": (
        lambda u, o, s: _paid_invoice(u.pk, "20.00", "20.00", status="cancelled"),
        "invoices",
        "status",
    ),
    "invoice_status_unknown": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(u.pk, status="pagadita")]),
        "invoices",
        "status",
    ),
    "payment_amount_negative": (
        lambda u, o, s: LedgerRows(payments=[_payment(u.pk, amount=D("-5"), unallocated=D("-5"))]),
        "payments",
        "amount",
    ),
    "payment_currency_not_iso": (
        lambda u, o, s: LedgerRows(payments=[_payment(u.pk, currency="usd")]),
        "payments",
        "currency",
    ),
    "payment_method_unknown": (
        lambda u, o, s: LedgerRows(payments=[_payment(u.pk, method="bitcoin")]),
        "payments",
        "method",
    ),
    "payment_in_the_future": (
        lambda u, o, s: LedgerRows(payments=[_payment(u.pk, received_on=timezone.localdate() + dt.timedelta(days=5))]),
        "payments",
        "received_on",
    ),
    "payment_reference_taken": (
        lambda u, o, s: LedgerRows(payments=[_payment(u.pk, reference="REF-1"), _payment(u.pk, reference="REF-1")]),
        "payments",
        "reference",
    ),
    "unallocated_not_the_rest": (
        lambda u, o, s: _paid_invoice(u.pk, "50.00", "80.00", unallocated="0.00"),
        "payments",
        "unallocated",
    ),
    "allocations_above_the_payment": (
        lambda u, o, s: _paid_invoice(u.pk, "50.00", "30.00", unallocated="0.00"),
        "payments",
        "allocations",
    ),
    "allocation_not_positive": (
        lambda u, o, s: LedgerRows(payments=[p := _payment(u.pk)], allocations=[AllocationRow(p, s.pk, D("0"))]),
        "allocations",
        "amount",
    ),
    "allocation_above_stored_balance": (
        lambda u, o, s: LedgerRows(
            payments=[p := _payment(u.pk, amount=D("150.00"), unallocated=D("0.00"))],
            allocations=[AllocationRow(p, s.pk, D("150.00"))],
        ),
        "allocations",
        "amount",
    ),
    "allocation_to_another_clients_invoice": (
        lambda u, o, s: LedgerRows(
            payments=[p := _payment(o.pk, unallocated=D("0.00"))], allocations=[AllocationRow(p, s.pk, D("50.00"))]
        ),
        "allocations",
        "invoice",
    ),
    "allocation_in_another_currency": (
        lambda u, o, s: LedgerRows(
            payments=[p := _payment(u.pk, currency="USD", unallocated=D("0.00"))],
            allocations=[AllocationRow(p, s.pk, D("50.00"))],
        ),
        "allocations",
        "invoice",
    ),
    "allocation_repeated": (
        lambda u, o, s: LedgerRows(
            payments=[p := _payment(u.pk, unallocated=D("0.00"))],
            allocations=[AllocationRow(p, s.pk, D("25.00")), AllocationRow(p, s.pk, D("25.00"))],
        ),
        "allocations",
        "invoice",
    ),
    "allocation_to_an_unknown_invoice": (
        lambda u, o, s: LedgerRows(
            payments=[p := _payment(u.pk, unallocated=D("0.00"))], allocations=[AllocationRow(p, 987654, D("50.00"))]
        ),
        "allocations",
        "invoice",
    ),
    "entry_in_the_future": (
        lambda u, o, s: LedgerRows(
            interactions=[
                InteractionRow(
                    client=u.pk, kind="note", summary="x", occurred_at=timezone.now() + dt.timedelta(hours=1)
                )
            ]
        ),
        "interactions",
        "occurred_at",
    ),
    "entry_kind_unknown": (
        lambda u, o, s: LedgerRows(interactions=[InteractionRow(client=u.pk, kind="telepathy", summary="x")]),
        "interactions",
        "kind",
    ),
    "entry_without_summary": (
        lambda u, o, s: LedgerRows(interactions=[InteractionRow(client=u.pk, kind="note", summary="")]),
        "interactions",
        "summary",
    ),
    "entry_with_another_clients_contact": (
        lambda u, o, s: LedgerRows(
            contacts=[c := ContactRow(client=o.pk, name="Ana")],
            interactions=[InteractionRow(client=u.pk, kind="call", summary="x", contact=c)],
        ),
        "interactions",
        "contact",
    ),
    "entry_linked_to_another_clients_invoice": (
        lambda u, o, s: LedgerRows(
            interactions=[InteractionRow(client=o.pk, kind="note", summary="x", invoices=(s.pk,))]
        ),
        "interactions",
        "invoices",
    ),
    "reference_to_a_row_not_in_the_batch": (
        lambda u, o, s: LedgerRows(invoices=[_invoice(_client())]),
        "invoices",
        "client",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_rule_refuses_the_row_that_breaks_it_and_writes_nothing(stored, case):
    build, table, name = CASES[case]
    rows = build(*stored)
    # A valid row in the same batch is not written either.
    rows.clients.append(_client(tax_id="VAL040404DDD", legal_name="Válida"))
    before = _counts()
    invoice = Invoice.objects.get(number="S-1")

    with pytest.raises(LedgerRowsError) as exc:
        bulk.ledger_bulk_insert(rows=rows)

    fields = {(t, f) for (t, _i), by_field in exc.value.row_errors.items() for f in by_field}
    assert (table, name) in fields, exc.value.row_errors
    assert all(m for by_field in exc.value.row_errors.values() for ms in by_field.values() for m in ms)
    assert _counts() == before
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.status) == (D("0.00"), Invoice.Status.OPEN)


def test_a_valid_batch_is_written_with_ids_and_stored_invoices_follow_their_allocations(stored):
    uno, _otro, invoice = stored
    client = _client()
    contact = ContactRow(client=client, name="Ana", email="ana@example.com")
    new = _invoice(client, amount_paid=D("20.00"), status="partially_paid")
    own = _payment(client, amount=D("20.00"), unallocated=D("0.00"))
    settle = _payment(uno.pk, amount=D("130.00"), unallocated=D("30.00"), reference="SPEI-1")
    entry = InteractionRow(client=client, kind="call", summary="Llamada", contact=contact, invoices=(new,))
    rows = LedgerRows(
        clients=[client],
        contacts=[contact],
        invoices=[new],
        payments=[own, settle],
        allocations=[AllocationRow(own, new, D("20.00")), AllocationRow(settle, invoice.pk, D("100.00"))],
        interactions=[entry],
    )

    written = bulk.ledger_bulk_insert(rows=rows)

    assert written["clients"] == 1 and written["allocations"] == 2 and written["interaction_invoices"] == 1
    assert Invoice.objects.get(pk=new.id).client_id == client.id == Contact.objects.get(pk=contact.id).client_id
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.status, invoice.open_balance) == (D("100.00"), "paid", D("0.00"))
    assert Payment.objects.get(reference="SPEI-1").unallocated == D("30.00")
    assert list(Interaction.objects.get(pk=entry.id).invoices.all()) == [Invoice.objects.get(pk=new.id)]


def test_imports_seed_demo_and_the_loader_write_through_the_same_writer(gerente, monkeypatch):
    callers = []
    writer = bulk.ledger_bulk_insert

    def spy(**kwargs):
        callers.append({table for table in ("clients", "invoices", "interactions") if getattr(kwargs["rows"], table)})
        return writer(**kwargs)

    monkeypatch.setattr(bulk, "ledger_bulk_insert", spy)
    uno = make_client(by=gerente, tax_id="UNO010101AAA")

    bulk.invoices_bulk_create(
        by=gerente, invoices=[NewInvoice(client=uno, number="I-1", issue_date=DAY, amount=D("5"))]
    )
    assert callers == [{"invoices"}, {"interactions"}]  # the invoices, then their timeline entry

    callers.clear()
    call_command("seed_demo", "--clients", "5", "--today", "2026-03-15", "--reset", stdout=io.StringIO())
    assert {"clients", "invoices", "interactions"} in callers

    callers.clear()
    loader.load(n_clients=5, n_invoices=20, today=dt.date(2026, 3, 15), seed=1)
    assert callers == [{"clients", "invoices", "interactions"}]


def _ledger_schema() -> tuple[list, list]:
    """The ledger tables' foreign keys and indexes: name, table, method, columns, expressions,
    uniqueness, and whether partial. (Not the text of a partial index's predicate: PostgreSQL
    prints an equivalent predicate with its casts spelled differently once re-created.)"""
    tables = [m._meta.db_table for m in bulk._LOAD_MODELS]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
            [tables],
        )
        keys = cursor.fetchall()
        cursor.execute(
            """
            SELECT c.relname, i.indrelid::regclass::text, am.amname, i.indkey::text, i.indnkeyatts,
                   i.indisunique, i.indisprimary, pg_get_expr(i.indexprs, i.indrelid), i.indpred IS NOT NULL
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
            WHERE i.indrelid = ANY(%s::regclass[]) ORDER BY 1
            """,
            [tables],
        )
        return keys, cursor.fetchall()


def test_a_bulk_load_puts_back_every_foreign_key_and_index_and_leaves_statistics():
    before = _ledger_schema()
    assert before[0] and before[1]
    client = _client()
    rows = LedgerRows(clients=[client], invoices=[_invoice(client)], contacts=[ContactRow(client=client, name="Ana")])

    with bulk.ledger_bulk_load():
        bulk.ledger_bulk_insert(rows=rows)
        assert _ledger_schema() != before  # set aside while the rows go in

    assert _ledger_schema() == before
    assert Invoice.objects.get(pk=rows.invoices[0].id).client_id == client.id
    with connection.cursor() as cursor:
        # The load's ANALYZE: the planner knows the tables are no longer empty.
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Invoice._meta.db_table])
        assert cursor.fetchone()[0] >= 1


def test_a_bulk_load_whose_rows_break_a_foreign_key_writes_nothing_and_keeps_the_keys():
    before = _ledger_schema()
    client = _client()
    stray = ContactRow(client=999_999_999, name="Nadie")  # a client id that does not exist

    with pytest.raises(IntegrityError), bulk.ledger_bulk_load():
        bulk.ledger_bulk_insert(rows=LedgerRows(clients=[client], contacts=[stray]))

    assert _ledger_schema() == before
    assert not Client.objects.filter(tax_id=client.tax_id).exists()
    assert not Contact.objects.filter(name="Nadie").exists()


def test_a_bulk_load_of_an_empty_ledger_refuses_a_key_an_earlier_call_of_the_load_wrote():
    # The load keeps the keys it wrote instead of asking the database (its COPY may still run).
    with bulk.ledger_bulk_load():
        first = _client()
        bulk.ledger_bulk_insert(rows=LedgerRows(clients=[first], invoices=[_invoice(first)]))
        again = _client(legal_name="Otra S.A.")  # the same tax id
        with pytest.raises(LedgerRowsError) as caught:
            bulk.ledger_bulk_insert(rows=LedgerRows(clients=[again], invoices=[_invoice(again)]))
    errors = caught.value.row_errors
    assert ("clients", 0) in errors and ("invoices", 0) in errors


def test_a_bulk_load_of_an_empty_ledger_leaves_the_sequences_after_its_ids(gerente):
    rows = LedgerRows()
    with bulk.ledger_bulk_load():
        assert bulk._load is not None  # the ledger is empty: the load counts ids and keys itself
        for n in range(3):
            client = _client(tax_id=f"NUE03030{n}CCC")
            rows = LedgerRows(clients=[client], invoices=[_invoice(client, number=f"N-{n}")])
            bulk.ledger_bulk_insert(rows=rows)
            # Another statement on the connection waits for the COPY in flight.
            assert Client.objects.filter(tax_id=client.tax_id).exists()
    later = make_invoice(by=gerente, client=Client.objects.get(pk=rows.clients[0].id), number="N-later", amount="10.00")
    assert later.pk > rows.invoices[0].id
    assert Invoice.objects.filter(number__startswith="N-").count() == 4
