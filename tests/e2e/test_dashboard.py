"""A manager opens the portfolio dashboard in a real browser: the aging and trend charts are
drawn by Chart.js (vendored), the numbers sit in tables beside them, and filtering by segment
changes the numbers. Dates are relative to today: the browser's clock cannot be frozen."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts import numbers
from accounts.utils import money_str
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.dashboard import metrics
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_reads_the_dashboard_and_slices_it_by_segment(page, live_server, gerente, gestora):
    today = timezone.localdate()
    start, end = metrics.last_complete_month(today)
    # Issued before the period, due mid-period: overdue at its end in both segments.
    key = make_client(by=gerente, collector=gestora, segment_code="regular", legal_name="Ferretería Regular")
    make_invoice(by=gerente, client=key, amount="1200.00", issue_date=start - dt.timedelta(days=20), due_date=start)
    sporadic = make_client(by=gerente, segment_code="esporadico", legal_name="Papelería Esporádica")
    make_invoice(by=gerente, client=sporadic, amount="800.00", issue_date=start, due_date=start + dt.timedelta(days=5))
    dashboard_jobs.backfill_snapshots(months=13, today=today)

    login(page, live_server, "gerente", PASSWORD)
    page.goto(f"{live_server.url}{reverse('cobranza:dashboard')}")
    expect(page.get_by_role("heading", name="Tablero de cartera")).to_be_visible()

    # The charts are drawn by Chart.js on their canvases.
    expect(page.locator("#aging-chart")).to_be_visible()
    expect(page.locator("#trend-chart")).to_be_visible()
    page.wait_for_function("window.dashboardCharts && window.dashboardCharts.length === 4")
    assert page.evaluate("typeof Chart") == "function"
    assert page.evaluate("!!Chart.getChart(document.getElementById('aging-chart'))")
    assert page.evaluate("Chart.getChart(document.getElementById('trend-chart')).config.type") == "line"
    # Roll rates follow the invoices: the regular client's invoice, current at the close before
    # last, rolled whole into 1–30 (100 %); the formula is beside the chart.
    roll = "Chart.getChart(document.getElementById('roll-chart')).data.datasets"
    assert page.evaluate(f"{roll}.length") == 5
    assert page.evaluate(f"{roll}[0].data[{roll}[0].data.length - 1]") == 100
    expect(page.get_by_test_id("roll-formula")).to_contain_text("no pasa de 100 %")
    # The cash expected in the next 8 weeks: both invoices are overdue and the portfolio has no
    # history, so all of it is expected from behaviour, stacked on the committed part.
    forecast = "Chart.getChart(document.getElementById('forecast-chart'))"
    assert page.evaluate(f"{forecast}.data.labels.length") == 8
    assert page.evaluate(f"{forecast}.data.datasets.length") == 2
    assert page.evaluate(f"{forecast}.data.datasets[0].data.reduce((a, b) => a + b, 0)") == 0
    assert page.evaluate(f"{forecast}.data.datasets[1].data.reduce((a, b) => a + b, 0)") > 0
    expect(page.get_by_test_id("table-forecast").locator("tr[data-key=total]")).to_be_visible()
    page.get_by_test_id("forecast-method").locator("summary").click()
    expect(page.get_by_test_id("forecast-method")).to_contain_text("promesas cumplidas del cliente")
    expect(page.get_by_test_id("table-forecast").locator("xpath=../..")).to_contain_text("mediana de sus facturas")
    # Money axes without cents.
    ticks = page.evaluate("Chart.getChart(document.getElementById('aging-chart')).scales.y.ticks.map(t => t.label)")
    assert ticks and not any(".00" in str(label) for label in ticks), ticks
    # The browser's labels are the server's rule (docs/domain.md#number-formats): axes
    # abbreviated, tooltips as the tables.
    values = page.evaluate("Chart.getChart(document.getElementById('aging-chart')).scales.y.ticks.map(t => t.value)")
    assert ticks == [numbers.abbreviate(value) for value in values]
    tooltip = page.evaluate(
        "Chart.getChart(document.getElementById('aging-chart')).options.plugins.tooltip.callbacks"
        ".label({parsed: {y: 1234567.891}, dataIndex: 0})"
    )
    assert tooltip.startswith(numbers.format_money(Decimal("1234567.891"), "MXN") + " · ")
    assert (
        page.evaluate(
            "Chart.getChart(document.getElementById('aging-chart')).data.datasets[0].data.reduce((a, b) => a + b, 0)"
        )
        == 2000
    )

    total = page.get_by_test_id("kpi-receivable")
    expect(total).to_have_text(money_str(Decimal("2000"), "MXN"))
    aging_total = page.get_by_test_id("table-aging").locator("tr[data-key=total] td").first
    expect(aging_total).to_have_text(money_str(Decimal("2000"), "MXN"))
    # The formula is on hover (title) and in the help panel.
    dso_card = page.locator("[data-kpi=dso]")  # Bootstrap's tooltip keeps the title aside
    dso_card.hover()
    # On its way the pointer may cross another card, whose tooltip is still fading out.
    expect(page.get_by_role("tooltip").filter(has_text="DSO =")).to_be_visible()
    page.get_by_role("button", name="¿Cómo se calcula?").click()
    expect(page.get_by_test_id("table-kpis")).to_be_visible()

    page.get_by_test_id("dashboard-filters").get_by_label("Segmento").select_option(label="Regular")
    page.get_by_role("button", name="Aplicar").click()
    page.wait_for_load_state("networkidle")
    expect(total).to_have_text(money_str(Decimal("1200"), "MXN"))
    expect(page.get_by_test_id("table-segment").locator("tbody tr")).to_have_count(1)
    page.wait_for_function("window.dashboardCharts && window.dashboardCharts.length === 4")
    assert (
        page.evaluate(
            "Chart.getChart(document.getElementById('aging-chart')).data.datasets[0].data.reduce((a, b) => a + b, 0)"
        )
        == 1200
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
