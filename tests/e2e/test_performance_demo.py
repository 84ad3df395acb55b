"""The demo's performance pages in a real browser (Debian's Chromium through Playwright): after
``seed_demo`` both pages draw their charts over the last 90 days with a bar per collector and
per ladder step, and the screenshots go to tests/artifacts/performance/ (committed, for review).
The demo ends today: the browser's session cookie must not expire, so the clock is real."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts import demo
from tests.e2e.conftest import login
from tests.e2e.test_performance import _chart_points

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "performance"


def test_the_demo_performance_pages_show_their_history(page, live_server):
    today = timezone.localdate()
    call_command("seed_demo", "--clients", "60", "--today", today.isoformat(), "--seed", "42", stdout=io.StringIO())
    period = f"start={(today - dt.timedelta(days=89)).isoformat()}&end={today.isoformat()}&currency=MXN"
    login(page, live_server, "gerente", demo.DEMO_PASSWORD)
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/cobranza/desempeno/?{period}")
    expect(page.get_by_role("heading", name="Desempeño de gestores", level=1)).to_be_visible()
    expect(page.locator("#collector-chart[data-rendered]")).to_have_count(1)
    assert _chart_points(page, "collector-chart") >= 3
    rows = page.locator("table[data-table=collectors] tbody tr")
    assert rows.count() >= 4  # three collectors and the total
    expect(page.get_by_text("Sin datos en el periodo.")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "collectors.png"), full_page=True)

    page.goto(f"{live_server.url}/cobranza/efectividad/?{period}")
    expect(page.get_by_role("heading", name="Efectividad de la cobranza", level=1)).to_be_visible()
    expect(page.locator("#dunning-chart[data-rendered]")).to_have_count(1)
    assert _chart_points(page, "dunning-chart") >= 5
    for name in ("steps", "segments", "profiles"):
        assert page.locator(f"table[data-table={name}] tbody tr").count() >= 2, name
    expect(page.get_by_text("Sin datos en el periodo.")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "dunning.png"), full_page=True)
