"""Stored dashboard figures for large portfolios (cobranza.dashboard.summaries): a slow live computation
is stored and shown with its time, beat recomputes it, a manager recomputes it at once, a stale
one is never shown, and a small portfolio is always live. "Slow" is forced here with
DASHBOARD_LIVE_MAX_MS=-1 (every computation counts as slow); the figures themselves are proven
in test_metrics (same portfolio and clock)."""

import dataclasses
import datetime as dt
import hashlib
import json
import pickle
import typing
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.utils import money_str
from cobranza.dashboard import metrics, summaries
from cobranza.models import DashboardSummary
from tests.cobranza.test_metrics import TODAY, book_fixture, clock_fixture, pay  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

URL = reverse("cobranza:dashboard")


def receivable(response) -> str:
    return next(card["display"] for card in response.context["cards"] if card["key"] == "receivable")


@pytest.fixture
def manager_http(client, gerente):
    client.force_login(gerente)
    return client


@pytest.fixture
def always_slow(settings):
    settings.DASHBOARD_LIVE_MAX_MS = -1


def test_a_small_portfolio_is_always_computed_live_and_never_stored(manager_http, book):
    response = manager_http.get(URL)
    assert response.context["freshness"].stored is False
    assert 'data-testid="summary-freshness"' not in response.content.decode()
    assert not DashboardSummary.objects.exists()


def test_a_slow_computation_is_stored_and_shown_with_its_time(manager_http, book, gerente, always_slow, clock):
    first = manager_http.get(URL)
    assert first.context["freshness"].stored is False  # this request computed it
    assert DashboardSummary.objects.count() == 1
    assert receivable(first) == money_str(Decimal("3800"), "MXN")

    # A payment dated in March arrives: the stored figures do not move until recomputed...
    pay(gerente, book["a"], "100", dt.date(2026, 3, 30), book["invoices"]["I2"])
    with CaptureQueriesContext(connection) as stored_queries:
        second = manager_http.get(URL)
    html = second.content.decode()
    assert second.context["freshness"].stored is True
    assert receivable(second) == money_str(Decimal("3800"), "MXN")
    assert 'data-testid="summary-freshness"' in html and "Cifras calculadas el" in html
    # ...and showing them skips the metric queries (8 + 3) for one lookup.
    with CaptureQueriesContext(connection) as live_queries:
        DashboardSummary.objects.all().delete()
        manager_http.get(URL)
    assert len(stored_queries) < len(live_queries) - 8

    # The export and the PDF are made from the same stored figures.
    csv_text = manager_http.get(URL, {"export": "csv", "table": "aging"}).content.decode("utf-8-sig")
    assert "3700.00" in csv_text  # recomputed just above, with the payment: 3800 - 100


def test_beat_recomputes_the_summaries_viewed_lately_and_forgets_the_others(
    manager_http, book, gerente, always_slow, clock
):
    manager_http.get(URL)
    manager_http.get(URL, {"currency": "EUR"})
    old = DashboardSummary.objects.get(filters__currency="EUR")
    DashboardSummary.objects.filter(pk=old.pk).update(viewed_at=timezone.now() - dt.timedelta(days=3))
    pay(gerente, book["a"], "100", dt.date(2026, 3, 30), book["invoices"]["I2"])

    assert summaries.summaries_refresh() == {"refreshed": 1, "forgotten": 1}
    assert list(DashboardSummary.objects.values_list("filters__currency", flat=True)) == ["MXN"]
    response = manager_http.get(URL)
    assert response.context["freshness"].stored is True
    assert receivable(response) == money_str(Decimal("3700"), "MXN")


def test_a_manager_recomputes_the_figures_on_screen_at_once(manager_http, book, gerente, always_slow, clock):
    query = f"segment={book['b'].segment_id}"
    manager_http.get(f"{URL}?{query}")
    pay(gerente, book["b"], "50", dt.date(2026, 3, 30), book["invoices"]["I3"])
    assert receivable(manager_http.get(f"{URL}?{query}")) == money_str(Decimal("1500"), "MXN")

    response = manager_http.post(reverse("cobranza:dashboard_refresh"), {"query": query}, follow=True)
    assert response.redirect_chain[-1][0] == f"{URL}?{query}"
    assert "Cifras recalculadas en" in response.content.decode()
    assert receivable(response) == money_str(Decimal("1450"), "MXN")


def test_a_stale_summary_is_never_shown(manager_http, book, gerente, always_slow, clock):
    manager_http.get(URL)
    DashboardSummary.objects.update(computed_at=timezone.now() - summaries.STALE_AFTER - dt.timedelta(minutes=1))
    pay(gerente, book["a"], "100", dt.date(2026, 3, 30), book["invoices"]["I2"])
    response = manager_http.get(URL)
    assert response.context["freshness"].stored is False
    assert receivable(response) == money_str(Decimal("3700"), "MXN")


