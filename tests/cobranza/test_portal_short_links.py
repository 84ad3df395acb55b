"""The portal link in every reminder (docs/domain.md, "Who the debtor hears from"): built on the
business's public address; SMS and WhatsApp carry a short link that redirects to a freshly
signed one, as revocable and as expiring as the long link; the template preview shows the
link sending would carry."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse

from accounts import clock
from cobranza.engine import messaging
from cobranza.models import MessageTemplate, MessageTemplateText
from cobranza.portal import links
from tests.factories import BUSINESS, make_client, make_invoice

pytestmark = pytest.mark.django_db
BASE = BUSINESS["public_base_url"]


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Tornillos del Norte")
    make_invoice(by=gerente, client=client, number="TN-1", amount="1500.00", due_in_days=-10)
    return client


def _path(link: str) -> str:
    assert link.startswith(BASE + "/"), link
    return link[len(BASE) :]


def test_email_carries_the_long_link_and_sms_and_whatsapp_the_short_one(debtor):
    long = messaging.payment_link(client=debtor, channel="email")
    assert _path(long).startswith("/portal/")
    for channel in ("sms", "whatsapp"):
        short = messaging.payment_link(client=debtor, channel=channel)
        assert _path(short).startswith("/p/")
        assert len(short) <= len(BASE) + 30 < len(long)


def test_the_short_link_redirects_to_a_signed_link_for_that_client(client, debtor):
    response = client.get(_path(links.short_link_for(debtor)))
    assert response.status_code == 302
    assert response["Referrer-Policy"] == "no-referrer" and "no-store" in response["Cache-Control"]
    token = response["Location"].rsplit("/", 1)[1]
    assert links.client_from_token(token) == debtor
    page = client.get(response["Location"])
    assert page.status_code == 200 and "TN-1" in page.content.decode()


def test_a_tampered_short_link_opens_nothing(client, debtor):
    code = links.short_code_for(debtor)
    other_client = f"{int(code.split('-')[0], 36) + 1:x}-" + code.split("-", 1)[1]
    for bad in (code[:-1] + ("0" if code[-1] != "0" else "1"), other_client, "zz", "1-2-3"):
        response = client.get(reverse("portal_short_link", args=[bad]))
        assert response.status_code == 404, bad
        assert "TN-1" not in response.content.decode()


def test_revoking_the_clients_links_revokes_the_short_one(client, debtor, gestora):
    path = _path(links.short_link_for(debtor))
    links.revoke(by=gestora, client=debtor)
    response = client.get(path)
    assert response.status_code == 404
    assert "se reemplazó por uno nuevo" in response.content.decode()
    assert client.get(_path(links.short_link_for(debtor))).status_code == 302  # the new one works


def test_the_short_link_expires_with_the_long_one(client, debtor, settings):
    path = _path(links.short_link_for(debtor))
    with time_machine.travel(clock.now() + dt.timedelta(days=settings.SELF_SERVICE_LINK_DAYS + 1)):
        response = client.get(path)
    assert response.status_code == 404 and "caducado" in response.content.decode()


def test_short_links_are_rate_limited_like_the_portal(client, debtor, settings):
    settings.SELF_SERVICE_RATE_LIMIT = 3
    path = _path(links.short_link_for(debtor))
    assert [client.get(path).status_code for _ in range(4)] == [302, 302, 302, 429]


def _template(channel: str, body: str) -> MessageTemplate:
    template = MessageTemplate.objects.create(code=f"t-{channel}", name=channel, channel=channel)
    MessageTemplateText.objects.create(template=template, language="es", subject="Saldo", body=body)
    return template


def test_the_preview_shows_the_link_sending_would_carry(debtor):
    for channel in ("email", "sms"):
        preview = messaging.preview_for_client(_template(channel, "Pague aquí: {{ enlace_pago }}"), debtor)
        assert preview.body == f"Pague aquí: {messaging.payment_link(client=debtor, channel=channel)}"
    draft = messaging.preview_draft(channel="sms", subject="", body="{{ enlace_pago }}", language="es")
    assert draft.rendered.body.startswith(BASE + "/p/")  # the sample's link, on the real address
    assert "example.com" not in draft.rendered.body


def test_the_default_sms_with_its_short_link_fits_the_sms_limit(debtor):
    template = MessageTemplate.objects.get(code="seguimiento-sms")
    body = messaging.preview_for_client(template, debtor).body
    assert BASE + "/p/" in body
    assert len(body) <= messaging.SMS_MAX_CHARS
