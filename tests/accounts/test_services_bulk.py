"""Set-based ledger writes (accounts.services_bulk): the single-row services' rules, checked per
set; nothing written when any item fails; one timeline entry per client per load."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied

from accounts import audit
from accounts import services_bulk as bulk
from accounts.models import Client, Interaction, Invoice, Payment, PaymentAllocation
from accounts.services_bulk import AllocationRequest, NewInvoice, NewPayment
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def uno(gerente):
    return make_client(by=gerente, tax_id="UNO010101AAA", payment_terms_days=45, currency="MXN")


@pytest.fixture
def dos(gerente):
    return make_client(by=gerente, tax_id="DOS020202BBB", currency="EUR")


def _import_entries(client):
    return list(Interaction.objects.filter(client=client).exclude(summary="Alta del cliente"))


def test_invoices_get_the_same_defaults_as_invoice_create_and_one_timeline_entry_per_client(gerente, uno, dos):
    specs = [
        NewInvoice(client=uno, number=f" A-{i} ", issue_date=dt.date(2025, 3, 1), amount=D("10")) for i in range(30)
    ]
    specs.append(NewInvoice(client=dos, number="B-1", issue_date=dt.date(2025, 3, 1), amount=D("99.5")))
    created = bulk.invoices_bulk_create(by=gerente, invoices=specs, source="ventas.csv")

    assert [inv.number for inv in created[:2]] == ["A-0", "A-1"] and all(inv.pk for inv in created)
    a0 = Invoice.objects.get(number="A-0")
    assert a0.due_date == dt.date(2025, 3, 1) + dt.timedelta(days=45) and a0.currency == "MXN"
    assert a0.status == Invoice.Status.OPEN and a0.open_balance == D("10.00")
    assert Invoice.objects.get(number="B-1").currency == "EUR"
    # The audit history has one entry for the load, credited to the manager; it answers for
    # each row what it was created with.
    [created] = audit.object_history(a0)
    assert created.action == LogEntry.Action.CREATE and created.actor == gerente
    assert created.additional_data[audit.BULK]["count"] == 31
    assert created.additional_data[audit.BULK]["source"] == "ventas.csv"
    assert [(c.actor, c.after) for c in audit.field_history(a0, "number")] == [(gerente, "A-0")]
    assert audit.field_history(a0, "amount")[0].after == "10.00"
    [entry] = _import_entries(uno)
    assert entry.summary == "Importadas 30 facturas por $300.00 (archivo ventas.csv)"
    assert entry.kind == Interaction.Kind.SYSTEM and entry.author == gerente
    # The body details the first lines and counts the rest; only those invoices are linked.
    assert entry.body.count("\n") == bulk.BODY_LINES and entry.body.endswith("… y 20 líneas más")
    assert entry.invoices.count() == bulk.BODY_LINES
    [entry_dos] = _import_entries(dos)
    assert entry_dos.summary.startswith("Importada 1 factura por EUR\xa099.50")  # the business's es-MX


def test_the_queries_do_not_grow_with_the_rows(gerente, uno, django_assert_max_num_queries):
    def load(prefix, n):
        specs = [
            NewInvoice(client=uno, number=f"{prefix}-{i}", issue_date=dt.date(2025, 1, 1), amount=D("5"))
            for i in range(n)
        ]
        invoices = bulk.invoices_bulk_create(by=gerente, invoices=specs)
        settle = [
            NewPayment(
                client=uno,
                amount=D("5"),
                received_on=dt.date(2025, 2, 1),
                allocations=[AllocationRequest(invoice_id=inv.pk, amount=D("5"))],
            )
            for inv in invoices
        ]
        bulk.payments_bulk_record(by=gerente, payments=settle)

    with django_assert_max_num_queries(40):
        load("Q", 10)
    with django_assert_max_num_queries(40):
        load("R", 1500)
    assert Invoice.objects.filter(number__startswith="R-", status=Invoice.Status.PAID).count() == 1500


def test_invalid_items_are_named_by_position_and_field_and_nothing_is_written(gerente, uno):
    make_invoice(by=gerente, client=uno, number="YA-1")
    before = (Invoice.objects.count(), Interaction.objects.count())
    specs = [
        NewInvoice(client=uno, number="OK-1", issue_date=dt.date(2025, 1, 10), amount=D("10")),
        NewInvoice(client=uno, number="YA-1", issue_date=dt.date(2025, 1, 10), amount=D("10")),  # stored
        NewInvoice(client=uno, number="OK-1", issue_date=dt.date(2025, 1, 10), amount=D("10")),  # repeated
        NewInvoice(
            client=uno, number="X-3", issue_date=dt.date(2025, 1, 10), due_date=dt.date(2025, 1, 1), amount=D("1")
        ),
        NewInvoice(client=uno, number="X-4", issue_date=dt.date(2025, 1, 10), amount=D("0"), currency="pesos"),
    ]
    with pytest.raises(bulk.BulkValidationError) as exc:
        bulk.invoices_bulk_create(by=gerente, invoices=specs)
    errors = exc.value.item_errors
    assert set(errors) == {1, 2, 3, 4}
    assert errors[1] == {"number": ["Ya existe una factura con este folio."]}
    assert errors[2] == {"number": ["Ya existe una factura con este folio."]}
    assert errors[3] == {"due_date": ["El vencimiento no puede ser anterior a la fecha de emisión."]}
    assert set(errors[4]) == {"amount", "currency"}
    assert (Invoice.objects.count(), Interaction.objects.count()) == before


def test_only_managers_load_invoices(gestora, uno):
    with pytest.raises(PermissionDenied):
        bulk.invoices_bulk_create(
            by=gestora, invoices=[NewInvoice(client=uno, number="Z-1", issue_date=dt.date(2025, 1, 1), amount=D("1"))]
        )


def test_payments_apply_in_order_oldest_due_first_and_leave_the_rest_as_credit(gerente, uno):
    old = make_invoice(
        by=gerente, client=uno, amount="100.00", due_date=dt.date(2025, 1, 31), issue_date=dt.date(2025, 1, 1)
    )
    new = make_invoice(
        by=gerente, client=uno, amount="100.00", due_date=dt.date(2025, 2, 28), issue_date=dt.date(2025, 2, 1)
    )
    named = make_invoice(
        by=gerente, client=uno, amount="50.00", due_date=dt.date(2025, 3, 31), issue_date=dt.date(2025, 3, 1)
    )
    payments = bulk.payments_bulk_record(
        by=gerente,
        payments=[
            NewPayment(
                client=uno,
                amount=D("60"),
                received_on=dt.date(2025, 3, 1),
                allocations=[AllocationRequest(invoice_id=named.pk, amount=D("50"))],
            ),
            NewPayment(client=uno, amount=D("150"), received_on=dt.date(2025, 3, 2), reference="TR-1"),
            NewPayment(client=uno, amount=D("80"), received_on=dt.date(2025, 3, 3), reference="TR-2"),
        ],
    )
    assert all(p.created for p in payments)
    for inv in (old, new, named):
        inv.refresh_from_db()
    assert (old.amount_paid, old.status) == (D("100.00"), Invoice.Status.PAID)
    # Each payment saw what the earlier ones left: the last one paid the newer invoice's 50
    # and kept 30 as credit (the named invoice was already paid by the first).
    assert (new.amount_paid, new.status) == (D("100.00"), Invoice.Status.PAID)
    assert (named.amount_paid, named.status) == (D("50.00"), Invoice.Status.PAID)
    assert [p.unallocated for p in Payment.objects.order_by("id")] == [D("10.00"), D("0.00"), D("30.00")]
    assert PaymentAllocation.objects.count() == 4
    [paid] = LogEntry.objects.get_for_object(old).filter(action=LogEntry.Action.UPDATE)
    assert paid.actor == gerente and paid.changes["status"] == ["open", "paid"]
    assert audit.object_history(payments[1]).get().action == LogEntry.Action.CREATE
    [entry] = _import_entries(uno)[:1]
    assert entry.summary == "3 pagos registrados por $290.00"


def test_a_known_reference_is_returned_and_a_conflicting_one_is_an_error(gerente, uno, dos):
    first = bulk.payments_bulk_record(
        by=gerente, payments=[NewPayment(client=uno, amount=D("10"), received_on=dt.date(2025, 1, 1), reference="R-9")]
    )[0]
    again = bulk.payments_bulk_record(
        by=gerente, payments=[NewPayment(client=uno, amount=D("10"), received_on=dt.date(2025, 1, 1), reference="R-9")]
    )[0]
    assert again.pk == first.pk and again.created is False and Payment.objects.count() == 1
    with pytest.raises(bulk.BulkValidationError) as exc:
        bulk.payments_bulk_record(
            by=gerente,
            payments=[
                NewPayment(client=uno, amount=D("5"), received_on=dt.date(2025, 1, 2), reference="NUEVA"),
                NewPayment(client=dos, amount=D("10"), received_on=dt.date(2025, 1, 1), reference="R-9"),
            ],
        )
    assert exc.value.item_errors == {1: {"reference": ["La referencia R-9 ya corresponde a otro pago."]}}
    assert not Payment.objects.filter(reference="NUEVA").exists()


def test_an_allocation_over_the_balance_left_by_an_earlier_payment_is_refused(gerente, uno):
    inv = make_invoice(by=gerente, client=uno, amount="100.00")
    pay = lambda amount: NewPayment(  # noqa: E731
        client=uno,
        amount=D(amount),
        received_on=dt.date.today(),
        allocations=[AllocationRequest(invoice_id=inv.pk, amount=D(amount))],
    )
    with pytest.raises(bulk.BulkValidationError) as exc:
        bulk.payments_bulk_record(by=gerente, payments=[pay("70"), pay("40"), pay("10")])
    assert list(exc.value.item_errors) == [1]
    assert "su saldo es 30.00" in exc.value.item_errors[1]["allocations"][0]
    inv.refresh_from_db()
    assert inv.amount_paid == 0 and not Payment.objects.exists()


def test_a_future_payment_date_and_a_negative_allocation_are_refused(gerente, uno):
    inv = make_invoice(by=gerente, client=uno, amount="100.00")
    with pytest.raises(bulk.BulkValidationError) as exc:
        bulk.payments_bulk_record(
            by=gerente,
            payments=[
                NewPayment(client=uno, amount=D("1"), received_on=dt.date.today() + dt.timedelta(days=5)),
                NewPayment(
                    client=uno,
                    amount=D("1"),
                    received_on=dt.date.today(),
                    allocations=[AllocationRequest(invoice_id=inv.pk, amount=D("-1"))],
                ),
            ],
        )
    assert set(exc.value.item_errors[0]) == {"received_on"} and set(exc.value.item_errors[1]) == {"allocations"}


def test_clients_upsert_by_tax_id_with_model_defaults_and_change_lines(gerente, gestora, uno):
    result = bulk.clients_bulk_upsert(
        by=gerente,
        rows=[
            {"tax_id": "nue030303ccc", "legal_name": " Nueva S.A. ", "segment": segment(), "collector": gestora},
            {"tax_id": "uno010101aaa", "legal_name": "Uno Renombrada"},
        ],
        source="clientes.csv",
    )
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    nueva = Client.objects.get(tax_id="NUE030303CCC")
    assert nueva.legal_name == "Nueva S.A." and nueva.currency == "MXN" and nueva.payment_terms_days == 30
    assert nueva.collector == gestora
    [entry] = _import_entries(uno)
    assert entry.summary == "Datos del cliente actualizados (archivo clientes.csv)"
    assert "razón social:" in entry.body and "→ Uno Renombrada" in entry.body
    assert Interaction.objects.filter(client=nueva).get().summary.startswith("Alta del cliente")

    again = bulk.clients_bulk_upsert(by=gerente, rows=[{"tax_id": "UNO010101AAA", "legal_name": "Uno Renombrada"}])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


def test_clients_with_a_repeated_tax_id_or_an_unknown_time_zone_are_refused(gerente):
    with pytest.raises(bulk.BulkValidationError) as exc:
        bulk.clients_bulk_upsert(
            by=gerente,
            rows=[
                {"tax_id": "REP1", "legal_name": "A", "segment": segment()},
                {"tax_id": "rep1", "legal_name": "B", "segment": segment()},
                {"tax_id": "TZ1", "legal_name": "C", "segment": segment(), "time_zone": "Marte/Olympus"},
                {"tax_id": "SEG1", "legal_name": "D"},
            ],
        )
    errors = exc.value.item_errors
    assert set(errors) == {1, 2, 3}
    assert set(errors[1]) == {"tax_id"} and set(errors[2]) == {"time_zone"} and set(errors[3]) == {"segment"}
    assert not Client.objects.filter(tax_id__in=["REP1", "TZ1", "SEG1"]).exists()


def test_one_timeline_batch_shared_by_several_calls_writes_one_entry_per_client(gerente, uno):
    timeline = bulk.TimelineBatch(by=gerente, source="libro.xlsx")
    invoices = bulk.invoices_bulk_create(
        by=gerente,
        invoices=[NewInvoice(client=uno, number="T-1", issue_date=dt.date(2025, 1, 1), amount=D("40"))],
        timeline=timeline,
    )
    bulk.invoices_bulk_create(
        by=gerente,
        invoices=[NewInvoice(client=uno, number="T-2", issue_date=dt.date(2025, 1, 2), amount=D("60"))],
        timeline=timeline,
    )
    bulk.payments_bulk_record(
        by=gerente,
        payments=[
            NewPayment(
                client=uno,
                amount=D("40"),
                received_on=dt.date(2025, 1, 20),
                allocations=[AllocationRequest(invoice_id=invoices[0].pk, amount=D("40"))],
            )
        ],
        timeline=timeline,
    )
    assert _import_entries(uno) == []  # nothing until the batch is flushed
    timeline.flush()
    [entry] = _import_entries(uno)
    assert entry.summary == "Importadas 2 facturas por $100.00 · 1 pago registrado por $40.00 (archivo libro.xlsx)"
    assert sorted(entry.invoices.values_list("number", flat=True)) == ["T-1", "T-2"]


def test_the_field_history_of_a_bulk_load_has_the_values_a_save_would_record(gerente, uno):
    [invoice] = bulk.invoices_bulk_create(
        by=gerente, invoices=[NewInvoice(client=uno, number="AU-1", issue_date=dt.date(2025, 1, 1), amount=D("7.5"))]
    )
    [payment] = bulk.payments_bulk_record(
        by=gerente, payments=[NewPayment(client=uno, amount=D("3"), received_on=dt.date(2025, 1, 2), allocations=[])]
    )
    for obj in (invoice, payment):
        stored = type(obj).objects.get(pk=obj.pk)
        columns = {f.name for f in type(obj)._meta.concrete_fields}
        # auditlog's own diff of the saved row (it also lists the relations pointing at the
        # row, which hold nothing for a new one): one entry for the load, and each field's
        # history starts with the value a save() would have recorded.
        expected = {k: list(v) for k, v in model_instance_diff(None, stored).items() if k in columns}
        assert expected
        for name, values in expected.items():
            [change] = audit.field_history(stored, name)
            assert [change.before, change.after] == values and change.actor == gerente
