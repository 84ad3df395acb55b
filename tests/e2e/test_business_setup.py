"""The first administrator's first login, in a real browser: before anything else, the short
setup form for the business's essentials; a missing field is pointed at; once saved, the
administrator lands where they were going and the business's settings page shows it. A
collector who logs in first is not blocked, only told (docs/domain.md, "Who the debtor hears
from")."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from cobranza.business import selectors
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import BUSINESS, PASSWORD, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.without_business]


def test_first_admin_login_goes_through_the_setup_then_lands_on_the_app(page: Page, live_server):
    make_user("gestora", "collector", first_name="Lucía", last_name="Gestora")
    make_user("admin", "admin", first_name="Ana", last_name="Administradora")

    login(page, live_server, "gestora", PASSWORD)
    expect(page.get_by_test_id("business-setup-pending")).to_contain_text("Pida a un administrador")
    page.get_by_role("button", name=re.compile("Lucía")).click()
    page.get_by_role("button", name="Salir").click()

    login(page, live_server, "admin", PASSWORD)
    expect(page).to_have_url(re.compile(r"/cobranza/empresa/configuracion-inicial/"))
    expect(page.get_by_role("heading", name=re.compile("los datos de su empresa"))).to_be_visible()
    page.get_by_label("Nombre comercial").fill(BUSINESS["trade_name"])
    page.get_by_label("Razón social").fill(BUSINESS["legal_name"])
    page.get_by_label("Nombre del remitente").fill(BUSINESS["sender_name"])
    page.get_by_label("Correo del remitente").fill("no es un correo")
    page.get_by_label("Dirección pública").fill(BUSINESS["public_base_url"])
    page.get_by_label("Teléfono").fill(BUSINESS["phone"])
    page.get_by_test_id("setup-submit").click()
    expect(page.get_by_text("Escriba una dirección de correo válida")).to_be_visible()
    assert not selectors.is_set_up()

    page.get_by_label("Correo del remitente").fill(BUSINESS["sender_email"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "business-setup.png"), full_page=True)
    page.get_by_test_id("setup-submit").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_text(f"a nombre de {BUSINESS['trade_name']}")).to_be_visible()
    expect(page.get_by_test_id("business-setup-pending")).to_have_count(0)
    assert selectors.is_set_up()

    page.get_by_role("button", name="Cobranza").click()
    page.get_by_test_id("nav-business").click()
    expect(page.get_by_label("Nombre comercial")).to_have_value(BUSINESS["trade_name"])
    page.get_by_label("CLABE").fill("002010077777777772")
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("dígito de control no coincide")).to_be_visible()
