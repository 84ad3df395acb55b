"""A manager changes a client in the browser and finds the change, with her name, in the
client's history of changes; a run of wrong passwords ends on the lock-out page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_client

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_edits_a_client_and_reads_the_change_in_its_history(page: Page, live_server, gerente, gestora):
    client = make_client(
        by=gerente, collector=gestora, legal_name="Refaccionaria El Pistón S.A.", trade_name="El Pistón"
    )
    login(page, live_server, "gerente", PASSWORD)

    page.goto(f"{live_server.url}/clientes/{client.pk}/")
    page.get_by_role("button", name="Más acciones").click()
    page.get_by_role("link", name="Editar").click()
    page.get_by_label("Límite de crédito").fill("45000")
    page.get_by_role("button", name="Guardar cambios").click()
    expect(page.get_by_text("Datos del cliente guardados.")).to_be_visible()

    # The latest changes are the page's "Cambios" section; the full history is a page of its own.
    page.get_by_role("tab", name="Cambios").click()
    page.get_by_role("link", name="Ver el historial de cambios completo").click()

    expect(page.get_by_role("heading", level=1, name="Historial de cambios")).to_be_visible()
    newest = page.get_by_test_id("audit-table").locator("tbody tr").first
    expect(newest.get_by_test_id("audit-actor")).to_have_text("Gabriela Gerente")
    expect(newest.get_by_test_id("audit-change")).to_contain_text("Límite de crédito: 0.00 → 45000.00")


def test_wrong_passwords_end_on_the_lock_out_page(page: Page, live_server, gestora, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(page, live_server, "gestora", "no-es-la-contraseña")

    expect(page.get_by_role("heading", name="Acceso bloqueado temporalmente")).to_be_visible()
    expect(page.get_by_test_id("retry-at")).to_contain_text("Podrá volver a intentarlo en 15 minutos")
    page.get_by_role("link", name="Volver a la página de entrada").click()
    expect(page.get_by_role("button", name="Entrar")).to_be_visible()
