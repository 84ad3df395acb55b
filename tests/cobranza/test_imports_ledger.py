"""Richer imports (docs/domain.md#imports): an invoice file that creates the clients it names,
and one invoice export with a settled-date column that loads clients, invoices and payments —
through the web pages and through ``import_ledger`` — to the cent, and a second time changes
nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import Client, Invoice, Payment, PaymentAllocation, Segment
from cobranza.imports import services as imports
from cobranza.imports.services import Options
from cobranza.models import ClientProfile, Dispute, ImportJob
from tests.factories import make_client

pytestmark = pytest.mark.django_db

HEADER = [
    "Customer ID",
    "Customer Name",
    "Invoice No",
    "Invoice Date",
    "Due Date",
    "Amount",
    "Currency",
    "Date Paid",
    "Paid Amount",
    "Disputed",
    "Country",
]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def synthetic_export(*, customers: int = 40, invoices: int = 600, seed: int = 7) -> str:
    """Two years of an accounting system's invoice export, in English with m/d/Y dates: some
    invoices paid in full, some in part, some still open, some disputed."""
    rng = random.Random(seed)
    today = timezone.localdate()
    start = today - dt.timedelta(days=730)
    people = [
        (
            f"CUST-{n:03d}",
            f"Customer {n:03d} S.A. de C.V.",
            "USD" if n % 5 == 0 else "MXN",
            "CO" if n % 7 == 0 else "MX",
        )
        for n in range(1, customers + 1)
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for n in range(invoices):
        tax_id, name, currency, country = people[n % customers]
        issued = start + dt.timedelta(days=rng.randrange(0, 720))
        due = issued + dt.timedelta(days=rng.choice((15, 30, 45)))
        amount = Decimal(rng.randrange(10_000, 5_000_000)) / 100
        settled = issued + dt.timedelta(days=rng.randrange(5, 120))
        paid, disputed = "", "No"
        if settled >= today or rng.random() < 0.15:
            settled = None  # still open
        elif rng.random() < 0.1:
            paid = f"{(amount * Decimal('0.4')).quantize(Decimal('0.01'))}"  # paid in part
        if rng.random() < 0.06:
            disputed = "Yes"
        writer.writerow(
            [
                tax_id,
                name,
                f"INV-{n + 1:05d}",
                issued.strftime("%m/%d/%Y"),
                due.strftime("%m/%d/%Y"),
                f"{amount:.2f}",
                currency,
                settled.strftime("%m/%d/%Y") if settled else "",
                paid,
                disputed,
                country,
            ]
        )
    return out.getvalue()


def expected_from(text: str) -> dict:
    """What the file holds, computed from the CSV alone (not through the import's code)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    invoiced: dict[str, Decimal] = {}
    paid: dict[str, Decimal] = {}
    payments = 0
    for r in rows:
        amount = Decimal(r["Amount"])
        invoiced[r["Currency"]] = invoiced.get(r["Currency"], Decimal(0)) + amount
        if r["Date Paid"]:
            payments += 1
            value = Decimal(r["Paid Amount"]) if r["Paid Amount"] else amount
            paid[r["Currency"]] = paid.get(r["Currency"], Decimal(0)) + value
    return {
        "clients": len({r["Customer ID"] for r in rows}),
        "invoices": len(rows),
        "payments": payments,
        "invoiced": invoiced,
        "paid": paid,
        "open": sum(1 for r in rows if not r["Date Paid"]),
        "disputed": sum(1 for r in rows if r["Disputed"] == "Yes"),
    }


def stored() -> dict:
    def by_currency(qs, field):
        return {r["currency"]: r["total"] for r in qs.values("currency").annotate(total=Sum(field)).order_by()}

    return {
        "clients": Client.objects.count(),
        "invoices": Invoice.objects.count(),
        "payments": Payment.objects.count(),
        "invoiced": by_currency(Invoice.objects, "amount"),
        "paid": by_currency(Payment.objects, "amount"),
        "allocated": PaymentAllocation.objects.aggregate(total=Sum("amount"))["total"],
        "amount_paid": Invoice.objects.aggregate(total=Sum("amount_paid"))["total"],
        "disputes": Dispute.objects.count(),
    }


def assert_loaded(text: str) -> dict:
    want, got = expected_from(text), stored()
    assert (got["clients"], got["invoices"], got["payments"]) == (want["clients"], want["invoices"], want["payments"])
    assert got["invoiced"] == want["invoiced"]  # to the cent, per currency
    assert got["paid"] == want["paid"]
    # Each payment went to its own invoice, all of it (no client credit left over).
    assert got["allocated"] == got["amount_paid"] == sum(want["paid"].values())
    assert Payment.objects.filter(unallocated__gt=0).count() == 0
    assert got["disputes"] == want["disputed"]
    return got


def _job(text: str, kind: str, *, by=None, dry_run=True, clients=None) -> ImportJob:
    job = imports.job_create(
        by=by,
        kind=kind,
        file_name="historial.csv",
        data=text.encode(),
        options=Options(kind=kind),
        dry_run=dry_run,
        clients=clients,
    )
    imports.run_job(job)
    job.refresh_from_db()
    return job


# --- an invoice file that creates its clients ---------------------------------------------------

INVOICES = (
    "Invoice No,Customer ID,Customer Name,Invoice Date,Due Date,Amount,Currency,Country\n"
    "A-1,AAA010101AAA,,01/15/2025,02/14/2025,100.00,MXN,\n"
    "A-2,NEW-001,Tlapalería Nueva,01/20/2025,02/19/2025,250.50,MXN,MX\n"
    "A-3,new-001,,02/20/2025,03/22/2025,99.50,MXN,MX\n"
    "A-4,NEW-002,,02/21/2025,03/23/2025,10.00,USD,CO\n"
)


def test_an_invoice_file_reports_its_missing_clients_then_creates_them(gerente):
    make_client(by=gerente, tax_id="AAA010101AAA", legal_name="Ferretería Núñez", currency="MXN")
    job = _job(INVOICES, "invoices", by=gerente)
    assert job.status == ImportJob.Status.REJECTED
    assert [(e["row"], e["column"]) for e in job.errors] == [(3, "Customer ID"), (4, "Customer ID"), (5, "Customer ID")]
    assert "Crear los clientes que faltan" in job.errors[0]["reason"]
    assert job.summary["missing_clients"] == 2
    # The same file, creating them: the dry run counts them and has no errors for their rows.
    esporadico = Segment.objects.get(code="esporadico")
    dry = _job(INVOICES, "invoices", by=gerente, clients=imports.clients_choice(create=True, segment="esporadico"))
    assert dry.status == ImportJob.Status.DONE, dry.errors
    assert (dry.summary["clients_created"], dry.summary["segment"], dry.summary["created"]) == (2, esporadico.name, 4)
    assert Client.objects.count() == 1 and Invoice.objects.count() == 0
    done = _job(
        INVOICES,
        "invoices",
        by=gerente,
        dry_run=False,
        clients=imports.clients_choice(create=True, segment="esporadico"),
    )
    assert done.status == ImportJob.Status.DONE, done.errors
    nueva, otra = Client.objects.get(tax_id="NEW-001"), Client.objects.get(tax_id="NEW-002")
    # Name from its column (any row of it), or else its id; country, its time zone, currency.
    assert (nueva.legal_name, nueva.segment, nueva.country, nueva.currency) == (
        "Tlapalería Nueva",
        esporadico,
        "MX",
        "MXN",
    )
    assert (otra.legal_name, otra.country, otra.time_zone, otra.currency) == ("NEW-002", "CO", "America/Bogota", "USD")
    assert nueva.client_since == dt.date(2025, 1, 20)
    assert sorted(nueva.invoices.values_list("number", flat=True)) == ["A-2", "A-3"]
    # They get the catch-up of imported clients: their profiles.
    assert set(ClientProfile.objects.values_list("client__tax_id", flat=True)) >= {"NEW-001", "NEW-002"}
    # Again: nothing new.
    again = _job(INVOICES, "invoices", by=gerente, dry_run=False, clients=imports.clients_choice(create=True))
    assert (again.summary["clients_created"], again.summary["created"], Client.objects.count()) == (0, 0, 3)


def test_the_invoice_preview_offers_to_create_the_missing_clients_in_a_segment(client, gerente, gestora):
    make_client(by=gerente, tax_id="AAA010101AAA", legal_name="Ferretería Núñez", currency="MXN")
    client.force_login(gerente)
    upload = io.BytesIO(INVOICES.encode())
    upload.name = "facturas.csv"
    client.post(reverse("cobranza:import_create"), {"kind": "invoices", "file": upload, "mapping": ""})
    job = ImportJob.objects.get()
    data = {f"col_{k}": v for k, v in imports.guess_columns("invoices", INVOICES.splitlines()[0].split(",")).items()}
    data.update(date_format="auto", decimal_separator=".", encoding="auto")
    client.post(reverse("cobranza:import_detail", args=[job.pk]), data)  # not creating them
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED and job.summary["missing_clients"] == 2
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert "2 clientes que el archivo nombra no existen todavía" in page
    assert "Crear los clientes que faltan" in page and 'value="regular" selected' in page  # the default
    client.force_login(gestora)  # managers only
    assert client.post(reverse("cobranza:import_clients", args=[job.pk]), {"segment": "regular"}).status_code == 403
    client.force_login(gerente)
    client.post(reverse("cobranza:import_clients", args=[job.pk]), {"segment": "no-existe"})
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED  # an unknown segment changes nothing
    client.post(reverse("cobranza:import_clients", args=[job.pk]), {"segment": "esporadico"})
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.dry_run, job.errors
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert "Se crearán 2 clientes nuevos en el segmento Esporádico." in page
    client.post(reverse("cobranza:import_commit", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and not job.dry_run, job.errors
    assert dict(Client.objects.values_list("tax_id", "segment__code")) == {
        "AAA010101AAA": "regular",
        "NEW-001": "esporadico",
        "NEW-002": "esporadico",
    }
    # The job is done: no more choices about its clients.
    client.post(reverse("cobranza:import_clients", args=[job.pk]), {"segment": "regular"})
    job.refresh_from_db()
    assert not job.dry_run and Client.objects.filter(segment__code="esporadico").count() == 2


def test_the_mapping_form_can_create_the_missing_clients_upfront(client, gerente):
    client.force_login(gerente)
    upload = io.BytesIO(INVOICES.encode())
    upload.name = "facturas.csv"
    client.post(reverse("cobranza:import_create"), {"kind": "invoices", "file": upload, "mapping": ""})
    job = ImportJob.objects.get()
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert 'name="create_clients"' in page and 'name="segment"' in page
    data = {f"col_{k}": v for k, v in imports.guess_columns("invoices", INVOICES.splitlines()[0].split(",")).items()}
    data.update(date_format="auto", decimal_separator=".", encoding="auto", create_clients="on", segment="alto-riesgo")
    client.post(reverse("cobranza:import_detail", args=[job.pk]), data)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.dry_run, job.errors
    assert (job.summary["clients_created"], job.summary["segment"]) == (3, "Alto riesgo")
    # The choice stays with the job when its mapping is shown again.
    page = client.get(reverse("cobranza:import_detail", args=[job.pk]), {"mapear": 1}).content.decode()
    assert 'value="alto-riesgo" selected' in page and re.search(r'name="create_clients"[^>]*checked', page)


def test_clients_and_invoices_are_written_all_or_nothing(gerente, monkeypatch):
    """A rule broken while writing the invoices rolls back the clients created before them."""
    original = imports.services_bulk.invoices_bulk_create

    def failing(**kwargs):
        original(**kwargs)
        raise imports.services_bulk.BulkValidationError({0: imports.ValidationError({"number": "roto"})})

    monkeypatch.setattr(imports.services_bulk, "invoices_bulk_create", failing)
    plan = imports.validate(
        INVOICES.replace("AAA010101AAA", "NEW-003").encode(), Options("invoices", create_clients=True)
    )
    assert plan.errors == [] and len(plan.new_clients) == 3
    with pytest.raises(imports.ImportRejected) as rejected:
        imports.commit(plan, by=gerente)
    assert rejected.value.errors == [{"row": 2, "column": "Invoice No", "reason": "roto"}]
    assert Client.objects.count() == 0 and Invoice.objects.count() == 0


def test_a_bad_new_client_cell_names_its_row_and_column():
    text = INVOICES.replace("MXN,MX\n", "MXN,Mexico\n", 1)
    plan = imports.validate(text.encode(), Options("invoices", create_clients=True))
    assert plan.errors == [{"row": 3, "column": "Country", "reason": "«MEXICO» no es un código de país de dos letras."}]


# --- one export, three kinds ------------------------------------------------------------------------


def test_the_ledger_kind_through_the_web_flow_to_the_cent_and_idempotent(client, gerente):
    text = synthetic_export()
    want = expected_from(text)
    assert want["open"] > 20 and want["disputed"] > 10 and want["clients"] == 40 and want["invoices"] == 600
    client.force_login(gerente)
    upload = io.BytesIO(text.encode())
    upload.name = "historial.csv"
    response = client.post(reverse("cobranza:import_create"), {"kind": "ledger", "file": upload, "mapping": ""})
    job = ImportJob.objects.get()
    page = client.get(response["Location"]).content.decode()
    # The mapping, guessed from the English headers, with the segment of the new clients.
    assert 'name="col_paid_amount"' in page and 'name="segment"' in page
    guess = imports.guess_columns("ledger", HEADER)
    assert set(guess) == {
        "client",
        "client_name",
        "number",
        "issue_date",
        "due_date",
        "amount",
        "currency",
        "settled_on",
        "paid_amount",
        "disputed",
        "country",
    }
    data = {f"col_{k}": v for k, v in guess.items()}
    data.update(date_format="auto", decimal_separator=".", encoding="auto", segment="cuenta-clave")
    client.post(reverse("cobranza:import_detail", args=[job.pk]), data)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.dry_run, job.errors
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert "Se crearán 40 clientes nuevos en el segmento Cuenta clave." in page
    assert (job.summary["clients_created"], job.summary["created"], job.summary["payments"]) == (
        40,
        600,
        want["payments"],
    )
    assert {k: Decimal(v) for k, v in job.summary["invoiced"].items()} == want["invoiced"]
    assert {k: Decimal(v) for k, v in job.summary["paid"].items()} == want["paid"]
    assert Client.objects.count() == 0
    # Another segment from the preview: checked again, still nothing written.
    client.post(reverse("cobranza:import_clients", args=[job.pk]), {"segment": "regular"})
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert "Se crearán 40 clientes nuevos en el segmento Regular." in page
    client.post(reverse("cobranza:import_commit", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and not job.dry_run, job.errors
    got = assert_loaded(text)
    assert set(Client.objects.values_list("segment__code", flat=True)) == {"regular"}
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert "Se crearon 40 clientes nuevos en el segmento Regular." in page
    # Each settled invoice has its payment, dated when it was settled, named after it.
    paid = Invoice.objects.filter(number="INV-00001").first()
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["Invoice No"] == "INV-00001")
    if row["Date Paid"]:
        payment = Payment.objects.get(reference="PAGO-INV-00001")
        assert payment.received_on == dt.datetime.strptime(row["Date Paid"], "%m/%d/%Y").date()
        assert list(payment.allocations.values_list("invoice", flat=True)) == [paid.pk]
    # The figures caught up with the history: profiles for every new client.
    assert job.summary["profiles"] == 40 and job.summary["snapshot_months"] >= 24
    # The same file again, through the same pages: nothing changes.
    upload = io.BytesIO(text.encode())
    upload.name = "historial.csv"
    client.post(reverse("cobranza:import_create"), {"kind": "ledger", "file": upload, "mapping": ""})
    second = ImportJob.objects.exclude(pk=job.pk).get()
    client.post(reverse("cobranza:import_detail", args=[second.pk]), data)
    client.post(reverse("cobranza:import_commit", args=[second.pk]))
    second.refresh_from_db()
    assert second.status == ImportJob.Status.DONE and not second.dry_run, second.errors
    assert (second.summary["clients_created"], second.summary["created"], second.summary["payments"]) == (0, 0, 0)
    assert second.summary["unchanged"] == 600
    assert stored() == got


def test_the_ledger_kind_through_the_command_to_the_cent_and_idempotent(tmp_path, capsys):
    text = synthetic_export(seed=11)
    path = tmp_path / "historial.csv"
    path.write_text(text)
    call_command("import_ledger", str(path), "--kind", "ledger", "--dry-run")
    out = capsys.readouterr().out
    assert "clientes nuevos: 40 (segmento Regular)" in out and "Se crearían: 600" in out
    assert Client.objects.count() == 0
    call_command("import_ledger", str(path), "--kind", "ledger", "--segment", "Esporádico")
    got = assert_loaded(text)
    assert set(Client.objects.values_list("segment__code", flat=True)) == {"esporadico"}
    call_command("import_ledger", str(path), "--kind", "ledger")
    out = capsys.readouterr().out
    assert "Creados: 0" in out and "sin cambios: 600" in out and "pagos de liquidación: 0" in out
    assert stored() == got


def test_a_later_export_pays_what_was_open_and_nothing_twice(gerente):
    """Imported while open, exported again once paid: the payment is recorded then, once."""
    today = timezone.localdate()
    issued = (today - dt.timedelta(days=90)).isoformat()
    due = (today - dt.timedelta(days=60)).isoformat()
    paid_on = (today - dt.timedelta(days=10)).isoformat()
    header = "Customer ID,Customer Name,Invoice No,Invoice Date,Due Date,Amount,Currency,Date Paid,Paid Amount\n"
    first = header + f"C-1,Uno,L-1,{issued},{due},1000.00,MXN,,\nC-1,Uno,L-2,{issued},{due},500.00,MXN,,\n"
    later = (
        header
        + f"C-1,Uno,L-1,{issued},{due},1000.00,MXN,{paid_on},\nC-1,Uno,L-2,{issued},{due},500.00,MXN,{paid_on},200\n"
    )
    assert _job(first, "ledger", by=gerente, dry_run=False).summary["payments"] == 0
    job = _job(later, "ledger", by=gerente, dry_run=False)
    assert (job.summary["updated"], job.summary["payments"]) == (2, 2)
    assert dict(Invoice.objects.values_list("number", "status")) == {"L-1": "paid", "L-2": "partially_paid"}
    assert Payment.objects.get(reference="PAGO-L-2").amount == Decimal("200.00")
    again = _job(later, "ledger", by=gerente, dry_run=False)
    assert (again.summary["unchanged"], again.summary["payments"], Payment.objects.count()) == (2, 0, 2)


def test_a_ledger_row_with_a_bad_date_or_paid_amount_names_row_column_and_reason():
    text = synthetic_export(customers=3, invoices=6, seed=3).splitlines()
    cells = text[3].split(",")
    cells[3] = "13/45/2024"  # row 4: no such month
    text[3] = ",".join(cells)
    cells = text[5].split(",")
    cells[5], cells[7], cells[8] = "100.00", "", "50.00"  # row 6: paid without a settled date
    text[5] = ",".join(cells)
    plan = imports.validate(("\n".join(text) + "\n").encode(), Options("ledger", date_format="%m/%d/%Y"))
    assert plan.errors == [
        {"row": 4, "column": "Invoice Date", "reason": "«13/45/2024» no es una fecha con el formato mm/dd/aaaa."},
        {
            "row": 6,
            "column": "Paid Amount",
            "reason": "Hay un importe pagado pero no la fecha de liquidación (¿cuándo se pagó?).",
        },
    ]
    assert Client.objects.count() == 0


def test_the_command_creates_the_clients_of_an_invoice_file_in_the_segment_named(tmp_path, capsys):
    path = tmp_path / "facturas.csv"
    path.write_text(INVOICES.replace("AAA010101AAA", "NEW-003"))
    with pytest.raises(SystemExit):
        call_command("import_ledger", str(path), "--kind", "invoices")
    err = capsys.readouterr().err
    assert "fila 2, columna «Customer ID»" in err and "3 clientes no existen: --create-clients los crea" in err
    with pytest.raises(CommandError, match="No existe el segmento «Mayoristas»"):
        call_command("import_ledger", str(path), "--kind", "invoices", "--create-clients", "--segment", "Mayoristas")
    call_command("import_ledger", str(path), "--kind", "invoices", "--create-clients", "--segment", "cuenta clave")
    assert "clientes nuevos: 3 (segmento Cuenta clave), Creados: 4" in capsys.readouterr().out
    assert set(Client.objects.values_list("segment__code", flat=True)) == {"cuenta-clave"}
    assert Invoice.objects.count() == 4


def test_the_command_help_documents_the_ledger_kind(capsys):
    with pytest.raises(SystemExit):
        call_command("import_ledger", "--help")
    out = capsys.readouterr().out
    assert "--kind ledger" in out and "--create-clients" in out and "PAGO-<folio>" in out
    assert "paid_amount" in out and "client_name" in out
