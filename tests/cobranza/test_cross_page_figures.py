"""A figure shown on more than one page reads the same on every one of them: the same
collector's promise-kept rate on the worklist, the collector-performance page, the dashboard
(collector filter) and the metrics API, read from what each renders.

The rate once read "3 of 4" on the worklist and "0 of 0" on the performance page: each page
had its own idea of which promises count and whose they are. Now one rule does
(``cobranza.rules.promises_resolved``, docs/domain.md#promise-kept-rate)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from cobranza.models import Commitment
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db


def _ago(days: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=days)


@pytest.fixture
def promises(gerente, gestora, gestor):
    """Gestora's clients' promises in the last 30 days: kept, kept extension, kept but typed in
    by the manager, kept in USD, partly kept, broken → 4 kept of 6 judged; an open one, a
    cancelled one and one judged 40 days ago do not count; another collector's broken one
    counts for him only."""

    def promise(collector, status, days_ago, *, kind="promise", currency="MXN", created_by=None):
        debtor = make_client(by=gerente, collector=collector, currency=currency)
        invoice = make_invoice(by=gerente, client=debtor, amount="100.00", due_date=_ago(60), currency=currency)
        Commitment.objects.create(
            client=debtor,
            kind=kind,
            status=status,
            currency=currency,
            total=Decimal("100.00"),
            made_on=_ago((days_ago or 0) + 7),
            resolved_on=_ago(days_ago) if days_ago is not None else None,
            created_by=created_by,
        ).invoices.set([invoice])

    promise(gestora, "kept", 5, created_by=gestora)
    promise(gestora, "kept", 7, kind="extension", created_by=gestora)
    promise(gestora, "kept", 2, created_by=gerente)
    promise(gestora, "kept", 9, currency="USD")
    promise(gestora, "partial", 10, created_by=gestora)
    promise(gestora, "broken", 3)
    promise(gestora, "open", None, created_by=gestora)
    promise(gestora, "cancelled", 4, created_by=gestora)
    promise(gestora, "kept", 40, created_by=gestora)
    promise(gestor, "broken", 1, created_by=gestor)


def _worklist(client, user) -> tuple[int, int]:
    client.force_login(user)
    html = client.get(reverse("cobranza:worklist")).content.decode()
    card = html[html.index('data-testid="promise-rates"') :]
    kept, judged = re.search(r"(\d+) de (\d+)", card).groups()
    return int(kept), int(judged)


def _performance(client, manager, collector) -> tuple[int, int]:
    client.force_login(manager)
    response = client.get(reverse("cobranza:collector_performance"), {"export": "csv", "table": "collectors"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = rows[0]
    name = collector.get_full_name() or collector.username
    row = next(r for r in rows if r and r[0] == name)
    return int(row[header.index("Promesas cumplidas")]), int(row[header.index("Promesas evaluadas")])


def _dashboard(client, manager, collector) -> tuple[int, int]:
    client.force_login(manager)
    params = {"collector": collector.pk, "start": _ago(29).isoformat(), "end": _ago(0).isoformat(), "currency": "MXN"}
    html = client.get(reverse("cobranza:dashboard"), params).content.decode()
    card = html[html.index('data-kpi="promise_kept"') :]
    kept, judged = re.search(r"(\d+) de (\d+) evaluadas", card).groups()
    return int(kept), int(judged)


def _api(client, manager, collector) -> tuple[int, int]:
    token, _created = Token.objects.get_or_create(user=manager)
    params = {"collector": collector.pk, "start": _ago(29).isoformat(), "end": _ago(0).isoformat(), "currency": "MXN"}
    data = client.get("/api/v1/metrics/portfolio/", params, HTTP_AUTHORIZATION=f"Token {token.key}").json()
    return data["promises_kept"], data["promises_judged"]


def test_the_same_collectors_promise_kept_rate_reads_the_same_on_every_page(client, promises, gerente, gestora, gestor):
    expected = (4, 6)
    assert _worklist(client, gestora) == expected
    assert _performance(client, gerente, gestora) == expected
    assert _dashboard(client, gerente, gestora) == expected
    assert _api(client, gerente, gestora) == expected
    # Another collector's figure is his own, the same everywhere too.
    assert _performance(client, gerente, gestor) == (0, 1)
    assert _dashboard(client, gerente, gestor) == (0, 1)
    assert _api(client, gerente, gestor) == (0, 1)
