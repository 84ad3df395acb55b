"""The debtor's self-service page in a real browser (Chromium through Playwright) against the
live server, reached the way a debtor reaches it: a signed link, no login. The debtor reads
the statement, downloads it as PDF, promises a payment date and reports a problem with one
invoice; the collector then finds both in the client's timeline and in her worklist. A link
that expired or was altered shows a clear page, never a server error."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import clock
from accounts.models import Interaction
from cobranza.models import CollectorTask, Commitment, Dispute
from cobranza.portal import links
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def debtor(gerente, gestora):
    today = timezone.localdate()
    client = make_client(by=gerente, collector=gestora, legal_name="Papelería La Pluma", currency="MXN")
    make_invoice(by=gerente, client=client, number="LP-0101", amount="12500.00", due_date=today - dt.timedelta(days=20))
    make_invoice(by=gerente, client=client, number="LP-0102", amount="3200.50", due_date=today - dt.timedelta(days=5))
    return client


def _portal(live_server, token: str) -> str:
    return f"{live_server.url}{reverse('selfservice:statement', args=[token])}"


def test_a_debtor_reads_downloads_promises_and_reports_a_problem_and_the_collector_sees_it(
    page, live_server, browser, debtor, gestora
):
    token = links.token_for(debtor)
    response = page.goto(_portal(live_server, token))
    assert response.status == 200
    expect(page.get_by_role("heading", level=1, name="Su estado de cuenta")).to_be_visible()
    expect(page.locator("header")).to_contain_text("Papelería La Pluma")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("LP-0101")
    expect(rows.first).to_contain_text("$12,500.00")
    expect(rows.nth(1)).to_contain_text("LP-0102")
    expect(page.locator('[data-total="MXN"]')).to_have_text("$15,700.50")
    _screenshot(page, "selfservice-statement")

    # The statement as a PDF file.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Descargar el estado de cuenta (PDF)").click()
    download = download_info.value
    assert re.fullmatch(r"estado-de-cuenta-\d{4}-\d{2}-\d{2}\.pdf", download.suggested_filename)
    assert Path(download.path()).read_bytes()[:5] == b"%PDF-"

    # A promise to pay: date and amount.
    pay_on = timezone.localdate() + dt.timedelta(days=7)
    page.get_by_role("link", name="Prometer una fecha de pago").click()
    page.get_by_label("Fecha en que pagará").fill(pay_on.isoformat())
    page.get_by_label("Importe").fill("15700.50")
    page.get_by_role("button", name="Registrar mi promesa").click()
    expect(page.get_by_role("status")).to_contain_text("Gracias: registramos su promesa de pago.")
    commitment = Commitment.objects.get(client=debtor)
    assert commitment.kind == "promise" and commitment.installments.get().amount == Decimal("15700.50")

    # A problem with one invoice, from its row: a dispute is opened and the row says so.
    page.locator("tbody tr", has_text="LP-0102").get_by_role("link", name="Reportar un problema").click()
    expect(page.get_by_label("Factura")).to_have_value(str(debtor.invoices.get(number="LP-0102").pk))
    page.get_by_label("Motivo").select_option(index=1)
    page.get_by_label("Descripción del problema").fill("Nos cobraron dos veces el mismo pedido.")
    page.get_by_role("button", name="Enviar el reporte").click()
    expect(page.get_by_role("status")).to_contain_text("Gracias: registramos su reporte.")
    expect(page.locator("tbody tr", has_text="LP-0102")).to_contain_text("En revisión")
    dispute = Dispute.objects.get(client=debtor)
    assert list(dispute.invoices.values_list("number", flat=True)) == ["LP-0102"]
    assert "Nos cobraron dos veces" in dispute.description
    _screenshot(page, "selfservice-after")

    # The collector, in her own session: the client's timeline and her worklist.
    staff = browser.new_context(locale="es-MX", timezone_id="America/Mexico_City")
    staff.set_default_timeout(15_000)
    collector = staff.new_page()
    try:
        login(collector, live_server, "gestora", PASSWORD)
        collector.goto(f"{live_server.url}{reverse('client_detail', args=[debtor.pk])}")
        collector.locator("#tab-historial").click()
        timeline = collector.locator("#seccion-historial")
        expect(timeline.get_by_text(re.compile(r"^Promesa de pago: \$15,700\.50")).first).to_be_visible()
        expect(timeline.get_by_text("Nos cobraron dos veces el mismo pedido.", exact=False).first).to_be_visible()
        collector.goto(f"{live_server.url}{reverse('cobranza:worklist')}")
        row = collector.get_by_test_id("worklist-row").filter(has_text="Papelería La Pluma")
        expect(row).to_contain_text("Promesa desde el portal")
        _screenshot(collector, "selfservice-collector-worklist")
    finally:
        staff.close()
    assert CollectorTask.objects.filter(client=debtor, assigned_to=gestora).count() >= 2
    assert Interaction.objects.filter(client=debtor, summary__startswith="Promesa de pago").exists()


def test_an_expired_or_altered_link_shows_a_clear_page_not_an_error(page, live_server, debtor, settings):
    # Signed by a run of long ago: links are stamped by the one clock (docs/domain.md#one-clock).
    with clock.running_at(clock.now() - dt.timedelta(days=settings.SELF_SERVICE_LINK_DAYS + 1)):
        expired = links.token_for(debtor)

    response = page.goto(_portal(live_server, expired))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1, name="Enlace no disponible")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Este enlace ha caducado.")
    expect(page.locator("main")).not_to_contain_text("LP-0101")

    token = links.token_for(debtor)
    altered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for url in (
        _portal(live_server, altered),
        f"{live_server.url}{reverse('selfservice:promise', args=[altered])}",
        f"{live_server.url}{reverse('selfservice:statement_pdf', args=[altered])}",
    ):
        response = page.goto(url)
        assert response.status == 404, url
        expect(page.locator("main")).to_contain_text("Este enlace no es válido. Compruebe que lo copió completo.")
    _screenshot(page, "selfservice-invalid")
