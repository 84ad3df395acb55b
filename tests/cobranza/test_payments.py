"""The business's ways to pay (cobranza.business.payments): the provider link from its
template, the bank details and the reference, and the ``{{ pago }}`` placeholder."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cobranza.business import payments
from cobranza.business.payments import Owed, validate_payment_link_template, ways_to_pay
from cobranza.engine import messaging
from cobranza.models import BusinessProfile
from tests.business import PAY_LINK_TEMPLATE, business_profile

pytestmark = pytest.mark.django_db


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_link_carries_client_invoices_amount_and_currency_url_encoded():
    business_profile(logo=False)
    ways = ways_to_pay(
        client_ref=42,
        invoices=[Owed("F 1/á&x", Decimal("1000.00"), "MXN"), Owed("F-2", Decimal("234.5"), "MXN")],
    )
    [link] = ways.links
    assert "F%201%2F%C3%A1%26x%2CF-2" in link.url, "every value is URL-encoded"
    assert _query(link.url) == {"cliente": "42", "facturas": "F 1/á&x,F-2", "importe": "1234.50", "moneda": "MXN"}
    assert ways.link == link.url and link.amount == Decimal("1234.50")


def test_each_currency_gets_its_own_link_with_the_currencys_decimals():
    business_profile(logo=False)
    ways = ways_to_pay(
        client_ref=7,
        invoices=[
            Owed("J-1", Decimal("1500"), "JPY"),
            Owed("U-1", Decimal("99.9"), "USD"),
            Owed("U-2", Decimal("0.1"), "USD"),
            Owed("PAID", Decimal("0"), "EUR"),
        ],
    )
    by_currency = {link.currency: _query(link.url) for link in ways.links}
    assert by_currency == {
        "JPY": {"cliente": "7", "facturas": "J-1", "importe": "1500", "moneda": "JPY"},
        "USD": {"cliente": "7", "facturas": "U-1,U-2", "importe": "100.00", "moneda": "USD"},
    }
    assert [c for c, _ in ways.totals] == ["JPY", "USD"], "largest amount first, paid invoices left out"


def test_a_template_without_amount_or_currency_gives_one_link():
    business_profile(logo=False, payment_link_template="https://pay.example.com/c/{cliente}")
    ways = ways_to_pay(client_ref=9, invoices=[Owed("A", Decimal(1), "MXN"), Owed("B", Decimal(2), "USD")])
    assert [link.url for link in ways.links] == ["https://pay.example.com/c/9"]


def test_bank_details_and_the_reference_to_quote():
    business_profile(logo=False, payment_link_template="", iban="ES9121000418450200051332")
    ways = ways_to_pay(client_ref=42, invoices=[Owed("F-1", Decimal(1), "MXN"), Owed("F-2", Decimal(1), "MXN")])
    assert ways.links == () and ways.link == ""
    assert ways.bank.bank == "BBVA México" and ways.bank.clabe == "012180001234567891"
    assert ways.bank.iban == "ES9121000418450200051332"
    assert ways.reference == "C42 F-1 F-2"
    many = [Owed(f"F-2026-{i:05d}", Decimal(1), "MXN") for i in range(10)]
    assert ways_to_pay(client_ref=42, invoices=many).reference == "C42", "too long for a transfer: the client only"


@pytest.mark.parametrize("saved", ["javascript:alert(1)//{cliente}", "https://pay.example.com/?c={cliente.__class__}"])
def test_an_invalid_template_saved_around_the_form_gives_no_link(saved):
    business_profile(logo=False, payment_link_template=saved)
    ways = ways_to_pay(client_ref=1, invoices=[Owed("F-1", Decimal(10), "MXN")])
    assert ways.links == () and ways.bank, "the bank details are still offered"


def test_without_a_profile_there_is_nothing_to_offer():
    BusinessProfile.objects.all().delete()
    ways = ways_to_pay(client_ref=1, invoices=[Owed("F-1", Decimal(10), "MXN")])
    assert not ways and ways.links == () and not ways.bank


@pytest.mark.parametrize(
    "value",
    ["", PAY_LINK_TEMPLATE, "https://pay.example.com/{cliente}/{moneda}?amount={importe}", "https://pay.example.com/"],
)
def test_valid_link_templates_pass(value):
    validate_payment_link_template(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://pay.example.com/?c={cliente.__class__}", "Marcadores desconocidos"),
        ("https://pay.example.com/?c={client}", "Marcadores desconocidos"),
        ("http://pay.example.com/?c={cliente}", "https://"),
        ("pay.example.com/?c={cliente}", "https://"),
        ("https://{cliente}.example.com/", "dominio"),
        ("https://pay.example.com@evil.example/?c={cliente}", "dominio"),
        ("https://pay.example.com/?c={cliente", "llave"),
        ("https://pay.example.com/?c= {cliente}", "espacios"),
    ],
)
def test_invalid_link_templates_are_refused_with_a_reason(value, message):
    with pytest.raises(ValidationError) as exc:
        validate_payment_link_template(value)
    assert any(message in m for m in exc.value.messages), exc.value.messages


def test_the_pago_placeholder_renders_the_link_and_the_reference():
    business_profile(logo=False)
    body = "Pague aquí: {{ pago }}\nRef. {{ pago.referencia }} · CLABE {{ pago.clabe }}"
    messaging.validate_template_text(channel="email", subject="x", body=body)
    context = messaging.sample_context("es")
    rendered = messaging.render_text(channel="email", subject="x", body=body, language="es", context=context)
    link = context["pago"]["enlace"]
    assert link.startswith("https://pagos.example.com/checkout?cliente=1042&")
    # Three invoice numbers do not fit a transfer's 40 characters: the client's reference only.
    assert f"Pague aquí: {link}\nRef. C1042 · CLABE 012180001234567891" in rendered.body
    assert "pago" in dict(messaging.PLACEHOLDERS) and "referencia" in messaging.PLACEHOLDERS["pago"].fields


def test_a_template_that_does_not_name_pago_does_not_read_the_profile():
    context = messaging.sample_context("es")
    with CaptureQueriesContext(connection) as queries:
        messaging.render_text(channel="email", subject="x", body="{{ cliente }}", language="es", context=context)
    assert len(queries) == 0


def test_amount_text_uses_the_currencys_decimals():
    assert payments.amount_text(Decimal("12.5"), "MXN") == "12.50"
    assert payments.amount_text(Decimal("1500"), "JPY") == "1500"
    assert payments.amount_text(Decimal("1.2345"), "KWD") == "1.235"
