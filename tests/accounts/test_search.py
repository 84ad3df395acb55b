"""Search that finds (docs/domain.md#search): any part of an invoice number, a name with a
typo, a contact's email or phone, from the box in the header — through the client list's one
definition, over trigram indexes the planner can use."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import selectors, services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


@pytest.fixture
def book(gerente, gestora, gestor):
    martillo = make_client(
        by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.", tax_id="FEM900101AB1"
    )
    make_invoice(by=gerente, client=martillo, number="A-0001866", amount="500.00", due_date=TODAY)
    make_invoice(by=gerente, client=martillo, number="A-0001867", amount="500.00", due_date=TODAY)
    services.contact_create(
        by=gerente,
        client=martillo,
        name="Rosa Pérez",
        email="pagos@elmartillo.mx",
        phone="+52 55 1234 5678",
        whatsapp="+52 1 55 8765 4321",
    )
    lupe = make_client(
        by=gerente,
        collector=gestor,
        legal_name="Abarrotes Doña Lupe",
        trade_name="Tienda Lupita",
        tax_id="ADL010101XY2",
    )
    make_invoice(by=gerente, client=lupe, number="B-0018660", amount="300.00", due_date=TODAY)
    services.contact_create(by=gerente, client=lupe, name="Guadalupe Ruiz", email="lupe@tiendalupita.mx")
    make_client(by=gerente, collector=gestora, legal_name="Materiales 100% Norte", tax_id="MAT0202029Z3")
    return {"martillo": martillo, "lupe": lupe}


def _names(user, q):
    return [c.legal_name for c in selectors.client_list(user=user, q=q, sort=selectors.RELEVANCE, today=TODAY)]


@pytest.mark.parametrize(
    "q",
    [
        "1866",  # any part of the invoice number (the issue: "1866 finds nothing")
        "a-000186",
        "A-0001866",
        "martilo",  # a typo
        "Ferreteria El Martilo",  # typos and no accent
        "el martillo",
        "FEM9001",  # the beginning of the tax id
        "fem900101ab1",
        "pagos@elmartillo",  # part of a contact's email
        "1234 5678",  # the phone's digits, however written
        "55-1234-5678",
        "8765 4321",  # the WhatsApp number
    ],
)
def test_one_box_finds_a_client_by_any_of_its_parts(book, gerente, q):
    assert "Ferretería El Martillo S.A. de C.V." in _names(gerente, q)


def test_an_exact_invoice_number_ranks_its_client_first(book, gerente):
    assert _names(gerente, "186") == ["Abarrotes Doña Lupe", "Ferretería El Martillo S.A. de C.V."]
    assert _names(gerente, "b-0018660")[0] == "Abarrotes Doña Lupe"
    assert _names(gerente, "a-0001866")[0] == "Ferretería El Martillo S.A. de C.V."


def test_trade_names_and_their_typos_are_found(book, gerente):
    assert _names(gerente, "lupita") == ["Abarrotes Doña Lupe"]
    assert _names(gerente, "Tienda Lupta") == ["Abarrotes Doña Lupe"]
    assert _names(gerente, "lupe@") == ["Abarrotes Doña Lupe"]


def test_a_substring_of_several_invoices_finds_each_client_once(book, gerente):
    assert sorted(_names(gerente, "186")) == ["Abarrotes Doña Lupe", "Ferretería El Martillo S.A. de C.V."]


def test_like_wildcards_are_text_not_patterns(book, gerente):
    assert _names(gerente, "100%") == ["Materiales 100% Norte"]
    assert _names(gerente, "%") == ["Materiales 100% Norte"]
    assert _names(gerente, "_") == []


def test_short_text_matches_names_and_tax_ids_only(book, gerente):
    # Two characters: no invoice, email or typo search (they would match half the book).
    assert _names(gerente, "18") == []
    assert _names(gerente, "ab") == ["Abarrotes Doña Lupe"]


def test_the_exact_tax_id_and_name_prefixes_rank_first(book, gerente):
    other = make_client(by=gerente, legal_name="Distribuidora del Martillo", tax_id="DIM050505QQ1")
    make_invoice(by=gerente, client=other, number="FEM900101AB1-X", amount="10.00", due_date=TODAY)
    assert _names(gerente, "FEM900101AB1") == ["Ferretería El Martillo S.A. de C.V.", "Distribuidora del Martillo"]
    assert _names(gerente, "Distribuidora")[0] == "Distribuidora del Martillo"


def test_a_collector_finds_only_her_own_clients(book, gestora, gestor):
    assert _names(gestora, "lupita") == []
    assert _names(gestor, "lupita") == ["Abarrotes Doña Lupe"]
    assert _names(gestora, "186") == ["Ferretería El Martillo S.A. de C.V."]


def test_the_header_box_searches_the_client_list_and_says_what_matched(client, book, gestora):
    client.force_login(gestora)
    home = client.get(reverse("home")).content.decode()
    assert 'data-testid="header-search"' in home and f'action="{reverse("client_list")}"' in home
    html = client.get(reverse("client_list"), {"q": "1866"}).content.decode()
    assert "Ferretería El Martillo" in html
    assert "Factura A-0001866" in html and "Factura A-0001867" not in html
    html = client.get(reverse("client_list"), {"q": "5512345678"}).content.decode()
    assert "Rosa Pérez · pagos@elmartillo.mx · +52 55 1234 5678" in html
    # The header box keeps what was searched.
    assert 'name="q" id="header-q"' in html and 'value="5512345678"' in html


def test_a_search_page_costs_a_fixed_number_of_queries(client, book, gerente):
    client.force_login(gerente)
    url = reverse("client_list")

    def count(q):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, {"q": q}).status_code == 200
        return len(ctx.captured_queries)

    few = count("Martillo")
    for i in range(30):
        debtor = make_client(by=gerente, legal_name=f"Martillos y Clavos {i}")
        make_invoice(by=gerente, client=debtor, number=f"MAR-{i:04d}", amount="10.00", due_date=TODAY)
        services.contact_create(by=gerente, client=debtor, name=f"Contacto {i}", email=f"martillo{i}@example.com")
    assert count("Martillo") == few <= 9  # the list's 7 + what matched (invoices, contacts)


@pytest.mark.parametrize(
    ("q", "index"),
    [
        ("martilo", "client_search_trgm"),
        ("1866", "invoice_number_trgm"),
        ("pagos@elmartillo", "contact_search_trgm"),
        ("12345678", "contact_search_trgm"),
    ],
)
def test_every_branch_of_the_search_can_use_its_trigram_index(book, q, index):
    """With sequential scans priced out, the planner must pick the index for each branch: the
    SQL's expressions are the indexed ones (a mismatch would leave a seq scan on 100,000 rows)."""
    sql, params = selectors.client_search_sql(q)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


