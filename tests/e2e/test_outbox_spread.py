"""A manager looks at what goes out tomorrow in a real browser (Debian's Chromium through
Playwright): each message at its client's own time, and the messages per hour drawn on the
page, spread over the window instead of piled at its opening (docs/domain.md#spread)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as ledger
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice, slot_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MX = ZoneInfo("America/Mexico_City")


def test_tomorrows_messages_show_their_local_time_and_spread_over_the_hours(page: Page, live_server, gerente):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    clients = []
    for k in range(24):
        c = make_client(by=gerente, legal_name=f"Comercial {k:02d} S.A.")
        ledger.contact_create(by=gerente, client=c, name="Pagos", email=f"pagos{k}@comercial.example")
        # The regular ladder's pre-due reminder (−3 days, email) is due tomorrow.
        make_invoice(by=gerente, client=c, number=f"C-{k}", amount="1000.00", due_date=tomorrow + dt.timedelta(days=3))
        clients.append(c)

    login(page, live_server, "gerente", PASSWORD)
    page.goto(f"{live_server.url}/cobranza/lo-que-sale/?day={tomorrow.isoformat()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Lo que sale mañana")

    chart = page.get_by_test_id("by-hour")
    expect(page.get_by_role("heading", name="Mensajes por hora (hora local de cada cliente)")).to_be_visible()
    hours = [int(h) for h in chart.locator("tr[data-hour]").evaluate_all("rows => rows.map(r => r.dataset.hour)")]
    counts = chart.locator("tr[data-hour]").evaluate_all("rows => rows.map(r => +r.dataset.messages)")
    assert sum(counts) == 24
    # Spread: many hours of the 07:00–22:00 window, none holding more than a fraction.
    assert len([n for n in counts if n]) >= 8 and max(counts) <= 6 and min(hours) >= 7 and max(hours) <= 20

    row = page.get_by_test_id("outbox-rows").get_by_role("row", name=re.compile(clients[0].legal_name))
    slot = timezone.localtime(slot_of(clients[0], tomorrow), MX).strftime("%H:%M")
    expect(row.get_by_test_id("local-time")).to_contain_text(slot)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outbox-spread.png"), full_page=True)
