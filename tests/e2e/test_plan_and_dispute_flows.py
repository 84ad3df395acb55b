"""Two collector flows in Chromium: a payment plan whose first installment is missed,
and a dispute that takes an invoice out of the ladder until it is resolved with a credit note.

The clock moves with time_machine in this process (the live server thread shares it); the
nightly jobs (``commitments.judge``) and the planner are called the way beat calls them."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as ledger
from accounts.models import Invoice, Payment
from cobranza.engine.planner import plan
from cobranza.models import CollectorTask, Commitment, Dispute, Notice, TaskKind
from cobranza.workspace import jobs as commitments
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=timezone.get_current_timezone())


def _planned(client, day) -> list[tuple[int, list[str]]]:
    """The steps that go out (the ones they pass over are recorded as superseded)."""
    return sorted(
        (n.step.offset_days, sorted(n.items.values_list("invoice__number", flat=True)))
        for n in Notice.objects.filter(client=client, planned_for=day).exclude(status="superseded")
    )


def test_a_missed_plan_installment_opens_a_task_and_shows_on_the_client_page(page, live_server, gerente, gestora):
    today = timezone.localdate()
    first = today + dt.timedelta(days=5)
    lupe = make_client(by=gerente, collector=gestora, legal_name="Abarrotes Doña Lupe")
    make_invoice(by=gerente, client=lupe, number="DL-1", amount="900.00", due_date=today - dt.timedelta(days=40))

    login(page, live_server, "gestora", PASSWORD)
    page.goto(f"{live_server.url}{reverse('client_detail', args=[lupe.pk])}?tab=cobranza")
    panel = page.get_by_test_id("workspace-panel")
    panel.get_by_text("Plan de pagos", exact=True).click()
    form = panel.get_by_test_id("plan-form")
    form.get_by_label("Número de cuotas").fill("3")
    form.get_by_label("Primera cuota").fill(first.isoformat())
    form.get_by_label("Número de cuotas").press("Tab")
    expect(form.get_by_test_id("plan-schedule").locator("tbody tr")).to_have_count(3)
    form.get_by_role("button", name="Registrar plan").click()
    expect(page.get_by_role("alert").filter(has_text="Plan de pagos de 3 cuotas registrado")).to_be_visible()
    plan_ = Commitment.objects.get(client=lupe)
    assert plan_.kind == "plan" and plan_.total == Decimal("900.00")

    # Reminders stay paused while the plan is in good standing.
    plan(today=today + dt.timedelta(days=1))
    assert _planned(lupe, today + dt.timedelta(days=1)) == []

    # The first installment passes, with its grace days, and nothing is paid.
    judge_day = first + dt.timedelta(days=plan_.grace_days + 1)
    with time_machine.travel(_at(judge_day)):
        result = commitments.judge()
        assert result["missed"] == 1 and result["broken"] == 0  # one miss is tolerated
        task = CollectorTask.objects.get(client=lupe, kind=TaskKind.PLAN_MISSED)
        assert task.assigned_to == gestora and "Cuota 1 del plan incumplida" in task.title

        login(page, live_server, "gestora", PASSWORD)
        # The task is on her worklist...
        page.goto(f"{live_server.url}{reverse('cobranza:worklist')}")
        row = page.get_by_test_id("worklist-row").filter(has_text="Abarrotes Doña Lupe")
        expect(row).to_contain_text("Cuota 1 del plan incumplida")
        # ...and the client page shows the installment missed, the plan still active.
        row.get_by_role("link", name="Abarrotes Doña Lupe").first.click()
        page.get_by_role("tab", name=re.compile("Cobranza")).click()  # agreements are in that section
        box = page.get_by_test_id("open-commitment")
        expect(box).to_contain_text("Plan de pagos")
        installments = box.get_by_test_id("installments").locator("tbody tr")
        expect(installments.nth(0)).to_contain_text("Incumplida")
        expect(installments.nth(1)).to_contain_text("Pendiente")
        _screenshot(page, "plan_installment_missed")


def test_a_dispute_pauses_the_invoice_until_a_credit_note_resolves_it(page, live_server, gerente, gestora):
    today = timezone.localdate()
    paco = make_client(by=gerente, collector=gestora, legal_name="Papelería Paco")
    ledger.contact_create(by=gerente, client=paco, name="Paco Pagos", email="paco@papeleria.example")
    make_invoice(by=gerente, client=paco, number="PP-1", amount="2000.00", due_date=today - dt.timedelta(days=8))
    make_invoice(by=gerente, client=paco, number="PP-2", amount="500.00", due_date=today - dt.timedelta(days=8))

    login(page, live_server, "gestora", PASSWORD)
    page.goto(f"{live_server.url}{reverse('client_detail', args=[paco.pk])}?tab=cobranza")
    panel = page.get_by_test_id("workspace-panel")
    panel.get_by_test_id("dispute-details").locator("summary").click()
    form = panel.get_by_test_id("dispute-form")
    form.get_by_label(re.compile("PP-2")).uncheck()
    form.get_by_label(re.compile("PP-1")).check()
    form.get_by_label("Motivo de la disputa").select_option(label="Producto defectuoso o incompleto")
    form.get_by_label("Reclamación del cliente").fill("Cinco resmas llegaron mojadas.")
    form.get_by_role("button", name="Abrir disputa").click()
    expect(panel.get_by_test_id("open-dispute")).to_contain_text("Producto defectuoso o incompleto")
    assert Invoice.objects.get(number="PP-1").status == "disputed"

    # The ladder leaves PP-1 alone while the dispute is open.
    plan(today=today)
    assert _planned(paco, today) == [(7, ["PP-2"])]

    dispute = panel.get_by_test_id("open-dispute")
    dispute.get_by_text("Resolver…").click()
    resolve = dispute.get_by_test_id("resolve-form")
    resolve.get_by_label("Nota de crédito").check()
    resolve.get_by_label("Importe acreditado").fill("300")
    resolve.get_by_label("Notas de la resolución").fill("NC por las cinco resmas dañadas.")
    _screenshot(page, "dispute_before_resolution")
    resolve.get_by_role("button", name="Resolver disputa").click()
    expect(page.get_by_test_id("resolved-disputes")).to_contain_text("Nota de crédito")
    resolved = Dispute.objects.get(client=paco)
    assert resolved.status == "resolved" and resolved.resolution_amount == Decimal("300.00")
    pp1 = Invoice.objects.get(number="PP-1")
    assert pp1.status == "partially_paid" and pp1.open_balance == Decimal("1700.00")
    assert Payment.objects.get(client=paco).method == "credit_note"

    # Back in the ladder: on the +15 day both invoices are reminded again.
    later = today + dt.timedelta(days=7)
    with time_machine.travel(_at(later)):
        plan(today=later)
        assert _planned(paco, later) == [(15, ["PP-1", "PP-2"])]
    _screenshot(page, "dispute_resolved")
