"""Importing invoices from an accounting export in a real browser (Chromium through Playwright)
against the live server: a manager uploads a file with a few bad rows, maps its columns (and
saves the mapping), sees every error by row, column and reason with nothing written; uploads
the corrected file with the saved mapping, previews it, imports it, watches the progress bar
finish, and finds the invoices on the client's page.

Files above ``INLINE_MAX_ROWS`` go to the ``cobranza.run_import`` Celery task. Here that limit
is lowered and the task's ``delay`` runs the task body in a thread of this process (a worker
in all but the broker), so the page polls a job that really runs in the background; the
Celery path itself is measured by the import benchmark."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.db import connections
from django.urls import reverse
from playwright.sync_api import Page, expect

from accounts.models import Interaction, Invoice, Payment
from cobranza import tasks
from cobranza.imports import services as imports
from cobranza.models import ImportJob, ImportMapping
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client

# Transactional: the live server thread (and the background job) must see the test's data.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADER = "No. Factura,RFC Cliente,Fecha,Vence,Total,Divisa,Pagada el,Descripción\n"
GOOD = [
    "IMP-001,PLU010101AB1,15/01/2025,14/02/2025,1200.00,MXN,20/02/2025,Papel bond",
    "IMP-002,PLU010101AB1,20/01/2025,19/02/2025,850.50,MXN,,Tóner",
    "IMP-003,PLU010101AB1,01/02/2025,03/03/2025,4300.00,MXN,,Sillas",
    "IMP-004,PLU010101AB1,10/02/2025,12/03/2025,99.90,MXN,,Grapas",
    "IMP-005,PLU010101AB1,13/02/2025,15/03/2025,15000.00,MXN,,Escritorios",
    "IMP-006,PLU010101AB1,20/02/2025,22/03/2025,310.00,MXN,,Carpetas",
]
BAD = [
    GOOD[0],
    "IMP-002,PLU010101AB1,20/01/2025,19/02/2025,ochocientos,MXN,,Tóner",  # row 3: not an amount
    GOOD[2],
    "IMP-004,XXX999999XX9,10/02/2025,12/03/2025,99.90,MXN,,Grapas",  # row 5: unknown client
    "IMP-005,PLU010101AB1,31/02/2025,15/03/2025,15000.00,MXN,,Escritorios",  # row 6: no such day
    GOOD[5],
]
COLUMNS = {
    "Folio": "No. Factura",
    "RFC / NIF del cliente": "RFC Cliente",
    "Fecha de emisión": "Fecha",
    "Fecha de vencimiento": "Vence",
    "Importe": "Total",
    "Moneda": "Divisa",
    "Fecha de liquidación": "Pagada el",
    "Concepto": "Descripción",
}


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def background_worker(monkeypatch):
    """Every file goes to the background task; its body runs in a thread, as a worker would."""
    threads: list[threading.Thread] = []

    def delay(job_id):
        def work():
            try:
                imports.run_import_job(job_id)
            finally:
                connections.close_all()

        thread = threading.Thread(target=work, daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(imports, "INLINE_MAX_ROWS", 2)
    monkeypatch.setattr(imports, "WRITE_CHUNK", 2)  # the write reports progress in three steps
    monkeypatch.setattr(tasks.run_import, "delay", delay)
    yield threads
    for thread in threads:
        thread.join(timeout=30)


def _upload(page: Page, live_server, name: str, rows: list[str], mapping: str | None = None) -> None:
    page.goto(f"{live_server.url}{reverse('cobranza:import_create')}")
    page.get_by_label("Qué contiene").select_option(label="Facturas")
    page.get_by_label("Archivo (CSV o XLSX)").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": (HEADER + "\n".join(rows) + "\n").encode()}
    )
    if mapping:
        page.get_by_label("Mapeo guardado").select_option(label=mapping)
    page.get_by_role("button", name="Subir y revisar").click()


def test_a_manager_fixes_a_rejected_file_maps_it_previews_and_imports_it(page, live_server, gerente, background_worker):
    pluma = make_client(by=gerente, tax_id="PLU010101AB1", legal_name="Papelería La Pluma", currency="MXN")
    login(page, live_server, "gerente", PASSWORD)

    # 1. The export as it comes: their headers, three bad rows.
    _upload(page, live_server, "facturas_enero.csv", BAD)
    form = page.get_by_test_id("mapping-form")
    expect(form).to_be_visible()
    for ours, theirs in COLUMNS.items():
        form.get_by_label(re.compile(rf"^{re.escape(ours)}( \*)?$")).select_option(theirs)  # "*": required
    form.get_by_label("Formato de fecha").select_option(label="día/mes/año")
    form.get_by_label("Guardar el mapeo como (origen)").fill("Contpaqi")
    form.get_by_role("button", name="Revisar (simulación)").click()

    errors = page.get_by_test_id("import-errors")
    expect(errors).to_be_visible()
    expect(page.get_by_text("3 errores: no se escribió nada")).to_be_visible()
    expect(errors.locator("tbody tr")).to_have_count(3)
    expect(errors.locator("tbody tr").nth(0)).to_contain_text("3Total«ochocientos» no es un importe.")
    expect(errors.locator("tbody tr").nth(1)).to_contain_text("5RFC Cliente")
    expect(errors.locator("tbody tr").nth(1)).to_contain_text("XXX999999XX9")
    expect(errors.locator("tbody tr").nth(2)).to_contain_text(
        "6Fecha«31/02/2025» no es una fecha con el formato dd/mm/aaaa."
    )
    _screenshot(page, "import-rejected")
    assert Invoice.objects.count() == 0 and Payment.objects.count() == 0
    assert ImportMapping.objects.get(name="Contpaqi").columns["number"] == "No. Factura"

    # 2. The corrected file, with the saved mapping: a preview first, nothing written.
    page.get_by_role("link", name="Subir el archivo corregido").click()
    _upload(page, live_server, "facturas_enero_corregido.csv", GOOD, mapping="Contpaqi (Facturas)")
    summary = page.get_by_test_id("import-summary")
    expect(summary).to_contain_text("Lo que haría la importación")
    expect(summary.locator("dd").nth(0)).to_have_text("6")  # would be created
    expect(summary).to_contain_text("Pagos de liquidación")
    expect(summary.locator("dd").nth(3)).to_have_text("1")
    assert Invoice.objects.count() == 0

    # 3. Import: the bar fills, the job reports what it did.
    summary.get_by_role("button", name="Importar").click()
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.get_by_test_id("import-progress-bar")).to_have_attribute("style", "width: 100%")
    expect(page.locator(".badge", has_text="Importada")).to_be_visible()
    expect(page.get_by_test_id("import-summary")).to_contain_text("Resultado")
    expect(page.get_by_test_id("import-summary").locator("dd").nth(0)).to_have_text("6")
    _screenshot(page, "import-done")
    job = ImportJob.objects.get(file_name="facturas_enero_corregido.csv")
    assert job.status == "done" and not job.dry_run and job.summary["live_progress"] is True

    # 4. The client's page lists the invoices; the timeline has one entry for the file.
    page.goto(f"{live_server.url}{reverse('client_detail', args=[pluma.pk])}")
    page.locator("#tab-facturas").click()  # sections load when their tab is opened
    invoices = page.locator("#seccion-facturas")
    for number in ("IMP-002", "IMP-003", "IMP-006"):  # the open ones (IMP-001 was paid)
        expect(invoices).to_contain_text(number)
    page.locator("#tab-historial").click()
    expect(page.locator("#seccion-historial")).to_contain_text("Importadas 6 facturas por $21,760.40")
    expect(page.locator("#seccion-historial")).to_contain_text("(archivo facturas_enero_corregido.csv)")
    _screenshot(page, "import-client")
    assert Invoice.objects.get(number="IMP-001").status == Invoice.Status.PAID
    assert Invoice.objects.get(number="IMP-005").due_date == dt.date(2025, 3, 15)
    assert Interaction.objects.filter(client=pluma, summary__startswith="Importadas").count() == 1
