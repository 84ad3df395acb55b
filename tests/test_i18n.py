"""The English catalog is complete and compiled, and switching to English leaves no Spanish
label behind on the pages a collector and a manager use every day.

Source strings are Spanish (the default language); ``locale/en`` translates all of them.
"""

from __future__ import annotations

import datetime as dt
import gettext
import re
import shutil
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation

from accounts import numbers, services
from accounts.utils import money_str
from tests.factories import client_page_html, make_client, make_invoice

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
PO = LOCALE_DIR / "django.po"
MO = LOCALE_DIR / "django.mo"
TODAY = timezone.localdate()

needs_msgfmt = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed")


def _catalog():
    with PO.open("rb") as fh:
        return read_po(fh, locale="en")


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\([a-z_]+\)[sd]", text))


# --- the catalog ---------------------------------------------------------------------------


@needs_msgfmt
def test_english_catalog_is_valid_and_fully_translated():
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stats = result.stderr.strip()
    assert "translated message" in stats, stats
    assert "untranslated" not in stats and "fuzzy" not in stats, stats


def test_no_entry_is_fuzzy_or_empty_and_placeholders_are_kept():
    catalog = _catalog()
    assert len(catalog) > 300
    for message in catalog:
        assert not message.fuzzy, message.id
        if message.pluralizable:
            singular, plural = message.id
            assert all(message.string), message.id
            assert _placeholders(message.string[0]) == _placeholders(singular), message.id
            assert _placeholders(message.string[1]) == _placeholders(plural), message.id
        else:
            assert message.string, message.id
            assert _placeholders(message.string) == _placeholders(message.id), message.id


def test_compiled_catalog_matches_the_po_file():
    """The .mo the server loads says what the .po says (run compilemessages after editing)."""
    assert MO.exists(), "run: python manage.py compilemessages --ignore=.venv"
    with MO.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    for message in _catalog():
        if not message.id:  # the header
            continue
        if message.pluralizable:
            singular, plural = message.id
            for n, expected in ((1, message.string[0]), (2, message.string[1])):
                got = compiled.npgettext(message.context, singular, plural, n) if message.context else None
                got = got or compiled.ngettext(singular, plural, n)
                assert got == expected, (message.id, n)
        elif message.context:
            assert compiled.pgettext(message.context, message.id) == message.string, message.id
        else:
            assert compiled.gettext(message.id) == message.string, message.id


# --- pages in English ----------------------------------------------------------------------


class _VisibleText(HTMLParser):
    """The text a person reads or hears: text nodes and labelling attributes, not URLs/ids."""

    ATTRS = {"title", "aria-label", "placeholder", "alt"}

    def __init__(self):
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in self.ATTRS and value:
                self.chunks.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.chunks.append(data.strip())


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return "\n".join(parser.chunks)


# Spanish on purpose in an English page: each language's own name in the language menu.
ALLOWED_SPANISH = {"Español"}


def _spanish_labels() -> list[str]:
    """Every Spanish source string whose English differs, without placeholders."""
    labels = set()
    for message in _catalog():
        ids = message.id if message.pluralizable else (message.id,)
        strings = message.string if message.pluralizable else (message.string,)
        for source, english in zip(ids, strings, strict=True):
            if source and source != english and "%(" not in source and source not in ALLOWED_SPANISH:
                labels.add(source)
    return sorted(labels, key=len, reverse=True)


# Data, not labels: the named cast's surnames are Spanish words ("Gabriela Gerente").
PEOPLE = ("Ana Administradora", "Gabriela Gerente", "Lucía Gestora", "Mario Gestor")


def _data_names() -> list[str]:
    """Names that are data the business writes in its own language (the shipped ladders and
    templates are Spanish data, like segment names): not interface labels."""
    from cobranza.models import MessageTemplate, Policy, PolicyStep

    names = [*Policy.objects.values_list("name", flat=True), *PolicyStep.objects.values_list("name", flat=True)]
    names += Policy.objects.exclude(description="").values_list("description", flat=True)
    names += MessageTemplate.objects.values_list("name", flat=True)
    names += MessageTemplate.objects.values_list("code", flat=True)
    return sorted(set(names), key=len, reverse=True)


def leftover_spanish(html: str) -> list[str]:
    text = visible_text(html)
    for name in (*PEOPLE, *_data_names()):
        text = text.replace(name, "")
    return [label for label in _spanish_labels() if re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text)]


@pytest.fixture
def english_ledger(gerente, gestora):
    """A client with an overdue partially paid invoice and a current one, written in English
    (timeline texts are stored in the language of whoever caused them)."""
    with translation.override("en"):
        acme = make_client(
            by=gerente, collector=gestora, legal_name="Acme Hardware Inc.", trade_name="Acme", tax_id="ACM010101AB1"
        )
        old = make_invoice(
            by=gerente, client=acme, amount="1500.00", due_date=TODAY - dt.timedelta(days=40), number="INV-OLD"
        )
        make_invoice(by=gerente, client=acme, amount="734.50", due_date=TODAY + dt.timedelta(days=10), number="INV-NEW")
        services.payment_record(
            by=gestora,
            client=acme,
            amount=Decimal("500.00"),
            received_on=TODAY,
            currency="MXN",
            method="transfer",
            reference="WIRE-1",
            allocations=None,
            notes="",
        )
        services.interaction_log(
            by=gestora,
            client=acme,
            kind="call",
            summary="Promised to pay on Friday",
            outcome="promise",
            next_action_on=TODAY,
            invoices=[old],
        )
        services.contact_create(by=gestora, client=acme, name="Jane Roe", role="guarantor", email="jane@example.com")
    return acme


