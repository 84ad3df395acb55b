"""The pages people keep open all day cost a fixed number of queries, whatever the rows.

Each test renders a page with a few rows and again with ten times as many, and asserts the
same query count (plus a ceiling, so a regression that adds a constant query is seen too).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import BusinessGroup, Client
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()

# Ceilings: session + user + roles (3), then the page's own reads.
LIST_MAX = 7  # + segments, collectors (managers), count, page
# The client page's summary (docs/domain.md#the-client-page): + the client with its tabs'
# sizes, balances by bucket and client credit (2), the last contact, the business group, then
# cobranza's summary panels: alerts, replies, the profile and the next reminder (4). The
# issue's goal is 12 at the largest client; the sections are measured on their own below.
DETAIL_MAX = 12
# Each section, on top of session + user + roles + the client (4).
SECTION_MAX = {
    "facturas": 4 + 1,  # the page of invoices (their count came with the client)
    "pagos": 4 + 2,  # payments + their allocations
    "historial": 4 + 3,  # count, page, the entries' invoices
    "contactos": 4 + 1,
    # profile, protocol and fees (6), commitments, disputes and the importance analysis (4), the
    # self-service portal: contacts, link revocation, proposals, messages, the business, the
    # link's version (6), the dunning ladder and whether the country has contact rules (7),
    # hand-offs (1)
    "cobranza": 4 + 24,
    # content types, the entries, then one query per kind of related object the page names
    # (segment, collector, invoice...): bounded by the models, not by the history's length
    "cambios": 4 + 7,
}
HOME_MAX = 6  # + aging (2), next actions


def _count(client, url, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _add_clients(n, *, by, collectors, group=None):
    for i in range(n):
        debtor = make_client(by=by, collector=collectors[i % len(collectors)], business_group=group)
        make_invoice(by=by, client=debtor, amount="1000.00", due_date=TODAY - dt.timedelta(days=10 + i))
        make_invoice(by=by, client=debtor, amount="50.00", currency="USD", due_date=TODAY - dt.timedelta(days=3))


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_client_list_query_count_does_not_grow_with_clients(client, request, gerente, gestora, gestor, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    url = reverse("client_list")
    _add_clients(3, by=gerente, collectors=[gestora, gestor, None])
    few = _count(client, url)
    _add_clients(30, by=gerente, collectors=[gestora, gestor, None])
    many = _count(client, url)  # a full page of 25 rows
    assert many == few <= LIST_MAX
    filtered = _count(client, url, q="Cliente", segment=1, status="active", bucket="1_30", sort="-overdue", page=2)
    assert filtered <= LIST_MAX


def test_client_list_htmx_fragment_query_count(client, gerente, gestora):
    client.force_login(gerente)
    _add_clients(3, by=gerente, collectors=[gestora])
    headers = {"HX-Request": "true", "HX-Target": "client-results"}
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("client_list"), headers=headers)
    _add_clients(30, by=gerente, collectors=[gestora])
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("client_list"), headers=headers)
    assert len(many) == len(few) <= LIST_MAX


def _grow_client(debtor, n, *, by, collector, tag):
    for i in range(n):
        invoice = make_invoice(
            by=by, client=debtor, amount="100.00", due_date=TODAY - dt.timedelta(days=5 * i), number=f"{tag}-{i}"
        )
        services.payment_record(
            by=by, client=debtor, amount=Decimal("60.00"), received_on=TODAY, reference=f"{tag}-P{i}"
        )
        services.contact_create(by=by, client=debtor, name=f"Contacto {tag}{i}", opt_out_phone=bool(i % 2))
        services.interaction_log(
            by=collector,
            client=debtor,
            kind="call",
            outcome="promise",
            summary=f"Promesa {tag}{i}",
            next_action_on=TODAY,
            invoices=[invoice],
        )


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_client_detail_query_count_does_not_grow_with_history(client, request, gerente, gestora, role):
    user = request.getfixturevalue(role)
    group = BusinessGroup.objects.create(name="Grupo de prueba")
    debtor = make_client(by=gerente, collector=gestora, business_group=group, credit_limit=Decimal("5000"))
    make_client(by=gerente, collector=gestora, business_group=group)
    client.force_login(user)
    url = reverse("client_detail", args=[debtor.pk])
    _grow_client(debtor, 3, by=gerente, collector=gestora, tag="A")
    few = _count(client, url)
    _grow_client(debtor, 30, by=gerente, collector=gestora, tag="B")
    _add_clients(5, by=gerente, collectors=[gestora], group=group)
    many = _count(client, url)
    assert many == few <= DETAIL_MAX
    # Filtered timeline, full page and htmx fragment
    assert _count(client, url, kind="call") > few  # the page with the timeline inline
    with CaptureQueriesContext(connection) as fragment:
        client.get(url, {"kind": "call"}, headers={"HX-Request": "true", "HX-Target": "timeline"})
    assert len(fragment) <= SECTION_MAX["historial"]


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_each_client_section_costs_the_same_queries_whatever_the_history(client, request, gerente, gestora, role):
    user = request.getfixturevalue(role)
    debtor = make_client(by=gerente, collector=gestora, credit_limit=Decimal("5000"))
    client.force_login(user)
    urls = {tab: reverse(f"client_section_{tab}", args=[debtor.pk]) for tab in SECTION_MAX}
    _grow_client(debtor, 3, by=gerente, collector=gestora, tag="A")
    few = {tab: _count(client, url) for tab, url in urls.items()}
    _grow_client(debtor, 30, by=gerente, collector=gestora, tag="B")
    many = {tab: _count(client, url) for tab, url in urls.items()}
    assert {k: v for k, v in many.items() if k != "cambios"} == {k: v for k, v in few.items() if k != "cambios"}
    assert {tab: n for tab, n in many.items() if n > SECTION_MAX[tab]} == {}
    # The no-JavaScript page with a section inline: the summary plus that section.
    for tab in SECTION_MAX:
        assert _count(client, reverse("client_detail", args=[debtor.pk]), tab=tab) <= DETAIL_MAX + SECTION_MAX[tab]


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_home_query_count_does_not_grow(client, request, gerente, gestora, gestor, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    _add_clients(3, by=gerente, collectors=[gestora, gestor])
    few = _count(client, reverse("home"))
    _add_clients(30, by=gerente, collectors=[gestora, gestor])
    for debtor in Client.objects.all()[:20]:
        services.interaction_log(by=gerente, client=debtor, kind="note", summary="Seguimiento", next_action_on=TODAY)
    many = _count(client, reverse("home"))
    assert many == few <= HOME_MAX


def test_payment_and_interaction_forms_query_count(client, gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora)
    client.force_login(gestora)
    _grow_client(debtor, 3, by=gerente, collector=gestora, tag="A")
    urls = [reverse("payment_create", args=[debtor.pk]), reverse("interaction_create", args=[debtor.pk])]
    few = [_count(client, url) for url in urls]
    _grow_client(debtor, 25, by=gerente, collector=gestora, tag="B")
    assert [_count(client, url) for url in urls] == few
