"""The client page at scale: the invoice and payment tabs are paginated, their badges count
everything, and a page link lands on its tab."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def big(gerente):
    debtor = make_client(by=gerente, legal_name="Cliente Grande")
    for i in range(55):
        make_invoice(
            by=gerente,
            client=debtor,
            number=f"G-{i:03d}",
            amount="100.00",
            due_date=dt.date(2026, 1, 1) + dt.timedelta(days=i),
        )
    for i in range(52):
        services.payment_record(
            by=gerente,
            client=debtor,
            amount=Decimal("1.00"),
            received_on=dt.date(2026, 3, 1),
            currency="MXN",
            method="transfer",
            reference=f"P-{i:03d}",
            allocations=None,
            notes="",
        )
    return debtor


def test_the_invoice_and_payment_tabs_show_a_page_and_count_everything(client, gerente, big):
    # The tabs are sections loaded on demand: the badges count everything on the summary, each
    # section shows its first page, and ?fpage= / ?ppage= render the page with that section inline.
    client.force_login(gerente)
    url = reverse("client_detail", args=[big.pk])
    html = client.get(url).content.decode()
    assert '<span class="badge rounded-pill text-bg-light border">55</span>' in html
    assert '<span class="badge rounded-pill text-bg-light border">52</span>' in html
    invoices = client.get(reverse("client_section_facturas", args=[big.pk])).content.decode()
    assert "Facturas 1–50 de 55" in invoices and "G-049" in invoices and "G-050" not in invoices
    assert "Pagos 1–50 de 52" in client.get(reverse("client_section_pagos", args=[big.pk])).content.decode()
    second = client.get(url, {"fpage": 2})
    assert second.context["active_tab"] == "facturas"
    page = second.content.decode()
    tab = page[page.index('id="seccion-facturas"') : page.index('id="seccion-pagos"')]
    assert "G-050" in tab and "G-054" in tab and "G-049" not in tab and "Facturas 51–55 de 55" in page
    assert client.get(url, {"ppage": 2}).context["active_tab"] == "pagos"
    assert client.get(url, {"fpage": "nope"}).status_code == 200
