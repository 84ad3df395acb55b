"""Staff and the portal link: the client page's portal panel — copy, send
now by email, SMS or WhatsApp through the normal sending path, revoke, issue a new one — with
the role rules, and portal visits and actions in the client's timeline."""

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.models import BusinessProfile, PortalMessage
from cobranza.portal import jobs, links
from cobranza.portal import services as portal
from cobranza.portal.views import client_panel
from tests.factories import client_page_html, make_client, make_invoice

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
TODAY = dt.date(2026, 3, 2)  # a Monday
BASE = "https://cobranza.example.com/portal"


def at(d: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hour), tzinfo=MX)


@pytest.fixture(autouse=True)
def _setup(settings, business):
    cache.clear()
    # The portal's public address is the business's (docs/domain.md, "Who the debtor hears from").
    BusinessProfile.objects.filter(pk=1).update(public_base_url=BASE.removesuffix("/portal"))
    with time_machine.travel(at(TODAY), tick=False) as traveller:
        yield traveller
    cache.clear()


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Tlapalería San Juan")
    ledger.contact_create(
        by=gerente,
        client=client,
        name="Juan Compras",
        email="juan@tlapaleria.example",
        phone="+525555000111",
        whatsapp="+525555000111",
    )
    make_invoice(by=gerente, client=client, number="T-1", amount="2500.00", due_in_days=-12)
    return client


def _send(key, channel, *, reissue=False) -> dict:
    return {"channel": channel, "key": key, "reissue": "1" if reissue else ""}


def _deliver() -> list[str]:
    return [jobs.send(pk, now=at(TODAY)) for pk in jobs.due_message_ids(now=at(TODAY))]


def test_the_link_goes_out_by_email_sms_and_whatsapp_each_once_and_in_the_timeline(
    client, debtor, gestora, smtp, outbox
):
    client.force_login(gestora)
    url = reverse("selfservice:link_send", args=[debtor.pk])
    for n, channel in enumerate(("email", "sms", "whatsapp")):
        response = client.post(url, _send(f"k{n}", channel))
        assert response.status_code == 302 and response["Location"].endswith("#portal")
        # The same form submitted twice (a double click) is one send.
        client.post(url, _send(f"k{n}", channel))
    assert PortalMessage.objects.count() == 3
    assert _deliver() == ["sent", "sent", "sent"]

    (mail,) = smtp.messages
    token_link = links.link_for(debtor)
    assert mail["To"] == "juan@tlapaleria.example" and token_link in mail.get_body(("plain",)).get_content()
    sms = [json.loads(line) for line in (outbox / "outbox" / "sms.jsonl").read_text().splitlines()]
    whatsapp = [json.loads(line) for line in (outbox / "outbox" / "whatsapp.jsonl").read_text().splitlines()]
    assert len(sms) == len(whatsapp) == 1
    # SMS and WhatsApp carry the short link (docs/domain.md, "Who the debtor hears from").
    short = links.short_link_for(debtor)
    assert short in sms[0]["body"] and "BAJA" in sms[0]["body"] and len(sms[0]["body"]) < 320
    assert short in whatsapp[0]["body"]
    assert sms[0]["recipient"] == "+525555000111"
    kinds = set(
        Interaction.objects.filter(client=debtor, direction="outbound", outcome="sent").values_list("kind", flat=True)
    )
    assert kinds == {"email", "sms", "whatsapp"}


def test_an_opted_out_channel_is_refused_on_the_spot(client, debtor, gestora):
    debtor.contacts.update(opt_out_sms=True)
    client.force_login(gestora)
    response = client.post(reverse("selfservice:link_send", args=[debtor.pk]), _send("k", "sms"), follow=True)
    assert "Ningún contacto del cliente acepta mensajes por este medio" in response.content.decode()
    assert not PortalMessage.objects.exists()


def test_the_contact_rules_hold_a_link_sent_at_night(debtor, gestora, smtp, _setup):
    _setup.move_to(at(TODAY, 22))
    portal.link_send(by=gestora, client=debtor, channel="email", key="night")
    assert [jobs.send(pk, now=at(TODAY, 22)) for pk in jobs.due_message_ids(now=at(TODAY, 22))] == ["deferred"]
    assert not smtp.messages
    assert jobs.due_message_ids(now=at(TODAY, 23)) == []
    assert len(jobs.due_message_ids(now=at(TODAY + dt.timedelta(days=1), 7))) == 1


