"""A figure shown on several pages reads the same on each of them, read from the rendered
pages and the API's JSON (docs/domain.md#promise-kept-rate).

The bug this pins: the same collector's promise-kept rate read "3 of 4" on the worklist,
"0 of 0" on the collector-performance page and something else again on the dashboard,
because each page counted other kinds, attributed promises to someone else or filtered by
currency. With one definition (``cobranza.dashboard.metrics.promise_kept_by_collector``) and
the same window, the four surfaces agree."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from cobranza.models import Commitment
from cobranza.worklist import selectors as worklist
from tests.cobranza.test_api import api
from tests.cobranza.test_performance import page_cells
from tests.factories import make_client

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
# The worklist's window (the last 90 days): the other pages are asked for the same period.
START, END = worklist.promise_window(TODAY)


def _promise(client, *, status, days_ago=None, kind="promise", by=None, currency=None):
    return Commitment.objects.create(
        client=client,
        kind=kind,
        status=status,
        currency=currency or client.currency,
        total=Decimal("100.00"),
        made_on=TODAY - dt.timedelta(days=(days_ago or 0) + 7),
        resolved_on=None if days_ago is None else TODAY - dt.timedelta(days=days_ago),
        created_by=by,
    )


@pytest.fixture(name="promises")
def promises_fixture(gerente, gestora, gestor):
    mine = make_client(by=gerente, collector=gestora, legal_name="Abarrotes Lucía")
    mine_eur = make_client(by=gerente, collector=gestora, legal_name="Lucía Europa", currency="EUR", country="ES")
    his = make_client(by=gerente, collector=gestor, legal_name="Bodega Mario")
    _promise(mine, status="kept", days_ago=5, by=gestora)  # kept
    _promise(mine, status="partial", days_ago=10, by=gerente)  # made by someone else: hers all the same
    _promise(mine, status="broken", days_ago=20, by=None)  # made by the client on the portal
    _promise(mine, status="open", by=gestora)  # not judged yet
    _promise(mine, status="cancelled", days_ago=3, by=gestora)  # never judged
    _promise(mine, status="kept", days_ago=15, kind="extension", by=gestora)  # an extension is a promise
    _promise(mine, status="kept", days_ago=4, kind="plan", by=gestora)  # a plan is not one promise
    _promise(mine, status="broken", days_ago=100, by=gestora)  # outside the 90 days
    _promise(mine_eur, status="kept", days_ago=8, by=gestora)  # another currency: a promise all the same
    _promise(his, status="broken", days_ago=6, by=gestora)  # she made it, his client: his
    # Hers: kept 3 (promise, extension, EUR promise) of 5 judged (+ partial, broken) = 60 %.
    return {"kept": 3, "judged": 5, "rate": "60.0"}


def _worklist_rate(http, collector) -> tuple[int, int, int]:
    html = http.get(reverse("cobranza:worklist")).content.decode()
    card = html[html.index('data-testid="promise-rates"') :]
    card = card[: card.index("</table>")]
    assert "últimos 90 días" in card  # the window is labelled
    name = collector.get_full_name()
    row = card[card.index(name) :]
    kept, judged, percent = re.search(r"(\d+) de (\d+).*?(\d+) %", row, re.S).groups()
    return int(kept), int(judged), int(percent)


def _performance_rate(http, collector) -> tuple[int, int, str]:
    params = {"start": START.isoformat(), "end": END.isoformat(), "currency": "MXN"}
    html = http.get(reverse("cobranza:collector_performance") + "?" + urlencode(params)).content.decode()
    assert 'data-testid="period"' in html and "se atribuyen al gestor asignado hoy" in html  # window, attribution
    rows = {dict(r)["collector"]: dict(r) for r in page_cells(html, "collectors")}
    row = rows[collector.get_full_name()]
    return int(row["promises_kept"]), int(row["promises_judged"]), row["promise_kept_rate"]


def _dashboard_rate(http, collector) -> tuple[int, int, str]:
    params = {"start": START.isoformat(), "end": END.isoformat(), "currency": "MXN", "collector": collector.pk}
    html = http.get(reverse("cobranza:dashboard") + "?" + urlencode(params)).content.decode()
    card = html[html.index('data-kpi="promise_kept"') :]
    value = re.search(r'data-testid="kpi-promise_kept">([^<]*)<', card).group(1)
    kept, judged = re.search(r'class="kpi-note">(\d+) de (\d+) evaluadas', card).groups()
    return int(kept), int(judged), value.replace("%", "").strip().replace(",", ".")  # es: decimal comma


def _api_rate(user, collector) -> tuple[int, int, str]:
    params = {"start": START.isoformat(), "end": END.isoformat(), "currency": "MXN", "collector": collector.pk}
    response = api(user).get(reverse("api:metrics-portfolio"), params)
    assert response.status_code == 200, response.content
    data = response.json()
    return data["promises_kept"], data["promises_judged"], data["promise_kept_rate"]


def test_a_collectors_promise_kept_rate_reads_the_same_on_every_page(client, promises, gerente, gestora, gestor):
    client.force_login(gestora)
    on_worklist = _worklist_rate(client, gestora)
    client.force_login(gerente)
    on_performance = _performance_rate(client, gestora)
    on_dashboard = _dashboard_rate(client, gestora)
    on_api = _api_rate(gerente, gestora)

    expected = (promises["kept"], promises["judged"])
    assert on_worklist == (*expected, 60)  # the worklist rounds to whole percent
    assert on_performance == (*expected, promises["rate"])
    assert on_dashboard == (*expected, promises["rate"])
    assert on_api == (*expected, promises["rate"])


def test_the_manager_worklist_agrees_with_the_performance_page_for_every_collector(client, promises, gerente, gestor):
    client.force_login(gerente)
    html = client.get(reverse("cobranza:worklist"), {"scope": "all"}).content.decode()
    assert 'data-testid="promise-rates"' in html
    # Mario: the broken promise Lucía made on his client counts for him (0 of 1).
    assert _performance_rate(client, gestor) == (0, 1, "0.0")
    assert _dashboard_rate(client, gestor)[:2] == _api_rate(gerente, gestor)[:2] == (0, 1)
