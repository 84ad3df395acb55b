"""Imports from accounting exports: a malformed file is rejected with row/column/reason and
writes nothing; a good one upserts by natural key, so importing it twice changes nothing."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import re
import time
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from accounts.models import Client, Interaction, Invoice, Payment
from cobranza.dashboard import metrics
from cobranza.imports import services as imports
from cobranza.imports.services import Options
from cobranza.models import (
    AgingSnapshot,
    ClientProfile,
    Dispute,
    ImportJob,
    ImportMapping,
    WorklistRank,
    WorklistRankDirty,
)
from cobranza.profiles import jobs as profiles
from cobranza.worklist import jobs as worklist_jobs
from cobranza.worklist import selectors as worklist
from tests.cobranza.test_worklist_sql import _facts, _reference
from tests.factories import make_client, make_invoice, make_user

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"

CLIENT_COLS = {
    "tax_id": "RFC",
    "legal_name": "Razón social",
    "segment": "Segmento",
    "collector": "Gestor",
    "currency": "Moneda",
}
INVOICE_COLS = {
    "number": "Folio",
    "client": "RFC",
    "issue_date": "Emision",
    "due_date": "Vencimiento",
    "amount": "Importe",
    "currency": "Moneda",
    "settled_on": "Liquidacion",
}
PAYMENT_COLS = {"reference": "Ref", "client": "RFC", "received_on": "Fecha", "amount": "Importe", "invoice": "Folio"}

INVOICE_HEADER = "Folio,RFC,Emision,Vencimiento,Importe,Moneda,Liquidacion\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def cliente(gerente):
    return make_client(by=gerente, tax_id="AAA010101AAA", legal_name="Ferretería Núñez", currency="MXN")


def _validate(text: str | bytes, kind="invoices", cols=None, **opts):
    data = text.encode("utf-8") if isinstance(text, str) else text
    cols = (
        cols if cols is not None else {"invoices": INVOICE_COLS, "clients": CLIENT_COLS, "payments": PAYMENT_COLS}[kind]
    )
    return imports.validate(data, Options(kind=kind, columns=cols, **opts))


def _import(text, kind="invoices", by=None, **opts):
    plan = _validate(text, kind, **opts)
    assert plan.errors == []
    return imports.commit(plan, by=by)


def _counts():
    return (Client.objects.count(), Invoice.objects.count(), Payment.objects.count(), Interaction.objects.count())


# --- the malformed corpus ----------------------------------------------------------------


def test_a_missing_column_is_reported_on_the_header_row(cliente):
    plan = _validate("Folio,RFC,Emision,Vencimiento,Moneda,Liquidacion\nF-1,AAA010101AAA,2024-01-10,,MXN,\n")
    assert plan.errors == [{"row": 1, "column": "Importe", "reason": "Falta la columna «Importe» (Importe)."}]


def test_an_extra_column_is_reported_unless_ignored(cliente):
    text = INVOICE_HEADER.strip() + ",Vendedor\nF-1,AAA010101AAA,2024-01-10,,100,MXN,,Pepe\n"
    plan = _validate(text)
    assert [(e["row"], e["column"]) for e in plan.errors] == [(1, "Vendedor")]
    assert "no reconocida" in plan.errors[0]["reason"]
    assert _validate(text, cols={**INVOICE_COLS, "_ignore": ["Vendedor"]}).errors == []


def test_bad_dates_negative_and_non_numeric_amounts_duplicates_and_unknown_client_name_row_and_column(cliente):
    before = _counts()
    text = INVOICE_HEADER + (
        "F-1,AAA010101AAA,31/02/2024,,100,MXN,\n"  # row 2: no such day
        "F-2,AAA010101AAA,2024-01-10,,-50,MXN,\n"  # row 3: negative
        "F-3,AAA010101AAA,2024-01-10,,mil pesos,MXN,\n"  # row 4: not a number
        "F-4,AAA010101AAA,2024-01-10,,100,MXN,\n"  # row 5: fine
        "F-4,AAA010101AAA,2024-01-11,,100,MXN,\n"  # row 6: duplicate number
        "F-5,ZZZ999999ZZZ,2024-01-10,,100,MXN,\n"  # row 7: unknown client
        "F-6,AAA010101AAA,ayer,,100,MXN,\n"  # row 8: not a date
    )
    job = _job_for(text, "invoices", INVOICE_COLS, dry_run=False)
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED
    got = {(e["row"], e["column"]): e["reason"] for e in job.errors}
    assert set(got) == {(2, "Emision"), (3, "Importe"), (4, "Importe"), (6, "Folio"), (7, "RFC"), (8, "Emision")}
    assert got[(2, "Emision")] == "«31/02/2024» no es una fecha válida."
    assert got[(3, "Importe")] == "El importe no puede ser negativo (-50)."
    assert got[(4, "Importe")] == "«mil pesos» no es un importe."
    assert got[(6, "Folio")] == "El folio «F-4» está repetido (ya aparece en la fila 5)."
    assert "ZZZ999999ZZZ" in got[(7, "RFC")]
    assert _counts() == before  # the good row (5) was not written either


def test_a_latin1_file_is_read_with_auto_encoding(gerente):
    data = (FIXTURES / "clientes_latin1.csv").read_bytes()
    counts = _import(data, "clients", by=gerente)
    assert counts["created"] == 2
    assert Client.objects.get(tax_id="AAA010101AAA").legal_name == "Ferretería Núñez S.A."


def test_a_latin1_file_declared_utf8_is_rejected_with_the_row(gerente):
    data = (FIXTURES / "clientes_latin1.csv").read_bytes()
    plan = _validate(data, "clients", encoding="utf-8")
    assert plan.errors[0]["row"] == 1  # the header has «Razón»
    assert "no está en UTF-8" in plan.errors[0]["reason"]


def test_a_utf16_file_is_a_wrong_encoding(gerente):
    plan = _validate("RFC;Razón social;Segmento\nX;Y;regular\n".encode("utf-16"), "clients")
    assert len(plan.errors) == 1 and "codificación" in plan.errors[0]["reason"]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", INVOICE_HEADER.encode()])
def test_an_empty_file_is_rejected(cliente, data):
    plan = _validate(data)
    assert len(plan.errors) == 1 and plan.errors[0]["row"] == 1
    assert "vacío" in plan.errors[0]["reason"] or "sólo tiene encabezados" in plan.errors[0]["reason"]


# --- formats ---------------------------------------------------------------------------


def test_day_first_and_month_first_are_detected_only_when_unambiguous(cliente):
    dmy = _validate(INVOICE_HEADER + "F-1,AAA010101AAA,25/01/2024,03/02/2024,100,MXN,\n")
    assert dmy.rows[0]["fields"]["due_date"] == dt.date(2024, 2, 3)
    mdy = _validate(INVOICE_HEADER + "F-1,AAA010101AAA,01/25/2024,02/03/2024,100,MXN,\n")
    assert mdy.rows[0]["fields"]["due_date"] == dt.date(2024, 2, 3)
    ambiguous = _validate(INVOICE_HEADER + "F-1,AAA010101AAA,01/02/2024,,100,MXN,\n")
    assert ambiguous.errors[0]["column"] == "Emision" and "ambigua" in ambiguous.errors[0]["reason"]
    chosen = _validate(INVOICE_HEADER + "F-1,AAA010101AAA,01/02/2024,,100,MXN,\n", date_format="%d/%m/%Y")
    assert chosen.rows[0]["fields"]["issue_date"] == dt.date(2024, 2, 1)


def test_decimal_comma_with_thousands_dots_and_currency_codes(cliente):
    text = (
        "Folio;RFC;Emision;Importe\nF-1;AAA010101AAA;2024-01-10;1.234.567,89\nF-2;AAA010101AAA;2024-01-10;MXN 2.500,5\n"
    )
    cols = {"number": "Folio", "client": "RFC", "issue_date": "Emision", "amount": "Importe"}
    plan = _validate(text, cols=cols, decimal_separator=",")
    assert [r["fields"]["amount"] for r in plan.rows] == [Decimal("1234567.89"), Decimal("2500.5")]
    wrong = _validate("Folio;RFC;Emision;Importe\nF-1;AAA010101AAA;2024-01-10;12,34.5\n", cols=cols)
    assert wrong.errors[0]["column"] == "Importe"


def test_xlsx_first_sheet_with_native_dates_and_numbers(cliente, gerente):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Folio", "RFC", "Emision", "Importe"])
    ws.append(["X-1", "AAA010101AAA", dt.datetime(2024, 3, 1), 1500.25])
    ws.append([None, None, None, None])
    ws.append(["X-2", "aaa010101aaa", "15/03/2024", "99,90"])
    buf = io.BytesIO()
    wb.save(buf)
    cols = {"number": "Folio", "client": "RFC", "issue_date": "Emision", "amount": "Importe"}
    counts = _import(buf.getvalue(), cols=cols, by=gerente, decimal_separator=",")
    assert counts["created"] == 2
    inv = Invoice.objects.get(number="X-2")
    assert inv.amount == Decimal("99.90") and inv.issue_date == dt.date(2024, 3, 15)
    assert Invoice.objects.get(number="X-1").due_date == dt.date(2024, 3, 1) + dt.timedelta(
        days=cliente.payment_terms_days
    )


# --- writing ---------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_reports_what_would_happen(cliente, gerente):
    before = _counts()
    job = _job_for((FIXTURES / "facturas_ok.csv").read_text(), "invoices", INVOICE_COLS, dry_run=True, by=gerente)
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert job.summary["created"] == 2 and job.summary["payments"] == 1 and job.summary["dry_run"] is True
    assert _counts() == before


def test_settled_invoices_create_historical_payments_and_reimport_changes_nothing(cliente, gerente):
    text = (FIXTURES / "facturas_ok.csv").read_text()
    counts = _import(text, by=gerente)
    assert counts == {"created": 2, "updated": 0, "unchanged": 0, "payments": 1}
    paid, open_ = Invoice.objects.get(number="F-1"), Invoice.objects.get(number="F-2")
    assert paid.status == Invoice.Status.PAID and paid.open_balance == 0
    assert open_.status == Invoice.Status.OPEN and open_.open_balance == Decimal("250.50")
    payment = Payment.objects.get()
    assert payment.received_on == dt.date(2024, 2, 1) and payment.amount == Decimal("1000.00")
    # One timeline entry for the client and the whole file, not one per invoice and payment.
    entry = Interaction.objects.filter(client=cliente, summary__startswith="Importadas").get()
    assert entry.summary == "Importadas 2 facturas por $1,250.50 · 1 pago registrado por $1,000.00"
    assert set(entry.invoices.values_list("number", flat=True)) == {"F-1", "F-2"}
    assert "Factura F-1 emitida por $1,000.00" in entry.body and "Pago recibido de $1,000.00 → F-1" in entry.body

    before = _counts()
    again = _import(text, by=gerente)
    assert again == {"created": 0, "updated": 0, "unchanged": 2, "payments": 0}
    assert _counts() == before


def test_an_existing_invoice_with_other_data_is_an_error_not_a_silent_change(cliente, gerente):
    _import(INVOICE_HEADER + "F-1,AAA010101AAA,2024-01-10,2024-02-09,100,MXN,\n", by=gerente)
    plan = _validate(INVOICE_HEADER + "F-1,AAA010101AAA,2024-01-10,2024-02-09,120,MXN,\n")
    assert plan.errors[0]["row"] == 2 and "Importe" in plan.errors[0]["reason"]


def test_clients_upsert_by_tax_id(gerente, gestora):
    text = (
        "RFC,Razón social,Segmento,Gestor,Moneda\nccc030303ccc,Uno,regular,gestora,MXN\nDDD040404DDD,Dos,regular,,EUR\n"
    )
    assert _import(text, "clients", by=gerente)["created"] == 2
    assert Client.objects.get(tax_id="CCC030303CCC").collector == gestora
    text2 = text.replace("Dos,", "Dos Renombrada,")
    assert _import(text2, "clients", by=gerente) == {"created": 0, "updated": 1, "unchanged": 1, "payments": 0}
    assert Client.objects.get(tax_id="DDD040404DDD").legal_name == "Dos Renombrada"


def test_unknown_segment_and_collector_are_errors(gerente):
    plan = _validate(
        "RFC,Razón social,Segmento,Gestor,Moneda\nE1,Uno,vip-inexistente,,MXN\nE2,Dos,regular,nadie,MXN\n", "clients"
    )
    assert [(e["row"], e["column"]) for e in plan.errors] == [(2, "Segmento"), (3, "Gestor")]


def test_payments_by_reference_are_idempotent_and_allocate_to_the_named_invoice(cliente, gerente):
    _import(
        INVOICE_HEADER + "F-1,AAA010101AAA,2024-01-10,,100,MXN,\nF-2,AAA010101AAA,2024-01-05,,100,MXN,\n", by=gerente
    )
    text = "Ref,RFC,Fecha,Importe,Folio\nTR-1,AAA010101AAA,2024-02-01,60,F-1\nTR-2,AAA010101AAA,2024-02-02,40,\n"
    assert _import(text, "payments", by=gerente)["created"] == 2
    assert Invoice.objects.get(number="F-1").amount_paid == Decimal("60.00")
    assert Invoice.objects.get(number="F-2").amount_paid == Decimal("40.00")  # oldest due first
    before = _counts()
    assert _import(text, "payments", by=gerente)["unchanged"] == 2
    assert _counts() == before


# --- the command -----------------------------------------------------------------------


def test_the_command_prints_json_and_exits_1_when_rejected(cliente, tmp_path, capsys):
    mapping = tmp_path / "mapeo.json"
    mapping.write_text(json.dumps(INVOICE_COLS))
    good = FIXTURES / "facturas_ok.csv"
    call_command("import_ledger", str(good), "--kind", "invoices", "--mapping", str(mapping), "--dry-run", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "done" and out["summary"]["created"] == 2 and Invoice.objects.count() == 0

    ImportMapping.objects.create(name="Contpaq", kind="invoices", columns=INVOICE_COLS)
    call_command("import_ledger", str(good), "--kind", "invoices", "--mapping", "Contpaq")
    assert "Creados: 2" in capsys.readouterr().out and Invoice.objects.count() == 2

    bad = tmp_path / "malo.csv"
    bad.write_text(INVOICE_HEADER + "F-9,AAA010101AAA,2024-01-10,,-1,MXN,\n")
    with pytest.raises(SystemExit) as exit_:
        call_command("import_ledger", str(bad), "--kind", "invoices", "--mapping", "Contpaq", "--json")
    assert exit_.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "rejected" and out["errors"][0]["row"] == 2 and out["errors"][0]["column"] == "Importe"


# --- the browser -----------------------------------------------------------------------


def test_collectors_get_403_on_every_import_page(client, gestora, gerente):
    job = _job_for("x", "invoices", INVOICE_COLS, by=gerente)
    client.force_login(gestora)
    for name, args in [
        ("import_list", []),
        ("import_create", []),
        ("import_detail", [job.pk]),
        ("import_progress", [job.pk]),
    ]:
        assert client.get(reverse(f"cobranza:{name}", args=args)).status_code == 403
    assert client.post(reverse("cobranza:import_commit", args=[job.pk])).status_code == 403


def test_upload_dry_run_then_import_in_the_browser(client, gerente, cliente):
    client.force_login(gerente)
    assert client.get(reverse("cobranza:import_list")).status_code == 200
    assert client.get(reverse("cobranza:import_create")).status_code == 200
    upload = io.BytesIO((FIXTURES / "facturas_ok.csv").read_bytes())
    upload.name = "facturas.csv"
    response = client.post(reverse("cobranza:import_create"), {"kind": "invoices", "file": upload, "mapping": ""})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("cobranza:import_detail", args=[job.pk])
    # No saved mapping: the page asks for their header for each of our fields, pre-guessed.
    page = client.get(response["Location"])
    assert page.status_code == 200 and 'name="col_number"' in page.content.decode()
    data = {f"col_{k}": v for k, v in INVOICE_COLS.items()}
    data.update({"save_as": "Mi contabilidad", "date_format": "auto", "decimal_separator": ".", "encoding": "auto"})
    response = client.post(reverse("cobranza:import_detail", args=[job.pk]), data)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "done" and job.dry_run and job.summary["created"] == 2
    assert ImportMapping.objects.get(name="Mi contabilidad").columns["number"] == "Folio"
    assert Invoice.objects.count() == 0
    fragment = client.get(reverse("cobranza:import_progress", args=[job.pk]))
    assert fragment.status_code == 200
    client.post(reverse("cobranza:import_commit", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == "done" and not job.dry_run and Invoice.objects.count() == 2
    assert "2" in client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()


def test_a_rejected_upload_shows_the_errors_table(client, gerente, cliente):
    client.force_login(gerente)
    mapping = ImportMapping.objects.create(name="Contpaq", kind="invoices", columns=INVOICE_COLS)
    upload = io.BytesIO((INVOICE_HEADER + "F-1,AAA010101AAA,2024-01-10,,abc,MXN,\n").encode())
    upload.name = "malo.csv"
    response = client.post(
        reverse("cobranza:import_create"), {"kind": "invoices", "file": upload, "mapping": mapping.pk}
    )
    page = client.get(response["Location"]).content.decode()
    assert "«abc» no es un importe." in page and "Importe" in page


def test_an_unknown_currency_and_an_amount_over_the_limit_are_refused(client, gerente, cliente):
    client.force_login(gerente)
    mapping = ImportMapping.objects.create(name="Contpaq", kind="invoices", columns=INVOICE_COLS)
    upload = io.BytesIO(
        (
            INVOICE_HEADER
            + "F-1,AAA010101AAA,2024-01-10,,100.00,ZZZ,\n"
            + "F-2,AAA010101AAA,2024-01-10,,10000000000.00,MXN,\n"
        ).encode()
    )
    upload.name = "malo.csv"
    response = client.post(
        reverse("cobranza:import_create"), {"kind": "invoices", "file": upload, "mapping": mapping.pk}
    )
    page = client.get(response["Location"]).content.decode()
    assert "«ZZZ» no es un código de moneda ISO" in page and "supera el máximo permitido" in page
    assert not Invoice.objects.exists()


# --- scale -----------------------------------------------------------------------------


def test_ten_thousand_invoices_with_settlements_import_in_one_pass(cliente, gerente, capsys):
    """Correctness at scale (the speed is printed, not asserted: the machine is shared)."""
    rows = "".join(
        f"T-{i:06d},AAA010101AAA,2024-01-10,2024-02-09,{100 + i % 50}.25,MXN,{'2024-02-01' if i % 3 == 0 else ''}\n"
        for i in range(10_000)
    )
    data = (INVOICE_HEADER + rows).encode()
    t0 = time.monotonic()
    plan = _validate(data)
    t1 = time.monotonic()
    counts = imports.commit(plan, by=gerente, source="diez_mil.csv")
    t2 = time.monotonic()
    assert counts == {"created": 10_000, "updated": 0, "unchanged": 0, "payments": 3_334}
    assert Invoice.objects.filter(number__startswith="T-").count() == 10_000
    assert Invoice.objects.filter(number__startswith="T-", status=Invoice.Status.PAID).count() == 3_334
    assert Payment.objects.filter(client=cliente, received_on=dt.date(2024, 2, 1)).count() == 3_334
    [entry] = Interaction.objects.filter(client=cliente, summary__startswith="Importadas")
    assert entry.summary.startswith("Importadas 10000 facturas por") and "3334 pagos registrados" in entry.summary
    with capsys.disabled():
        print(
            f"\n10,000 invoices (3,334 settled): validate {t1 - t0:.1f}s ({10_000 / (t1 - t0):.0f} rows/s), "
            f"write {t2 - t1:.1f}s ({10_000 / (t2 - t1):.0f} rows/s)"
        )


def test_an_invoice_recorded_between_the_check_and_the_write_rejects_the_file_on_its_row(cliente, gerente):
    plan = _validate(INVOICE_HEADER + "F-1,AAA010101AAA,2024-01-10,,100,MXN,\nF-2,AAA010101AAA,2024-01-10,,100,MXN,\n")
    make_invoice(by=gerente, client=cliente, number="F-2")  # someone else, meanwhile
    before = _counts()
    with pytest.raises(imports.ImportRejected) as exc:
        imports.commit(plan, by=gerente)
    assert exc.value.errors == [{"row": 3, "column": "Folio", "reason": "Ya existe una factura con este folio."}]
    assert _counts() == before


def _read_elsewhere(sql, params):
    """What another process (the job page's poller) sees: its own connection, autocommit."""
    main = connections["default"]
    other = type(main)(copy.deepcopy(main.settings_dict), alias="poller")
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_the_write_shows_its_progress_to_the_page_while_nothing_is_committed_yet(cliente, gerente, monkeypatch):
    monkeypatch.setattr(imports, "WRITE_CHUNK", 100)
    rows = "".join(f"P-{i:04d},AAA010101AAA,2024-01-10,,{10 + i}.00,MXN,\n" for i in range(450))
    job = _job_for(INVOICE_HEADER + rows, "invoices", INVOICE_COLS, dry_run=False, by=gerente)
    seen = []
    report = imports._WriteProgress.__call__

    def report_and_look(self, done):
        report(self, done)
        seen.append(
            (
                _read_elsewhere("SELECT processed_rows FROM cobranza_importjob WHERE id = %s", [job.pk]),
                _read_elsewhere("SELECT count(*) FROM accounts_invoice WHERE number LIKE %s", ["P-%"]),
            )
        )

    monkeypatch.setattr(imports._WriteProgress, "__call__", report_and_look)
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.summary["live_progress"] is True
    # The bar moved chunk by chunk; the invoices appeared all at once, at the commit.
    assert seen == [(100, 0), (200, 0), (300, 0), (400, 0), (450, 0)]
    assert Invoice.objects.filter(number__startswith="P-").count() == 450


@pytest.mark.django_db(transaction=True)
def test_a_write_that_fails_after_some_chunks_leaves_nothing_but_the_rejection(cliente, gerente, monkeypatch):
    monkeypatch.setattr(imports, "WRITE_CHUNK", 100)
    rows = "".join(f"Q-{i:04d},AAA010101AAA,2024-01-10,,10.00,MXN,\n" for i in range(300))
    job = _job_for(INVOICE_HEADER + rows, "invoices", INVOICE_COLS, dry_run=False, by=gerente)
    validate = imports.validate

    def validate_then_someone_records_q0250(*args, **kwargs):
        plan = validate(*args, **kwargs)
        make_invoice(by=gerente, client=cliente, number="Q-0250")
        return plan

    monkeypatch.setattr(imports, "validate", validate_then_someone_records_q0250)
    before = _counts()
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED
    assert job.errors == [{"row": 252, "column": "Folio", "reason": "Ya existe una factura con este folio."}]
    assert Invoice.objects.filter(number__startswith="Q-").count() == 1  # only the other one
    assert _counts()[0] == before[0]


def _job_for(text, kind, cols, *, dry_run=True, by=None):
    return imports.job_create(
        by=by,
        kind=kind,
        file_name="f.csv",
        data=text.encode() if isinstance(text, str) else text,
        options=Options(kind=kind, columns=cols),
        dry_run=dry_run,
    )


# --- the figures catch up with an imported history (docs/domain.md#trend) ---------------------------


def _first_of_month(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)


def test_an_imported_two_year_history_fills_the_trend_roll_rates_and_profiles(client, cliente, gerente):
    """Twenty-four monthly invoices over the two years before last month, each settled 45 days
    after its due date, and one still open: the import job takes the month-end closes of every
    month it reaches into and the client's profile, so the dashboard's 24-month trend and the
    profile need no shell command."""
    today = timezone.localdate()
    first = _first_of_month(today, -25)
    lines = [INVOICE_HEADER]
    for n in range(24):
        issued = _first_of_month(first, n)
        due = issued + dt.timedelta(days=30)
        settled = due + dt.timedelta(days=45)
        paid = settled.strftime("%d/%m/%Y") if settled < today else ""
        lines.append(f"H-{n:02d},AAA010101AAA,{issued:%d/%m/%Y},{due:%d/%m/%Y},1000.00,MXN,{paid}\n")
    job = _job_for("".join(lines), "invoices", INVOICE_COLS, dry_run=False, by=gerente)
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    # Every close from the first invoice's month to last month.
    last = metrics.previous_month_end(today)
    expected = metrics.month_ends(last, (last.year * 12 + last.month) - (first.year * 12 + first.month) + 1)
    assert job.summary["snapshot_months"] == len(expected) >= 25
    assert sorted(set(AgingSnapshot.objects.values_list("month_end", flat=True))) == expected
    # A two-year period shows a 24-month trend, every month with its close and figures.
    f = metrics.Filters(currency="MXN", start=metrics.month_ends(last, 24)[0].replace(day=1), end=last)
    trend = metrics.trend(f, months=metrics.trend_months(f))
    assert len(trend.points) == 24 and trend.missing == []
    assert all(p.receivable is not None and p.receivable > 0 for p in trend.points)
    # Paid 45 days after the due date: the invoice current at a close (issued that month) is
    # 28–30 days late and unpaid at the next one; the one in 1–30 is paid before it reaches 60.
    rolled = [row.rates[:2] for row in trend.roll if row.rates[0] is not None]
    assert len(rolled) >= 20 and all(r[0] == Decimal("100.0") for r in rolled[:-1]), rolled
    assert {r[1] for r in rolled} <= {Decimal("0.0"), None}  # (None: a close with nothing in 1–30)
    # The profile from the imported history, as of today.
    assert job.summary["profiles"] == 1
    assert ClientProfile.objects.get(client=cliente).evidence["settled_24m"] > 0
    # The job page says so.
    client.force_login(gerente)
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert f"{len(expected)} meses: la tendencia y las tasas de traspaso ya los incluyen" in page
    # The dashboard with that period: the trend's title and its 25 closes on the button.
    html = client.get(reverse("cobranza:dashboard"), {"start": f.start.isoformat(), "end": f.end.isoformat()})
    assert "Tendencia de 24 meses" in html.content.decode()


# --- exports in English, countries and time zones, every error ---------------------------------------


def _snapshot_rows() -> list[tuple]:
    """Every stored snapshot row, without its id and computation time."""
    names = [f.name for f in AgingSnapshot._meta.concrete_fields if f.name not in ("id", "computed_at")]
    return sorted(AgingSnapshot.objects.values_list(*[n if n != "client" else "client_id" for n in names]))


def test_the_catch_up_of_the_clients_an_import_touched_equals_a_full_recompute(cliente, gerente):
    """After each import (invoices with settlements, a settlement of a stored invoice, payments
    applied oldest first) the snapshots hold exactly what closing every month again from
    scratch stores; the clients the import did not touch keep their rows as they were; a month
    not taken before the import gets its full close."""
    from accounts import services as ledger
    from cobranza.dashboard import jobs as dashboard_jobs

    today = timezone.localdate()
    start = _first_of_month(today, -6)
    other = make_client(by=gerente, tax_id="BBB010101BBB", legal_name="Beta", currency="MXN")
    quiet = make_client(by=gerente, tax_id="CCC010101CCC", legal_name="Gamma", currency="MXN")
    euro = make_client(by=gerente, tax_id="DDD010101DDD", legal_name="Delta", currency="EUR", country="ES")
    stored = {}
    for client in (cliente, other, quiet, euro):
        for n in range(5):
            issued = _first_of_month(start, n) + dt.timedelta(days=4)
            number = f"{client.tax_id[:3]}-{n}"
            stored[number] = make_invoice(
                by=gerente,
                client=client,
                number=number,
                issue_date=issued,
                due_date=issued + dt.timedelta(days=30),
                amount=f"{500 + 100 * n}.00",
                currency=client.currency,
            )
        first = stored[f"{client.tax_id[:3]}-0"]
        ledger.payment_record(
            by=gerente,
            client=client,
            amount=Decimal("200.00"),
            received_on=first.due_date + dt.timedelta(days=20),
            allocations=[ledger.AllocationRequest(first.pk, Decimal("200.00"))],
        )
    ledger.invoice_set_status(by=gerente, invoice=stored["CCC-1"], status="written_off", reason="Incobrable")
    ledger.invoice_set_status(by=gerente, invoice=stored["BBB-2"], status="disputed", reason="Queja")
    dashboard_jobs.snapshot_history(since=start)
    before = {r[1:]: r for r in _snapshot_rows()}
    assert len({r[0] for r in before.values()}) >= 6  # every month taken
    # A month not taken yet, in the middle of the imported history: it gets its full close.
    gap = metrics.month_end(_first_of_month(start, 2))
    AgingSnapshot.objects.filter(month_end=gap).delete()

    def untouched_rows():
        kept = AgingSnapshot.objects.filter(client__in=[quiet, euro]).exclude(month_end=gap)
        return set(kept.values_list("id", "computed_at"))

    untouched = untouched_rows()
    assert untouched
    d = dt.date.isoformat
    settled = stored["AAA-3"]
    invoices = INVOICE_HEADER + "".join(
        [
            f"N-1,AAA010101AAA,{d(start + dt.timedelta(days=9))},{d(start + dt.timedelta(days=39))},700.00,MXN,"
            f"{d(start + dt.timedelta(days=70))}\n",
            f"N-2,BBB010101BBB,{d(_first_of_month(start, 3))},{d(_first_of_month(start, 3) + dt.timedelta(days=15))},"
            "900.00,MXN,\n",
            f"AAA-3,AAA010101AAA,{d(settled.issue_date)},{d(settled.due_date)},{settled.amount},MXN,"
            f"{d(settled.due_date + dt.timedelta(days=5))}\n",
        ]
    )
    payments = "Ref,RFC,Fecha,Importe,Folio\n" + f"T-1,BBB010101BBB,{d(_first_of_month(start, 4))},650.00,\n"
    # Only new invoices (one settled two months later, one of a new client): their part is
    # added to the taken months' rows, which keep their ids.
    new_only = INVOICE_HEADER + "".join(
        [
            f"M-1,AAA010101AAA,{d(start)},{d(start + dt.timedelta(days=20))},300.00,MXN,"
            f"{d(start + dt.timedelta(days=65))}\n",
            f"M-2,EEE010101EEE,{d(_first_of_month(start, 1))},{d(_first_of_month(start, 1))},450.00,MXN,\n",
            f"M-3,BBB010101BBB,{d(_first_of_month(start, 3) + dt.timedelta(days=3))},"
            f"{d(_first_of_month(start, 4))},120.00,MXN,\n",
        ]
    )
    imports_ = (
        (new_only, "invoices", INVOICE_COLS, {"create": True}),
        (invoices, "invoices", INVOICE_COLS, None),
        (payments, "payments", PAYMENT_COLS, None),
    )
    for text, kind, cols, clients in imports_:
        kept_ids = set(AgingSnapshot.objects.exclude(month_end=gap).values_list("id", flat=True))
        job = _job_for(text, kind, cols, dry_run=False, by=gerente)
        if clients:
            job = imports.job_restart(job, dry_run=False, clients=imports.clients_choice(**clients))
        job = imports.run_job(job)
        assert job.status == ImportJob.Status.DONE, job.errors
        if text is new_only:
            assert kept_ids <= set(AgingSnapshot.objects.values_list("id", flat=True))
        after_import = _snapshot_rows()
        assert after_import != list(before.values())  # the import changed the figures
        assert untouched_rows() == untouched
        dashboard_jobs.snapshot_history(since=start)  # every month closed again, every client
        assert _snapshot_rows() == after_import
        assert gap in {r[0] for r in after_import}
        untouched, before = untouched_rows(), {r[1:]: r for r in after_import}


def test_english_headers_are_recognised_without_a_mapping(cliente, gerente):
    text = (
        "Invoice No,Customer ID,Invoice Date,Due Date,Amount,Currency,Date Paid,Memo\n"
        "INV-1,AAA010101AAA,01/15/2024,02/14/2024,1500.00,MXN,03/20/2024,Tools\n"
        "INV-2,AAA010101AAA,02/15/2024,03/16/2024,700.00,MXN,,Paint\n"
    )
    headers = text.splitlines()[0].split(",")
    assert imports.guess_columns("invoices", headers) == {
        "number": "Invoice No",
        "client": "Customer ID",
        "issue_date": "Invoice Date",
        "due_date": "Due Date",
        "amount": "Amount",
        "currency": "Currency",
        "settled_on": "Date Paid",
        "description": "Memo",
    }
    counts = _import(text, cols={}, by=gerente)  # {}: guessed from the headers
    assert counts["created"] == 2 and counts["payments"] == 1
    assert Invoice.objects.get(number="INV-1").due_date == dt.date(2024, 2, 14)  # m/d/Y, told by 02/14
    assert imports.guess_columns("payments", ["Payment Reference", "Customer ID", "Payment Date", "Amount"]) == {
        "reference": "Payment Reference",
        "client": "Customer ID",
        "received_on": "Payment Date",
        "amount": "Amount",
    }


def test_clients_take_their_country_and_time_zone(gerente):
    text = (
        "Customer ID,Customer Name,Segment,Country,Time Zone\n"
        "CO-900123,Ferretería Bogotana,regular,CO,\n"
        "ES-B1234,Suministros Canarios,regular,ES,atlantic/canary\n"
        "US-77,Hardware Inc,regular,US,America/Chicago\n"
    )
    counts = _import(text, kind="clients", cols={}, by=gerente)
    assert counts["created"] == 3
    zones = dict(Client.objects.values_list("tax_id", "time_zone"))
    countries = dict(Client.objects.values_list("tax_id", "country"))
    # No zone in the file: the country's; a zone in any case: its IANA name.
    assert zones == {"CO-900123": "America/Bogota", "ES-B1234": "Atlantic/Canary", "US-77": "America/Chicago"}
    assert countries == {"CO-900123": "CO", "ES-B1234": "ES", "US-77": "US"}
    bad = _validate(
        "Customer ID,Customer Name,Segment,Country,Time Zone\nX-1,Uno,regular,CO,Bogota/Colombia\n", "clients", cols={}
    )
    assert bad.errors == [
        {
            "row": 2,
            "column": "Time Zone",
            "reason": "«Bogota/Colombia» no es una zona horaria (use un nombre IANA, p. ej. America/Bogota).",
        }
    ]


def test_every_error_is_counted_and_available_as_csv(client, cliente, gerente, settings):
    lines = [INVOICE_HEADER] + [f"E-{n},AAA010101AAA,no es fecha,,100.00,MXN,\n" for n in range(1005)]
    job = _job_for("".join(lines), "invoices", INVOICE_COLS, dry_run=False, by=gerente)
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED
    assert len(job.errors) == imports.ERRORS_SHOWN == 1000 and job.summary["error_count"] == 1005
    client.force_login(gerente)
    page = client.get(reverse("cobranza:import_detail", args=[job.pk])).content.decode()
    assert re.search(r"1,?005 errores: no se escribió nada", page)
    assert "Se muestran los primeros 1000 de 1005 errores; el CSV los tiene todos." in page
    response = client.get(reverse("cobranza:import_errors_csv", args=[job.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Fila", "Columna", "Motivo"] and len(rows) == 1006
    assert rows[-1] == [
        "1006",
        "Emision",
        "«no es fecha» no es una fecha (use día/mes/año, mes/día/año o año-mes-día).",
    ]
    # Only managers.
    client.force_login(make_user("gestora_csv", "collector"))
    assert client.get(reverse("cobranza:import_errors_csv", args=[job.pk])).status_code == 403


def test_the_command_counts_the_errors_it_does_not_print_and_documents_the_mapping(cliente, tmp_path, capsys):
    path = tmp_path / "facturas.csv"
    path.write_text(INVOICE_HEADER + "".join(f"E-{n},AAA010101AAA,x,,1.00,MXN,\n" for n in range(1002)))
    mapping = tmp_path / "mapeo.json"
    mapping.write_text(json.dumps(INVOICE_COLS))
    with pytest.raises(SystemExit):
        call_command("import_ledger", str(path), "--kind", "invoices", "--mapping", str(mapping))
    err = capsys.readouterr().err
    assert "… y 2 errores más (1002 en total)." in err and "Todos los errores: " in err
    with pytest.raises(SystemExit):
        call_command("import_ledger", "--help")
    out = capsys.readouterr().out
    assert "Ejemplo de mapeo" in out and '"client": "Customer ID"' in out and "customer id" in out


def test_historical_disputes_come_with_their_invoices(cliente, gerente):
    """A disputed flag (sí/no, in any case) with optional opening and resolution dates: a dispute
    on an invoice paid later was resolved by then at the latest; one still open puts its invoice
    in dispute. The profile then sees them (docs/domain.md#disputes)."""
    today = timezone.localdate()
    old = today - dt.timedelta(days=200)
    d = dt.date.isoformat
    text = (
        "Folio,RFC,Emision,Vencimiento,Importe,Moneda,Liquidacion,En disputa,Disputa abierta el\n"
        f"D-1,AAA010101AAA,{d(old)},{d(old + dt.timedelta(days=30))},1000.00,MXN,"
        f"{d(old + dt.timedelta(days=90))},Sí,{d(old + dt.timedelta(days=40))}\n"
        f"D-2,AAA010101AAA,{d(old)},{d(old + dt.timedelta(days=30))},500.00,MXN,,si,\n"
        f"D-3,AAA010101AAA,{d(old)},{d(old + dt.timedelta(days=30))},700.00,MXN,,No,\n"
    )
    assert imports.guess_columns("invoices", text.splitlines()[0].split(","))["disputed"] == "En disputa"
    counts = _import(text, cols={}, by=gerente)
    assert counts["created"] == 3
    resolved, still_open = Dispute.objects.order_by("invoices__number")
    assert (resolved.status, resolved.opened_on, resolved.resolved_on) == (
        "resolved",
        old + dt.timedelta(days=40),
        old + dt.timedelta(days=90),
    )
    assert list(resolved.invoices.values_list("number", flat=True)) == ["D-1"]
    assert (still_open.status, still_open.opened_on, still_open.resolved_on) == (
        "open",
        old + dt.timedelta(days=30),
        None,
    )
    statuses = dict(Invoice.objects.values_list("number", "status"))
    assert statuses == {"D-1": "paid", "D-2": "disputed", "D-3": "open"}
    # Importing the same file again changes nothing: no second dispute.
    assert _import(text, cols={}, by=gerente)["created"] == 0 and Dispute.objects.count() == 2
    profiles.compute_profiles(today=today)
    evidence = ClientProfile.objects.get(client=cliente).evidence
    assert (evidence["disputes_12m"], evidence["disputes_open"], evidence["disputed_invoices"]) == (2, 1, 1)
    assert ClientProfile.objects.get(client=cliente).computed == "circumstantial"


def test_a_bad_dispute_cell_names_its_row_and_column(cliente):
    text = (
        "Folio,RFC,Emision,Vencimiento,Importe,En disputa,Disputa abierta el,Disputa resuelta el\n"
        "X-1,AAA010101AAA,01/02/2025,03/03/2025,10.00,quizá,,\n"
        "X-2,AAA010101AAA,01/02/2025,03/03/2025,10.00,sí,20/03/2025,10/03/2025\n"
    )
    plan = _validate(text, cols={})
    assert plan.errors == [
        {"row": 2, "column": "En disputa", "reason": "«quizá» no es sí ni no."},
        {"row": 3, "column": "Disputa resuelta el", "reason": "La disputa se resolvió antes de abrirse."},
    ]


def test_an_import_leaves_the_worklist_nothing_to_recompute(cliente, gerente):
    """The import's catch-up brings the worklist's stored ranking facts of the clients it
    touched up to date: no worklist has to recompute them as it reads until the 10-minute
    refresh (at 100,000 clients an import of 50,000 invoices touched 39,000 of them)."""
    today = timezone.localdate()
    worklist_jobs.worklist_rank_refresh(today=today)
    due = today - dt.timedelta(days=40)
    lines = INVOICE_HEADER + f"W-1,AAA010101AAA,{due - dt.timedelta(days=30):%d/%m/%Y},{due:%d/%m/%Y},5000.00,MXN,\n"
    job = _job_for(lines, "invoices", INVOICE_COLS, dry_run=False, by=gerente)
    imports.run_job(job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    assert job.summary["worklist_ranked"] >= 1
    assert not WorklistRankDirty.objects.filter(client_id=cliente.pk).exists()
    stored = WorklistRank.objects.get(client_id=cliente.pk)
    assert stored.overdue_max == Decimal("5000.00") and stored.oldest_overdue == due
    # The queue read from the stored facts is the one computed from the ledger.
    expected = _facts(_reference(user=gerente, scope=worklist.Scope(), today=today))
    assert cliente.pk in {row[0] for row in expected}
    assert _facts(worklist.worklist(user=gerente, scope=worklist.Scope(), today=today)) == expected
