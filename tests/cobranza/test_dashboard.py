"""The managers' dashboard page: filters, exports that equal the page, the PDF report,
access and a constant number of queries. The numbers themselves are proven in test_metrics
(same portfolio, same fixed clock: 10 April 2026, default period March 2026)."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from accounts.utils import money_str
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.dashboard import metrics
from cobranza.models import AgingSnapshot
from tests.cobranza.test_metrics import TODAY, book_fixture, clock_fixture, pay  # noqa: F401 (fixtures)
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

URL = reverse("cobranza:dashboard")


def kpi(response, key: str) -> str:
    return next(card["display"] for card in response.context["cards"] if card["key"] == key)


@pytest.fixture
def manager_http(client, gerente):
    client.force_login(gerente)
    return client


def test_the_page_shows_every_kpi_with_its_formula(manager_http, book):
    response = manager_http.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert kpi(response, "receivable") == money_str(Decimal("3800"), "MXN")
    assert kpi(response, "dso") == "51.2 días"
    assert kpi(response, "cei") == "45.1 %"
    assert kpi(response, "new_delinquent") == money_str(Decimal("2300"), "MXN")
    for card in response.context["cards"]:
        assert f'data-kpi="{card["key"]}"' in html
        assert card["formula"] and f'title="{card["formula"]}"' in html.replace("&#x27;", "'")
    assert "¿Cómo se calcula?" in html
    assert 'id="aging-chart"' in html and 'id="trend-chart"' in html and 'id="dashboard-data"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "js/dashboard.js" in html
    # The chart data are the table's numbers.
    assert response.context["chart_data"]["aging"]["amounts"] == [1000.0, 2000.0, 300.0, 0.0, 0.0, 500.0]


def test_filters_change_every_number(manager_http, book, gestora):
    regular = manager_http.get(URL, {"segment": book["a"].segment_id})
    assert kpi(regular, "receivable") == money_str(Decimal("2300"), "MXN")
    assert kpi(regular, "dso") == "—"  # no credit sales for client A in March
    by_collector = manager_http.get(URL, {"collector": "none"})
    assert kpi(by_collector, "receivable") == money_str(Decimal("1500"), "MXN")
    euros = manager_http.get(URL, {"currency": "EUR"})
    assert kpi(euros, "receivable") == money_str(Decimal("5000"), "EUR")
    shorter = manager_http.get(URL, {"start": "2026-03-11", "end": "2026-03-20"})
    assert kpi(shorter, "collected") == money_str(Decimal("500"), "MXN")
    assert shorter.context["f"].days == 10


def test_bad_filters_are_shown_and_fall_back_to_defaults(manager_http, book):
    response = manager_http.get(URL, {"end": "2026-05-31", "currency": "XYZ"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "end" in form.errors and "currency" in form.errors
    assert response.context["f"] == metrics.Filters(currency="MXN", start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))


@pytest.mark.parametrize("name", ["aging", "segment", "collector", "trend", "kpis"])
def test_the_csv_export_equals_the_page_table(manager_http, book, name):
    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    query = {"segment": book["b"].segment_id} if name == "trend" else {}
    page = manager_http.get(URL, query).context["tables"][name]
    response = manager_http.get(URL, {**query, "export": "csv", "table": name})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    headers = [label for label, _numeric in page.headers]
    assert [h for h in rows[0] if not h.endswith("(moneda)")] == headers
    assert len(rows) - 1 == len(page.rows)
    for csv_row, page_row in zip(rows[1:], page.rows, strict=True):
        texts = iter(text for text, _numeric in page_row["cells"])
        cells = iter(zip(rows[0], csv_row, strict=True))
        for header, value in cells:
            text = next(texts)
            if f"{header} (moneda)" in rows[0]:  # an amount: to the cent, in the page's format
                _h, currency = next(cells)
                assert (money_str(Decimal(value), currency) if value else "—") == text
            elif header == headers[0] and page_row["cells"][0][0] == text:
                assert value == text or dt.date.fromisoformat(value)  # labels, or ISO month ends


def test_the_aging_export_has_the_exact_amounts(manager_http, book):
    response = manager_http.get(URL, {"export": "csv", "table": "aging"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["Tramo", "Saldo", "Saldo (moneda)", "Facturas"]
    assert [r[1] for r in rows[1:]] == ["1000.00", "2000.00", "300.00", "0.00", "0.00", "500.00", "3800.00"]
    assert {r[2] for r in rows[1:]} == {"MXN"}
    xlsx = manager_http.get(URL, {"export": "xlsx", "table": "aging"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["B8"].value == Decimal("3800.00") or sheet["B8"].value == 3800
    assert manager_http.get(URL, {"export": "csv", "table": "nope"}).status_code == 404


def test_the_pdf_report(manager_http, book):
    response = manager_http.get(reverse("cobranza:dashboard_report"), {"segment": book["a"].segment_id})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_snapshots_can_be_taken_from_the_page(manager_http, book):
    page = manager_http.get(URL)
    assert page.context["trend"].missing  # nothing photographed yet
    assert "missing-snapshots" in page.content.decode()
    response = manager_http.post(reverse("cobranza:dashboard_snapshots"), {"query": "currency=MXN"})
    assert response.status_code == 302 and response["Location"] == f"{URL}?currency=MXN"
    assert AgingSnapshot.objects.filter(month_end=dt.date(2026, 3, 31)).exists()
    assert manager_http.get(URL).context["trend"].points[-1].receivable == Decimal("3800.00")


def test_a_longer_period_shows_a_longer_trend_and_takes_its_closes(manager_http, book):
    query = "currency=MXN&start=2024-04-01&end=2026-03-31"  # two years
    response = manager_http.post(reverse("cobranza:dashboard_snapshots"), {"query": query})
    assert response.status_code == 302
    # The 24 closes of the trend and the one before its first month (its opening): those with
    # something receivable have rows (the book starts in October 2025).
    assert "25 meses" in [str(m) for m in get_messages(response.wsgi_request)][0]
    taken = sorted(set(AgingSnapshot.objects.values_list("month_end", flat=True)))
    assert (taken[0], taken[-1], len(taken)) == (dt.date(2025, 10, 31), dt.date(2026, 3, 31), 6)
    page = manager_http.get(URL, {"currency": "MXN", "start": "2024-04-01", "end": "2026-03-31"})
    assert len(page.context["trend"].points) == 24 and page.context["trend"].missing == []
    assert "Tendencia de 24 meses" in page.content.decode()
    assert len(manager_http.get(URL).context["trend"].points) == 12  # one month: a year


def test_only_managers_and_admins(client, book, gestora, nobody, admin_user):
    for user, expected in ((gestora, 403), (nobody, 403), (admin_user, 200)):
        client.force_login(user)
        assert client.get(URL).status_code == expected
        assert client.get(URL, {"export": "csv", "table": "aging"}).status_code == expected
        if expected == 403:
            assert client.get(reverse("cobranza:dashboard_report")).status_code == 403
            assert client.post(reverse("cobranza:dashboard_snapshots")).status_code == 403
    client.logout()
    assert client.get(URL).status_code == 302
    assert not AgingSnapshot.objects.exists()


def test_the_page_costs_the_same_queries_for_one_or_many_rows(manager_http, book, gerente):
    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert manager_http.get(URL).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    # session, user, roles; the form: currencies (2), segments, collectors; metrics: KPIs and
    # breakdowns 8 (closing and opening receivables read once each), trend 3; the early-warning
    # summary (2); the look-up of a stored summary (large portfolios, test_dashboard_summaries);
    # the cash forecast (1)
    assert few == 22, few
    for n in range(12):
        client = make_client(by=gerente, segment_code=("regular", "esporadico", "cuenta-clave")[n % 3])
        invoice = make_invoice(by=gerente, client=client, issue_date=dt.date(2026, 3, 2), due_date=dt.date(2026, 3, 9))
        pay(gerente, client, "25", dt.date(2026, 3, 10 + n), invoice)
    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    assert count() == few