def test_issuing_a_new_link_revokes_the_old_ones_and_sends_the_new(client, debtor, gestora, smtp):
    old = links.token_for(debtor)
    client.force_login(gestora)
    client.post(reverse("selfservice:link_send", args=[debtor.pk]), _send("new", "email", reissue=True))
    with pytest.raises(links.LinkRevoked):
        links.client_from_token(old)
    assert _deliver() == ["sent"]
    sent = smtp.messages[0].get_body(("plain",)).get_content()
    assert old not in sent and links.link_for(debtor) in sent


def test_without_a_public_address_the_link_is_copied_not_sent(client, debtor, gestora, settings):
    BusinessProfile.objects.filter(pk=1).update(public_base_url="")
    client.force_login(gestora)
    page = client_page_html(client, debtor.pk)
    assert 'data-testid="portal-link"' in page and "http://testserver/portal/" in page
    assert 'data-testid="portal-send"' not in page
    portal.link_send(by=gestora, client=debtor, channel="email", key="x")
    assert _deliver() == ["failed"]


@pytest.mark.parametrize("who", ["gestora", "gerente", "admin_user"])
def test_the_clients_collector_managers_and_admins_send_and_revoke(client, debtor, who, request):
    client.force_login(request.getfixturevalue(who))
    page = client_page_html(client, debtor.pk)
    assert 'data-testid="portal-panel"' in page and BASE in page
    assert client.post(reverse("selfservice:link_send", args=[debtor.pk]), _send("r", "email")).status_code == 302
    assert PortalMessage.objects.filter(client=debtor).count() == 1
    assert client.post(reverse("selfservice:revoke", args=[debtor.pk])).status_code == 302


def test_another_collector_and_strangers_cannot_touch_the_link(client, debtor, gestor):
    url = reverse("selfservice:link_send", args=[debtor.pk])
    assert client.post(url, _send("a", "email"))["Location"].startswith(reverse("login"))
    client.force_login(gestor)
    assert client.post(url, _send("b", "email")).status_code == 404
    assert client.post(reverse("selfservice:revoke", args=[debtor.pk])).status_code == 404
    assert not PortalMessage.objects.exists()


# --- visits and actions in the timeline -------------------------------------------------------


def test_the_first_visit_of_each_day_is_in_the_timeline(client, debtor, _setup):
    url = links.link_for(debtor)
    for _ in range(3):
        assert client.get(url).status_code == 200
    visits = Interaction.objects.filter(client=debtor, summary="Visitó el portal de autoservicio")
    assert visits.count() == 1
    _setup.move_to(at(TODAY + dt.timedelta(days=1)))
    client.get(url)
    assert visits.count() == 2


def test_every_portal_action_is_in_the_timeline(client, debtor):
    token = links.token_for(debtor)
    client.get(reverse("selfservice:statement_pdf", args=[token]))
    client.post(
        reverse("selfservice:promise", args=[token]),
        {"pay_on": (TODAY + dt.timedelta(days=5)).isoformat(), "amount": "2500.00", "currency": "MXN"},
    )
    summaries = list(Interaction.objects.filter(client=debtor).values_list("summary", flat=True))
    assert "Descargó su estado de cuenta (PDF) en el portal" in summaries
    assert any(s.startswith("Portal: Promesa de pago de $2,500.00") for s in summaries)


# --- the panel's cost --------------------------------------------------------------------------


def test_the_panel_costs_the_same_queries_however_many_proposals_and_messages(rf, debtor, gestora, gerente):
    def queries() -> int:
        request = rf.get("/")
        request.user = gestora
        fresh = type(debtor).objects.get(pk=debtor.pk)
        with CaptureQueriesContext(connection) as ctx:
            html = client_panel(request, fresh)
        assert "portal-panel" in html
        return len(ctx.captured_queries)

    queries()  # the user's roles are read once and kept on the user
    baseline = queries()
    assert baseline <= 6  # + the business's public address
    portal.promise_create(client=debtor, pay_on=TODAY + dt.timedelta(days=200), amount=Decimal("10"), currency="MXN")
    make_invoice(by=gerente, client=debtor, number="T-2", amount="90.00", due_in_days=-3, currency="USD")
    portal.promise_create(client=debtor, pay_on=TODAY + dt.timedelta(days=200), amount=Decimal("1"), currency="USD")
    for n in range(4):
        portal.link_send(by=gestora, client=debtor, channel="email", key=f"q{n}")
    assert queries() == baseline
