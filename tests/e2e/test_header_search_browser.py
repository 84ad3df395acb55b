"""The header box's suggestions in a real browser (static/js/search.js): typing shows the best
matches of the client list's search as a listbox, arrow keys and Enter open one, Esc closes,
Enter without a choice still opens the full results page — on a desktop and on a 390-px phone
(where the box sits in the collapsed menu)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TODAY = timezone.localdate()
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def book(gerente, gestora):
    martillo = make_client(
        by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.", tax_id="FEM900101AB1"
    )
    make_invoice(by=gerente, client=martillo, number="A-0001866", amount="500.00", due_date=TODAY)
    services.contact_create(by=gerente, client=martillo, name="Rosa Pérez", email="pagos@elmartillo.mx")
    lupe = make_client(by=gerente, collector=gestora, legal_name="Abarrotes Doña Lupe", trade_name="Tienda Lupita")
    make_invoice(by=gerente, client=lupe, number="B-0018660", amount="300.00", due_date=TODAY)
    return {"martillo": martillo, "lupe": lupe}


def _search_box(page: Page):
    box = page.get_by_role("combobox", name="Buscar clientes")
    if not box.is_visible():  # a phone: the box is in the collapsed menu
        page.get_by_role("button", name="Mostrar menú").click()
    expect(box).to_be_visible()
    return box


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_typing_in_the_header_suggests_clients_and_opens_one(page: Page, live_server, book, gestora, viewport):
    page.set_viewport_size(VIEWPORTS[viewport])
    login(page, live_server, gestora.username, PASSWORD)
    box = _search_box(page)
    expect(box).to_have_attribute("aria-expanded", "false")

    # Part of an invoice number: both clients, each saying which invoice matched.
    box.press_sequentially("1866", delay=30)
    listbox = page.get_by_role("listbox", name="Sugerencias de clientes")
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options.filter(has_text="Ferretería El Martillo")).to_contain_text("Factura A-0001866")
    expect(options.filter(has_text="Abarrotes Doña Lupe")).to_contain_text("Factura B-0018660")
    expect(options.last).to_contain_text("Todos los resultados de «1866»")
    _no_sideways_scroll(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"header-suggestions-{viewport}.png"))

    # Esc closes the list; typing again opens it.
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")

    # A typo in the trade name; the arrow key chooses, Enter opens the client page.
    box.fill("")
    box.press_sequentially("Tienda Lupta", delay=20)
    first = listbox.get_by_role("option").first
    expect(first).to_contain_text("Abarrotes Doña Lupe")
    expect(first).to_contain_text("Tienda Lupita")
    box.press("ArrowDown")
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    box.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(reverse("client_detail", args=[book["lupe"].pk])) + "$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tienda Lupita")  # its trade name


def test_enter_without_a_choice_opens_the_full_results(page: Page, live_server, book, gestora):
    login(page, live_server, gestora.username, PASSWORD)
    box = _search_box(page)
    box.press_sequentially("martilo", delay=20)
    option = page.get_by_role("listbox").get_by_role("option").first
    expect(option).to_contain_text("Ferretería El Martillo")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/clientes/\?q=martilo$"))
    expect(page.get_by_role("heading", level=1, name="Clientes")).to_be_visible()
    expect(page.get_by_text("Ferretería El Martillo S.A. de C.V.")).to_be_visible()


def test_a_click_on_a_suggestion_opens_the_client(page: Page, live_server, book, gestora):
    login(page, live_server, gestora.username, PASSWORD)
    box = _search_box(page)
    box.press_sequentially("pagos@elm", delay=20)
    option = page.get_by_role("option", name=re.compile("Ferretería El Martillo"))
    expect(option).to_contain_text("Rosa Pérez · pagos@elmartillo.mx")
    option.click()
    expect(page).to_have_url(re.compile(re.escape(reverse("client_detail", args=[book["martillo"].pk])) + "$"))
