"""Forms that follow the conversation, in a real browser: "Sí, hablamos" puts the client's
primary contact in "Con quién", and the payment form shows what is owed and what the amount
being typed will pay before anything is saved."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services as ledger
from accounts.models import Payment
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TODAY = timezone.localdate()


def test_we_spoke_preselects_the_primary_contact(page, live_server, gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo")
    aval = ledger.contact_create(by=gerente, client=debtor, name="Aval Ramírez", role="guarantor", phone="5511112222")
    primary = ledger.contact_create(by=gerente, client=debtor, name="Rosa Pérez", role="primary", phone="5512345678")
    make_invoice(by=gerente, client=debtor, amount="4000.00", due_date=TODAY - dt.timedelta(days=10))
    login(page, live_server, "gestora", PASSWORD)
    page.goto(f"{live_server.url}{reverse('cobranza:log_outcome', args=[debtor.pk])}")
    who = page.get_by_label("Con quién")
    # "Sí, hablamos" is the default answer: the primary contact is already chosen.
    expect(who).to_have_value(str(primary.pk))
    page.locator("label[for=id_reached_1]").click()
    who.select_option("")
    page.locator("label[for=id_reached_0]").click()
    expect(who).to_have_value(str(primary.pk))
    # A contact chosen by hand is kept.
    page.locator("label[for=id_reached_1]").click()
    who.select_option(str(aval.pk))
    page.locator("label[for=id_reached_0]").click()
    expect(who).to_have_value(str(aval.pk))


def test_the_payment_form_shows_what_is_owed_and_what_the_amount_will_pay(page, live_server, gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora, legal_name="Abarrotes Doña Lupe")
    make_invoice(by=gerente, client=debtor, number="L-1", amount="1000.00", due_date=TODAY - dt.timedelta(days=40))
    make_invoice(by=gerente, client=debtor, number="L-2", amount="500.00", due_date=TODAY - dt.timedelta(days=5))
    make_invoice(by=gerente, client=debtor, number="L-3", amount="300.00", due_date=TODAY + dt.timedelta(days=20))
    seen = []
    page.on("request", lambda r: seen.append((r.method, r.url)) if "pagos" in r.url else None)
    login(page, live_server, "gestora", PASSWORD)
    page.goto(f"{live_server.url}{reverse('payment_create', args=[debtor.pk])}")
    owed = page.get_by_test_id("owed")
    expect(owed).to_contain_text("$1,800.00")
    expect(owed).to_contain_text("$1,500.00 vencido")
    page.get_by_label("Importe recibido").fill("1200")
    preview = page.get_by_test_id("payment-preview")
    expect(preview).to_contain_text("L-1")
    expect(preview).to_contain_text("L-2")
    expect(preview).not_to_contain_text("L-3")
    expect(preview.locator("tbody tr").nth(1)).to_contain_text("$300.00")  # left on L-2
    page.get_by_label("Importe recibido").fill("2000")
    expect(page.get_by_test_id("payment-preview-credit")).to_contain_text("$200.00")
    assert Payment.objects.count() == 0
    # The amount travels in the body of a POST, never in a URL.
    assert all("2000" not in url for _method, url in seen)
    assert any(method == "POST" for method, _url in seen)
