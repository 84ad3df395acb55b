"""A promise outside the portal limits, in a real browser (Chromium through Playwright): the
debtor promises $100 six months away against $25,781.63 overdue; the portal says it waits
for approval; the collector finds it on her worklist, approves it on the client page; the
debtor's page then shows it accepted with its date and amount
(docs/domain.md#portal-limits)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from cobranza.models import BusinessProfile, Commitment, Invoice, PortalProposal
from cobranza.portal import links
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def debtor(gerente, gestora):
    today = timezone.localdate()
    client = make_client(by=gerente, collector=gestora, legal_name="Abarrotes La Esquina", currency="MXN")
    for n, (amount, days) in enumerate(
        zip(["7500.00", "6250.50", "5031.13", "4000.00", "3000.00"], (5, 10, 20, 35, 50), strict=True), start=1
    ):
        make_invoice(
            by=gerente, client=client, number=f"E-{n}", amount=amount, due_date=today - dt.timedelta(days=days)
        )
    return client


def test_an_out_of_limit_promise_waits_for_the_collector_who_approves_it(page, live_server, browser, debtor, gestora):
    # The portal's public address is the business's: this live server.
    BusinessProfile.objects.filter(pk=1).update(public_base_url=live_server.url)
    portal_url = f"{live_server.url}{reverse('selfservice:statement', args=[links.token_for(debtor)])}"
    page.goto(portal_url)
    expect(page.locator('[data-total="MXN"]')).to_have_text("$25,781.63")

    pay_on = timezone.localdate() + dt.timedelta(days=183)
    page.get_by_role("link", name="Prometer una fecha de pago").click()
    page.get_by_label("Fecha en que pagará").fill(pay_on.isoformat())
    page.get_by_label("Importe").fill("100.00")
    page.get_by_role("button", name="Registrar mi promesa").click()
    expect(page.get_by_role("status")).to_contain_text("su gestor de cobranza la revisará")
    card = page.get_by_test_id("agreement")
    expect(card).to_have_attribute("data-state", "pending")
    expect(card).to_contain_text("Pendiente de aprobación")
    expect(card).to_contain_text("$100.00")
    _screenshot(page, "portal-promise-pending")
    assert PortalProposal.objects.get(client=debtor).status == "pending"
    assert not Commitment.objects.exists()

    staff = browser.new_context(locale="es-MX", timezone_id="America/Mexico_City")
    staff.set_default_timeout(15_000)
    collector = staff.new_page()
    try:
        login(collector, live_server, "gestora", PASSWORD)
        collector.goto(f"{live_server.url}{reverse('cobranza:worklist')}")
        row = collector.get_by_test_id("worklist-row").filter(has_text="Abarrotes La Esquina")
        expect(row).to_contain_text("Aprobar o rechazar: Promesa de pago de $100.00")
        row.get_by_test_id("proposal-review").click()

        panel = collector.get_by_test_id("portal-panel")
        # No public address configured in tests: the panel offers this server's own link to copy.
        expect(panel.get_by_test_id("portal-link")).to_have_value(re.compile(r"^http://[^/]+/portal/\S+$"))
        proposal = panel.get_by_test_id("portal-proposal")
        expect(proposal).to_contain_text("$100.00")
        expect(proposal).to_contain_text("más de 30 días")
        _screenshot(collector, "portal-proposal-on-client-page")
        proposal.get_by_role("button", name="Aprobar").click()
        expect(collector.locator(".messages .alert-success")).to_contain_text("Propuesta aprobada")
        expect(collector.get_by_test_id("portal-proposals")).to_have_count(0)
    finally:
        staff.close()

    commitment = Commitment.objects.get(client=debtor)
    assert commitment.kind == "promise" and commitment.approved_by == gestora
    assert commitment.installments.get().amount == Decimal("100.00")
    assert commitment.invoices.count() == Invoice.objects.filter(client=debtor).count() == 5

    page.goto(portal_url)
    card = page.get_by_test_id("agreement")
    expect(card).to_have_attribute("data-state", "open")
    expect(card.get_by_test_id("agreement-state")).to_have_text("Aceptada")
    expect(card).to_contain_text("$100.00")
    _screenshot(page, "portal-promise-accepted")
