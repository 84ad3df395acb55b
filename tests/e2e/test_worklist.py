"""A collector's morning in a real browser (Debian's Chromium through Playwright) against the
live server: open "Mi cartera hoy", find the client whose ladder call is due at the top with
its reason, mark the call done with a note, and see the day's counter move. Data is created
through the services (and rows the ladder would write); everything after that is done the way
a person does it, by labels, roles and visible text."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.models import CollectorTask, Notice, Policy, TaskKind, TaskStatus
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TODAY = timezone.localdate()


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _ladder_call(client, invoice_number: str) -> CollectorTask:
    """The task the ladder's call step leaves for the collector (regular ladder, step 4)."""
    step = Policy.objects.get(segment__code="regular").steps.get(position=4)
    notice = Notice.objects.create(
        client=client,
        step=step,
        channel="call",
        planned_for=TODAY,
        scheduled_at=timezone.now(),
        status="sent",
        sent_at=timezone.now(),
    )
    return CollectorTask.objects.create(
        client=client,
        kind=TaskKind.CALL,
        notice=notice,
        title=f"{step.name}: {invoice_number}",
        assigned_to=client.collector,
        due_on=TODAY,
    )


def test_a_collector_works_the_top_of_her_queue(page, live_server, gerente, gestora, gestor):
    martillo = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo")
    make_invoice(
        by=gerente, client=martillo, number="FM-0101", amount="18000.00", due_date=TODAY - dt.timedelta(days=16)
    )
    call = _ladder_call(martillo, "FM-0101")
    # Lower in her queue: a next action agreed for today on a smaller debt.
    clavo = make_client(by=gerente, collector=gestora, legal_name="Tlapalería El Clavo")
    make_invoice(by=gerente, client=clavo, number="TC-0061", amount="900.00", due_date=TODAY - dt.timedelta(days=2))
    ledger.interaction_log(
        by=gestora, client=clavo, kind="call", summary="Pide que le llamen hoy", next_action_on=TODAY
    )
    # Mario's client never shows up in Lucía's queue.
    fenix = make_client(by=gerente, collector=gestor, legal_name="Ferretería Fénix")
    make_invoice(by=gerente, client=fenix, number="FF-1", amount="99000.00", due_date=TODAY - dt.timedelta(days=90))
    _ladder_call(fenix, "FF-1")

    login(page, live_server, "gestora", PASSWORD)
    page.goto(f"{live_server.url}{reverse('cobranza:worklist')}")
    expect(page.get_by_role("heading", level=1, name="Mi cartera hoy")).to_be_visible()
    progress = page.get_by_test_id("day-progress-text")
    expect(progress).to_have_text("0 de 1 pendiente atendido hoy")

    rows = page.get_by_test_id("worklist-row")
    expect(rows).to_have_count(2)
    top = rows.first
    expect(top.get_by_role("heading", name="Ferretería El Martillo")).to_be_visible()
    expect(top.get_by_test_id("todo")).to_contain_text("Llamada del paso 4 de la escalera")
    expect(top.get_by_test_id("why")).to_contain_text("1 factura vencida con 16 días")
    expect(top.get_by_test_id("totals")).to_contain_text("$18,000.00")
    expect(rows.nth(1)).to_contain_text("Tlapalería El Clavo")
    expect(rows.nth(1)).to_contain_text("Seguimiento acordado para hoy")
    expect(page.get_by_test_id("worklist")).not_to_contain_text("Ferretería Fénix")
    expect(top.get_by_role("link", name="Registrar resultado")).to_have_attribute(
        "href", reverse("cobranza:log_outcome", args=[martillo.pk])
    )
    _screenshot(page, "worklist-before")

    top.get_by_label("Nota (opcional)").fill("Rosa promete transferir el viernes")
    top.get_by_role("button", name=re.compile("Hecha")).click()

    expect(page.get_by_role("alert").filter(has_text="Tarea hecha")).to_contain_text(
        "Tarea hecha: Llamada de seguimiento: acordar fecha de pago: FM-0101 (Ferretería El Martillo)."
    )
    expect(page.get_by_test_id("day-progress-text")).to_have_text("1 de 1 pendiente atendido hoy")
    # The call is done; the client leaves the queue, the next one moves to the top.
    expect(page.get_by_test_id("worklist-row")).to_have_count(1)
    expect(page.get_by_test_id("worklist-row").first).to_contain_text("Tlapalería El Clavo")
    _screenshot(page, "worklist-after")

    call.refresh_from_db()
    assert call.status == TaskStatus.DONE and call.completed_by == gestora
    note = Interaction.objects.filter(client=martillo, kind="system").first()
    assert note.body == "Rosa promete transferir el viernes"

    # One click opens the client's quick "log an outcome" form.
    page.get_by_test_id("worklist-row").first.get_by_role("link", name="Registrar resultado").click()
    expect(page).to_have_url(re.compile(rf"/cobranza/clientes/{clavo.pk}/gestion/$"))
