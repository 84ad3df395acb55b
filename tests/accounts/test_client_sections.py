"""The client page in sections (docs/domain.md#the-client-page): a summary always shown,
and six sections loaded when their tab is opened, each at its own URL with the page's access
rules; ``?tab=<section>`` renders the page with that section inline (no JavaScript needed),
and the forms posted from a section come back to it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.views import SECTIONS
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


@pytest.fixture
def debtor(gerente, gestora):
    c = make_client(by=gerente, collector=gestora, legal_name="Ferretería Sección")
    invoice = make_invoice(by=gerente, client=c, number="SEC-001", amount="900.00", due_date=TODAY - dt.timedelta(40))
    services.payment_record(by=gerente, client=c, amount=Decimal("100.00"), received_on=TODAY, reference="PAGO-SEC")
    services.contact_create(by=gerente, client=c, name="Rosa Contacto", email="rosa@example.com")
    services.interaction_log(
        by=gestora, client=c, kind="call", outcome="promise", summary="Llamada de seguimiento", invoices=[invoice]
    )
    return c


# What only that section shows (the invoice's number is also on payments, the timeline...).
MARKERS = {
    "facturas": '<caption class="visually-hidden">Facturas</caption>',
    "pagos": '<caption class="visually-hidden">Pagos</caption>',
    "historial": 'id="timeline"',
    "contactos": 'class="contact-card',
    "cobranza": 'data-testid="dunning-panel"',
    "cambios": 'data-testid="audit-table"',
}


def test_the_summary_shows_balance_profile_next_step_last_contact_and_actions(client, gestora, debtor):
    client.force_login(gestora)
    html = client.get(reverse("client_detail", args=[debtor.pk])).content.decode()
    assert 'data-testid="open-balance"' in html and "31–60 días" in html  # balance by bucket
    assert 'data-testid="summary-profile"' in html and 'data-testid="summary-next-step"' in html
    assert "Llamada de seguimiento" in html  # the last contact
    assert reverse("payment_create", args=[debtor.pk]) in html and 'id="registrar"' in html
    # The sections are links to themselves, not rendered: none of their content is on the summary.
    for tab, marker in MARKERS.items():
        assert reverse(f"client_section_{tab}", args=[debtor.pk]) in html
        assert f'href="?tab={tab}#seccion-{tab}"' in html
        if tab != "historial":
            assert marker not in html, tab


@pytest.mark.parametrize("tab", SECTIONS)
def test_each_section_is_a_fragment_with_its_content(client, gestora, debtor, tab):
    client.force_login(gestora)
    response = client.get(reverse(f"client_section_{tab}", args=[debtor.pk]))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert MARKERS[tab] in html
    content = {
        "facturas": "SEC-001",
        "pagos": "PAGO-SEC",
        "historial": "Llamada de seguimiento",
        "contactos": "rosa@example.com",
    }
    assert content.get(tab, "") in html


@pytest.mark.parametrize("tab", SECTIONS)
def test_without_javascript_tab_renders_the_page_with_that_section_inline(client, gestora, debtor, tab):
    client.force_login(gestora)
    response = client.get(reverse("client_detail", args=[debtor.pk]), {"tab": tab})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    pane = html[html.index(f'id="seccion-{tab}"') :]
    assert MARKERS[tab] in pane
    assert 'aria-selected="true"' in html[html.index(f'id="tab-{tab}"') - 200 : html.index(f'id="tab-{tab}"') + 400]
    # Only that section: the others stay empty until opened.
    for other, marker in MARKERS.items():
        if other not in (tab, "historial") and not (tab == "cobranza" and other == "facturas"):
            assert marker not in html, (tab, other)


@pytest.mark.parametrize("tab", SECTIONS)
def test_sections_follow_the_page_access_rules(client, gestor, nobody, debtor, tab):
    url = reverse(f"client_section_{tab}", args=[debtor.pk])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(gestor)  # another collector's client: as if it did not exist
    assert client.get(url).status_code == 404
    client.force_login(nobody)
    assert client.get(url).status_code == 403


def test_an_unknown_tab_shows_the_summary_alone(client, gestora, debtor):
    client.force_login(gestora)
    response = client.get(reverse("client_detail", args=[debtor.pk]), {"tab": "nada"})
    assert response.status_code == 200 and response.context["active_tab"] == ""


def test_the_summary_query_count_at_a_big_client(client, gerente, gestora, django_assert_max_num_queries):
    big = make_client(by=gerente, collector=gestora)
    for i in range(40):
        invoice = make_invoice(by=gerente, client=big, amount="100.00", due_date=TODAY - dt.timedelta(days=3 * i))
        services.payment_record(by=gerente, client=big, amount=Decimal("30.00"), received_on=TODAY)
        services.interaction_log(by=gestora, client=big, kind="call", summary=f"Llamada {i}", invoices=[invoice])
    client.force_login(gestora)
    url = reverse("client_detail", args=[big.pk])
    client.get(url)
    with django_assert_max_num_queries(12):
        assert client.get(url).status_code == 200


def test_forms_posted_from_a_section_come_back_to_it(client, gestora, gerente, debtor):
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:client_pause", args=[debtor.pk]),
        {"action": "pause", "until": (TODAY + dt.timedelta(days=5)).isoformat(), "reason": "Viaje"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("client_detail", args=[debtor.pk]) + "?tab=cobranza#cobranza"
    response = client.post(reverse("client_apply_credit", args=[debtor.pk]))
    assert response["Location"] == reverse("client_detail", args=[debtor.pk]) + "?tab=facturas#seccion-facturas"
