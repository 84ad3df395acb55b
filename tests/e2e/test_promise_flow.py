"""A promise to pay in a real browser (Debian's Chromium through Playwright) against the live
server: a collector opens her client, logs a call with a promise for tomorrow in the quick
form and sees it on the client page; two days later the promise is judged broken, a task is
waiting for her, the client page says "Incumplida" and the ladder has resumed one step firmer.

The data is created through the services before the browser starts; the clock moves with
time_machine in this process (the live server's thread shares it), and the day's jobs
(``commitments.judge``, ``planner.plan``) are called the way beat would call them.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import unquote_plus

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.engine.planner import plan
from cobranza.models import CollectorTask, Commitment, Notice, TaskKind
from cobranza.workspace import jobs as commitments
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _choose(form, text: str) -> None:
    """Pick a choice drawn as a toggle button (the radio sits under its label, as for a person)."""
    form.locator("label").filter(has_text=re.compile(f"^{re.escape(text)}$")).click()


def test_a_broken_promise_logged_in_the_quick_form_resumes_the_ladder(page, live_server, gerente, gestora):
    today = timezone.localdate()
    tomorrow, after = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
    martillo = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.")
    ana = ledger.contact_create(by=gerente, client=martillo, name="Ana Pagos", email="ana@martillo.example")
    ledger.contact_create(by=gerente, client=martillo, name="Jorge Aval", role="guarantor", phone="+525511")
    # Ten days overdue: the regular ladder's +7 SMS is the step reached today.
    make_invoice(
        by=gerente, client=martillo, number="FM-0101", amount="1500.00", due_date=today - dt.timedelta(days=10)
    )
    make_invoice(by=gerente, client=martillo, number="FM-0102", amount="500.00", due_date=today - dt.timedelta(days=10))
    plan(today=today)
    assert Notice.objects.filter(client=martillo, planned_for=today, step__offset_days=7).exists()

    # --- the call, in the browser ----------------------------------------------------------
    # Nothing the collector types may travel in a URL (access logs keep URLs): every request line
    # the browser sends is recorded and checked at the end.
    request_lines = []
    page.on("request", lambda request: request_lines.append(request.url))
    login(page, live_server, "gestora", PASSWORD)
    page.get_by_role("navigation", name="Navegación principal").get_by_role("link", name="Clientes").click()
    page.locator("#client-results").get_by_role("link", name="Ferretería El Martillo S.A. de C.V.").click()
    expect(page.get_by_role("heading", level=1, name="Ferretería El Martillo S.A. de C.V.")).to_be_visible()
    page.get_by_role("tab", name=re.compile("Cobranza")).click()  # agreements are in that section
    panel = page.get_by_test_id("workspace-panel")
    expect(panel.get_by_test_id("no-open-commitments")).to_be_visible()
    panel.get_by_test_id("log-outcome-link").click()

    expect(page.get_by_role("heading", level=1, name="Registrar gestión")).to_be_visible()
    form = page.get_by_test_id("log-outcome-form")
    promise_part = form.get_by_test_id("promise-section")
    expect(promise_part).to_be_hidden()  # disclosed only for a promise
    expect(form.get_by_label("Con quién")).to_contain_text("Jorge Aval (aval)")
    form.get_by_label("Con quién").select_option(str(ana.pk))
    form.get_by_label("Motivo del impago").select_option(label="Falta de liquidez")
    _choose(form, "Promesa de pago")
    expect(form.get_by_label("Promesa de pago", exact=True)).to_be_checked()
    expect(promise_part).to_be_visible()
    expect(form.get_by_test_id("plan-section")).to_be_hidden()
    # Both invoices are checked and their total is offered as the promised amount.
    expect(form.get_by_label(re.compile("FM-0101"))).to_be_checked()
    expect(promise_part.get_by_label("Importe 1")).to_have_value("2000.00")
    promise_part.get_by_label("Fecha 1").fill(tomorrow.isoformat())
    form.get_by_label("Notas").fill("Paga mañana por transferencia; confirma por correo.")
    # Run at night in Mexico City, the form asks why a call was made outside the debtor's hours
    # (docs/domain.md#call-windows): say so, as a collector would.
    outside = form.get_by_test_id("outside-hours")
    if outside.count() and outside.is_visible():
        form.get_by_label("Motivo para llamar fuera del horario permitido").fill("El cliente pidió la llamada")
    _screenshot(page, "log_outcome_form")
    form.get_by_role("button", name="Registrar gestión").click()

    # --- back on the client page ----------------------------------------------------------------
    expect(page.get_by_role("alert").filter(has_text="Promesa de pago registrada")).to_be_visible()
    commitment = page.get_by_test_id("open-commitment")
    expect(commitment).to_have_count(1)
    expect(commitment).to_contain_text("Promesa de pago")
    expect(commitment).to_contain_text("$2,000.00")
    expect(commitment).to_contain_text("FM-0101, FM-0102")
    expect(commitment.get_by_test_id("installments")).to_contain_text(tomorrow.strftime("%d/%m/%Y"))
    expect(commitment.get_by_test_id("commitment-status")).to_have_text("Vigente")
    call = Interaction.objects.get(client=martillo, kind="call")
    assert call.outcome == "promise" and call.contact == ana and call.nonpayment_reason == "cash_flow"
    assert request_lines and not [
        url
        for url in request_lines
        if any(secret in unquote_plus(url) for secret in ("transferencia", "ana@martillo", "csrfmiddlewaretoken"))
    ]
    _screenshot(page, "promise_logged")

    # --- two days later: nothing was paid ---------------------------------------------------------
    with time_machine.travel(dt.datetime.combine(after, dt.time(9), tzinfo=timezone.get_current_timezone())):
        assert timezone.localdate() == after
        result = commitments.judge()
        assert result["broken"] == 1
        promise = Commitment.objects.get(client=martillo)
        assert promise.status == "broken" and promise.resolved_on == after
        task = CollectorTask.objects.get(client=martillo, kind=TaskKind.BROKEN_PROMISE)
        assert task.assigned_to == gestora and task.due_on == after and task.status == "open"
        # The ladder resumes one step firmer that same day: the +15 call, not waiting for day 15.
        plan(today=after)
        resumed = Notice.objects.get(client=martillo, planned_for=after)
        assert resumed.step.offset_days == 15 and resumed.channel == "call"
        assert sorted(resumed.items.values_list("invoice__number", flat=True)) == ["FM-0101", "FM-0102"]

        # A new working day: the session of two days ago has expired, she signs in again.
        login(page, live_server, "gestora", PASSWORD)
        page.goto(f"{live_server.url}{reverse('client_detail', args=[martillo.pk])}?tab=cobranza")
        panel = page.get_by_test_id("workspace-panel")
        expect(panel.get_by_test_id("no-open-commitments")).to_be_visible()
        history = panel.get_by_test_id("commitment-history")
        broken = history.get_by_role("row").filter(has_text="Promesa de pago")
        expect(broken.get_by_test_id("commitment-status")).to_have_text("Incumplida")
        expect(panel.get_by_test_id("incidents")).to_have_text("1")
        expect(panel.get_by_test_id("promise-kept-rate")).to_contain_text("0")
        # The dunning panel lists the resumed step.
        notices = page.get_by_test_id("last-notices")
        expect(notices.get_by_role("row").filter(has_text=resumed.step.name).first).to_be_visible()
        page.get_by_role("tab", name=re.compile("Historial")).click()
        expect(page.get_by_role("tabpanel", name=re.compile("Historial"))).to_contain_text("Promesa de pago incumplida")
        _screenshot(page, "promise_broken")
    assert reverse("client_detail", args=[martillo.pk]) in page.url


def test_a_plan_from_the_client_page_shows_its_schedule_before_saving(page, live_server, gerente, gestora):
    today = timezone.localdate()
    first = today + dt.timedelta(days=7)
    client = make_client(by=gerente, collector=gestora, legal_name="Abarrotes Doña Lupe")
    make_invoice(by=gerente, client=client, number="DL-1", amount="1000.00", due_date=today - dt.timedelta(days=40))

    login(page, live_server, "gestora", PASSWORD)
    page.goto(f"{live_server.url}{reverse('client_detail', args=[client.pk])}?tab=cobranza")
    panel = page.get_by_test_id("workspace-panel")
    panel.get_by_text("Plan de pagos", exact=True).click()
    form = panel.get_by_test_id("plan-form")
    expect(form.get_by_test_id("plan-preview")).to_contain_text("Indique la primera fecha")
    form.get_by_label("Número de cuotas").fill("3")
    form.get_by_label("Primera cuota").fill(first.isoformat())
    form.get_by_label("Número de cuotas").press("Tab")  # a change elsewhere refreshes the preview too
    schedule = form.get_by_test_id("plan-schedule")
    expect(schedule).to_contain_text("Calendario: 3 cuotas")
    rows = schedule.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("$333.33")
    expect(rows.nth(2)).to_contain_text("$333.34")  # the leftover cent on the last one
    # Every 10 days instead of monthly: the field appears, the schedule follows.
    _choose(form, "Cada N días")
    form.get_by_label("Cada cuántos días").fill("10")
    form.get_by_label("Cada cuántos días").press("Tab")
    last = (first + dt.timedelta(days=20)).strftime("%d/%m/%Y")
    expect(rows.nth(2)).to_contain_text(last)
    _screenshot(page, "plan_preview")
    form.get_by_role("button", name="Registrar plan").click()

    expect(page.get_by_role("alert").filter(has_text="Plan de pagos de 3 cuotas registrado")).to_be_visible()
    plan_box = page.get_by_test_id("open-commitment")
    expect(plan_box).to_contain_text("Plan de pagos")
    expect(plan_box.get_by_test_id("installments").locator("tbody tr")).to_have_count(3)
    expect(plan_box.get_by_test_id("installments")).to_contain_text(last)
    assert [i.amount for i in Commitment.objects.get(client=client).installments.all()] == [
        Decimal("333.33"),
        Decimal("333.33"),
        Decimal("333.34"),
    ]
