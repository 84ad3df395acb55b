"""Early warnings: each rule with a hand-computed history (the arithmetic is in the comments),
raised once per period; the pages' permissions and query counts; the weekly digest through
a real SMTP server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Interaction
from accounts.roles import roles_of
from accounts.services import AllocationRequest
from cobranza.alerts import jobs as alerts
from cobranza.alerts import selectors as alert_selectors
from cobranza.alerts import services as alert_services
from cobranza.alerts.views import alerts_panel
from cobranza.models import Alert, AlertKind, AlertStatus, Commitment
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

# A fixed day in the past (payments cannot be recorded in the future): Friday 20 Nov 2026.
TODAY = dt.date(2026, 11, 20)
D = dt.date


def settle(by, client, *, due: dt.date, paid_on: dt.date, amount: str = "100.00"):
    """An invoice due on ``due``, paid in full on ``paid_on``."""
    invoice = make_invoice(by=by, client=client, amount=amount, due_date=due, issue_date=due - dt.timedelta(days=30))
    services.payment_record(
        by=by,
        client=client,
        amount=Decimal(amount),
        received_on=paid_on,
        allocations=[AllocationRequest(invoice.pk, Decimal(amount))],
        historical=True,
    )
    return invoice


def pay(by, client, on: dt.date, amount: str = "100.00", method: str = "transfer"):
    """Money received and kept as client credit (no invoice needed for the pattern rules)."""
    return services.payment_record(
        by=by, client=client, amount=Decimal(amount), received_on=on, allocations=[], method=method, historical=True
    )


def of_kind(kind):
    return {a.client_id: a for a in Alert.objects.filter(kind=kind)}


# --- 1. lateness worsening ----------------------------------------------------------------------


def test_lateness_worsening_is_raised_at_ten_days_worse_and_once(gerente, gestora):
    # Windows for 20 Nov 2026: recent = settled 23 Aug – 20 Nov 2026 (90 days);
    # baseline = settled 23 Aug 2025 – 22 Aug 2026 (the 12 months before).
    worse = make_client(by=gerente, collector=gestora)
    settle(gerente, worse, due=D(2026, 3, 1), paid_on=D(2026, 3, 6))  # baseline: 5 days
    settle(gerente, worse, due=D(2026, 5, 1), paid_on=D(2026, 4, 28))  # baseline: early → 0 days
    settle(gerente, worse, due=D(2026, 6, 1), paid_on=D(2026, 6, 11))  # baseline: 10 days
    settle(gerente, worse, due=D(2026, 9, 1), paid_on=D(2026, 9, 16))  # recent: 15 days
    settle(gerente, worse, due=D(2026, 10, 1), paid_on=D(2026, 10, 16))  # recent: 15 days
    # baseline avg (5 + 0 + 10) / 3 = 5.0; recent avg (15 + 15) / 2 = 15.0; 15 − 5 = 10 ≥ 10 → raised.

    steady = make_client(by=gerente, collector=gestora)
    settle(gerente, steady, due=D(2026, 3, 1), paid_on=D(2026, 3, 6))  # 5
    settle(gerente, steady, due=D(2026, 5, 1), paid_on=D(2026, 5, 6))  # 5
    settle(gerente, steady, due=D(2026, 9, 1), paid_on=D(2026, 9, 15))  # 14
    settle(gerente, steady, due=D(2026, 10, 1), paid_on=D(2026, 10, 15))  # 14
    # 14 − 5 = 9 < 10 → not raised.

    thin = make_client(by=gerente, collector=gestora)
    settle(gerente, thin, due=D(2026, 3, 1), paid_on=D(2026, 3, 1))  # 0
    settle(gerente, thin, due=D(2026, 5, 1), paid_on=D(2026, 5, 1))  # 0
    settle(gerente, thin, due=D(2026, 9, 1), paid_on=D(2026, 11, 10))  # 70, but one recent invoice only
    # 1 settled invoice in the recent window < 2 → not raised.

    result = alerts.raise_alerts(today=TODAY)
    found = of_kind(AlertKind.LATENESS_WORSENING)
    assert set(found) == {worse.pk}
    alert = found[worse.pk]
    assert alert.period_key == "2026-11"
    assert alert.raised_on == TODAY
    assert alert.status == AlertStatus.OPEN
    assert alert.evidence == {
        "recent_from": "2026-08-23",
        "recent_to": "2026-11-20",
        "recent_settled": 2,
        "recent_avg_days": "15.0",
        "baseline_from": "2025-08-23",
        "baseline_to": "2026-08-22",
        "baseline_settled": 3,
        "baseline_avg_days": "5.0",
        "worsening_days": "10.0",
        "threshold_days": 10,
    }
    assert "15.0" in alert.title and "5.0" in alert.title
    assert result["by_kind"][AlertKind.LATENESS_WORSENING] == 1

    # The client's timeline says so, once.
    entries = Interaction.objects.filter(client=worse, kind="system", summary__startswith="Alerta temprana")
    assert entries.count() == 1
    assert "15.0 días" in entries.get().body and "5.0 días" in entries.get().body

    # The next night (and the same night again) raises nothing new.
    again = alerts.raise_alerts(today=TODAY)
    alerts.raise_alerts(today=TODAY + dt.timedelta(days=1))
    assert again["raised"] == 0 and again["candidates"] >= 1
    assert Alert.objects.filter(kind=AlertKind.LATENESS_WORSENING).count() == 1
    assert entries.count() == 1


# --- 2. credit limit ------------------------------------------------------------------------------


def test_credit_limit_exceeded_in_the_clients_currency(gerente, gestora):
    over = make_client(by=gerente, collector=gestora, credit_limit=Decimal("1000.00"))
    first = make_invoice(by=gerente, client=over, amount="600.00", due_date=D(2026, 12, 1))
    services.payment_record(
        by=gerente,
        client=over,
        amount=Decimal("100.00"),
        received_on=D(2026, 11, 2),
        allocations=[AllocationRequest(first.pk, Decimal("100.00"))],
    )
    make_invoice(by=gerente, client=over, amount="600.00", due_date=D(2026, 10, 1))
    make_invoice(by=gerente, client=over, amount="5000.00", currency="USD", due_date=D(2026, 10, 1))
    # MXN open: (600 − 100) + 600 = 1,100 > 1,000 (the USD invoice is another currency) → raised,
    # 100 over, 1,100 / 1,000 = 110.0 %.

    at_limit = make_client(by=gerente, collector=gestora, credit_limit=Decimal("1000.00"))
    make_invoice(by=gerente, client=at_limit, amount="1000.00", due_date=D(2026, 10, 1))  # = limit: not above
    no_limit = make_client(by=gerente, collector=gestora)  # limit 0: no limit set
    make_invoice(by=gerente, client=no_limit, amount="9000.00", due_date=D(2026, 10, 1))

    alerts.raise_alerts(today=TODAY)
    alerts.raise_alerts(today=TODAY)
    found = of_kind(AlertKind.CREDIT_LIMIT)
    assert set(found) == {over.pk}
    assert found[over.pk].evidence == {
        "currency": "MXN",
        "open_balance": "1100.00",
        "credit_limit": "1000.00",
        "excess": "100.00",
        "used_pct": "110.0",
        "open_invoices": 2,
    }
    assert found[over.pk].period_key == "2026-11"
    # Still above the limit next month: nothing new while November's alert is pending…
    alerts.raise_alerts(today=D(2026, 12, 2))
    assert Alert.objects.filter(kind="credit_limit").count() == 1
    # …and once it is closed, December raises its own.
    alert_services.alert_close(by=gerente, alert=found[over.pk], note="Revisado con el cliente")
    alerts.raise_alerts(today=D(2026, 12, 3))
    assert list(Alert.objects.filter(client=over, kind="credit_limit").values_list("period_key", flat=True)) == [
        "2026-12",
        "2026-11",
    ]


# --- 3. first broken promise ----------------------------------------------------------------------


def _promise(client, *, status, resolved_on, total="500.00", paid="0.00"):
    return Commitment.objects.create(
        client=client,
        kind="promise",
        status=status,
        currency="MXN",
        total=Decimal(total),
        paid_amount=Decimal(paid),
        made_on=resolved_on - dt.timedelta(days=10),
        resolved_on=resolved_on,
    )


def test_first_broken_promise_in_the_last_seven_days(gerente, gestora):
    # The window for 20 Nov: resolved 14 – 20 Nov (after 13 Nov, up to today).
    first = make_client(by=gerente, collector=gestora)
    _promise(first, status="kept", resolved_on=D(2026, 9, 1))  # kept: does not count
    _promise(first, status="broken", resolved_on=D(2026, 11, 15))  # the first broken → raised
    partial = make_client(by=gerente, collector=gestora)
    _promise(partial, status="partial", resolved_on=D(2026, 11, 20), paid="200.00")  # partly kept counts → raised
    repeat = make_client(by=gerente, collector=gestora)
    _promise(repeat, status="broken", resolved_on=D(2026, 6, 1))  # broke one before
    _promise(repeat, status="broken", resolved_on=D(2026, 11, 18))  # not the first → not raised
    old = make_client(by=gerente, collector=gestora)
    _promise(old, status="broken", resolved_on=D(2026, 11, 13))  # 7 days ago: outside → not raised

    alerts.raise_alerts(today=TODAY)
    found = of_kind(AlertKind.FIRST_BROKEN_PROMISE)
    assert set(found) == {first.pk, partial.pk}
    ev = found[partial.pk].evidence
    assert ev["status"] == "partial" and ev["paid"] == "200.00" and ev["total"] == "500.00"
    assert ev["resolved_on"] == "2026-11-20" and ev["made_on"] == "2026-11-10"
    assert found[first.pk].period_key == "first"
    # Once ever: later nights within the window raise nothing more.
    alerts.raise_alerts(today=D(2026, 11, 21))
    assert Alert.objects.filter(kind=AlertKind.FIRST_BROKEN_PROMISE).count() == 2


# --- 4. payment pattern change --------------------------------------------------------------------


def test_monthly_payer_silent_for_45_days_while_owing(gerente, gestora):
    # 20 Nov − 45 days = 6 Oct: silence = no money received 7 Oct – 20 Nov. The six months
    # before the month the silence began (October): April – September 2026.
    stopped = make_client(by=gerente, collector=gestora)
    for month in (4, 5, 6, 7, 8):  # 5 of 6 months paid (September missed) ≥ 5
        pay(gerente, stopped, D(2026, month, 10))
    pay(gerente, stopped, D(2026, 10, 20), method="credit_note")  # a credit note is not money: still silent
    make_invoice(by=gerente, client=stopped, amount="800.00", due_date=D(2026, 9, 30))  # overdue 800
    make_invoice(by=gerente, client=stopped, amount="300.00", due_date=D(2026, 12, 15))  # not due: not "overdue"
    # Last money payment 10 Aug: 20 Nov − 10 Aug = 102 days → raised.

    still_paying = make_client(by=gerente, collector=gestora)
    for month in (4, 5, 6, 7, 8, 9):
        pay(gerente, still_paying, D(2026, month, 10))
    pay(gerente, still_paying, D(2026, 10, 7))  # inside the 45 days → not raised
    make_invoice(by=gerente, client=still_paying, amount="800.00", due_date=D(2026, 9, 30))

    irregular = make_client(by=gerente, collector=gestora)
    for month in (4, 6, 8, 9):  # 4 of 6 < 5 → not raised
        pay(gerente, irregular, D(2026, month, 10))
    make_invoice(by=gerente, client=irregular, amount="800.00", due_date=D(2026, 9, 30))

    owes_nothing = make_client(by=gerente, collector=gestora)
    for month in (4, 5, 6, 7, 8, 9):  # regular, silent, but nothing overdue → not raised
        pay(gerente, owes_nothing, D(2026, month, 10))

    alerts.raise_alerts(today=TODAY)
    alerts.raise_alerts(today=TODAY)
    found = of_kind(AlertKind.PATTERN_CHANGE)
    assert set(found) == {stopped.pk}
    assert found[stopped.pk].evidence == {
        "months_from": "2026-04-01",
        "months_to": "2026-09-30",
        "months": 6,
        "months_paid": 5,
        "silence_days": 45,
        "last_payment_on": "2026-08-10",
        "days_without_payment": 102,
        "currency": "MXN",
        "overdue_amount": "800.00",
        "overdue_invoices": 1,
    }
    assert "102" in found[stopped.pk].title


# --- 5. seasonal weak months ----------------------------------------------------------------------


def test_weak_month_by_days_late_is_announced_fifteen_days_ahead(gerente, gestora):
    # On 20 Nov, December starts in 11 days (≤ 15). History: the 24 full months
    # Nov 2024 – Oct 2026, invoices by due month.
    seasonal = make_client(by=gerente, collector=gestora)
    settle(gerente, seasonal, due=D(2024, 12, 5), paid_on=D(2025, 1, 4))  # December: 30 days
    settle(gerente, seasonal, due=D(2025, 12, 5), paid_on=D(2026, 1, 4))  # December: 30 days
    for due in (D(2025, 3, 5), D(2025, 6, 5), D(2025, 9, 5), D(2026, 3, 5)):
        settle(gerente, seasonal, due=due, paid_on=due)  # on time: 0
    # December avg 60 / 2 = 30.0; overall 60 / 6 = 10.0; 30 − 10 = 20 ≥ 15 → weak.

    mild = make_client(by=gerente, collector=gestora)
    settle(gerente, mild, due=D(2024, 12, 5), paid_on=D(2024, 12, 25))  # 20
    settle(gerente, mild, due=D(2025, 12, 5), paid_on=D(2025, 12, 25))  # 20
    for due in (D(2025, 3, 5), D(2025, 6, 5), D(2025, 9, 5), D(2026, 3, 5)):
        settle(gerente, mild, due=due, paid_on=due)
    # December 40 / 2 = 20.0; overall 40 / 6 = 6.7; 20 − 6.7 = 13.3 < 15 → not weak.

    # Ten days earlier December is 21 days away: nothing yet.
    alerts.raise_alerts(today=D(2026, 11, 10))
    assert not Alert.objects.filter(kind=AlertKind.SEASONAL).exists()

    alerts.raise_alerts(today=TODAY)
    found = of_kind(AlertKind.SEASONAL)
    assert set(found) == {seasonal.pk}
    alert = found[seasonal.pk]
    assert alert.period_key == "2026-12"
    ev = alert.evidence
    assert ev["reasons"] == ["lateness"]
    assert (ev["month_avg_days"], ev["avg_days"], ev["month_settled"], ev["settled"]) == ("30.0", "10.0", 2, 6)
    assert (ev["month"], ev["month_start"]) == (12, "2026-12-01")
    assert (ev["history_from"], ev["history_to"]) == ("2024-11-01", "2026-10-31")
    assert "diciembre" in alert.title
    # Once per season: the nights until December (and December 1st itself) add nothing.
    alerts.raise_alerts(today=D(2026, 11, 25))
    alerts.raise_alerts(today=D(2026, 12, 1))
    assert Alert.objects.filter(kind=AlertKind.SEASONAL).count() == 1


def test_weak_month_by_payments_dropping_by_half(gerente, gestora):
    # 24 months Nov 2024 – Oct 2026: 1,000 each month, December only 400 (both years).
    # total = 22 × 1,000 + 2 × 400 = 22,800; an average month = 22,800 / 24 = 950;
    # December in an average year = 800 / 2 = 400 ≤ 50 % × 950 = 475 → weak.
    dips = make_client(by=gerente, collector=gestora)
    # Same, December 500: total 23,000, average 958.33; 500 > 479.17 → not weak.
    steady = make_client(by=gerente, collector=gestora)
    month = D(2024, 11, 1)
    while month < D(2026, 11, 1):
        pay(gerente, dips, month.replace(day=15), "400.00" if month.month == 12 else "1000.00")
        pay(gerente, steady, month.replace(day=15), "500.00" if month.month == 12 else "1000.00")
        month = (month + dt.timedelta(days=32)).replace(day=1)

    alerts.raise_alerts(today=TODAY)
    found = of_kind(AlertKind.SEASONAL)
    assert set(found) == {dips.pk}
    ev = found[dips.pk].evidence
    assert ev["reasons"] == ["payments"]
    assert (ev["received_month"], ev["received_avg"], ev["months_paid"]) == ("400.00", "950.00", 24)


# --- pages ----------------------------------------------------------------------------------------


@pytest.fixture
def alerted(gerente, gestora, gestor):
    """A credit-limit alert on one client of each collector."""
    mine = make_client(by=gerente, collector=gestora, credit_limit=Decimal("100.00"), legal_name="Ferretería Ruiz")
    theirs = make_client(by=gerente, collector=gestor, credit_limit=Decimal("100.00"), legal_name="Abarrotes Sol")
    for c in (mine, theirs):
        make_invoice(by=gerente, client=c, amount="250.00", due_date=D(2026, 10, 1))
    alerts.raise_alerts(today=TODAY)
    return {
        "mine": mine,
        "theirs": theirs,
        "alert": Alert.objects.get(client=mine),
        "other_alert": Alert.objects.get(client=theirs),
    }


def test_client_page_shows_the_alerts_panel_with_evidence(client, gestora, alerted):
    client.force_login(gestora)
    response = client.get(reverse("client_detail", args=[alerted["mine"].pk]))
    html = response.content.decode()
    assert 'data-testid="alerts-panel"' in html
    assert "Línea de crédito excedida" in html
    assert "excedido en $150.00 (250.0 % del límite)" in html
    assert reverse("cobranza:alert_update", args=[alerted["alert"].pk]) in html


def test_other_collector_gets_404_and_no_role_403(client, gestor, nobody, alerted):
    client.force_login(gestor)
    assert client.get(reverse("client_detail", args=[alerted["mine"].pk])).status_code == 404
    listing = client.get(reverse("cobranza:alert_list")).content.decode()
    assert "Abarrotes Sol" in listing and "Ferretería Ruiz" not in listing
    url = reverse("cobranza:alert_update", args=[alerted["alert"].pk])
    assert client.post(url, {"action": "close"}).status_code == 404
    assert Alert.objects.get(pk=alerted["alert"].pk).status == AlertStatus.OPEN

    client.force_login(nobody)
    assert client.get(reverse("cobranza:alert_list")).status_code == 403
    assert client.post(url, {"action": "close"}).status_code == 403


def test_manager_sees_all_and_filters(client, gerente, gestor, alerted):
    client.force_login(gerente)
    html = client.get(reverse("cobranza:alert_list")).content.decode()
    assert "Abarrotes Sol" in html and "Ferretería Ruiz" in html
    html = client.get(reverse("cobranza:alert_list"), {"collector": gestor.pk}).content.decode()
    assert "Abarrotes Sol" in html and "Ferretería Ruiz" not in html
    html = client.get(reverse("cobranza:alert_list"), {"kind": "lateness"}).content.decode()
    assert "Abarrotes Sol" not in html
    assert list(alert_selectors.alerts_for(gerente)) == [alerted["other_alert"], alerted["alert"]]


def test_collector_acknowledges_then_closes_with_a_note(client, gestora, alerted):
    client.force_login(gestora)
    alert = alerted["alert"]
    url = reverse("cobranza:alert_update", args=[alert.pk])
    back = reverse("client_detail", args=[alerted["mine"].pk]) + "#alertas"
    assert client.post(url, {"action": "acknowledge", "next": back}).url == back
    alert.refresh_from_db()
    assert (alert.status, alert.handled_by) == (AlertStatus.ACKNOWLEDGED, gestora)
    assert alert not in alert_selectors.alerts_for(gestora)  # no longer new

    client.post(url, {"action": "close", "note": "Llamé: pagará el viernes."})
    alert.refresh_from_db()
    assert alert.status == AlertStatus.CLOSED
    entry = Interaction.objects.filter(client=alerted["mine"], summary__startswith="Alerta cerrada").get()
    assert entry.body == "Llamé: pagará el viernes." and entry.author == gestora
    # Closed: gone from the panel, and closing again is refused with a message.
    assert 'data-testid="alerts-panel"' not in client.get(back).content.decode()
    response = client.post(url, {"action": "close"}, follow=True)
    assert "La alerta ya está cerrada." in response.content.decode()


def test_panel_costs_one_query(gerente, gestora, alerted):
    request = RequestFactory().get("/")
    request.user = gestora
    roles_of(gestora)  # the page has read the roles already
    with CaptureQueriesContext(connection) as one:
        alerts_panel(request, alerted["mine"])
    for n in range(4):
        Alert.objects.create(client=alerted["mine"], kind="seasonal", period_key=f"2027-0{n + 1}", raised_on=TODAY)
    with CaptureQueriesContext(connection) as five:
        html = alerts_panel(request, alerted["mine"])
    assert len(one) == len(five) == 1
    assert html.count("data-alert=") == 5


def test_client_page_query_count_does_not_grow_with_alerts(client, gestora, alerted):
    client.force_login(gestora)
    url = reverse("client_detail", args=[alerted["mine"].pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(6):
        Alert.objects.create(client=alerted["mine"], kind="seasonal", period_key=f"2027-0{n + 1}", raised_on=TODAY)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few) == len(many)


def test_alert_list_query_count_does_not_grow(client, gerente, gestora, alerted):
    client.force_login(gerente)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("cobranza:alert_list"))
    for _n in range(20):
        debtor = make_client(by=gerente, collector=gestora)
        Alert.objects.create(client=debtor, kind="credit_limit", period_key="2026-11", raised_on=TODAY, evidence={})
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("cobranza:alert_list"))
    assert len(few) == len(many)


def test_summary_counts_by_kind_and_latest(gerente, gestora, alerted):
    summary = alert_selectors.alert_summary(gestora)
    assert summary["total"] == 1
    assert {row["kind"]: row["count"] for row in summary["by_kind"]}["credit_limit"] == 1
    assert summary["latest"] == [alerted["alert"]]
    assert alert_selectors.alert_summary(gerente)["total"] == 2


# --- the weekly digest ----------------------------------------------------------------------------


def test_weekly_digest_goes_to_managers_once(smtp, admin_user, gerente, gestora, gestor):
    mine = make_client(by=gerente, collector=gestora, legal_name="Ferretería Ruiz")
    theirs = make_client(by=gerente, collector=gestor, legal_name="Abarrotes Sol")
    # Monday 23 Nov 2026 reports the week 16 – 22 Nov (ISO 2026-W47).
    Alert.objects.create(
        client=mine, kind="credit_limit", period_key="2026-11", raised_on=D(2026, 11, 17), title="Línea excedida A"
    )
    Alert.objects.create(
        client=mine, kind="pattern", period_key="2026-11", raised_on=D(2026, 11, 22), title="Dejó de pagar A"
    )
    Alert.objects.create(
        client=theirs, kind="credit_limit", period_key="2026-11", raised_on=D(2026, 11, 20), title="Línea excedida B"
    )
    Alert.objects.create(client=theirs, kind="seasonal", period_key="2026-12", raised_on=D(2026, 11, 15), title="Antes")
    Alert.objects.create(
        client=theirs, kind="lateness", period_key="2026-11", raised_on=D(2026, 11, 23), title="Después"
    )

    assert alerts.send_weekly_digest(today=D(2026, 11, 23)) == 2
    messages = sorted(smtp.messages, key=lambda m: m["To"])
    assert [m["To"] for m in messages] == ["admin@example.com", "gerente@example.com"]  # managers only
    message = messages[1]
    assert message["Message-ID"] == f"<alert-digest.2026-W47.{gerente.pk}@morosos.example>"
    assert (
        message["Subject"].strip() == "3 alertas tempranas nuevas del 16 Nov al 22 Nov 2026 · Ferretería La Esperanza"
    )
    body = message.get_content()
    assert "Hola, Gabriela Gerente:" in body
    assert "3 alertas en total, 3 sin atender todavía." in body
    assert "- Línea de crédito excedida: 2" in body and "- Cambió su forma de pagar: 1" in body
    assert "- Lucía Gestora: 2" in body and "- Mario Gestor: 1" in body
    assert "  - Ferretería Ruiz: Línea excedida A" in body and "  - Abarrotes Sol: Línea excedida B" in body
    assert "Antes" not in body and "Después" not in body  # other weeks
    assert "/cobranza/alertas/" in body

    # Asked again in the same week (or later): nothing more.
    assert alerts.send_weekly_digest(today=D(2026, 11, 23)) == 0
    assert alerts.send_weekly_digest(today=D(2026, 11, 27)) == 0
    assert len(smtp.messages) == 2


def test_digest_without_alerts_sends_nothing(smtp, gerente):
    assert alerts.send_weekly_digest(today=D(2026, 11, 23)) == 0
    assert smtp.messages == []


# The expectations proposed for tests/accounts/test_permissions.py (CASES), checked here.
LOGIN = "login"
URLS = [
    # name, object, method, {role: status}
    (
        "cobranza:alert_list",
        None,
        "get",
        {"anonymous": LOGIN, "owner": 200, "other": 200, "manager": 200, "admin": 200, "no_role": 403},
    ),
    # An empty post is a form error: a redirect with a message, never a 500.
    (
        "cobranza:alert_update",
        "alert",
        "post",
        {"anonymous": LOGIN, "owner": 302, "other": 404, "manager": 302, "admin": 302, "no_role": 403},
    ),
]


@pytest.mark.parametrize("role", ["anonymous", "owner", "other", "manager", "admin", "no_role"])
def test_every_alert_url_answers_each_role(client, role, admin_user, gerente, gestora, gestor, nobody, alerted):
    user = {"owner": gestora, "other": gestor, "manager": gerente, "admin": admin_user, "no_role": nobody}.get(role)
    if user is not None:
        client.force_login(user)
    failures = []
    for name, obj, method, expect in URLS:
        url = reverse(name, args=[alerted[obj].pk] if obj else [])
        response = client.post(url, {}) if method == "post" else client.get(url)
        expected = expect[role]
        if expected == LOGIN:
            ok = response.status_code == 302 and response.url.startswith(reverse("login"))
        else:
            ok = response.status_code == expected
        if not ok:
            failures.append(f"{method.upper()} {name} as {role}: {response.status_code}, expected {expected}")
    assert not failures, "\n".join(failures)
    assert Alert.objects.get(pk=alerted["alert"].pk).status == AlertStatus.OPEN  # empty posts change nothing


def test_a_digest_that_cannot_reach_the_mail_server_is_sent_on_the_next_run(settings, gerente, gestora, smtp):
    from cobranza.models import AlertDigest

    mine = make_client(by=gerente, collector=gestora, legal_name="Ferretería Ruiz")
    Alert.objects.create(client=mine, kind="credit_limit", period_key="2026-11", raised_on=D(2026, 11, 17), title="A")
    good_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 9  # nothing listens: connection refused, a transient error
    assert alerts.send_weekly_digest(today=D(2026, 11, 23)) == 0
    assert not AlertDigest.objects.exists()  # the claim was released
    settings.EMAIL_PORT = good_port
    assert alerts.send_weekly_digest(today=D(2026, 11, 23)) == 1
    digest = AlertDigest.objects.get()
    assert digest.user == gerente and digest.week == "2026-W47" and digest.sent_at is not None
    assert [m["Message-ID"] for m in smtp.messages] == [digest.message_id]


def test_the_alert_list_exports_what_the_user_may_see(client, gerente, gestora, gestor):
    import csv
    import io

    mine = make_client(by=gerente, collector=gestora, legal_name="Ferretería Ruiz")
    theirs = make_client(by=gerente, collector=gestor, legal_name="Abarrotes Sol")
    Alert.objects.create(client=mine, kind="credit_limit", period_key="2026-11", raised_on=D(2026, 11, 17), title="A")
    Alert.objects.create(client=theirs, kind="pattern", period_key="2026-11", raised_on=D(2026, 11, 18), title="B")
    client.force_login(gestora)
    response = client.get(reverse("cobranza:alert_list"), {"export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Detectada el", "Cliente", "Gestor", "Tipo", "Alerta", "Estado"]
    assert rows[1:] == [["2026-11-17", "Ferretería Ruiz", "Lucía Gestora", "Línea de crédito excedida", "A", "Nueva"]]
    client.force_login(gerente)
    assert client.get(reverse("cobranza:alert_list"), {"export": "xlsx"}).content[:2] == b"PK"