def test_each_language_and_filter_set_has_its_own_summary(manager_http, book, always_slow, clock):
    manager_http.get(URL)
    manager_http.cookies["django_language"] = "en"
    english = manager_http.get(URL)
    assert english.context["freshness"].stored is False  # its own summary, computed now
    f = metrics.Filters.default(today=TODAY)
    assert summaries.summary_key(f, "es") != summaries.summary_key(f, "en")
    assert summaries.summary_key(f, "es") != summaries.summary_key(
        metrics.Filters.default(today=TODAY, segment=1), "es"
    )
    assert set(DashboardSummary.objects.values_list("language", flat=True)) == {"es", "en"}


def test_only_managers_recompute(client, gestora, book):
    client.force_login(gestora)
    assert client.post(reverse("cobranza:dashboard_refresh")).status_code == 403
    assert client.get(reverse("cobranza:dashboard_refresh")).status_code in (403, 405)


def test_taking_the_month_end_snapshots_drops_the_stored_figures(manager_http, book, always_slow, clock):
    first = manager_http.get(URL)
    assert first.context["trend"].missing and DashboardSummary.objects.exists()
    manager_http.post(reverse("cobranza:dashboard_snapshots"), {"query": ""})
    assert not DashboardSummary.objects.exists()
    assert manager_http.get(URL).context["trend"].points[-1].receivable == Decimal("3800.00")


def test_summaries_of_another_format_version_are_computed_again(
    manager_http, book, gerente, always_slow, clock, monkeypatch
):
    manager_http.get(URL)
    pay(gerente, book["a"], "100", dt.date(2026, 3, 30), book["invoices"]["I2"])
    monkeypatch.setattr(summaries, "FORMAT_VERSION", summaries.FORMAT_VERSION + 1)

    response = manager_http.get(URL)
    assert response.status_code == 200
    assert response.context["freshness"].stored is False
    assert receivable(response) == money_str(Decimal("3700"), "MXN")
    # Stored again under the new key; the beat job forgets the old version's row.
    assert DashboardSummary.objects.count() == 2
    assert summaries.summaries_refresh() == {"refreshed": 1, "forgotten": 1}
    assert manager_http.get(URL).context["freshness"].stored is True


@pytest.mark.parametrize(
    "data",
    [
        b"not a pickle",
        # A class that has moved since the row was written (as metrics.Dashboard once did).
        b"ccobranza.dashboard.gone\nDashboard\n(tR.",
        pickle.dumps({"receivable": "3800"}),  # loads, but is not a metrics.Dashboard
    ],
    ids=["garbage", "moved-class", "other-type"],
)
def test_a_summary_that_cannot_be_loaded_is_computed_again_and_overwritten(
    manager_http, book, gerente, always_slow, clock, data
):
    manager_http.get(URL)
    DashboardSummary.objects.update(data=data)
    pay(gerente, book["a"], "100", dt.date(2026, 3, 30), book["invoices"]["I2"])

    response = manager_http.get(URL)
    assert response.status_code == 200
    assert response.context["freshness"].stored is False
    assert receivable(response) == money_str(Decimal("3700"), "MXN")
    assert DashboardSummary.objects.count() == 1
    again = manager_http.get(URL)
    assert again.context["freshness"].stored is True
    assert receivable(again) == money_str(Decimal("3700"), "MXN")


def _pickled_shape(cls, seen: dict[str, str]) -> dict[str, str]:
    """Every dataclass reachable from ``cls`` through its fields' types, as
    "module.Name" -> "field:type, ..." (what a stored pickle depends on)."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name in seen:
        return seen
    seen[name] = ", ".join(f"{f.name}:{f.type}" for f in dataclasses.fields(cls))
    pending = list(typing.get_type_hints(cls).values())
    while pending:
        hint = pending.pop()
        pending.extend(typing.get_args(hint))
        if dataclasses.is_dataclass(hint):
            _pickled_shape(hint, seen)
    return seen


# The shape that FORMAT_VERSION stands for. When this test fails, a stored summary of the
# previous shape would load as the wrong thing: bump summaries.FORMAT_VERSION and record the
# new digest under it.
SHAPES = {1: "403bd0db", 2: "5f7df8a9", 3: "4459864b", 4: "3e254313"}  # 2: Bucket moved; 3: roll; 4: forecast


def test_the_format_version_is_bumped_when_the_pickled_shape_changes():
    shape = json.dumps(_pickled_shape(metrics.Dashboard, {}), sort_keys=True)
    assert SHAPES.get(summaries.FORMAT_VERSION) == hashlib.sha256(shape.encode()).hexdigest()[:8], shape
