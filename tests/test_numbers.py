"""The one number format (docs/domain.md#number-formats): the same figure reads the same on the
dashboard, the client page, the XLSX export's cell format, the PDF report and the charts' config,
for es-MX, es-ES and en-US; axis abbreviations; a user's preference over the business's; no
currency code glued to its digits anywhere in the demo's staff pages."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from accounts import clock, numbers
from accounts.models import Client, UserPreference
from accounts.roles import GROUP_NAMES, Role
from cobranza.business import selectors as business_selectors
from cobranza.dashboard import charts
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.demo import demo_logo
from cobranza.models import BusinessProfile
from tests.factories import client_page_html, make_business, make_client, make_invoice
from tests.test_i18n import visible_text

NUMBERS_JS = Path(settings.BASE_DIR) / "static" / "js" / "numbers.js"
AMOUNT = Decimal("1234567.89")
EXPECTED = {
    "es-MX": "$1,234,567.89",
    "es-ES": "1.234.567,89\xa0MXN",
    "en-US": "MX$1,234,567.89",
}


def _plain(text: str) -> str:
    """Spaces as spaces (a PDF's text and a browser's may turn U+00A0 into U+0020)."""
    return re.sub(r"[\s\xa0]+", " ", text)


# --- the formatters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mx", "es"),
    [
        (0, "0", "0"),
        (Decimal("0.4"), "0", "0"),
        (999, "999", "999"),
        (Decimal("999.4"), "999", "999"),
        (Decimal("999.5"), "1 k", "1 k"),
        (1000, "1 k", "1 k"),
        (350_000, "350 k", "350 k"),
        (999_999, "1 M", "1 M"),
        (1_200_000, "1.2 M", "1,2 M"),
        (-1_200_000, "-1.2 M", "-1,2 M"),
        (-999, "-999", "-999"),
        (Decimal("-0.3"), "0", "0"),
        (2_500_000_000, "2.5 MM", "2,5 MM"),
    ],
)
def test_abbreviate_at_its_boundaries(value, mx, es):
    assert numbers.abbreviate(value, "es-MX") == mx
    assert numbers.abbreviate(value, "es-ES") == es
    assert numbers.abbreviate(2_500_000_000, "en-US") == "2.5 B"


def test_each_rule_formats_numbers_percentages_days_and_money():
    assert numbers.format_number(Decimal("1234.565"), 2, "es-MX") == "1,234.57"
    assert numbers.format_number(Decimal("1234.565"), 2, "es-ES") == "1.234,57"
    assert numbers.format_number(-1234, 0, "en-US") == "-1,234"
    assert numbers.format_number(Decimal("-0.004"), 2, "es-MX") == "0.00"
    assert numbers.format_percent(Decimal("766.64"), 1, "es-MX") == "766.6 %"
    assert numbers.format_percent(Decimal("766.64"), 1, "es-ES") == "766,6 %"
    assert numbers.format_percent(Decimal("766.64"), 1, "en-US") == "766.6%"
    assert numbers.format_days(Decimal("26.33"), 1, "es-MX") == "26.3 días"
    # A code never touches the digits; a sign does ($, US$); es-ES writes the currency after.
    assert numbers.format_money(Decimal("5119.85"), "USD", "es-MX") == "USD\xa05,119.85"
    assert numbers.format_money(Decimal("5119.85"), "MXN", "es-MX") == "$5,119.85"
    assert numbers.format_money(Decimal("5119.85"), "EUR", "es-ES") == "5.119,85\xa0€"
    assert numbers.format_money(Decimal("5119.85"), "USD", "en-US") == "$5,119.85"
    assert numbers.format_money(Decimal("-5119.85"), "USD", "es-CO") == "-US$5.119,85"
    assert numbers.format_money(Decimal("12"), "PEN", "es-PE") == "S/\xa012.00"
    assert numbers.format_money(Decimal("1234567"), "CLP", "es-CL") == "$1.234.567"
    for code in numbers.RULES:
        for currency in ("MXN", "USD", "EUR", "COP", "CLP", "PEN", "ARS"):
            assert not re.search(r"[A-Z]{3}\d", numbers.format_money(AMOUNT, currency, code)), (code, currency)


def test_a_business_without_a_choice_uses_its_countrys_rule():
    assert numbers.country_rule("ES") == "es-ES" and numbers.country_rule("US") == "en-US"
    assert numbers.country_rule("CO") == "es-CO" and numbers.country_rule("XX") == "es-MX"
    assert business_selectors.business_country() == "MX"  # TIME_ZONE America/Mexico_City
    assert business_selectors.number_format_of(BusinessProfile()) == "es-MX"
    assert business_selectors.number_format_of(BusinessProfile(number_format="en-US")) == "en-US"


def _run_js(config: dict, calls: list[tuple[str, float]]) -> list[str]:
    """numbers.js itself, in Node, on the config the page embeds."""
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js runs the browser's number formatter in this test"
    script = (
        "global.window = {};"
        f"require({json.dumps(str(NUMBERS_JS))});"
        f"const cfg = {json.dumps(config)};"
        f"const calls = {json.dumps(calls)};"
        "process.stdout.write(JSON.stringify(calls.map(([f, v]) => window.MorososNumbers[f](cfg, v))));"
    )
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True, timeout=30)  # noqa: S603
    return json.loads(result.stdout)


@pytest.mark.parametrize("code", ["es-MX", "es-ES", "en-US"])
def test_the_browser_formatter_is_the_servers(code):
    config = numbers.js_config("MXN", code)
    values = [0, 999, 1000, 999_999, 1_200_000, -1_200_000, 350_000, 1234.565, -5119.85]
    calls = [(f, v) for v in values for f in ("abbreviate", "money", "number", "percent")]
    expected = []
    for f, v in calls:
        value = Decimal(str(v))
        expected.append(
            {
                "abbreviate": lambda x: numbers.abbreviate(x, code),
                "money": lambda x: numbers.format_money(x, "MXN", code),
                "number": lambda x: numbers.format_number(x, 2, code),
                "percent": lambda x: numbers.format_percent(x, 1, code),
            }[f](value)
        )
    assert _run_js(config, calls) == expected


# --- one figure, everywhere ---------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def portfolio(gerente, gestora):
    """One client owing 1,234,567.89 MXN, 45 days overdue."""
    client = make_client(by=gerente, collector=gestora, legal_name="Cifras Iguales", currency="MXN")
    make_invoice(by=gerente, client=client, amount=AMOUNT, due_date=clock.localdate() - dt.timedelta(days=45))
    return client


def _pdf_color(hex_color: str) -> bytes:
    """``#16a34a`` as WeasyPrint writes it in a PDF's colour operators: ``0.086275 0.639216 0.290196``."""
    channels = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return " ".join(f"{c:.6f}".rstrip("0").rstrip(".") or "0" for c in channels).encode()


