"""An administrator connects another system in a real browser: creates an outgoing webhook
(first with mistakes, shown next to their fields), reads its signing secret, sends a test
event to a real local HTTP server and sees it delivered — signed with that secret."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from cobranza.models import WebhookEndpoint
from tests.cobranza.test_webhooks_out import Receiver, verify
from tests.e2e.conftest import login
from tests.factories import PASSWORD

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver(settings):
    settings.OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = True
    settings.OUTGOING_WEBHOOKS_TIMEOUT = 5
    server = Receiver().start()
    yield server
    server.stop()


def test_admin_creates_a_webhook_sends_a_test_event_and_sees_it_delivered(page, live_server, admin_user, receiver):
    login(page, live_server, "admin", PASSWORD)
    page.goto(live_server.url + reverse("cobranza:webhook_list"))
    expect(page.get_by_role("heading", level=1, name="Webhooks de salida")).to_be_visible()
    expect(page.get_by_test_id("webhook-table")).to_contain_text("Todavía no hay webhooks")
    page.get_by_role("link", name="Nuevo webhook").click()

    # Mistakes come back next to their fields, with what was typed kept.
    page.get_by_label("Nombre").fill("ERP central")
    page.get_by_label("URL").fill("http://erp.example.com/hooks")
    page.get_by_role("button", name="Guardar").click()
    form = page.get_by_test_id("webhook-form")
    expect(form).to_contain_text("La URL debe empezar por https://")
    expect(form).to_contain_text("Elija al menos un evento.")
    expect(page.get_by_label("Nombre")).to_have_value("ERP central")
    assert not WebhookEndpoint.objects.exists()

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Pago recibido").check()
    page.get_by_label("Disputa abierta").check()
    page.get_by_role("button", name="Guardar").click()

    expect(page.get_by_role("heading", level=1, name=re.compile("ERP central"))).to_be_visible()
    expect(page.get_by_test_id("webhook-url")).to_have_text(receiver.url)
    page.get_by_text("Mostrar secreto").click()
    secret = page.get_by_test_id("webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_") and secret == WebhookEndpoint.objects.get().secret

    page.get_by_role("button", name="Enviar evento de prueba").click()
    expect(page.get_by_role("alert").filter(has_text="Evento de prueba entregado (HTTP 200)")).to_be_visible()
    row = page.get_by_test_id("delivery-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("delivery-status")).to_have_text("Entregado")
    expect(row).to_contain_text("Evento de prueba")
    expect(page.get_by_test_id("stat-delivered")).to_have_text("1")

    # What the receiver got verifies with the secret the page showed.
    [request] = receiver.requests
    assert request["headers"]["X-Morosos-Event"] == "ping"
    assert verify(secret, request)

    page.get_by_role("link", name="Webhooks de salida").first.click()
    listing = page.get_by_test_id("webhook-table").get_by_role("row", name=re.compile("ERP central"))
    expect(listing).to_contain_text("Disputa abierta, Pago recibido")
    expect(listing).to_contain_text("Activo")