def test_dates_in_the_past_do_not_matter_to_search(book, gerente):
    old = make_client(by=gerente, legal_name="Vieja Cuenta")
    make_invoice(by=gerente, client=old, number="Z-9999", amount="1.00", due_date=TODAY - dt.timedelta(days=900))
    assert _names(gerente, "9999") == ["Vieja Cuenta"]


# --- the header box's suggestions (accounts.views.client_suggest) ---------------------------


def _suggested(client, q):
    response = client.get(reverse("client_suggest"), {"q": q})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    "q",
    [
        "Ferretería",  # the name
        "El Martillo",  # part of the name
        "FEM900101AB1",  # the tax id
        "fem9001",  # its beginning
        "1866",  # any part of an invoice number
        "pagos@elmartillo",  # a contact's email
        "55 1234 5678",  # a contact's phone
        "martilo",  # a typo
        "Ferreteria El Martilo",
    ],
)
def test_the_suggestions_find_a_client_by_any_of_its_parts(client, book, gestora, q):
    client.force_login(gestora)
    html = _suggested(client, q)
    assert "Ferretería El Martillo S.A. de C.V." in html
    assert f'href="{reverse("client_detail", args=[book["martillo"].pk])}"' in html


def test_the_suggestions_find_trade_names_and_their_typos(client, book, gerente):
    client.force_login(gerente)
    for q in ("Lupita", "Tienda Lupta"):
        html = _suggested(client, q)
        assert "Abarrotes Doña Lupe" in html and "Tienda Lupita" in html


def test_each_suggestion_says_what_matched(client, book, gerente):
    client.force_login(gerente)
    html = _suggested(client, "1866")
    assert "Factura A-0001866" in html and "Factura B-0018660" in html
    assert "Factura A-0001867" not in html
    html = _suggested(client, "5512345678")
    assert "Rosa Pérez · pagos@elmartillo.mx · +52 55 1234 5678" in html
    assert "FEM900101AB1" in html  # the tax id beside the name


