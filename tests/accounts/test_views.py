"""The browser pages do what a collector or a manager expects, through the real stack:
URL → view → form → service → PostgreSQL → template."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Client, Contact, Interaction, Invoice, Payment
from tests.factories import client_page_html, make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def _days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _login(client, user):
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _names_in(response) -> list[str]:
    """Client names in the order the list shows them."""
    return re.findall(r'<a class="fw-semibold" href="/clientes/\d+/">([^<]+)</a>', response.content.decode())


@pytest.fixture
def portfolio(gerente, gestora, gestor):
    """Three clients with distinct names, balances, ages, segments and collectors."""
    martillo = make_client(
        by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.", trade_name="El Martillo"
    )
    make_invoice(by=gerente, client=martillo, amount="9000.00", due_date=_days_ago(70), number="FM-0077")
    lupe = make_client(
        by=gerente,
        collector=gestor,
        legal_name="Abarrotes Doña Lupe",
        segment_code="esporadico",
        status="in_collection",
    )
    make_invoice(by=gerente, client=lupe, amount="100.00", due_date=_days_ago(5))
    sin_gestor = make_client(by=gerente, collector=None, legal_name="Zapatería Sin Gestor")
    make_invoice(by=gerente, client=sin_gestor, amount="500.00", due_date=TODAY + dt.timedelta(days=15))
    return {"martillo": martillo, "lupe": lupe, "sin_gestor": sin_gestor}


# --- client list -------------------------------------------------------------------------


def test_search_by_exact_invoice_number_finds_its_client(client, gerente, portfolio):
    _login(client, gerente)
    response = client.get(reverse("client_list"), {"q": "FM-0077"})
    assert response.status_code == 200
    assert _names_in(response) == ["El Martillo"]


def test_search_by_name_and_tax_id(client, gerente, portfolio):
    _login(client, gerente)
    assert _names_in(client.get(reverse("client_list"), {"q": "lupe"})) == ["Abarrotes Doña Lupe"]
    tax_id = portfolio["sin_gestor"].tax_id
    assert _names_in(client.get(reverse("client_list"), {"q": tax_id.lower()})) == ["Zapatería Sin Gestor"]


def test_filters_narrow_the_list(client, gerente, portfolio):
    _login(client, gerente)
    url = reverse("client_list")
    assert _names_in(client.get(url, {"segment": segment("esporadico").pk})) == ["Abarrotes Doña Lupe"]
    assert _names_in(client.get(url, {"status": "in_collection"})) == ["Abarrotes Doña Lupe"]
    assert _names_in(client.get(url, {"collector": "none"})) == ["Zapatería Sin Gestor"]
    assert _names_in(client.get(url, {"collector": portfolio["martillo"].collector_id})) == ["El Martillo"]
    assert _names_in(client.get(url, {"bucket": "61_90"})) == ["El Martillo"]
    assert _names_in(client.get(url, {"bucket": "current"})) == ["Zapatería Sin Gestor"]


def test_sorts_by_balance_overdue_and_age(client, gerente, portfolio):
    _login(client, gerente)
    url = reverse("client_list")
    assert _names_in(client.get(url)) == ["Abarrotes Doña Lupe", "El Martillo", "Zapatería Sin Gestor"]
    assert _names_in(client.get(url, {"sort": "-balance"})) == [
        "El Martillo",
        "Zapatería Sin Gestor",
        "Abarrotes Doña Lupe",
    ]
    assert _names_in(client.get(url, {"sort": "balance"})) == [
        "Abarrotes Doña Lupe",
        "Zapatería Sin Gestor",
        "El Martillo",
    ]
    assert _names_in(client.get(url, {"sort": "-overdue"}))[:2] == ["El Martillo", "Abarrotes Doña Lupe"]
    # "oldest" = most days overdue first
    assert _names_in(client.get(url, {"sort": "oldest"})) == [
        "El Martillo",
        "Abarrotes Doña Lupe",
        "Zapatería Sin Gestor",
    ]


def test_list_shows_days_overdue_bucket_and_other_currency_marker(client, gerente, portfolio):
    make_invoice(by=gerente, client=portfolio["martillo"], amount="50.00", currency="USD", due_date=_days_ago(3))
    _login(client, gerente)
    html = client.get(reverse("client_list"), {"q": "martillo"}).content.decode()
    assert ">70<" in html  # días de atraso of the oldest invoice
    assert "61–90 días" in html
    assert "otras monedas" in html
    assert "$9,000.00" in html


def test_bad_filter_values_are_ignored_not_errors(client, gerente, portfolio):
    _login(client, gerente)
    response = client.get(
        reverse("client_list"), {"segment": "abc", "sort": "drop table", "page": "999", "bucket": "x"}
    )
    assert response.status_code == 200
    assert len(_names_in(response)) == 3


def test_htmx_request_gets_only_the_results_fragment(client, gerente, portfolio):
    _login(client, gerente)
    response = client.get(
        reverse("client_list"),
        {"q": "martillo"},
        headers={"HX-Request": "true", "HX-Target": "client-results"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "client-table" in html
    assert _names_in(response) == ["El Martillo"]
    assert "HX-Request" in response["Vary"]
    full = client.get(reverse("client_list"), {"q": "martillo"}).content.decode()
    assert "<html" in full and 'hx-push-url="true"' in full


def test_list_paginates_at_25(client, gerente, gestora):
    for n in range(27):
        make_client(by=gerente, collector=gestora, legal_name=f"Cliente {n:02d}")
    _login(client, gerente)
    first = client.get(reverse("client_list"))
    assert len(_names_in(first)) == 25
    second = client.get(reverse("client_list"), {"page": 2})
    assert _names_in(second) == ["Cliente 25", "Cliente 26"]


def test_collector_sees_only_own_clients_and_no_collector_filter(client, gestora, portfolio):
    _login(client, gestora)
    response = client.get(reverse("client_list"))
    assert _names_in(response) == ["El Martillo"]
    html = response.content.decode()
    assert 'name="collector"' not in html and "bulk-assign" not in html
    assert "Nuevo cliente" not in html
    # A collector cannot widen the scope through the URL.
    assert _names_in(client.get(reverse("client_list"), {"collector": "none"})) == ["El Martillo"]


def test_bulk_reassignment_changes_the_collector(client, gerente, gestor, portfolio):
    _login(client, gerente)
    ids = [portfolio["martillo"].pk, portfolio["sin_gestor"].pk]
    response = client.post(
        reverse("client_bulk_assign"),
        {"clients": ids, "collector": gestor.pk, "next": "/clientes/?q=a"},
    )
    assert response.status_code == 302 and response.url == "/clientes/?q=a"
    assert set(Client.objects.filter(pk__in=ids).values_list("collector", flat=True)) == {gestor.pk}
    assert _messages(response) == ["2 clientes reasignados a Mario Gestor."]
    assert Interaction.objects.filter(client_id__in=ids, summary__startswith="Cartera reasignada").count() == 2


def test_bulk_reassignment_to_unassigned_and_external_next_is_ignored(client, gerente, portfolio):
    _login(client, gerente)
    response = client.post(
        reverse("client_bulk_assign"),
        {"clients": [portfolio["martillo"].pk], "collector": "none", "next": "https://evil.example/"},
    )
    assert response.url == reverse("client_list")
    portfolio["martillo"].refresh_from_db()
    assert portfolio["martillo"].collector is None


def test_bulk_reassignment_without_selection_changes_nothing(client, gerente, gestor, portfolio):
    _login(client, gerente)
    response = client.post(reverse("client_bulk_assign"), {"collector": gestor.pk})
    assert response.status_code == 302
    assert "Seleccione al menos un cliente." in _messages(response)
    assert Client.objects.filter(collector=gestor).count() == 1


# --- client create / edit -----------------------------------------------------------------


def _client_form_data(**overrides):
    data = {
        "legal_name": "Nueva Empresa S.A. de C.V.",
        "trade_name": "Nueva",
        "tax_id": "nem010101aa1",
        "kind": "company",
        "segment": segment("regular").pk,
        "collector": "",
        "credit_limit": "50000.00",
        "payment_terms_days": "45",
        "currency": "mxn",
        "language": "es",
        "time_zone": "America/Monterrey",
        "country": "mx",
        "business_group": "",
        "client_since": "2020-05-01",
        "status": "active",
        "address": "",
        "notes": "",
    }
    data.update(overrides)
    return data


def test_manager_creates_a_client(client, gerente, gestora):
    _login(client, gerente)
    assert client.get(reverse("client_create")).status_code == 200
    response = client.post(reverse("client_create"), _client_form_data(collector=gestora.pk))
    created = Client.objects.get(tax_id="NEM010101AA1")
    assert response.status_code == 302 and response.url == reverse("client_detail", args=[created.pk])
    assert created.collector == gestora and created.currency == "MXN" and created.payment_terms_days == 45
    assert created.client_since == dt.date(2020, 5, 1)


def test_invalid_client_shows_field_errors_and_writes_nothing(client, gerente, portfolio):
    _login(client, gerente)
    before = (Client.objects.count(), Interaction.objects.count())
    # Refused by the form...
    response = client.post(reverse("client_create"), _client_form_data(currency="pesos", legal_name=""))
    assert response.status_code == 200
    assert {"currency", "legal_name"} <= set(response.context["form"].errors)
    # ...and by the service's model validation, shown on the same fields instead of a 500.
    response = client.post(reverse("client_create"), _client_form_data(time_zone="Marte/Olympus", credit_limit="-5"))
    assert response.status_code == 200
    assert {"time_zone", "credit_limit"} <= set(response.context["form"].errors)
    response = client.post(reverse("client_create"), _client_form_data(tax_id=portfolio["martillo"].tax_id.lower()))
    assert response.status_code == 200
    assert response.context["form"].errors["tax_id"] == ["Ya existe un cliente con este RFC / NIF."]
    assert (Client.objects.count(), Interaction.objects.count()) == before


def test_manager_edits_a_client_and_the_change_goes_to_the_timeline(client, gerente, gestor, portfolio):
    martillo = portfolio["martillo"]
    _login(client, gerente)
    page = client.get(reverse("client_edit", args=[martillo.pk]))
    assert page.context["form"]["legal_name"].value() == martillo.legal_name
    data = _client_form_data(
        legal_name=martillo.legal_name,
        trade_name=martillo.trade_name,
        tax_id=martillo.tax_id,
        collector=gestor.pk,
        status="legal",
        client_since="",
        time_zone=martillo.time_zone,
    )
    response = client.post(reverse("client_edit", args=[martillo.pk]), data)
    assert response.status_code == 302
    martillo.refresh_from_db()
    assert martillo.status == "legal" and martillo.collector == gestor
    entry = Interaction.objects.filter(client=martillo, summary="Datos del cliente actualizados").get()
    assert "En vía judicial" in entry.body
    # Saving the form again without changes writes nothing to the timeline.
    client.post(reverse("client_edit", args=[martillo.pk]), data)
    assert Interaction.objects.filter(client=martillo, summary="Datos del cliente actualizados").count() == 1


# --- client detail -------------------------------------------------------------------------


def test_detail_shows_the_client_360(client, gerente, gestora, portfolio):
    martillo = portfolio["martillo"]
    services.contact_create(by=gerente, client=martillo, name="Roberto Aval", role="guarantor", opt_out_phone=True)
    services.interaction_log(by=gestora, client=martillo, kind="call", outcome="promise", summary="Promete pagar")
    services.interaction_log(by=None, client=martillo, kind="email", outcome="sent", summary="Recordatorio enviado")
    _login(client, gestora)
    html = client_page_html(client, martillo.pk)  # the summary and every section
    for text in (
        "El Martillo",
        "FM-0077",
        "$9,000.00",
        "61–90 días",
        "Roberto Aval",
        "Aval",
        "No llamar",
        "Promete pagar",
        "Promesa de pago",
        "Lucía Gestora",
        "Sistema",
    ):
        assert text in html, text
    # Collectors do not get the manager actions.
    assert reverse("client_edit", args=[martillo.pk]) not in html
    assert reverse("invoice_create", args=[martillo.pk]) not in html


def test_detail_links_the_other_clients_of_the_business_group(client, gerente, gestora, gestor):
    from accounts.models import BusinessGroup

    group = BusinessGroup.objects.create(name="Grupo Norte")
    a = make_client(by=gerente, collector=gestora, trade_name="Norte Uno", business_group=group)
    b = make_client(by=gerente, collector=gestora, trade_name="Norte Dos", business_group=group)
    c = make_client(by=gerente, collector=gestor, trade_name="Norte Tres", business_group=group)
    _login(client, gestora)
    html = client_page_html(client, a.pk)
    assert f'href="{reverse("client_detail", args=[b.pk])}"' in html
    # The collector sees that the group has a third company but cannot open it.
    assert "Norte Tres" in html and f'href="{reverse("client_detail", args=[c.pk])}"' not in html


def test_timeline_filters_by_kind_with_an_htmx_fragment(client, gerente, gestora, portfolio):
    martillo = portfolio["martillo"]
    services.interaction_log(by=gestora, client=martillo, kind="call", summary="Llamada de seguimiento")
    services.interaction_log(by=gestora, client=martillo, kind="email", summary="Correo con estado de cuenta")
    _login(client, gestora)
    url = reverse("client_detail", args=[martillo.pk])
    response = client.get(url, {"kind": "call"}, headers={"HX-Request": "true", "HX-Target": "timeline"})
    html = response.content.decode()
    assert "<html" not in html
    assert "Llamada de seguimiento" in html and "Correo con estado de cuenta" not in html
    full = client.get(url, {"kind": "email"}).content.decode()
    assert "<html" in full and "Correo con estado de cuenta" in full and "Llamada de seguimiento" not in full


def test_apply_credit_button_applies_client_credit(client, gerente, gestora, gestor):
    acme = make_client(by=gerente, collector=gestora)
    services.payment_record(by=gerente, client=acme, amount=Decimal("300.00"), received_on=TODAY)
    invoice = make_invoice(by=gerente, client=acme, amount="200.00", due_date=_days_ago(1))
    _login(client, gestora)
    assert "Aplicar saldo a favor" in client_page_html(client, acme.pk)
    response = client.post(reverse("client_apply_credit", args=[acme.pk]))
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert _messages(response) == ["Saldo a favor aplicado a facturas pendientes: $200.00."]


# --- payments ------------------------------------------------------------------------------


@pytest.fixture
def debtor(gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, trade_name="Acme")
    old = make_invoice(by=gerente, client=acme, amount="1000.00", due_date=_days_ago(60), number="A-OLD")
    new = make_invoice(by=gerente, client=acme, amount="500.00", due_date=_days_ago(5), number="B-NEW")
    return acme, old, new


def _payment_data(**overrides):
    data = {
        "amount": "400.00",
        "received_on": TODAY.isoformat(),
        "currency": "MXN",
        "method": "transfer",
        "reference": "",
        "notes": "",
        "mode": "auto",
    }
    data.update(overrides)
    return data


def test_payment_form_defaults(client, gestora, debtor):
    acme, old, new = debtor
    _login(client, gestora)
    response = client.get(reverse("payment_create", args=[acme.pk]))
    form = response.context["form"]
    assert form["received_on"].value() == TODAY and form["currency"].value() == "MXN"
    html = response.content.decode()
    assert f'name="alloc_{old.pk}"' in html and f'name="alloc_{new.pk}"' in html
    assert 'type="date"' in html


def test_manual_allocation_updates_balances_and_status(client, gestora, debtor):
    acme, old, new = debtor
    _login(client, gestora)
    data = _payment_data(
        amount="700.00", mode="manual", reference="SPEI-1", **{f"alloc_{new.pk}": "500.00", f"alloc_{old.pk}": "150.00"}
    )
    response = client.post(reverse("payment_create", args=[acme.pk]), data)
    assert response.status_code == 302 and response.url.endswith("?tab=pagos#seccion-pagos")
    old.refresh_from_db()
    new.refresh_from_db()
    assert new.status == "paid" and new.open_balance == Decimal("0.00")
    assert old.status == "partially_paid" and old.open_balance == Decimal("850.00")
    payment = Payment.objects.get(reference="SPEI-1")
    assert payment.unallocated == Decimal("50.00") and payment.recorded_by == gestora
    [message] = _messages(response)
    assert "Pago de $700.00 registrado." in message
    assert "A-OLD ($150.00)" in message and "B-NEW ($500.00)" in message
    assert "saldo a favor: $50.00" in message
    detail = client_page_html(client, acme.pk)
    assert "Pago parcial" in detail and "Pagada" in detail


def test_automatic_allocation_pays_the_oldest_first(client, gestora, debtor):
    acme, old, new = debtor
    _login(client, gestora)
    client.post(reverse("payment_create", args=[acme.pk]), _payment_data(amount="1200.00"))
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == "paid" and new.amount_paid == Decimal("200.00")


def test_a_payment_can_be_kept_entirely_as_credit(client, gestora, debtor):
    acme, old, new = debtor
    _login(client, gestora)
    client.post(reverse("payment_create", args=[acme.pk]), _payment_data(amount="300.00", mode="credit"))
    old.refresh_from_db()
    assert old.amount_paid == 0
    assert acme.payments.get().unallocated == Decimal("300.00")


def test_duplicate_reference_is_an_info_message_not_an_error(client, gestora, debtor):
    acme, *_ = debtor
    _login(client, gestora)
    url = reverse("payment_create", args=[acme.pk])
    client.post(url, _payment_data(reference="SPEI-42"))
    response = client.post(url, _payment_data(reference="SPEI-42"))
    assert response.status_code == 302
    assert _messages(response)[-1] == "El pago con referencia SPEI-42 ya estaba registrado; no se aplicó de nuevo."
    assert Payment.objects.filter(reference="SPEI-42").count() == 1


@pytest.mark.parametrize(
    ("overrides", "error_field"),
    [
        ({"amount": ""}, "amount"),
        ({"amount": "-3"}, "amount"),
        ({"received_on": "31/02/2026"}, "received_on"),
        ({"method": "bitcoin"}, "method"),
        ({"mode": "manual"}, "__all__"),  # manual without any amount
        ({"mode": "manual", "amount": "100.00", "alloc_{old}": "300.00"}, "__all__"),  # more than the payment
        ({"mode": "manual", "amount": "5000.00", "alloc_{old}": "1500.00"}, "alloc_{old}"),  # more than the balance
        ({"received_on": "2099-01-01"}, "received_on"),  # the service refuses future dates
    ],
)
def test_invalid_payment_shows_errors_and_writes_nothing(client, gestora, debtor, overrides, error_field):
    acme, old, _new = debtor
    _login(client, gestora)
    data = _payment_data(**{k.replace("{old}", str(old.pk)): v for k, v in overrides.items()})
    counts = (Payment.objects.count(), Interaction.objects.count())
    response = client.post(reverse("payment_create", args=[acme.pk]), data)
    assert response.status_code == 200
    assert error_field.replace("{old}", str(old.pk)) in response.context["form"].errors
    assert (Payment.objects.count(), Interaction.objects.count()) == counts
    old.refresh_from_db()
    assert old.amount_paid == 0


def test_payment_reference_of_another_payment_is_a_field_error(client, gerente, gestora, debtor):
    acme, *_ = debtor
    services.payment_record(by=gerente, client=acme, amount=Decimal("1.00"), received_on=TODAY, reference="R-1")
    _login(client, gestora)
    response = client.post(reverse("payment_create", args=[acme.pk]), _payment_data(reference="R-1"))
    assert response.status_code == 200
    assert "reference" in response.context["form"].errors


# --- interactions --------------------------------------------------------------------------


def test_interaction_form_appends_to_the_timeline(client, gerente, gestora, debtor):
    acme, old, new = debtor
    contact = services.contact_create(by=gerente, client=acme, name="Carmen Díaz")
    _login(client, gestora)
    page = client.get(reverse("interaction_create", args=[acme.pk]))
    assert "A-OLD" in page.content.decode() and "Carmen Díaz" in page.content.decode()
    follow_up = TODAY + dt.timedelta(days=3)
    response = client.post(
        reverse("interaction_create", args=[acme.pk]),
        {
            "kind": "call",
            "direction": "outbound",
            "contact": contact.pk,
            "outcome": "promise",
            "summary": "Promete pagar A-OLD el viernes",
            "body": "Transferencia desde su banco principal.",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "next_action_on": follow_up.isoformat(),
            "invoices": [old.pk],
        },
    )
    assert response.status_code == 302 and response.url.endswith("?tab=historial#seccion-historial")
    entry = Interaction.objects.filter(client=acme, kind="call").get()
    assert entry.author == gestora and entry.contact == contact and entry.next_action_on == follow_up
    assert list(entry.invoices.all()) == [old]
    html = client_page_html(client, acme.pk)
    assert "Promete pagar A-OLD el viernes" in html and "Promesa de pago" in html


def test_invalid_interaction_shows_errors_and_writes_nothing(client, gerente, gestora, gestor, debtor):
    acme, *_ = debtor
    stranger = make_client(by=gerente, collector=gestor)
    foreign_contact = services.contact_create(by=gerente, client=stranger, name="Ajeno")
    _login(client, gestora)
    before = Interaction.objects.count()
    response = client.post(
        reverse("interaction_create", args=[acme.pk]),
        {
            "kind": "system",
            "direction": "outbound",
            "contact": foreign_contact.pk,
            "summary": "",
            "occurred_at": (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    assert {"kind", "contact", "summary"} <= set(response.context["form"].errors)
    assert Interaction.objects.count() == before


def test_future_interaction_is_refused_by_the_service_as_a_field_error(client, gestora, debtor):
    acme, *_ = debtor
    _login(client, gestora)
    response = client.post(
        reverse("interaction_create", args=[acme.pk]),
        {
            "kind": "note",
            "direction": "internal",
            "summary": "Nota",
            "occurred_at": (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    assert "occurred_at" in response.context["form"].errors


# --- contacts ------------------------------------------------------------------------------


def _contact_data(**overrides):
    data = {
        "role": "billing",
        "name": "Luis Romero",
        "position": "Tesorería",
        "email": "luis@example.com",
        "phone": "+52 55 1234 5678",
        "whatsapp": "",
        "preferred_channel": "email",
        "is_active": "on",
        "notes": "",
    }
    data.update(overrides)
    return data


def test_contact_create_and_edit_with_opt_outs(client, gestora, debtor):
    acme, *_ = debtor
    _login(client, gestora)
    response = client.post(reverse("contact_create", args=[acme.pk]), _contact_data())
    assert response.status_code == 302
    contact = Contact.objects.get(client=acme, name="Luis Romero")
    page = client.get(reverse("contact_edit", args=[contact.pk]))
    assert page.context["form"]["email"].value() == "luis@example.com"
    response = client.post(
        reverse("contact_edit", args=[contact.pk]),
        _contact_data(opt_out_whatsapp="on", opt_out_phone="on", preferred_channel="email"),
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.opt_out_whatsapp and contact.opt_out_phone and not contact.opt_out_email
    html = client_page_html(client, acme.pk)
    assert "No llamar" in html and "No enviar WhatsApp" in html
    assert Interaction.objects.filter(client=acme, body__contains="Se registró la baja de").exists()


def test_invalid_contact_shows_errors(client, gestora, debtor):
    acme, *_ = debtor
    _login(client, gestora)
    response = client.post(reverse("contact_create", args=[acme.pk]), _contact_data(name="", email="no-es-correo"))
    assert response.status_code == 200
    assert {"name", "email"} <= set(response.context["form"].errors)
    assert not Contact.objects.filter(client=acme).exists()


# --- invoices ------------------------------------------------------------------------------


def test_manager_creates_an_invoice_with_default_due_date(client, gerente, debtor):
    acme, *_ = debtor
    _login(client, gerente)
    page = client.get(reverse("invoice_create", args=[acme.pk]))
    assert page.context["form"]["due_date"].value() == TODAY + dt.timedelta(days=acme.payment_terms_days)
    issue = _days_ago(2)
    response = client.post(
        reverse("invoice_create", args=[acme.pk]),
        {"number": "F-NEW-1", "issue_date": issue.isoformat(), "due_date": "", "amount": "1234.50", "currency": "mxn"},
    )
    assert response.status_code == 302
    invoice = Invoice.objects.get(number="F-NEW-1")
    assert invoice.due_date == issue + dt.timedelta(days=acme.payment_terms_days)
    assert invoice.currency == "MXN" and invoice.amount == Decimal("1234.50")


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [("10", "ZZZ", "currency"), ("10000000000.00", "MXN", "amount")],
)
def test_an_unknown_currency_or_a_huge_amount_is_a_field_error(
    client, gerente, debtor, settings, amount, currency, field
):
    acme, *_ = debtor
    _login(client, gerente)
    response = client.post(
        reverse("invoice_create", args=[acme.pk]),
        {"number": "F-BIG", "issue_date": TODAY.isoformat(), "amount": amount, "currency": currency},
    )
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Invoice.objects.filter(number="F-BIG").exists()
    settings.MONEY_MAX_AMOUNT = "20000000000"  # configurable
    if field == "amount":
        client.post(
            reverse("invoice_create", args=[acme.pk]),
            {"number": "F-BIG", "issue_date": TODAY.isoformat(), "amount": amount, "currency": currency},
        )
        assert Invoice.objects.filter(number="F-BIG").exists()


def test_duplicate_invoice_number_is_a_field_error(client, gerente, debtor):
    acme, *_ = debtor
    _login(client, gerente)
    response = client.post(
        reverse("invoice_create", args=[acme.pk]),
        {"number": "A-OLD", "issue_date": TODAY.isoformat(), "amount": "10", "currency": "MXN"},
    )
    assert response.status_code == 200
    assert "number" in response.context["form"].errors
    assert Invoice.objects.filter(number="A-OLD").count() == 1


def test_manager_disputes_and_reactivates_an_invoice_with_a_reason(client, gerente, debtor):
    acme, old, _new = debtor
    _login(client, gerente)
    url = reverse("invoice_status", args=[old.pk])
    response = client.post(url, {"status": "disputed", "reason": ""})
    assert response.status_code == 200 and "reason" in response.context["form"].errors
    old.refresh_from_db()
    assert old.status == "open"
    response = client.post(url, {"status": "disputed", "reason": "Mercancía dañada"})
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.status == "disputed"
    assert Interaction.objects.filter(client=acme, body="Mercancía dañada").exists()
    client.post(url, {"status": "open", "reason": "Resuelto con nota de crédito"})
    old.refresh_from_db()
    assert old.status == "open"


def test_cancelling_a_paid_invoice_is_a_form_error_not_a_500(client, gerente, gestora, debtor):
    acme, old, _new = debtor
    services.payment_record(by=gestora, client=acme, amount=Decimal("10.00"), received_on=TODAY)
    _login(client, gerente)
    response = client.post(reverse("invoice_status", args=[old.pk]), {"status": "cancelled", "reason": "Error"})
    assert response.status_code == 200
    assert response.context["form"].errors
    old.refresh_from_db()
    assert old.status == "partially_paid"


@pytest.mark.parametrize(
    ("name", "obj", "data"),
    [
        ("client_create", None, {"legal_name": "X", "segment": "1"}),
        ("client_edit", "client", {"legal_name": "X"}),
        ("invoice_create", "client", {"number": "X-1", "issue_date": "2026-01-01", "amount": "1", "currency": "MXN"}),
        ("invoice_status", "invoice", {"status": "written_off", "reason": "x"}),
        ("client_bulk_assign", None, {"clients": ["{client}"], "collector": "none"}),
    ],
)
def test_manager_only_forms_are_forbidden_to_collectors(client, gestora, debtor, name, obj, data):
    acme, old, _new = debtor
    objects = {"client": acme, "invoice": old}
    _login(client, gestora)
    url = reverse(name, args=[objects[obj].pk] if obj else [])
    state = (Client.objects.count(), Invoice.objects.count(), Interaction.objects.count())
    data = {k: ([str(acme.pk)] if v == ["{client}"] else v) for k, v in data.items()}
    assert client.get(url).status_code in (403, 405)
    assert client.post(url, data).status_code == 403
    assert (Client.objects.count(), Invoice.objects.count(), Interaction.objects.count()) == state
    old.refresh_from_db()
    acme.refresh_from_db()
    assert old.status == "open" and acme.collector == gestora


# --- home, languages, errors ---------------------------------------------------------------


def test_home_shows_the_portfolio_scoped_to_the_user(client, gerente, gestora, portfolio):
    services.interaction_log(
        by=gestora, client=portfolio["martillo"], kind="call", summary="Volver a llamar", next_action_on=TODAY
    )
    _login(client, gestora)
    html = client.get(reverse("home")).content.decode()
    assert "Panorama de cartera" in html and "$9,000.00" in html
    assert "$9,600.00" not in html  # the manager's total, with other collectors' clients
    assert "Volver a llamar" in html
    client.force_login(gerente)
    assert "$9,600.00" in client.get(reverse("home")).content.decode()


def test_language_switch_to_english(client, gestora):
    _login(client, gestora)
    assert '<html lang="es">' in client.get(reverse("home")).content.decode()
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("client_list")})
    assert response.status_code == 302 and response.url == reverse("client_list")
    assert '<html lang="en">' in client.get(reverse("client_list")).content.decode()


def test_a_user_without_role_gets_a_helpful_403(client, nobody):
    _login(client, nobody)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert "no tiene un rol" in response.content.decode()


def test_another_collectors_client_is_a_404(client, gestor, debtor):
    acme, *_ = debtor
    _login(client, gestor)
    assert client.get(reverse("client_detail", args=[acme.pk])).status_code == 404
    response = client.post(reverse("payment_create", args=[acme.pk]), _payment_data())
    assert response.status_code == 404
    assert not Payment.objects.exists()


def test_login_page_and_logout(client, gestora):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and 'name="username"' in page.content.decode()
    _login(client, gestora)
    html = client.get(reverse("home")).content.decode()
    assert f'action="{reverse("logout")}" method="post"' in html
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_error_pages_render_without_a_request():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Algo salió mal" in html and "<html" in html
