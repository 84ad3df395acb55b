"""An invoice history (clients, invoices and payments from one export) imported in a real browser
against the live server: a manager uploads the export, checks the guessed mapping, chooses the
segment of the new clients, previews what it would create, changes the segment from the
preview, imports it while the job runs in the background (the bar fills), and finds the
clients, invoices and payments (docs/domain.md#imports)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Client, Invoice, Payment
from cobranza.models import ImportJob
from tests.e2e.conftest import ARTIFACTS, login
from tests.e2e.test_imports_browser import background_worker  # noqa: F401 - a fixture
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _export() -> bytes:
    today = timezone.localdate()

    def day(n: int) -> str:
        return (today - dt.timedelta(days=n)).strftime("%m/%d/%Y")

    lines = [
        "Customer ID,Customer Name,Invoice No,Invoice Date,Due Date,Amount,Currency,Date Paid,Paid Amount,Disputed",
        f"HIS-01,Abarrotes Hidalgo,H-001,{day(200)},{day(170)},1200.00,MXN,{day(150)},,No",
        f"HIS-01,Abarrotes Hidalgo,H-002,{day(120)},{day(90)},800.50,MXN,{day(60)},300.50,No",
        f"HIS-01,Abarrotes Hidalgo,H-003,{day(40)},{day(10)},450.00,MXN,,,Yes",
        f"HIS-02,Distribuidora Sonora,H-004,{day(100)},{day(70)},2500.00,MXN,{day(65)},,No",
        f"HIS-02,Distribuidora Sonora,H-005,{day(20)},{day(1)},99.99,MXN,,,No",
    ]
    return ("\n".join(lines) + "\n").encode()


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_manager_imports_an_invoice_history_into_a_chosen_segment(
    page,
    live_server,
    gerente,
    background_worker,  # noqa: F811 - the fixture imported above
):
    login(page, live_server, "gerente", PASSWORD)
    page.goto(f"{live_server.url}{reverse('cobranza:import_create')}")
    page.get_by_label("Qué contiene").select_option(label="Historial de facturas (clientes, facturas y pagos)")
    page.get_by_label("Archivo (CSV o XLSX)").set_input_files(
        {"name": "historial.csv", "mimeType": "text/csv", "buffer": _export()}
    )
    page.get_by_role("button", name="Subir y revisar").click()

    # The mapping, guessed from the English headers; the segment of the new clients.
    form = page.get_by_test_id("mapping-form")
    expect(form.get_by_label("Importe pagado")).to_have_value("Paid Amount")
    expect(form.get_by_label("Nombre del cliente")).to_have_value("Customer Name")
    segment = form.get_by_label("Segmento de los clientes nuevos")
    expect(segment).to_have_value("regular")  # the default
    segment.select_option(label="Esporádico")
    form.get_by_label("Formato de fecha").select_option(label="mes/día/año")
    form.get_by_role("button", name="Revisar (simulación)").click()

    # The preview: how many clients, invoices and payments, and where the clients go.
    summary = page.get_by_test_id("import-summary")
    expect(summary).to_contain_text("Lo que haría la importación", timeout=30_000)
    expect(page.get_by_test_id("import-new-clients")).to_have_text(
        "Se crearán 2 clientes nuevos en el segmento Esporádico."
    )
    expect(page.get_by_test_id("import-count-clients")).to_have_text("2")
    expect(page.get_by_test_id("import-count-created")).to_have_text("5")
    expect(page.get_by_test_id("import-count-payments")).to_have_text("3")
    expect(page.get_by_test_id("import-invoiced")).to_contain_text("5,050.49")
    expect(page.get_by_test_id("import-paid")).to_contain_text("4,000.50")
    assert Client.objects.count() == 0

    # Another segment, from the preview: checked again, still nothing written.
    choice = page.get_by_test_id("import-clients")
    choice.get_by_label("Segmento de los clientes nuevos").select_option(label="Cuenta clave")
    choice.get_by_role("button", name="Cambiar el segmento").click()
    expect(page.get_by_test_id("import-new-clients")).to_have_text(
        "Se crearán 2 clientes nuevos en el segmento Cuenta clave.", timeout=30_000
    )
    _screenshot(page, "import-ledger-preview")
    assert Client.objects.count() == 0

    # Import: the bar fills, the result says what was created.
    page.get_by_test_id("import-summary").get_by_role("button", name="Importar").click()
    expect(page.locator("#import-progress")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.get_by_test_id("import-progress-bar")).to_have_attribute("style", "width: 100%")
    expect(page.get_by_test_id("import-new-clients")).to_have_text(
        "Se crearon 2 clientes nuevos en el segmento Cuenta clave."
    )
    _screenshot(page, "import-ledger-done")
    job = ImportJob.objects.get()
    assert job.kind == "ledger" and job.status == "done" and not job.dry_run
    assert dict(Client.objects.values_list("tax_id", "segment__code")) == {
        "HIS-01": "cuenta-clave",
        "HIS-02": "cuenta-clave",
    }
    assert Client.objects.get(tax_id="HIS-02").legal_name == "Distribuidora Sonora"
    assert Invoice.objects.aggregate(t=Sum("amount"))["t"] == Decimal("5050.49")
    assert Payment.objects.aggregate(t=Sum("amount"))["t"] == Decimal("4000.50")
    assert dict(Invoice.objects.values_list("number", "status")) == {
        "H-001": "paid",
        "H-002": "partially_paid",
        "H-003": "disputed",
        "H-004": "paid",
        "H-005": "open",
    }

    # The client's page shows its invoices.
    hidalgo = Client.objects.get(tax_id="HIS-01")
    page.goto(f"{live_server.url}{reverse('client_detail', args=[hidalgo.pk])}")
    page.locator("#tab-facturas").click()
    expect(page.locator("#seccion-facturas")).to_contain_text("H-002")