def _english(client, user):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.mark.django_db
def test_set_language_switches_navigation_and_headers_to_english(client, gestora, english_ledger):
    client.force_login(gestora)
    spanish = client.get(reverse("client_list")).content.decode()
    assert "Clientes" in spanish and "Saldo" in spanish and "Vencido" in spanish

    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("client_list")})
    assert response.status_code == 302
    html = client.get(reverse("client_list")).content.decode()
    text = visible_text(html)
    for label in ("Home", "Clients", "Balance", "Overdue", "Aging", "Days overdue", "Search", "Filter", "Collector"):
        assert re.search(rf"\b{label}\b", text), label
    for label in ("Inicio", "Clientes", "Saldo", "Vencido", "Antigüedad", "Buscar", "Filtrar", "Gestor de cobranza"):
        assert label not in text, label
    assert "Showing 1–1 of 1 client\n" in text + "\n"  # singular, one client


@pytest.mark.django_db
def test_accept_language_header_alone_selects_english(client, gestora, english_ledger):
    client.force_login(gestora)
    text = visible_text(client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode())
    assert "Portfolio overview" in text and "Total receivable" in text
    assert "Panorama de cartera" not in text


@pytest.mark.django_db
def test_collector_pages_in_english_have_no_spanish_labels_left(client, gestora, english_ledger):
    _english(client, gestora)
    acme = english_ledger
    pages = {
        "home": reverse("home"),
        "client list": reverse("client_list"),
        "client list, filtered to nothing": reverse("client_list") + "?q=zzz-nothing",
        "client detail": reverse("client_detail", args=[acme.pk]),
        "payment form": reverse("payment_create", args=[acme.pk]),
        "interaction form": reverse("interaction_create", args=[acme.pk]),
        "contact form": reverse("contact_create", args=[acme.pk]),
        "password change": reverse("password_change"),
    }
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        html = response.content.decode()
        assert '<html lang="en">' in html, name
        assert leftover_spanish(html) == [], name


@pytest.mark.django_db
def test_manager_pages_in_english_have_no_spanish_labels_left(client, gerente, english_ledger):
    _english(client, gerente)
    acme = english_ledger
    invoice = acme.invoices.get(number="INV-OLD")
    for url in (
        reverse("home"),
        reverse("client_list"),
        reverse("client_detail", args=[acme.pk]),
        reverse("client_create"),
        reverse("client_edit", args=[acme.pk]),
        reverse("invoice_create", args=[acme.pk]),
        reverse("invoice_status", args=[invoice.pk]) + "?status=disputed",
        # The collections pages a manager reads.
        reverse("cobranza:worklist"),
        reverse("cobranza:calendar"),
        reverse("cobranza:dashboard"),
        reverse("cobranza:collector_performance"),
        reverse("cobranza:dunning_effectiveness"),
        reverse("cobranza:alert_list"),
        reverse("cobranza:notice_list"),
        reverse("cobranza:outbox"),
        reverse("cobranza:approvals"),
        reverse("cobranza:letters"),
        reverse("cobranza:policy_list"),
        reverse("cobranza:template_list"),
        reverse("cobranza:profile_list"),
        reverse("cobranza:fee_rules"),
        reverse("cobranza:discounts"),
        reverse("cobranza:handoff_list"),
        reverse("cobranza:log_outcome", args=[acme.pk]),
        reverse("cobranza:import_list"),
        reverse("cobranza:import_create"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert leftover_spanish(response.content.decode()) == [], url


@pytest.mark.django_db
def test_client_detail_in_english_shows_statuses_buckets_and_money_in_english(client, gestora, english_ledger):
    _english(client, gestora)
    text = visible_text(client_page_html(client, english_ledger.pk))
    # 1500 + 734.50 - 500 paid (oldest first) = 1734.50 open, 1000 of it overdue. The words are
    # English, the number format the business's (es-MX: docs/domain.md#number-formats).
    assert "$1,734.50" in text and "$1,000.00" in text and "MX$" not in text
    for label in ("Partially paid", "Open", "31–60 days", "Current", "Credit balance", "Invoices", "Payments"):
        assert label in text, label
    assert "Bank transfer" in text and "Guarantor" in text and "Promise to pay" in text
    assert "Payment received: $500.00 → INV-OLD" in text
    assert "40 days" in text or "40" in text


@pytest.mark.django_db
def test_error_pages_in_english(client, gestor, nobody, english_ledger):
    _english(client, gestor)
    response = client.get(reverse("client_detail", args=[english_ledger.pk]))
    assert response.status_code == 404
    html = response.content.decode()
    assert "We couldn't find what you are looking for" in visible_text(html)
    assert leftover_spanish(html) == []

    _english(client, nobody)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert "Your user does not have a role yet" in visible_text(response.content.decode())
    assert leftover_spanish(response.content.decode()) == []


@pytest.mark.django_db
def test_login_page_in_english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(reverse("login")).content.decode()
    assert "Log in" in visible_text(html) and "Password" in visible_text(html)
    assert leftover_spanish(html) == []


def test_money_follows_the_number_format_not_the_language():
    amount = Decimal("1234.50")
    for language in ("es", "en"):
        with translation.override(language):
            with numbers.override("es-MX"):
                assert money_str(amount, "MXN") == "$1,234.50"
                assert money_str(amount, "USD") == "USD\xa01,234.50"
                assert money_str(amount, "EUR") == "EUR\xa01,234.50"
            with numbers.override("es-ES"):
                assert money_str(amount, "EUR") == "1.234,50\xa0€"
            with numbers.override("en-US"):
                assert money_str(amount, "MXN") == "MX$1,234.50"
                assert money_str(amount, "USD") == "$1,234.50"
                assert money_str(amount, "EUR") == "€1,234.50"