def test_the_suggestions_match_the_client_list(book, gerente, gestora):
    """The same rule as the list: the suggestions are its best matches, in its order."""
    for user in (gerente, gestora):
        for q in ("186", "martilo", "lupe", "Ab", "FEM900101AB1", "100%", "18", "zzzz", "lupe@"):
            listed = _names(user, q)
            suggested = [c.legal_name for c in selectors.client_suggestions(user=user, q=q)]
            assert suggested == listed[: selectors.SUGGESTIONS], q


def test_a_broad_word_shows_a_few_clients_that_start_with_it(book, gerente):
    for i in range(12):
        make_client(by=gerente, legal_name=f"Ferretería Número {i}")
    found = selectors.client_suggestions(user=gerente, q="ferret")
    assert len(found) == selectors.SUGGESTIONS
    names = [c.legal_name for c in found]
    assert all(name.startswith("Ferretería") for name in names)
    assert names == sorted(names)


def test_the_suggestions_need_two_characters_and_offer_the_full_results(client, book, gerente):
    client.force_login(gerente)
    assert 'role="option"' not in _suggested(client, "F")
    html = _suggested(client, "zzzz")
    assert 'data-testid="suggestion"' not in html
    assert "Ningún cliente coincide" in html
    assert f'href="{reverse("client_list")}?q=zzzz"' in html


def test_a_collector_is_suggested_only_her_own_clients(client, book, gestora):
    client.force_login(gestora)
    assert "Abarrotes Doña Lupe" not in _suggested(client, "lupita")
    assert "Abarrotes Doña Lupe" not in _suggested(client, "186")
    assert "Ferretería El Martillo" in _suggested(client, "186")


def test_the_suggestions_need_a_login_and_a_role(client, book, django_user_model):
    url = reverse("client_suggest")
    response = client.get(url, {"q": "martillo"})
    assert response.status_code == 302 and reverse("login") in response["Location"]
    nobody = django_user_model.objects.create_user("sin_rol", password="x")  # noqa: S106
    client.force_login(nobody)
    assert client.get(url, {"q": "martillo"}).status_code == 403


@pytest.mark.parametrize("q", ["Martillo", "martilo", "1866", "martillo@"])
def test_the_suggestions_cost_a_fixed_number_of_queries(client, book, gerente, q):
    client.force_login(gerente)
    url = reverse("client_suggest")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, {"q": q}).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(30):
        debtor = make_client(by=gerente, legal_name=f"Comercial Martillo {i}")
        make_invoice(by=gerente, client=debtor, number=f"X-1866{i:02d}", amount="10.00", due_date=TODAY)
        services.contact_create(by=gerente, client=debtor, name=f"Contacto {i}", email=f"martillo{i}@example.com")
    # Session, user and roles (3); the two best ranks (1); every match ranked with the stricter
    # typo tolerance (savepoint, set_config, the query, rollback: 4); what matched (2).
    assert count() == few <= 11


def test_the_suggestions_stricter_typo_tolerance_stays_with_them(book, gerente):
    """The suggestions read with a stricter word similarity first; the list keeps its own,
    even in the same transaction."""
    assert [c.legal_name for c in selectors.client_suggestions(user=gerente, q="Tienda Lupta")] == [
        "Abarrotes Doña Lupe"
    ]
    assert _names(gerente, "Tienda Lupta") == ["Abarrotes Doña Lupe"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pg_trgm.word_similarity_threshold')")
        assert float(cursor.fetchone()[0]) == pytest.approx(0.6)


def test_a_close_name_is_suggested_before_names_that_share_its_other_words(book, gerente):
    for i in range(10):
        make_client(by=gerente, legal_name=f"Logística Unidos 1{i:02d}")
    make_client(by=gerente, legal_name="Logística Unidos 1")
    found = [c.legal_name for c in selectors.client_suggestions(user=gerente, q="Loística Unidos 1")]
    assert found[0] == "Logística Unidos 1"
    listed = _names(gerente, "Loística Unidos 1")
    assert found == listed[: len(found)]


def test_two_characters_suggest_the_names_that_start_with_them(book, gerente):
    """Too short for a trigram: the list's «any part of the name» would read every client at
    each keystroke; the suggestions keep to the names that start with the text."""
    assert "Ferretería El Martillo S.A. de C.V." in _names(gerente, "ar")
    assert selectors.client_suggestions(user=gerente, q="ar") == []
    assert [c.legal_name for c in selectors.client_suggestions(user=gerente, q="fe")] == [
        "Ferretería El Martillo S.A. de C.V."
    ]
    assert [c.legal_name for c in selectors.client_suggestions(user=gerente, q="ti")] == ["Abarrotes Doña Lupe"]
