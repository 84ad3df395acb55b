"""The client page in sections, in Chromium: the summary first, each tab's section fetched
when the tab is opened (app.js), on a desktop and on a 390-px phone where nothing scrolls
sideways; deep links to a section's anchor open it."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# (tab label, what its section shows)
TABS = [
    ("Facturas", "SB-0001"),
    ("Pagos", "TRANSF-77"),
    ("Historial", "Llamada al contador"),
    ("Contactos", "carmen@example.com"),
    ("Cobranza", "Escalera"),
    ("Cambios", "Quién"),
]


@pytest.fixture
def debtor(gerente, gestora):
    today = timezone.localdate()
    c = make_client(by=gerente, collector=gestora, legal_name="Papelería Las Secciones")
    make_invoice(by=gerente, client=c, number="SB-0001", amount="1500.00", due_date=today - dt.timedelta(days=45))
    services.payment_record(by=gerente, client=c, amount=Decimal("200.00"), received_on=today, reference="TRANSF-77")
    services.contact_create(by=gerente, client=c, name="Carmen Ruiz", email="carmen@example.com")
    services.interaction_log(by=gestora, client=c, kind="call", summary="Llamada al contador")
    return c


@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=VIEWPORTS.keys())
def test_tabs_load_their_section_on_demand(browser, live_server, gestora, debtor, viewport):
    context = browser.new_context(locale="es-MX", timezone_id="America/Mexico_City", viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if "/secciones/" in r.url else None)
    try:
        login(page, live_server, "gestora", PASSWORD)
        page.goto(f"{live_server.url}{reverse('client_detail', args=[debtor.pk])}")
        expect(page.get_by_test_id("open-balance").first).to_be_visible()
        expect(page.get_by_test_id("summary-next-step")).to_be_visible()
        assert fetched == []  # nothing loaded before a tab is opened
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"client-summary-{viewport['width']}.png"), full_page=True)
        for label, marker in TABS:
            page.get_by_role("tab", name=re.compile(label)).click()
            panel = page.get_by_role("tabpanel", name=re.compile(label))
            expect(panel).to_be_visible()
            expect(panel).to_contain_text(marker)
            expect(page.get_by_role("tab", name=re.compile(label))).to_have_attribute("aria-selected", "true")
            width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if width[0] > width[1]:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"sections-{viewport['width']}-{label}.png"), full_page=True)
            assert width[0] <= width[1], f"{label}: the page scrolls sideways at {viewport['width']} px"
        page.screenshot(path=str(ARTIFACTS / f"client-section-cambios-{viewport['width']}.png"), full_page=True)
        assert len(fetched) == len(TABS)  # one fetch per section
        # Back to a section already opened: shown again without fetching it twice.
        page.get_by_role("tab", name=re.compile("Facturas")).click()
        expect(page.get_by_role("tabpanel", name=re.compile("Facturas"))).to_contain_text("SB-0001")
        assert len(fetched) == len(TABS)
        # The URL names the open section: a reload (or a shared link) shows it inline.
        assert "tab=facturas" in page.url
        page.reload()
        expect(page.get_by_role("tabpanel", name=re.compile("Facturas"))).to_contain_text("SB-0001")
    finally:
        context.close()


def test_a_deep_link_to_a_section_anchor_opens_its_tab(page, live_server, gestora, debtor):
    login(page, live_server, "gestora", PASSWORD)
    # An old-style link (anchor only) to a panel now inside the "Cobranza" section.
    page.goto(f"{live_server.url}{reverse('client_detail', args=[debtor.pk])}#perfil")
    expect(page.get_by_test_id("profile-panel")).to_be_visible()
    expect(page.get_by_role("tab", name=re.compile("Cobranza"))).to_have_attribute("aria-selected", "true")
    # The summary's "see the timeline" link opens that section in place.
    page.goto(f"{live_server.url}{reverse('client_detail', args=[debtor.pk])}")
    page.get_by_role("link", name="Ver historial").click()
    expect(page.get_by_role("tabpanel", name=re.compile("Historial"))).to_contain_text("Llamada al contador")
