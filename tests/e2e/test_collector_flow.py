"""A collector's and a manager's day in a real browser (Debian's Chromium through Playwright)
against the live server: search, the client page, payments, filters, bulk reassignment, the
language switch and the access rules.

The data is created through the services before the browser starts; everything after that
is done the way a person does it, by labels, roles and visible text.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Invoice, Payment
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TODAY = timezone.localdate()


def _days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _open_client_list(page: Page) -> None:
    page.get_by_role("navigation", name="Navegación principal").get_by_role("link", name="Clientes").click()
    expect(page.get_by_role("heading", level=1, name="Clientes")).to_be_visible()


def _logout(page: Page, full_name: str) -> None:
    page.get_by_role("button", name=re.compile(full_name)).click()
    page.get_by_role("button", name="Salir").click()
    expect(page.get_by_role("button", name="Entrar")).to_be_visible()


def _screenshot(page: Page, name: str) -> None:
    """A picture to look at (test-results/ is not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _record_manual_payment(page: Page, *, amount: str, invoice: str, allocate: str | None = None) -> None:
    """Fill the payment form with manual allocation; ``allocate=None`` uses the balance button."""
    page.get_by_role("link", name="Registrar pago").click()
    expect(page.get_by_role("heading", level=1, name="Registrar pago")).to_be_visible()
    page.get_by_label("Importe recibido").fill(amount)
    page.get_by_label("Manual: indicar el importe por factura").check()
    allocation = page.get_by_label(invoice, exact=True)
    expect(allocation).to_be_visible()  # the allocation table shows only in manual mode
    if allocate is None:
        page.get_by_role("row").filter(has=allocation).get_by_title("Aplicar el saldo completo").click()
        expect(allocation).to_have_value(amount)
    else:
        allocation.fill(allocate)
    page.get_by_role("button", name="Registrar pago").click()


# --- 1. a collector records a partial payment, then the rest ------------------------------------


def test_collector_finds_a_client_and_records_a_partial_then_a_full_payment(page, live_server, gerente, gestora):
    martillo = make_client(
        by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.", trade_name="El Martillo"
    )
    make_invoice(by=gerente, client=martillo, amount="1000.00", due_date=_days_ago(45), number="FM-0101")
    make_invoice(by=gerente, client=martillo, amount="500.00", due_date=TODAY + dt.timedelta(days=10), number="FM-0102")
    other = make_client(by=gerente, collector=gestora, legal_name="Abarrotes Doña Lupe")
    make_invoice(by=gerente, client=other, amount="250.00", due_date=_days_ago(5))

    login(page, live_server, "gestora", PASSWORD)
    _open_client_list(page)
    results = page.locator("#client-results")
    expect(results.get_by_role("link", name="Abarrotes Doña Lupe")).to_be_visible()

    # Typing filters the list in place (htmx) and keeps the search in the address bar.
    page.get_by_role("searchbox", name="Buscar", exact=True).press_sequentially("marti")
    expect(results.get_by_role("link", name="Abarrotes Doña Lupe")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/clientes/\?q=marti$"))
    results.get_by_role("link", name="El Martillo").click()

    expect(page.get_by_role("heading", level=1, name="El Martillo")).to_be_visible()
    balances = page.get_by_role("region", name="Saldos en MXN")
    expect(balances.get_by_test_id("open-balance")).to_have_text("$1,500.00")
    expect(balances.get_by_test_id("overdue-balance")).to_have_text("$1,000.00")

    # A partial payment, applied by hand to the overdue invoice.
    _record_manual_payment(page, amount="400.00", invoice="FM-0101", allocate="400.00")
    expect(page.get_by_role("alert").filter(has_text="Pago de $400.00 registrado.")).to_contain_text(
        "Aplicado a: FM-0101 ($400.00)."
    )
    expect(balances.get_by_test_id("open-balance")).to_have_text("$1,100.00")
    expect(balances.get_by_test_id("overdue-balance")).to_have_text("$600.00")

    payments = page.get_by_role("tabpanel", name=re.compile("Pagos"))
    expect(payments).to_be_visible()  # the redirect lands on the payments tab
    payment_row = payments.get_by_role("row").filter(has_text="$400.00")
    expect(payment_row).to_contain_text("Transferencia")
    expect(payment_row).to_contain_text("FM-0101")
    expect(payment_row).to_contain_text("Lucía Gestora")

    page.get_by_role("tab", name=re.compile("Facturas")).click()
    invoice_row = (
        page.get_by_role("tabpanel", name=re.compile("Facturas")).get_by_role("row").filter(has_text="FM-0101")
    )
    expect(invoice_row).to_contain_text("Pago parcial")
    expect(invoice_row).to_contain_text("$600.00")

    page.get_by_role("tab", name=re.compile("Historial")).click()
    history = page.get_by_role("tabpanel", name=re.compile("Historial"))
    expect(history.get_by_text("Pago recibido de $400.00 → FM-0101")).to_be_visible()
    expect(history).to_have_css("opacity", "1")  # Bootstrap's fade-in has finished

    _screenshot(page, "client_page_after_partial_payment")

    # The rest, with the "apply the full balance" button of the allocation table.
    _record_manual_payment(page, amount="600.00", invoice="FM-0101")
    expect(page.get_by_role("alert").filter(has_text="Pago de $600.00 registrado.")).to_be_visible()
    expect(balances.get_by_test_id("open-balance")).to_have_text("$500.00")
    expect(balances.get_by_test_id("overdue-balance")).to_have_text("$0.00")
    page.get_by_role("tab", name=re.compile("Facturas")).click()
    expect(
        page.get_by_role("tabpanel", name=re.compile("Facturas")).get_by_role("row").filter(has_text="FM-0101")
    ).to_contain_text("Pagada")

    invoice = Invoice.objects.get(number="FM-0101")
    assert invoice.status == Invoice.Status.PAID and invoice.open_balance == 0
    assert Payment.objects.filter(client=martillo, recorded_by=gestora).count() == 2


# --- 2. a manager filters and reassigns; the new collector sees the clients --------------------


def test_manager_filters_by_segment_and_aging_and_reassigns_in_bulk(page, live_server, gerente, gestora, gestor):
    key_overdue = make_client(
        by=gerente, collector=gestora, legal_name="Constructora Norte", segment_code="cuenta-clave"
    )
    make_invoice(by=gerente, client=key_overdue, amount="9000.00", due_date=_days_ago(45))
    key_unassigned = make_client(by=gerente, collector=None, legal_name="Hotel Bahía", segment_code="cuenta-clave")
    make_invoice(by=gerente, client=key_unassigned, amount="3000.00", due_date=_days_ago(50))
    key_current = make_client(by=gerente, collector=gestora, legal_name="Clínica Sur", segment_code="cuenta-clave")
    make_invoice(by=gerente, client=key_current, amount="700.00", due_date=TODAY + dt.timedelta(days=5))
    regular_overdue = make_client(by=gerente, collector=gestora, legal_name="Papelería Centro")
    make_invoice(by=gerente, client=regular_overdue, amount="1200.00", due_date=_days_ago(40))

    login(page, live_server, "gerente", PASSWORD)
    _open_client_list(page)
    results = page.locator("#client-results")
    for name in ("Constructora Norte", "Hotel Bahía", "Clínica Sur", "Papelería Centro"):
        expect(results.get_by_role("link", name=name)).to_be_visible()

    page.get_by_label("Segmento", exact=True).select_option(label="Cuenta clave")
    expect(results.get_by_role("link", name="Papelería Centro")).to_have_count(0)
    page.get_by_label("Antigüedad", exact=True).select_option(label="31–60 días")
    expect(results.get_by_role("link", name="Clínica Sur")).to_have_count(0)
    expect(results.get_by_role("link", name="Constructora Norte")).to_be_visible()
    expect(results.get_by_role("link", name="Hotel Bahía")).to_be_visible()
    expect(page).to_have_url(re.compile(r"segment=\d+.*bucket=31_60"))

    page.get_by_role("checkbox", name="Seleccionar todos los de esta página").check()
    expect(page.get_by_role("checkbox", name="Seleccionar Constructora Norte")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Seleccionar Hotel Bahía")).to_be_checked()
    page.get_by_label("Reasignar a gestor", exact=True).select_option(label="Mario Gestor")
    page.get_by_role("button", name="Reasignar", exact=True).click()

    expect(page.get_by_role("alert").filter(has_text="2 clientes reasignados a Mario Gestor.")).to_be_visible()
    # Back on the same filtered list, now showing the new collector.
    expect(page).to_have_url(re.compile(r"bucket=31_60"))
    for name in ("Constructora Norte", "Hotel Bahía"):
        expect(results.get_by_role("row").filter(has_text=name)).to_contain_text("Mario Gestor")
    _logout(page, "Gabriela Gerente")

    login(page, live_server, "gestor", PASSWORD)
    _open_client_list(page)
    expect(results.get_by_role("link", name="Constructora Norte")).to_be_visible()
    expect(results.get_by_role("link", name="Hotel Bahía")).to_be_visible()
    expect(results.get_by_role("link", name="Clínica Sur")).to_have_count(0)
    expect(results.get_by_role("link", name="Papelería Centro")).to_have_count(0)
    results.get_by_role("link", name="Constructora Norte").click()
    page.get_by_role("tab", name=re.compile("Historial")).click()
    expect(page.get_by_role("tabpanel", name=re.compile("Historial"))).to_contain_text(
        "Cartera reasignada a Mario Gestor"
    )


# --- 3. the language switch ---------------------------------------------------------------------


def test_switching_to_english_from_the_navbar_translates_the_ui_and_money(page, live_server, gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo", trade_name="El Martillo")
    make_invoice(by=gerente, client=client, amount="1234.50", due_date=_days_ago(10), number="FM-0200")
    make_client(by=gerente, collector=gestora, legal_name="Abarrotes Doña Lupe")

    login(page, live_server, "gestora", PASSWORD)
    _open_client_list(page)
    page.get_by_role("searchbox", name="Buscar", exact=True).press_sequentially("martillo")
    expect(page.locator("#client-results").get_by_role("link", name="Abarrotes Doña Lupe")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text="El Martillo")).to_contain_text("$1,234.50")

    page.get_by_role("button", name="Idioma").click()
    page.get_by_role("button", name="English").click()

    # Same page, same search (htmx had changed the URL), now in English.
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"/clientes/\?q=martillo$"))
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Clients")).to_be_visible()
    expect(nav.get_by_role("link", name="Home")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name="Clients")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Balance", exact=True)).to_be_visible()
    expect(page.get_by_role("columnheader", name="Overdue", exact=True)).to_be_visible()
    expect(page.locator("#client-results").get_by_role("link", name="Abarrotes Doña Lupe")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="El Martillo")
    expect(row).to_contain_text("$1,234.50")
    expect(row).to_contain_text("1–30 days")

    row.get_by_role("link", name="El Martillo").click()
    expect(page.get_by_role("region", name="Balances in MXN").get_by_test_id("open-balance")).to_have_text("$1,234.50")
    expect(page.get_by_role("link", name="Record payment")).to_be_visible()
    _screenshot(page, "client_page_in_english")

    # The payment form's running totals are formatted by the browser in the same locale.
    page.get_by_role("link", name="Record payment").click()
    page.get_by_label("Amount received").fill("100")
    page.get_by_label("Manual: enter the amount for each invoice").check()
    page.get_by_label("FM-0200", exact=True).fill("100")
    expect(page.locator("[data-allocated-total]")).to_have_text("$100.00")

    # And back to Spanish.
    page.get_by_role("button", name="Language").click()
    page.get_by_role("button", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1, name="Registrar pago")).to_be_visible()