def _pdf_text_and_page(data: bytes):
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages), reader.pages[0]


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["es-MX", "es-ES", "en-US"])
def test_one_figure_reads_the_same_everywhere(client, gerente, portfolio, media, code):
    make_business(number_format=code, logo=demo_logo())
    expected = EXPECTED[code]
    client.force_login(gerente)

    # The dashboard's card and the client page.
    dashboard = client.get(reverse("cobranza:dashboard"))
    card = next(c for c in dashboard.context["cards"] if c["key"] == "receivable")
    assert card["display"] == expected
    assert expected in dashboard.content.decode()
    assert expected in visible_text(client_page_html(client, portfolio.pk))

    # The charts' config gives the browser the same rule: its tooltip reads the same.
    config = dashboard.context["chart_data"]["numbers"]
    assert config == numbers.js_config("MXN", code)
    assert _run_js(config, [("money", float(AMOUNT))]) == [expected]
    page_config = re.search(
        r'<script id="dashboard-data" type="application/json">(.*?)</script>', dashboard.content.decode(), re.S
    )
    assert json.loads(page_config.group(1))["numbers"] == config

    # The XLSX cell: the amount with its currency's literals placed as on the page.
    xlsx = client.get(reverse("cobranza:dashboard"), {"export": "xlsx", "table": "aging"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    total = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == "Total")
    fmt = total[1].number_format
    assert fmt == numbers.excel_format("money", "MXN", code)
    prefix, suffix = re.match(r'^(?:"([^"]*)")?#,##0\.00(?:"([^"]*)")?$', fmt).groups()
    assert f"{prefix or ''}{numbers.format_number(total[1].value, 2, code)}{suffix or ''}" == expected

    # The PDF report: the same text, the logo and the charts drawn from SVG.
    pdf = client.get(reverse("cobranza:dashboard_report"))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text, page = _pdf_text_and_page(pdf.content)
    assert _plain(expected) in _plain(text)
    axis = numbers.abbreviate(charts.nice_ticks(float(AMOUNT))[1], code)
    assert _plain(axis) in _plain(text)  # an axis label of the SVG bar chart, abbreviated
    images = page.images
    assert len(images) >= 1 and images[0].image.size == (360, 96)  # the business's logo
    # The SVG charts are vector drawing in the page: the aging bars and the trend's legend in
    # their colours (no other part of the report uses them; no snapshots here, so no trend line).
    content = page.get_contents().get_data()
    assert _pdf_color(charts.BAR_COLORS[0]) + b" rg" in content
    assert _pdf_color(charts.LINE_COLORS[0]) + b" rg" in content


@pytest.mark.django_db
def test_the_pdfs_charts_are_the_pages_numbers(client, gerente, portfolio, media):
    make_business()
    client.force_login(gerente)
    data = client.get(reverse("cobranza:dashboard")).context["chart_data"]
    svg = charts.report_charts(data)
    assert svg["aging"].startswith("<svg") and svg["trend"].startswith("<svg")
    # The bar of the 31–60 bucket holds the whole amount; the axis reaches past it, abbreviated.
    assert max(a or 0 for a in data["aging"]["amounts"]) == float(AMOUNT)
    assert ">500 k<" in svg["aging"] and ">1.5 M<" in svg["aging"]
    assert "$" not in svg["aging"] and ".89" not in svg["aging"]  # no cents, no currency on the axis
    # With month-end snapshots the trend draws its lines from the same points as the page.
    dashboard_jobs.backfill_snapshots(months=13, today=clock.localdate())
    data = client.get(reverse("cobranza:dashboard")).context["chart_data"]
    trend = charts.report_charts(data)["trend"]
    assert trend.count("<polyline") >= 1 and data["trend"]["receivable"][-1] == float(AMOUNT)


# --- whose rule -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_users_preference_overrides_the_business(client, gerente, portfolio):
    make_business(number_format="es-MX")
    client.force_login(gerente)
    assert EXPECTED["es-MX"] in client.get(reverse("cobranza:dashboard")).content.decode()

    page = client.get(reverse("preferences"))
    assert page.status_code == 200 and "Formato de números" in page.content.decode()
    response = client.post(reverse("preferences"), {"number_format": "es-ES"})
    assert response.status_code == 302
    assert UserPreference.objects.get(user=gerente).number_format == "es-ES"
    html = client.get(reverse("cobranza:dashboard")).content.decode()
    assert EXPECTED["es-ES"] in html and EXPECTED["es-MX"] not in html

    # The preference is the user's: it is read again at the next login, and others keep the business's.
    client.logout()
    client.force_login(gerente)
    assert EXPECTED["es-ES"] in client.get(reverse("cobranza:dashboard")).content.decode()
    # What a debtor reads stays in the business's format, whoever renders it.
    with numbers.override("es-ES"):
        assert numbers.format_money(AMOUNT, "MXN", numbers.debtor_code()) == EXPECTED["es-MX"]

    # Back to "as the business"; a made-up format is a field error, not a 500.
    assert client.post(reverse("preferences"), {"number_format": ""}).status_code == 302
    assert EXPECTED["es-MX"] in client.get(reverse("cobranza:dashboard")).content.decode()
    bad = client.post(reverse("preferences"), {"number_format": "xx-XX"})
    assert bad.status_code == 200 and bad.context["form"].errors["number_format"]


@pytest.mark.django_db
def test_the_debtors_portal_keeps_the_business_format_for_a_staff_member_with_their_own(client, gerente, portfolio):
    from cobranza.portal import links

    make_business(number_format="es-MX")
    UserPreference.objects.create(user=gerente, number_format="en-US")
    client.force_login(gerente)
    assert EXPECTED["en-US"] in client.get(reverse("cobranza:dashboard")).content.decode()
    statement = client.get(reverse("selfservice:statement", args=[links.token_for(portfolio)]))
    assert statement.status_code == 200
    html = statement.content.decode()
    assert EXPECTED["es-MX"] in html and EXPECTED["en-US"] not in html


@pytest.mark.django_db
def test_the_business_chooses_its_format_on_the_settings_page(client, admin_user):
    make_business()
    client.force_login(admin_user)
    page = client.get(reverse("cobranza:business_settings"))
    assert 'name="number_format"' in page.content.decode()
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = client.post(reverse("cobranza:business_settings"), {**form, "number_format": "es-ES"})
    assert response.status_code == 302
    assert numbers.business_code() == "es-ES"
    bad = client.post(reverse("cobranza:business_settings"), {**form, "number_format": "zz"})
    assert bad.status_code == 200 and bad.context["form"].errors["number_format"]


# --- the demo: no code glued to its digits ----------------------------------------------------------

GLUED = re.compile(r"\b(?:USD|EUR|MXN|COP|CLP|PEN|ARS|CAD|GBP)\d")
DEMO_PAGES = [
    ("home", {}),
    ("client_list", {}),
    ("cobranza:dashboard", {}),
    ("cobranza:dashboard", {"currency": "USD"}),
    ("cobranza:worklist", {}),
    ("cobranza:collector_performance", {}),
    ("cobranza:dunning_effectiveness", {}),
    ("cobranza:handoff_list", {}),
    ("cobranza:fee_rules", {}),
]


@pytest.mark.django_db
def test_no_currency_code_is_glued_to_its_digits_in_the_demo(client):
    call_command("seed_demo", "--clients", "12", "--today", dt.date.today().isoformat(), stdout=io.StringIO())
    manager = User.objects.filter(groups__name=GROUP_NAMES[Role.MANAGER]).first()
    client.force_login(manager)
    seen = 0
    for name, params in DEMO_PAGES:
        response = client.get(reverse(name), params)
        if response.status_code != 200:
            continue
        seen += 1
        text = visible_text(response.content.decode())
        assert not GLUED.search(text), (name, GLUED.search(text).group(0))
    assert seen >= 5
    foreign = Client.objects.exclude(currency="MXN").values_list("pk", flat=True)[:3]
    others = Client.objects.values_list("pk", flat=True)[:3]
    for pk in [*foreign, *others]:
        text = visible_text(client_page_html(client, pk))
        assert not GLUED.search(text), (pk, GLUED.search(text).group(0))


def test_stored_texts_read_their_numbers_in_the_readers_format():
    from cobranza import texts

    with numbers.override("es-MX"):  # a text is also stored in words, in the rule of its writer
        title = texts.ALERT_LATENESS(recent=texts.number("118.4"), base=texts.number("77"))
    with numbers.override("es-ES"):
        assert "118,4 días" in str(title) and "(antes 77,0)" in str(title)
    with numbers.override("es-MX"):
        assert "118.4 días" in str(title)
        assert str(texts.money(Decimal("5119.85"), "USD")) == "USD\xa05,119.85"
