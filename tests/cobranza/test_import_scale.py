"""Imports at scale: the write costs a constant number of statements whatever the number of
rows (set-based: COPY, one audit entry per model and load), and the audit history still
answers "who set this field of this invoice, and when" for an imported invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import audit, services
from accounts.models import Invoice
from cobranza.imports import services as imports
from cobranza.imports.services import Options
from cobranza.models import ImportJob
from tests.factories import make_client, make_user

pytestmark = pytest.mark.django_db

INVOICE_COLS = {
    "number": "Folio",
    "client": "RFC",
    "issue_date": "Emision",
    "due_date": "Vencimiento",
    "amount": "Importe",
    "currency": "Moneda",
    "settled_on": "Liquidacion",
}
HEADER = "Folio,RFC,Emision,Vencimiento,Importe,Moneda,Liquidacion\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clientes(gerente):
    return [
        make_client(by=gerente, tax_id=f"ESC0{i}0101AAA", legal_name=f"Escala {i}", currency="MXN") for i in range(5)
    ]


def _rows(prefix: str, n: int, clientes, *, settle_every: int = 0) -> str:
    return "".join(
        f"{prefix}-{i:05d},{clientes[i % len(clientes)].tax_id},2024-01-10,2024-02-09,{100 + i % 50}.25,MXN,"
        f"{'2024-02-01' if settle_every and i % settle_every == 0 else ''}\n"
        for i in range(n)
    )


def _commit_queries(text: str, by) -> int:
    plan = imports.validate(text.encode(), Options(kind="invoices", columns=INVOICE_COLS))
    assert plan.errors == []
    with CaptureQueriesContext(connection) as ctx, audit.acting_as(by):
        imports.commit(plan, by=by, source="escala.csv")
    return len(ctx.captured_queries)


def test_a_500_row_import_costs_as_many_statements_as_a_50_row_one(gerente, clientes):
    """Not one statement per row: 50 rows, 500 rows and 500 rows with settlements (payments,
    allocations, stored invoices updated) cost the same, small, number of statements."""
    _commit_queries(HEADER + _rows("W", 1, clientes, settle_every=1), gerente)  # content types cached
    small = _commit_queries(HEADER + _rows("S", 50, clientes), gerente)
    large = _commit_queries(HEADER + _rows("L", 500, clientes), gerente)
    assert large == small <= 40
    settled_small = _commit_queries(HEADER + _rows("T", 50, clientes, settle_every=3), gerente)
    settled_large = _commit_queries(HEADER + _rows("U", 500, clientes, settle_every=3), gerente)
    assert settled_large == settled_small <= 60
    assert Invoice.objects.filter(number__startswith="U-", status=Invoice.Status.PAID).count() == 167
    # One audit entry per model and load, not per row: invoices, then payments and allocations.
    entries = LogEntry.objects.filter(additional_data__has_key=audit.BULK).order_by("id")
    assert [e.additional_data[audit.BULK]["count"] for e in entries] == [1, 1, 1, 50, 500, 50, 17, 17, 500, 167, 167]
    # The settlements are changes of stored rows: an entry each, with before and after (167 of
    # them: written in one statement, not through bulk_create).
    settled = Invoice.objects.get(number="U-00003")
    status = [(c.actor, c.before, c.after) for c in audit.field_history(settled, "status")]
    assert status == [(gerente, "None", "open"), (gerente, "open", "paid")]
    assert [(c.before, c.after) for c in audit.field_history(settled, "amount_paid")] == [
        ("None", "0.00"),
        ("0.00", "103.25"),
    ]


def test_the_audit_history_tells_who_set_a_field_of_an_imported_invoice_and_when(client, gerente, clientes):
    job = imports.job_create(
        by=gerente,
        kind="invoices",
        file_name="ventas_enero.csv",
        data=(HEADER + _rows("H", 30, clientes)).encode(),
        options=Options(kind="invoices", columns=INVOICE_COLS),
        dry_run=False,
    )
    job = imports.run_job(job)
    assert job.status == ImportJob.Status.DONE, job.errors
    invoice = Invoice.objects.get(number="H-00007")
    imported = LogEntry.objects.get(additional_data__has_key=audit.BULK)
    assert imported.actor == gerente and imported.additional_data[audit.BULK]["source"] == "ventas_enero.csv"
    assert imported.object_repr == "Alta en bloque de 30 facturas (archivo ventas_enero.csv)"

    # Later, another manager records a payment that settles it.
    directora = make_user("directora", "manager", first_name="Diana", last_name="Directora")
    services.payment_record(
        by=directora,
        client=invoice.client,
        amount=invoice.amount,
        received_on=dt.date(2024, 3, 1),
        allocations=[services.AllocationRequest(invoice_id=invoice.pk, amount=invoice.amount)],
    )
    invoice.refresh_from_db()

    [created] = audit.field_history(invoice, "amount")
    assert (created.actor, created.before, created.after) == (gerente, "None", "107.25")
    assert created.entry == imported and created.timestamp == imported.timestamp
    status = audit.field_history(invoice, "status")
    assert [(c.actor, c.before, c.after) for c in status] == [(gerente, "None", "open"), (directora, "open", "paid")]
    assert status[0].timestamp <= status[1].timestamp
    assert audit.field_history(invoice, "number")[0].after == "H-00007"

    # The client's history page lists the import, credited to the manager.
    client.force_login(gerente)
    page = client.get(reverse("client_history", args=[invoice.client_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Alta en bloque de 30 facturas (archivo ventas_enero.csv)" in html and "Gabriela Gerente" in html


def test_field_history_of_a_row_created_one_by_one_reads_its_own_entries(gerente, clientes):
    with audit.acting_as(gerente):  # a save() outside a request: the actor is set this way
        invoice = services.invoice_create(
            by=gerente, client=clientes[0], number="UNO-1", issue_date=dt.date(2024, 1, 2), amount=Decimal("80")
        )
    [created] = audit.field_history(invoice, "amount")
    assert (created.actor, created.before, created.after) == (gerente, "None", "80.00")
    assert audit.object_history(invoice).get().object_id == invoice.pk


def test_a_bulk_entry_is_found_for_its_rows_only(gerente, clientes):
    for prefix in ("A", "B"):
        plan = imports.validate(
            (HEADER + _rows(prefix, 3, clientes[:1])).encode(), Options(kind="invoices", columns=INVOICE_COLS)
        )
        imports.commit(plan, by=gerente, source=f"{prefix}.csv")
    a, b = Invoice.objects.get(number="A-00001"), Invoice.objects.get(number="B-00001")
    [entry_a] = audit.object_history(a)
    [entry_b] = audit.object_history(b)
    assert entry_a.additional_data[audit.BULK]["source"] == "A.csv"
    assert entry_b.additional_data[audit.BULK]["source"] == "B.csv"
    assert audit.id_ranges([7, 3, 4, 5, 9]) == [[3, 5], [7, 7], [9, 9]]
