"""Pay now, end to end, in a real browser against the live server: a reminder goes out through
a real SMTP server; the debtor follows the portal link in it; the portal offers the pay link
(the same as the email's button); the payment provider reports the payment to our signed
payment webhook for that link's amount and invoices; the invoices are paid, the next day's
dunning run sends nothing for them (a second client on the same ladder still gets its
reminder), and the portal shows them paid."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts import clock
from accounts import services as ledger
from accounts.models import Invoice
from accounts.utils import webhook_signature
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, MessageTemplate, Notice, Policy, PolicyStep
from tests.business import business_profile
from tests.e2e.conftest import ARTIFACTS
from tests.factories import make_client, make_invoice
from tests.smtp import SMTPServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday
DAY_1 = DUE + dt.timedelta(days=1)
DAY_2 = DUE + dt.timedelta(days=2)
SECRET = "e2e-payment-webhook-secret"


def _at(day: dt.date) -> dt.datetime:
    # After every client's slot (docs/domain.md#spread): the day's messages are due.
    return dt.datetime.combine(day, dt.time(21, 0), tzinfo=MX)


@pytest.fixture
def smtp(settings):
    server = SMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()


@pytest.fixture
def ladder(db):
    """Two email steps, the day after the due date and the next day."""
    templates = list(MessageTemplate.objects.filter(channel="email").order_by("id")[:2])
    policy = Policy.objects.create(name="Pagar ahora")
    for position, template in enumerate(templates, start=1):
        PolicyStep.objects.create(
            policy=policy,
            position=position,
            name=f"Correo {position}",
            offset_days=position,
            channel="email",
            template=template,
        )
    return policy


def _debtor(gerente, gestora, ladder, name: str, email: str, amounts: list[str]):
    client = make_client(by=gerente, collector=gestora, legal_name=name)
    ledger.contact_create(by=gerente, client=client, name="Cuentas por pagar", email=email)
    for i, amount in enumerate(amounts, start=1):
        make_invoice(by=gerente, client=client, number=f"{name[:3].upper()}-{i}", amount=amount, due_date=DUE)
    ClientDunning.objects.create(client=client, policy=ladder)
    return client


def _run(day: dt.date):
    """One dunning run at 21:00 on ``day``: everything it writes carries that moment (the one
    clock), so pacing counts the day's sends on the day they went."""
    with clock.running_at(_at(day)):
        plan(today=day, now=_at(day))
        return [dispatch.dispatch(i, now=_at(day)) for i in dispatch.due_notice_ids(now=_at(day))]


def test_reminder_portal_pay_link_webhook_paid_and_the_next_run_skips_it(
    page, live_server, settings, tmp_path, smtp, ladder, gerente, gestora
):
    cache.clear()  # the portal's rate limit counts in the shared cache
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    # The dunning days are fixed dates in the past and the link is signed at the run's moment:
    # it must still open today, when the browser follows it.
    settings.SELF_SERVICE_LINK_DAYS = (timezone.localdate() - DUE).days + 30
    business_profile(public_base_url=live_server.url)
    clavo = _debtor(gerente, gestora, ladder, "Clavo", "pagos@clavo.example", ["1500.00", "520.25"])
    other = _debtor(gerente, gestora, ladder, "Tuerca", "pagos@tuerca.example", ["99.00"])

    # Day 1: each client gets the first reminder, through the real SMTP server.
    assert [r.outcome for r in _run(DAY_1)] == ["sent", "sent"]
    [message] = [m for m in smtp.messages if m["To"] == "pagos@clavo.example"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    portal_url = re.search(re.escape(f"{live_server.url}/portal") + r"/\S+", text).group(0)
    email_pay = re.search(r'href="([^"]+)"[^>]*data-role="pay"', html).group(1).replace("&amp;", "&")
    assert portal_url in html, "the HTML part carries the same portal link"

    # The debtor follows the link: the portal offers the same pay link and the bank details.
    page.goto(portal_url)
    pay_now = page.get_by_test_id("pay-now")
    expect(pay_now).to_contain_text("Pagar ahora")
    expect(pay_now).to_contain_text("012180001234567891")
    pay_link = page.get_by_test_id("pay-link")
    expect(pay_link).to_have_text("Pagar $2,020.25 en línea")
    href = pay_link.get_attribute("href")
    assert href == email_pay
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "pay-now-portal.png"), full_page=True)

    # The provider reports the payment of that link, signed, to our payment webhook.
    values = {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}
    body = json.dumps(
        {
            "reference": "PROVIDER-8841",
            "client_id": int(values["cliente"]),
            "invoices": values["facturas"].split(","),
            "amount": values["importe"],
            "currency": values["moneda"],
            # Received today: the dunning days above are fixed dates (a Monday with no holiday).
            "received_on": timezone.localdate().isoformat(),
            "method": "card",
        }
    ).encode()
    timestamp = str(int(time.time()))
    response = page.request.post(
        f"{live_server.url}{reverse('webhooks:payments')}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Signature-Timestamp": timestamp,
            "X-Signature": webhook_signature(SECRET, timestamp, body),
        },
    )
    assert response.status == 201, response.text()
    assert set(Invoice.objects.filter(client=clavo).values_list("status", flat=True)) == {"paid"}

    # Day 2: the next step is due for both clients; only the one still owing hears from us.
    sent_before = len(smtp.messages)
    results = _run(DAY_2)
    assert not Notice.objects.filter(client=clavo, step__position=2).exists(), "no notice for paid invoices"
    assert [r.outcome for r in results] == ["sent"]
    assert [m["To"] for m in smtp.messages[sent_before:]] == ["pagos@tuerca.example"]
    assert Notice.objects.filter(client=other, step__position=2, status="sent").exists()

    # The portal shows it paid.
    page.reload()
    expect(page.get_by_text("No tiene facturas pendientes. ¡Gracias!")).to_be_visible()
    expect(page.get_by_test_id("pay-now")).to_have_count(0)
    expect(page.get_by_test_id("payments-received")).to_contain_text("$2,020.25")
    expect(page.get_by_test_id("payments-received")).to_contain_text("CLA-1, CLA-2")
    page.screenshot(path=str(ARTIFACTS / "pay-now-paid.png"), full_page=True)