# --- 4. access rules -------------------------------------------------------------------------------


def test_another_collectors_client_is_not_found_and_anonymous_visitors_must_log_in(
    page, live_server, gerente, gestora, gestor
):
    hers = make_client(by=gerente, collector=gestora, legal_name="Cliente de Lucía")
    make_invoice(by=gerente, client=hers, amount="800.00", due_date=_days_ago(20))
    make_client(by=gerente, collector=gestor, legal_name="Cliente de Mario")

    # Anonymous: every page sends to the login form, which then returns to the page asked for.
    response = page.goto(f"{live_server.url}/clientes/{hers.pk}/")
    assert response is not None and response.ok
    expect(page).to_have_url(re.compile(rf"/cuenta/entrar/\?next=/clientes/{hers.pk}/$"))
    expect(page.get_by_role("heading", name="Entrar")).to_be_visible()
    page.goto(f"{live_server.url}/clientes/")
    expect(page).to_have_url(re.compile(r"/cuenta/entrar/\?next=/clientes/$"))
    page.get_by_label("Usuario").fill("gestor")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url(re.compile(r"/clientes/$"))
    results = page.locator("#client-results")
    expect(results.get_by_role("link", name="Cliente de Mario")).to_be_visible()
    expect(results.get_by_role("link", name="Cliente de Lucía")).to_have_count(0)

    # Another collector's client does not exist for him: a 404, for the page and its forms.
    for path in (f"/clientes/{hers.pk}/", f"/clientes/{hers.pk}/pagos/nuevo/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", name="No encontramos lo que busca")).to_be_visible()
        expect(page.get_by_text("La página no existe o el cliente no está en su cartera.")).to_be_visible()
        expect(page.get_by_text("Cliente de Lucía")).to_have_count(0)
    page.get_by_role("link", name="Ver clientes").click()
    expect(page.get_by_role("heading", level=1, name="Clientes")).to_be_visible()
