"""Pay now on the debtor's portal: the provider link and the bank details for what is open
(disputed invoices are not offered), the payments received lately, a constant number of
queries."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Invoice
from accounts.utils import webhook_signature
from cobranza.portal import links
from tests.business import business_profile
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
SECRET = "portal-pay-secret"


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo")
    make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_in_days=-10)
    make_invoice(by=gerente, client=client, number="FC-2", amount="500.00", due_in_days=20)
    make_invoice(by=gerente, client=client, number="FC-DISP", amount="300.00", due_in_days=-12)
    Invoice.objects.filter(number="FC-DISP").update(status=Invoice.Status.DISPUTED)
    return client


def _statement(client, debtor):
    return client.get(reverse("selfservice:statement", args=[links.token_for(debtor)]))


def _pay_links(html: str) -> list[dict]:
    hrefs = []
    for chunk in html.split("<a ")[1:]:
        if 'data-testid="pay-link"' in chunk:
            href = chunk.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            hrefs.append({k: v[0] for k, v in parse_qs(urlsplit(href).query).items()})
    return hrefs


def test_the_portal_offers_the_pay_link_and_bank_details_for_what_is_open(client, debtor, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    business_profile(logo=False)
    response = _statement(client, debtor)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="pay-now"' in html and "Pagar ahora" in html
    assert _pay_links(html) == [
        {"cliente": str(debtor.pk), "facturas": "FC-1,FC-2", "importe": "2000.00", "moneda": "MXN"}
    ]
    assert "Pagar $2,000.00 en línea" in html, "the disputed invoice is not offered for payment"
    assert "012180001234567891" in html and "BBVA México" in html
    assert f"C{debtor.pk} FC-1 FC-2" in html, "the reference to quote"


def test_without_a_provider_link_the_bank_details_alone(client, debtor, settings, tmp_path):
    business_profile(logo=False, payment_link_template="")
    html = _statement(client, debtor).content.decode()
    assert _pay_links(html) == [] and "Pago por transferencia bancaria" in html


def test_nothing_owed_nothing_to_pay(client, gerente, gestora):
    business_profile(logo=False)
    paid_up = make_client(by=gerente, collector=gestora, legal_name="Al Corriente")
    html = _statement(client, paid_up).content.decode()
    assert 'data-testid="pay-now"' not in html and "No tiene facturas pendientes" in html


def test_a_webhook_payment_closes_the_loop_and_the_portal_shows_it(client, debtor, settings):
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    business_profile(logo=False)
    [link] = _pay_links(_statement(client, debtor).content.decode())
    # What the provider posts back: the link's own values (docs/domain.md#ways-to-pay).
    body = json.dumps(
        {
            "reference": "PROV-0001",
            "client_id": int(link["cliente"]),
            "invoices": link["facturas"].split(","),
            "amount": link["importe"],
            "currency": link["moneda"],
            "received_on": debtor.invoices.get(number="FC-1").issue_date.isoformat(),
        }
    ).encode()
    timestamp = str(int(time.time()))
    response = client.post(
        reverse("webhooks:payments"),
        body,
        content_type="application/json",
        headers={"X-Signature-Timestamp": timestamp, "X-Signature": webhook_signature(SECRET, timestamp, body)},
    )
    assert response.status_code == 201, response.content
    assert set(debtor.invoices.filter(status="paid").values_list("number", flat=True)) == {"FC-1", "FC-2"}
    html = _statement(client, debtor).content.decode()
    assert 'data-testid="payments-received"' in html and "$2,000.00" in html and "aplicado a FC-1, FC-2" in html
    assert _pay_links(html) == [], "only the disputed invoice is left: nothing to pay online"


def test_the_statement_costs_the_same_queries_with_more_invoices_and_payments(client, debtor, gerente):
    business_profile(logo=False)

    def count() -> int:
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert _statement(client, debtor).status_code == 200
        return len(queries)

    def pay(i: int) -> None:
        ledger.payment_record(
            by=gerente,
            client=debtor,
            amount=Decimal("10.00"),
            currency="MXN",
            received_on=debtor.invoices.get(number="FC-1").issue_date,
            reference=f"R-{i}",
        )

    pay(0)  # with no payment at all, the prefetch of what they paid is skipped
    _statement(client, debtor)  # the day's first visit is recorded in the timeline, once
    few = count()
    for i in range(1, 7):
        make_invoice(by=gerente, client=debtor, number=f"FX-{i}", amount="100.00", due_in_days=-i)
        pay(i)
    assert count() == few
