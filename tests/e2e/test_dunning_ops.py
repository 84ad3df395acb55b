"""A manager's dunning routine in a real browser (Debian's Chromium through Playwright)
against the live server: pause a client's reminders from its page, then approve a notice
from the approvals queue. Data is created through the services and the planner; everything
after that is done the way a person does it, by labels, roles and visible text."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, Notice
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TODAY = timezone.localdate()


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_manager_pauses_a_client_then_approves_a_notice(page, live_server, gerente, gestora):
    martillo = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo")
    ledger.contact_create(by=gerente, client=martillo, name="Rosa Pagos", email="rosa@martillo.example")
    make_invoice(by=gerente, client=martillo, number="FM-0101", amount="4000.00", due_date=TODAY - dt.timedelta(days=8))
    clavo = make_client(by=gerente, collector=gestora, legal_name="Tlapalería El Clavo")
    make_invoice(by=gerente, client=clavo, number="TC-0061", amount="9000.00", due_date=TODAY - dt.timedelta(days=61))
    plan(today=TODAY)  # El Clavo's manager review (+60 days) waits for approval
    review = Notice.objects.exclude(status="superseded").get(client=clavo)  # earlier steps: superseded
    assert review.status == "awaiting_approval"

    login(page, live_server, "gerente", PASSWORD)

    # --- the client page: pause the reminders until a date, with a reason ---------------------
    page.get_by_role("navigation", name="Navegación principal").get_by_role("link", name="Clientes").click()
    page.locator("#client-results").get_by_role("link", name="Ferretería El Martillo").click()
    expect(page.get_by_role("heading", level=1, name="Ferretería El Martillo")).to_be_visible()
    page.get_by_role("tab", name=re.compile("Cobranza")).click()  # the ladder is in that section
    panel = page.get_by_test_id("dunning-panel")
    expect(panel.get_by_role("heading", name="Recordatorios y escalera de cobranza")).to_be_visible()
    expect(panel.get_by_test_id("effective-policy")).to_have_text("Escalera regular")
    expect(panel.get_by_test_id("pause-state")).to_have_text("Recordatorios activos.")
    expect(panel.get_by_role("row", name=re.compile("FM-0101"))).to_contain_text("SMS de seguimiento")

    until = TODAY + dt.timedelta(days=14)
    panel.get_by_label("Sin recordatorios hasta").fill(until.isoformat())
    panel.get_by_label("Motivo de la pausa").fill("Convenio de pago en firma")
    panel.get_by_role("button", name="Pausar recordatorios").click()

    shown = until.strftime("%d/%m/%Y")
    expect(page.get_by_role("alert").filter(has_text="en pausa")).to_contain_text(
        f"Recordatorios de Ferretería El Martillo en pausa hasta el {shown}."
    )
    panel = page.get_by_test_id("dunning-panel")
    expect(panel.get_by_test_id("pause-badge")).to_have_text(f"En pausa hasta el {shown}")
    expect(panel.get_by_test_id("pause-state")).to_contain_text("Convenio de pago en firma")
    expect(panel.get_by_role("button", name="Reanudar recordatorios")).to_be_visible()
    # The timeline has it too.
    page.get_by_role("tab", name=re.compile("Historial")).click()
    expect(page.locator("#seccion-historial")).to_contain_text("Recordatorios en pausa hasta el")
    _screenshot(page, "dunning-panel-paused")

    dunning = ClientDunning.objects.get(client=martillo)
    assert dunning.paused_until == until and dunning.pause_reason == "Convenio de pago en firma"

    # --- the approvals queue: approve El Clavo's review -----------------------------------------
    page.goto(f"{live_server.url}{reverse('cobranza:approvals')}")
    expect(page.get_by_role("heading", level=1, name="Avisos por aprobar")).to_be_visible()
    card = page.locator("article").filter(has_text="Tlapalería El Clavo")
    expect(card).to_contain_text("Se creará una tarea de revisión para Lucía Gestora.")
    expect(card).to_contain_text("TC-0061")
    _screenshot(page, "approvals-queue")
    card.get_by_role("button", name="Aprobar", exact=True).click()

    expect(page.get_by_role("alert").filter(has_text="Aviso aprobado")).to_contain_text(
        "Aviso aprobado: Tlapalería El Clavo · Revisión del gerente"
    )
    expect(page.get_by_text("No hay avisos pendientes de aprobación.")).to_be_visible()

    review.refresh_from_db()
    assert review.status == "planned" and review.approved_by == gerente
    assert Interaction.objects.filter(client=clavo, summary__startswith="Aviso aprobado").exists()
