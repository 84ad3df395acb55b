"""The debtor's self-service page: signed links (tampered, expired, revoked), one client's data
only, the three debtor actions landing in the timeline and the worklist, the PDF, the rate
limit and the client's language."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.models import Interaction
from cobranza.engine import messaging
from cobranza.models import BusinessProfile, CollectorTask, Commitment, Dispute, SelfServiceAccess, TaskKind
from cobranza.portal import links
from cobranza.portal import selectors as portal_selectors
from tests.factories import make_business, make_client, make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    # The limit counts in the shared cache: every test starts from zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo")
    make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_in_days=-10)
    make_invoice(by=gerente, client=client, number="FC-2", amount="500.00", due_in_days=20)
    make_invoice(by=gerente, client=client, number="FC-USD", amount="80.00", due_in_days=-3, currency="USD")
    return client


@pytest.fixture
def other(gerente, gestor):
    client = make_client(by=gerente, collector=gestor, legal_name="Otra Empresa Ajena")
    make_invoice(by=gerente, client=client, number="AJENA-1", amount="999.00", due_in_days=-5)
    return client


def _url(client, name="statement"):
    token = links.token_for(client)
    return reverse(f"selfservice:{name}", args=[token])


def test_the_link_shows_that_clients_statement_with_totals_per_currency(client, debtor, other):
    response = client.get(links.link_for(debtor))
    assert response.status_code == 200
    html = response.content.decode()
    assert "FC-1" in html and "FC-2" in html and "FC-USD" in html
    assert "AJENA-1" not in html and "Otra Empresa Ajena" not in html
    assert 'data-total="MXN"' in html and 'data-total="USD"' in html
    assert "$2,000.00" in html  # 1,500 + 500 in MXN
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]


def test_the_statement_counts_days_overdue_and_totals_what_is_overdue(debtor):
    data = portal_selectors.statement_of(debtor)
    days = {line.invoice.number: line.days_overdue for line in data.lines}
    assert days == {"FC-1": 10, "FC-USD": 3, "FC-2": 0}
    mxn = next(t for t in data.totals if t.currency == "MXN")
    assert (mxn.total, mxn.overdue, mxn.count) == (Decimal("2000.00"), Decimal("1500.00"), 2)


def test_a_tampered_token_is_refused(client, debtor):
    token = links.token_for(debtor)
    _client_id, rest = token.split(".", 1)
    forged = f"{debtor.pk + 1}.{rest}"
    for bad in (forged, token[:-2] + "xx", "nada"):
        with pytest.raises(links.LinkTampered):
            links.client_from_token(bad)
        response = client.get(reverse("selfservice:statement", args=[bad]))
        assert response.status_code == 404
        assert "FC-1" not in response.content.decode()
        assert "no es válido" in response.content.decode()


def test_a_link_expires_after_the_configured_days(client, debtor, settings):
    settings.SELF_SERVICE_LINK_DAYS = 30
    url = links.link_for(debtor)
    with time_machine.travel(timezone.now() + dt.timedelta(days=29), tick=False):
        assert client.get(url).status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(days=31), tick=False):
        response = client.get(url)
        assert response.status_code == 404
        assert "caducado" in response.content.decode()
        with pytest.raises(links.LinkExpired):
            links.client_from_token(url.rstrip("/").rsplit("/", 1)[1])


def test_revoking_kills_every_earlier_link_and_logs_it(client, debtor, gestora):
    old = links.link_for(debtor)
    links.revoke(by=gestora, client=debtor)
    response = client.get(old)
    assert response.status_code == 404 and "reemplazó" in response.content.decode()
    assert client.get(links.link_for(debtor)).status_code == 200
    access = SelfServiceAccess.objects.get(client=debtor)
    assert access.version == 2 and access.revoked_by == gestora and access.revoked_at
    assert Interaction.objects.filter(client=debtor, summary__icontains="revocados").exists()


def test_only_the_clients_collector_or_a_manager_revokes(client, debtor, gestor, gestora):
    url = reverse("selfservice:revoke", args=[debtor.pk])
    assert client.post(url).status_code == 302  # anonymous: to the login page
    assert not SelfServiceAccess.objects.exists()
    client.force_login(gestor)
    assert client.post(url).status_code == 404
    client.force_login(gestora)
    assert client.get(url).status_code == 405
    response = client.post(url)
    back = reverse("client_detail", args=[debtor.pk]) + "?tab=cobranza#portal"
    assert response.status_code == 302 and response["Location"] == back
    assert SelfServiceAccess.objects.get(client=debtor).version == 2


def test_reminders_carry_the_signed_link(debtor):
    make_business(public_base_url="https://cobranza.example.com/")
    link = messaging.payment_link(client=debtor)
    assert link.startswith("https://cobranza.example.com/portal/")
    assert links.client_from_token(link.rsplit("/", 1)[1]) == debtor
    # The path under the portal resolves to the statement, with or without a final slash.
    path = "/portal/" + link.rsplit("/", 1)[1]
    assert reverse("selfservice:statement", args=[link.rsplit("/", 1)[1]]) == path
    BusinessProfile.objects.update(public_base_url="")
    assert messaging.payment_link(client=debtor) == ""


def test_another_clients_invoice_in_a_post_is_refused(client, debtor, other):
    alien = other.invoices.get()
    response = client.post(
        _url(debtor, "report_problem"),
        {"invoice": alien.pk, "reason": "product", "description": "No llegó"},
    )
    assert response.status_code == 200
    assert "invoice" in response.context["form"].errors
    assert not Dispute.objects.exists()
    alien.refresh_from_db()
    assert alien.status == "open"


def test_a_promise_lands_in_the_timeline_and_the_worklist(client, debtor, gestora):
    pay_on = portal_selectors.client_today(debtor) + dt.timedelta(days=7)
    response = client.post(
        _url(debtor, "promise"), {"pay_on": pay_on.isoformat(), "amount": "1200.00", "currency": "MXN"}
    )
    assert response.status_code == 302 and "hecho=promise" in response["Location"]
    commitment = Commitment.objects.get(client=debtor)
    assert commitment.kind == "promise" and commitment.created_by is None
    assert set(commitment.invoices.values_list("number", flat=True)) == {"FC-1", "FC-2"}
    task = CollectorTask.objects.get(client=debtor, kind=TaskKind.FOLLOW_UP)
    assert task.assigned_to == gestora and task.commitment == commitment
    assert Interaction.objects.filter(client=debtor, summary__startswith="Promesa de pago").exists()
    assert "registramos su promesa" in client.get(response["Location"]).content.decode()


def test_a_bad_promise_shows_the_errors_on_the_form(client, debtor):
    yesterday = portal_selectors.client_today(debtor) - dt.timedelta(days=1)
    response = client.post(_url(debtor, "promise"), {"pay_on": yesterday.isoformat(), "amount": "10"})
    assert response.status_code == 200
    assert "pay_on" in response.context["form"].errors
    # More than owed: the service's error is shown next to the amount.
    pay_on = portal_selectors.client_today(debtor) + dt.timedelta(days=3)
    response = client.post(_url(debtor, "promise"), {"pay_on": pay_on.isoformat(), "amount": "99999"})
    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert not Commitment.objects.exists() and not CollectorTask.objects.exists()


def test_a_plan_request_inside_the_limits_is_a_plan_with_a_task_and_a_timeline_entry(client, debtor, gestora):
    first = portal_selectors.client_today(debtor) + dt.timedelta(days=7)
    response = client.post(
        _url(debtor, "plan_request"),
        {
            "installments": "4",
            "first_on": first.isoformat(),
            "spacing": "biweekly",
            "currency": "MXN",
            "comment": "Podemos pagar cada quincena.",
        },
    )
    assert response.status_code == 302 and "hecho=plan" in response["Location"]
    entry = Interaction.objects.get(client=debtor, outcome=Interaction.Outcome.PLAN_REQUEST)
    assert "4 cuotas" in entry.summary and entry.body == "Podemos pagar cada quincena."
    assert entry.direction == Interaction.Direction.INBOUND
    task = CollectorTask.objects.get(client=debtor, kind=TaskKind.FOLLOW_UP)
    assert task.assigned_to == gestora and "4 cuotas" in task.title
    plan = Commitment.objects.get(client=debtor)
    assert plan.kind == "plan" and plan.total == Decimal("2000.00")
    assert [i.due_on for i in plan.installments.all()] == [first + dt.timedelta(days=14 * n) for n in range(4)]


def test_reporting_a_problem_opens_a_dispute_with_its_task(client, debtor, gestora):
    invoice = debtor.invoices.get(number="FC-1")
    response = client.post(
        _url(debtor, "report_problem"),
        {"invoice": invoice.pk, "reason": "delivery", "description": "La mercancía no llegó completa."},
    )
    assert response.status_code == 302
    dispute = Dispute.objects.get(client=debtor)
    assert list(dispute.invoices.all()) == [invoice] and dispute.opened_by is None
    assert CollectorTask.objects.get(client=debtor, kind=TaskKind.DISPUTE).assigned_to == gestora
    assert Interaction.objects.filter(client=debtor, outcome=Interaction.Outcome.DISPUTE).exists()
    invoice.refresh_from_db()
    assert invoice.status == "disputed"


def test_the_statement_pdf_is_a_pdf(client, debtor):
    response = client.get(_url(debtor, "statement_pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_too_many_requests_get_a_friendly_429(client, debtor, settings):
    settings.SELF_SERVICE_RATE_LIMIT = 3
    url = links.link_for(debtor)
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(url)
    assert response.status_code == 429 and "Demasiadas solicitudes" in response.content.decode()
    assert response["Retry-After"]


def test_guessing_tokens_from_one_address_is_limited_too(client, settings):
    settings.SELF_SERVICE_RATE_LIMIT = 3
    codes = [client.get(reverse("selfservice:statement", args=[f"adivina{n}"])).status_code for n in range(4)]
    assert codes == [404, 404, 404, 429]


def test_an_english_client_gets_the_page_in_english(client, gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora, language="en")
    make_invoice(by=gerente, client=debtor, number="EN-1", due_in_days=-2)
    response = client.get(links.link_for(debtor))
    assert response.status_code == 200
    assert '<html lang="en">' in response.content.decode()
    assert response["Content-Language"] == "en"
    # The site's own language is untouched for the next request.
    spanish = make_client(by=gerente, collector=gestora)
    make_invoice(by=gerente, client=spanish, due_in_days=-2)
    assert '<html lang="es">' in client.get(links.link_for(spanish)).content.decode()
