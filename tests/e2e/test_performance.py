"""A manager reviews who performs and what works in a real browser (Debian's Chromium through
Playwright): both pages open, their Chart.js charts render beside the tables, and widening
the period changes the amount collected. Dates are relative to today: the browser's session
cookie must not expire, so the clock is not frozen here (the numbers themselves are proven
against fixed dates in tests/cobranza/test_performance.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as ledger
from accounts.services import AllocationRequest
from cobranza.models import Notice, NoticeItem, Policy
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _chart_points(page: Page, canvas_id: str) -> int:
    """How many labels the Chart.js instance on the canvas draws (0: no chart)."""
    return page.evaluate(
        """(id) => { const c = document.getElementById(id);
                     const chart = c && window.Chart && Chart.getChart(c);
                     return chart ? chart.data.labels.length : 0; }""",
        canvas_id,
    )


def test_a_manager_reviews_collectors_and_dunning(page, live_server, gerente, gestora):
    today = timezone.localdate()
    martillo = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo")
    invoice = make_invoice(
        by=gerente, client=martillo, number="FM-1", amount="5000.00", due_date=today - dt.timedelta(days=60)
    )
    ledger.payment_record(
        by=gerente, client=martillo, amount=Decimal("1000.00"), received_on=today - dt.timedelta(days=3)
    )
    ledger.payment_record(
        by=gerente, client=martillo, amount=Decimal("500.00"), received_on=today - dt.timedelta(days=45)
    )
    # A reminder sent 20 days ago, answered with a payment 5 days later.
    step = Policy.objects.get(segment__code="regular").steps.filter(channel="email").order_by("position").first()
    sent = timezone.now() - dt.timedelta(days=20)
    notice = Notice.objects.create(
        client=martillo,
        step=step,
        channel="email",
        planned_for=timezone.localdate(sent),
        scheduled_at=sent,
        status="sent",
        sent_at=sent,
    )
    NoticeItem.objects.create(
        notice=notice, invoice=invoice, step=step, open_balance=Decimal("3500.00"), days_overdue=40
    )
    ledger.payment_record(
        by=gerente,
        client=martillo,
        amount=Decimal("700.00"),
        received_on=timezone.localdate(sent) + dt.timedelta(days=5),
        allocations=[AllocationRequest(invoice_id=invoice.pk, amount=Decimal("700.00"))],
    )

    login(page, live_server, "gerente", PASSWORD)
    page.goto(f"{live_server.url}/cobranza/desempeno/")
    expect(page.get_by_role("heading", name="Desempeño de gestores", level=1)).to_be_visible()
    expect(page.locator("#collector-chart[data-rendered]")).to_have_count(1)
    assert _chart_points(page, "collector-chart") >= 1
    lucia = page.locator("table[data-table=collectors] tr", has_text="Lucía Gestora")
    # Last 30 days: the 1,000.00 of 3 days ago and the 700.00 of 15 days ago.
    expect(lucia.locator("td[data-key=collected]")).to_have_text("$1,700.00")

    # Widen the period to 60 days: the 500.00 of 45 days ago comes in.
    page.fill("#id_start", (today - dt.timedelta(days=59)).isoformat())
    page.get_by_role("button", name="Aplicar").click()
    page.wait_for_load_state("networkidle")
    expect(lucia.locator("td[data-key=collected]")).to_have_text("$2,200.00")
    expect(page.get_by_test_id("kpi-collected")).to_have_text("$2,200.00")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "performance-collectors.png"), full_page=True)

    page.get_by_role("link", name="Efectividad de la cobranza").click()
    expect(page.get_by_role("heading", name="Efectividad de la cobranza", level=1)).to_be_visible()
    expect(page.locator("#dunning-chart[data-rendered]")).to_have_count(1)
    assert _chart_points(page, "dunning-chart") >= 1
    # 700 of the 3,500 listed paid within 7 days (and 14) of the send: 20.0 %.
    expect(page.get_by_test_id("kpi-share-7")).to_have_text("20.0 %")
    row = page.locator("table[data-table=steps] tr", has_text=step.policy.name).filter(has_text=step.name)
    expect(row.locator("td[data-key=share_14]")).to_have_text("20.0 %")
    page.screenshot(path=str(ARTIFACTS / "performance-dunning.png"), full_page=True)
