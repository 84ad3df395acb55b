"""The demo gives the dunning-effectiveness and collector-performance pages a history to show
(docs/domain.md#dunning-effectiveness, docs/domain.md#collector-performance): after
``seed_demo`` at the tests' small size, every chart dataset and every table of both pages has
figures, they differ from row to row, and they are the selectors' own."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts import clock
from cobranza import demo as cobranza_demo
from cobranza.models import CollectorTask, Commitment, Notice, NoticeItem
from cobranza.performance import selectors

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 3, 15)
PERIOD = {"start": (TODAY - dt.timedelta(days=89)).isoformat(), "end": TODAY.isoformat(), "currency": "MXN"}


@pytest.fixture
def demo(client):
    call_command("seed_demo", "--clients", "40", "--today", TODAY.isoformat(), "--seed", "42", stdout=io.StringIO())
    client.login(username="gerente", password="morosos-demo")
    return client


def _get(http, name: str):
    """The page as the demo's day sees it (its default "today" decides which windows are over)."""
    noon = dt.datetime.combine(TODAY, dt.time(12), tzinfo=timezone.get_current_timezone())
    with clock.running_at(noon):
        response = http.get(reverse(name), PERIOD)
    assert response.status_code == 200
    return response


def _varied(values) -> bool:
    """Some figures, not all the same."""
    shown = [v for v in values if v is not None]
    return len(shown) >= 2 and len(set(shown)) >= 2


def _columns(table: dict) -> dict[str, list]:
    body = [row for row in table["rows"] if not row["total"]]
    assert body, table["name"]
    return {h["key"]: [row["cells"][n]["value"] for row in body] for n, h in enumerate(table["headers"])}


def test_the_demo_history_is_inside_its_window_and_consistent():
    call_command("seed_demo", "--clients", "40", "--today", TODAY.isoformat(), "--seed", "42", stdout=io.StringIO())
    since = TODAY - dt.timedelta(days=cobranza_demo.HISTORY_DAYS)
    notices = Notice.objects.filter(planned_for__lt=TODAY)
    assert notices.exists() and not notices.filter(planned_for__lt=since).exists()
    # Each invoice reaches each step once; a sent notice has its moment; a failed one none.
    assert not Notice.objects.filter(status="sent", sent_at__isnull=True).exists()
    assert Notice.objects.filter(status="failed").exists() and Notice.objects.filter(deferrals__gt=0).exists()
    assert NoticeItem.objects.filter(open_balance__lte=0).count() == 0
    # Call and review steps made a task for the client's collector; some done, some not yet.
    tasks = CollectorTask.objects.filter(notice__isnull=False)
    assert tasks.filter(status="done").exists() and tasks.filter(status="open").exists()
    assert not tasks.exclude(assigned_to=F("client__collector")).exists()
    assert not tasks.filter(status="done").exclude(completed_by=F("assigned_to")).exists()
    # The collectors' promises, judged against the ledger.
    judged = Commitment.objects.filter(created_by__isnull=False).exclude(status="open")
    assert {"kept", "broken"} <= set(judged.values_list("status", flat=True))
    for promise in judged.prefetch_related("installments", "invoices"):
        assert promise.resolved_on < TODAY and promise.invoices.exists()
        assert [i.status for i in promise.installments.all()] == [
            {"kept": "kept", "partial": "partial", "broken": "missed"}[promise.status]
        ]


def test_collector_performance_on_the_demo_has_varied_figures_from_the_selector(demo):
    response = _get(demo, "cobranza:collector_performance")
    chart, table = response.context["chart"], response.context["table"]
    assert len(chart["labels"]) >= 3
    for dataset in chart["datasets"]:
        assert _varied(dataset["data"]), dataset["label"]
    columns = _columns(table)
    for key in ("collected", "contacts", "promises_made", "promises_judged", "tasks_due", "tasks_done"):
        assert _varied(columns[key]), key
    expected = selectors.collector_performance(
        start=TODAY - dt.timedelta(days=89), end=TODAY, currency="MXN", segment=None
    )
    assert chart["datasets"][0]["data"] == [str(row.collected) for row in expected.rows]
    assert chart["labels"] == [row.name for row in expected.rows]
    assert [r.as_dict() for r in response.context["data"].rows] == [r.as_dict() for r in expected.rows]


def test_dunning_effectiveness_on_the_demo_has_varied_figures_from_the_selector(demo):
    response = _get(demo, "cobranza:dunning_effectiveness")
    chart = response.context["chart"]
    assert len(chart["labels"]) >= 5
    for dataset in chart["datasets"]:
        assert _varied(dataset["data"]), dataset["label"]
    steps = _columns(response.context["steps_table"])
    for key in ("notices", "sent", "listed", "paid_7", "share_7", "paid_14", "share_14"):
        assert _varied(steps[key]), key
    assert any(steps["failed"]) and any(steps["deferred"])
    for name in ("segments_table", "profiles_table"):
        columns = _columns(response.context[name])
        assert _varied(columns["channel"]) and _varied(columns["group"]), name
        assert _varied(columns["sent_notices"]) and _varied(columns["share_14"]), name
    expected = selectors.dunning_effectiveness(
        start=TODAY - dt.timedelta(days=89), end=TODAY, currency="MXN", today=TODAY, policy=None, segment=None
    )
    data = response.context["data"]
    assert [r.as_dict() for r in data.steps] == [r.as_dict() for r in expected.steps]
    assert [r.as_dict() for r in data.by_segment] == [r.as_dict() for r in expected.by_segment]
    assert [r.as_dict() for r in data.by_profile] == [r.as_dict() for r in expected.by_profile]
    shown = [r for r in expected.steps if r.sent or r.money.listed]
    assert chart["datasets"][1]["data"] == [None if r.money.share_14 is None else str(r.money.share_14) for r in shown]


def test_the_demo_history_is_deterministic_for_a_seed():
    def snapshot():
        return (
            sorted(
                Notice.objects.values_list(
                    "client__tax_id", "step__position", "planned_for", "status", "deferrals", "sent_at"
                )
            ),
            sorted(
                CollectorTask.objects.filter(notice__isnull=False).values_list(
                    "client__tax_id", "kind", "due_on", "status", "assigned_to__username", "completed_at"
                )
            ),
        )

    args = ["seed_demo", "--clients", "40", "--today", TODAY.isoformat(), "--seed", "7"]
    call_command(*args, stdout=io.StringIO())
    first = snapshot()
    call_command(*args, "--reset", stdout=io.StringIO())
    assert first[0] and first[1] and snapshot() == first
