"""The portfolio metrics over the API: the same numbers as the dashboard, its CSV export and
the hand-computed fixture of test_metrics (10 April 2026; default period March 2026), to the
cent; bad filters are 400s naming the field; managers only."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.dashboard import metrics
from tests.cobranza.test_api import api
from tests.cobranza.test_metrics import TODAY, book_fixture, clock_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

PORTFOLIO = reverse("api:metrics-portfolio")
TREND = reverse("api:metrics-trend")


def test_the_portfolio_numbers_are_the_hand_computed_ones(book, gerente):
    response = api(gerente).get(PORTFOLIO)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["filters"] == {
        "currency": "MXN",
        "start": "2026-03-01",
        "end": "2026-03-31",
        "days": 31,
        "segment": None,
        "collector": None,
        "profile": "",
    }
    assert data["receivable"] == "3800.00"
    assert data["overdue"] == "2800.00"
    assert data["current"] == "1000.00"
    assert [(b["bucket"], b["amount"], b["invoices"]) for b in data["aging"]] == [
        ("current", "1000.00", 1),
        ("1_30", "2000.00", 1),
        ("31_60", "300.00", 1),
        ("61_90", "0.00", 0),
        ("91_120", "0.00", 0),
        ("120_plus", "500.00", 1),
    ]
    assert (data["opening_receivable"], data["opening_overdue"]) == ("3800.00", "1800.00")
    assert (data["credit_sales"], data["collected"], data["payments"]) == ("2300.00", "1100.00", 3)
    assert (data["dso"], data["best_dso"], data["average_days_delinquent"]) == ("51.2", "13.5", "37.7")
    assert (data["cei"], data["recovery_rate"], data["overdue_pct"]) == ("45.1", "33.3", "73.7")
    # Every currency's promises (the rate counts promises, not money): the EUR one is kept.
    assert (data["promises_kept"], data["promises_judged"], data["promise_kept_rate"]) == (2, 4, "50.0")
    assert (data["disputed"], data["disputed_pct"]) == ("1000.00", "26.3")
    assert (data["new_delinquent_invoices"], data["new_delinquent_amount"]) == (2, "2300.00")
    assert data["formulas"]["dso"].startswith("DSO = cartera al cierre")


def test_the_api_the_dashboard_and_its_export_agree_to_the_cent(book, gerente, client):
    query = {"segment": book["b"].segment_id, "start": "2026-03-05", "end": "2026-04-08"}
    data = api(gerente).get(PORTFOLIO, query).json()
    client.force_login(gerente)
    page = client.get(reverse("cobranza:dashboard"), query)
    cards = {card["key"]: card["value"] for card in page.context["cards"]}
    exported = client.get(reverse("cobranza:dashboard"), {**query, "export": "csv", "table": "kpis"})
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    by_label = {row[0]: row[1] for row in rows[1:]}
    labels = {card["key"]: str(card["indicator"]) for card in page.context["cards"]}
    api_values = {
        "receivable": data["receivable"],
        "overdue": data["overdue"],
        "dso": data["dso"],
        "best_dso": data["best_dso"],
        "add": data["average_days_delinquent"],
        "cei": data["cei"],
        "recovery": data["recovery_rate"],
        "promise_kept": data["promise_kept_rate"],
        "disputed": data["disputed_pct"],
        "new_delinquent": data["new_delinquent_amount"],
        "credit_sales": data["credit_sales"],
        "collected": data["collected"],
    }
    assert set(api_values) == set(cards)
    for key, value in api_values.items():
        expected = cards[key]
        assert (Decimal(value) if value is not None else None) == expected, key
        exported_value = by_label[labels[key]]
        assert (Decimal(exported_value) if exported_value else None) == expected, key
    # The numbers moved with the filters (client B only, a different period).
    assert data["receivable"] != "3800.00"


def test_the_trend_and_roll_rates_come_from_the_month_end_snapshots(book, gerente):
    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)
    data = api(gerente).get(TREND).json()
    assert len(data["points"]) == 12
    march = data["points"][-1]
    assert march["month_end"] == "2026-03-31" and march["has_snapshot"]
    assert march["receivable"] == "3800.00"
    assert march["buckets"]["120_plus"] == "500.00"
    t = metrics.trend(metrics.Filters.default(today=TODAY))
    assert [p["receivable"] for p in data["points"]] == [
        None if p.receivable is None else f"{p.receivable:.2f}" for p in t.points
    ]
    assert len(data["roll_rates"]) == 11
    assert set(data["roll_rates"][-1]["rates"]) == {"current->1_30", "1_30->31_60", "31_60->61_90",
                                                    "61_90->91_120", "91_120->120_plus"}  # fmt: skip
    assert data["missing_months"] == []
    # Feb → Mar, following the invoices (test_metrics' hand computation): current 2300 → 2000.
    last = data["roll_rates"][-1]
    assert (last["bases"]["current->1_30"], last["rolled"]["current->1_30"]) == ("2300.00", "2000.00")
    assert last["rates"]["current->1_30"] == "87.0"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"end": "2026-05-31"}, "end"),  # after today
        ({"start": "2026-03-20", "end": "2026-03-01"}, "start"),
        ({"currency": "XYZ"}, "currency"),
        ({"segment": "999999"}, "segment"),
        ({"segment": "abc"}, "segment"),
        ({"collector": "not-a-user"}, "collector"),
        ({"profile": "saint"}, "profile"),
        ({"start": "31/02/2026"}, "start"),
        ({"start": "2020-01-01", "end": "2026-03-31"}, "start"),  # over three years
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(book, gerente, query, field):
    for endpoint in (PORTFOLIO, TREND):
        response = api(gerente).get(endpoint, query)
        assert response.status_code == 400, (endpoint, query, response.content)
        assert field in response.json()


def test_only_managers_read_the_metrics(book, gestora, admin_user, nobody):
    assert api().get(PORTFOLIO).status_code == 401
    assert api(nobody).get(PORTFOLIO).status_code == 403
    assert api(gestora).get(PORTFOLIO).status_code == 403
    assert api(gestora).get(TREND).status_code == 403
    assert api(admin_user).get(PORTFOLIO).status_code == 200


def test_the_metrics_are_in_the_openapi_schema(gerente):
    schema = api(gerente).get(reverse("api:schema"), {"format": "json"}).json()
    assert "/api/v1/metrics/portfolio/" in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/v1/metrics/portfolio/"]["get"]["parameters"]}
    assert {"currency", "start", "end", "segment", "collector", "profile"} <= params


@pytest.mark.parametrize("ambiguous", ["01/02/2026", "1/2/2026", "02-01-2026", "01/02/26"])
def test_an_ambiguous_date_is_a_field_error_not_a_guess(book, gerente, client, ambiguous):
    """``start=01/02/2013`` was read silently as 1 February (Spanish d/m/Y). Dates are ISO
    8601 only, in the API and in the pages' filters alike (morosos/formats)."""
    for endpoint in (PORTFOLIO, TREND):
        response = api(gerente).get(endpoint, {"start": ambiguous, "end": "2026-03-31"})
        assert response.status_code == 400, (endpoint, ambiguous)
        assert "AAAA-MM-DD" in " ".join(response.json()["start"])
        assert api(gerente).get(endpoint, {"start": "2026-02-01", "end": "2026-03-31"}).status_code == 200
    client.force_login(gerente)
    page = client.get(reverse("cobranza:dashboard"), {"start": ambiguous, "end": "2026-03-31"})
    assert page.status_code == 200 and page.context["form"].errors["start"]
