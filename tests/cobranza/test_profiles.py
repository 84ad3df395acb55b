"""Delinquency profiles: each rule with a hand-computed history, the evidence numbers, the
good-payer standing, the collector's override and the profile pages."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Interaction
from accounts.roles import roles_of
from accounts.services import AllocationRequest
from cobranza.models import (
    ClientProfile,
    CollectorTask,
    Commitment,
    Dispute,
    LateFee,
    Policy,
    Profile,
    TaskKind,
)
from cobranza.profiles import fees
from cobranza.profiles import jobs as profiles
from cobranza.profiles import services as profile_services
from cobranza.profiles.views import profile_panel
from tests.factories import client_page_html, make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def settle(by, client, *, due_days_ago: int, days_late: int, amount: str = "1000.00"):
    """An invoice due ``due_days_ago`` days ago, paid in full ``days_late`` days after its due
    date (negative: early)."""
    due = ago(due_days_ago)
    invoice = make_invoice(by=by, client=client, amount=amount, due_date=due, issue_date=due - dt.timedelta(days=30))
    paid_on = due + dt.timedelta(days=days_late)
    assert paid_on <= TODAY
    services.payment_record(
        by=by,
        client=client,
        amount=Decimal(amount),
        received_on=paid_on,
        allocations=[AllocationRequest(invoice.pk, Decimal(amount))],
    )
    return invoice


def overdue(by, client, *, days: int, amount: str = "1000.00"):
    due = ago(days)
    return make_invoice(by=by, client=client, amount=amount, due_date=due, issue_date=due - dt.timedelta(days=30))


def promise(client, *, status: str, resolved_days_ago: int, by=None):
    """A judged promise to pay (the commitments service judges them; here only its outcome matters)."""
    return Commitment.objects.create(
        client=client,
        kind=Commitment.Kind.PROMISE,
        status=status,
        currency=client.currency,
        total=Decimal("500.00"),
        made_on=ago(resolved_days_ago + 10),
        resolved_on=ago(resolved_days_ago),
        created_by=by,
    )


def dispute(client, *, opened_days_ago: int, open_: bool = True, by=None):
    return Dispute.objects.create(
        client=client,
        reason=Dispute.Reason.PRODUCT,
        description="Mercancía dañada",
        status=Dispute.Status.OPEN if open_ else Dispute.Status.RESOLVED,
        opened_on=ago(opened_days_ago),
        resolution="" if open_ else Dispute.Resolution.REJECTED,
        resolved_on=None if open_ else ago(max(opened_days_ago - 5, 0)),
        opened_by=by,
    )


def profile_of(client) -> ClientProfile:
    return ClientProfile.objects.get(client=client)


@pytest.fixture
def debtor(gerente, gestora):
    return make_client(by=gerente, collector=gestora)


# --- each rule, with its evidence ------------------------------------------------------------------


def test_a_good_payer_pays_on_time_nearly_always(gerente, debtor):
    # 10 settled invoices, one of them 5 days late: 10 % late (the limit), 0.5 days on average.
    for i in range(10):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=5 if i == 3 else 0)
    result = profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.GOOD
    ev = row.evidence
    assert ev["settled_24m"] == 10
    assert ev["late_24m"] == 1
    assert Decimal(str(ev["share_late_pct"])) == Decimal("10.0")
    assert Decimal(str(ev["avg_days_late"])) == Decimal("0.5")
    assert ev["max_days_late"] == 5
    assert ev["overdue_count"] == 0
    assert ev["payments_60d"] == 1  # the invoice due 40 days ago, paid that day
    assert ev["as_of"] == TODAY.isoformat()
    assert result["by_profile"][Profile.GOOD] == 1
    assert row.good_payer_since == TODAY and row.good_payer_lost_on is None


def test_a_casual_late_payer_is_late_now_and_then(gerente, debtor):
    # 5 settled, one 10 days late: 20 % late, 2.0 days on average → not good, not intentional.
    for i in range(5):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=10 if i == 0 else 0)
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.CASUAL
    assert (row.evidence["settled_24m"], row.evidence["late_24m"], row.evidence["max_days_late"]) == (5, 1, 10)
    assert Decimal(str(row.evidence["share_late_pct"])) == Decimal("20.0")
    assert Decimal(str(row.evidence["avg_days_late"])) == Decimal("2.0")


def test_an_intentional_late_payer_is_often_late_but_not_by_much(gerente, debtor):
    # Late by 10, 20 and 15 days, once on time: 75 % late, (10+20+15+0)/4 = 11.25 days.
    for i, late in enumerate((10, 20, 15, 0)):
        settle(gerente, debtor, due_days_ago=60 + 30 * i, days_late=late)
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.INTENTIONAL
    assert Decimal(str(row.evidence["share_late_pct"])) == Decimal("75.0")
    assert Decimal(str(row.evidence["avg_days_late"])) == Decimal("11.3")
    assert row.evidence["max_days_late"] == 20


def test_a_chronic_late_payer_is_always_late_by_many_days(gerente, debtor):
    # Late by 40, 50, 35 days, once on time: 75 % late (> 60), 125/4 = 31.25 days (> 30).
    for i, late in enumerate((40, 50, 35, 0)):
        settle(gerente, debtor, due_days_ago=90 + 60 * i, days_late=late)
    # Something overdue, but young and with recent payments: not negligent.
    overdue(gerente, debtor, days=20, amount="2500.00")
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.CHRONIC
    ev = row.evidence
    assert Decimal(str(ev["avg_days_late"])) == Decimal("31.3")
    assert Decimal(str(ev["share_late_pct"])) == Decimal("75.0")
    assert ev["max_days_late"] == 50
    assert (ev["overdue_count"], Decimal(ev["overdue_amount"]), ev["oldest_days_overdue"]) == (
        1,
        Decimal("2500.00"),
        20,
    )


def test_negligent_when_very_overdue_and_silent_for_60_days(gerente, debtor):
    for i in range(3):
        settle(gerente, debtor, due_days_ago=200 + 30 * i, days_late=0)  # paid long ago
    overdue(gerente, debtor, days=120, amount="800.00")
    overdue(gerente, debtor, days=30, amount="200.00")
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.NEGLIGENT
    ev = row.evidence
    assert (ev["overdue_count"], Decimal(ev["overdue_amount"]), ev["oldest_days_overdue"]) == (
        2,
        Decimal("1000.00"),
        120,
    )
    assert ev["payments_60d"] == 0


def test_a_recent_payment_keeps_a_very_overdue_client_from_negligent(gerente, debtor):
    for i in range(3):
        settle(gerente, debtor, due_days_ago=200 + 30 * i, days_late=0)
    old = overdue(gerente, debtor, days=120, amount="800.00")
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("100.00"),
        received_on=ago(10),
        allocations=[AllocationRequest(old.pk, Decimal("100.00"))],
    )
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.evidence["payments_60d"] == 1
    assert row.computed == Profile.CASUAL


def test_negligent_with_two_broken_promises_in_12_months(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    promise(debtor, status="broken", resolved_days_ago=30)
    promise(debtor, status="partial", resolved_days_ago=200)
    promise(debtor, status="broken", resolved_days_ago=400)  # more than 12 months ago
    promise(debtor, status="kept", resolved_days_ago=20)
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.NEGLIGENT
    assert (row.evidence["promises_broken_12m"], row.evidence["promises_partial_12m"]) == (1, 1)


def test_one_broken_promise_keeps_an_on_time_payer_from_good(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    promise(debtor, status="broken", resolved_days_ago=30)
    profiles.compute_profiles(today=TODAY)
    assert profile_of(debtor).computed == Profile.CASUAL


def test_circumstantial_with_a_dispute_open(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    dispute(debtor, opened_days_ago=15)
    dispute(debtor, opened_days_ago=500, open_=False)  # old history: not counted in 12 months
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.CIRCUMSTANTIAL
    assert (row.evidence["disputes_12m"], row.evidence["disputes_open"]) == (1, 1)


def test_circumstantial_with_two_disputes_in_12_months_even_if_resolved(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    dispute(debtor, opened_days_ago=100, open_=False)
    dispute(debtor, opened_days_ago=300, open_=False)
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.CIRCUMSTANTIAL
    assert (row.evidence["disputes_12m"], row.evidence["disputes_open"]) == (2, 0)


def test_circumstantial_with_an_invoice_in_dispute_without_a_dispute_record(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    withheld = overdue(gerente, debtor, days=100)
    services.invoice_set_status(by=gerente, invoice=withheld, status="disputed", reason="Producto defectuoso")
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.CIRCUMSTANTIAL
    # Disputed invoices are not counted as overdue (they wait for the complaint to be solved).
    assert (row.evidence["disputed_invoices"], row.evidence["overdue_count"]) == (1, 0)


def test_new_without_enough_history_and_nothing_overdue(gerente, debtor, gestora):
    settle(gerente, debtor, due_days_ago=40, days_late=3)
    settle(gerente, debtor, due_days_ago=70, days_late=0)
    overdue(gerente, debtor, days=-10)  # not yet due
    empty = make_client(by=gerente, collector=gestora)
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.NEW
    assert (row.evidence["settled_24m"], row.evidence["late_24m"], row.evidence["overdue_count"]) == (2, 1, 0)
    assert profile_of(empty).computed == Profile.NEW
    assert profile_of(empty).evidence["settled_24m"] == 0


def test_settlements_older_than_24_months_and_partial_payments_do_not_count(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=900 + 30 * i, days_late=90)  # settled > 24 months ago
    half = overdue(gerente, debtor, days=-5)  # partly paid, not settled
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("10.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(half.pk, Decimal("10.00"))],
    )
    profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.evidence["settled_24m"] == 0
    assert row.computed == Profile.NEW


def test_the_settlement_date_is_the_last_payment_applied(gerente, debtor):
    invoice = overdue(gerente, debtor, days=50, amount="1000.00")
    for days_ago, amount in ((45, "400.00"), (20, "600.00")):
        services.payment_record(
            by=gerente,
            client=debtor,
            amount=Decimal(amount),
            received_on=ago(days_ago),
            allocations=[AllocationRequest(invoice.pk, Decimal(amount))],
        )
    profiles.compute_profiles(today=TODAY)
    assert profile_of(debtor).evidence["max_days_late"] == 30  # paid off 20 days ago, due 50 days ago


# --- as of a past day (docs/domain.md#late-payers) ----------------------------------------------------


def test_profiles_as_of_a_past_day_read_the_ledger_as_it_was(gerente, gestora):
    """D is 800 days ago. At D's close: A owed an invoice 100 days overdue and had paid nothing
    for 60 days (negligent; paid 30 days after D); B had a dispute open (resolved 5 days after
    D); C had settled 6 invoices on time in the 24 months before D — all older than 24 months
    today, so today C has no history to judge."""
    d = ago(800)
    a = make_client(by=gerente, collector=gestora, legal_name="A")
    b = make_client(by=gerente, collector=gestora, legal_name="B")
    c = make_client(by=gerente, collector=gestora, legal_name="C")
    late = make_invoice(
        by=gerente,
        client=a,
        amount="900.00",
        due_date=d - dt.timedelta(days=100),
        issue_date=d - dt.timedelta(days=130),
    )
    services.payment_record(
        by=gerente,
        client=a,
        amount=Decimal("900.00"),
        received_on=d + dt.timedelta(days=30),
        allocations=[AllocationRequest(late.pk, Decimal("900.00"))],
    )
    Dispute.objects.create(
        client=b,
        reason=Dispute.Reason.PRICE,
        description="Precio distinto",
        status=Dispute.Status.RESOLVED,
        opened_on=d - dt.timedelta(days=10),
        resolution=Dispute.Resolution.REJECTED,
        resolved_on=d + dt.timedelta(days=5),
    )
    for i in range(6):
        settle(gerente, c, due_days_ago=800 + 40 + 60 * i, days_late=0)

    out = io.StringIO()
    call_command("compute_profiles", "--as-of", d.isoformat(), stdout=out)
    assert f"Perfiles de morosidad al {d.isoformat()}: 3 clientes" in out.getvalue()
    at_d = {row.client.legal_name: row for row in ClientProfile.objects.select_related("client")}
    assert {name: row.computed for name, row in at_d.items()} == {
        "A": Profile.NEGLIGENT,
        "B": Profile.CIRCUMSTANTIAL,
        "C": Profile.GOOD,
    }
    assert (at_d["A"].evidence["overdue_count"], at_d["A"].evidence["oldest_days_overdue"]) == (1, 100)
    assert at_d["A"].evidence["overdue_amount"] == "900.00" and at_d["A"].evidence["as_of"] == d.isoformat()
    assert at_d["B"].evidence["disputes_open"] == 1 and at_d["C"].evidence["settled_24m"] == 6
    # A past day leaves the good-payer standing alone: no "since", no task, no timeline entry.
    assert at_d["C"].good_payer_since is None and not CollectorTask.objects.exists()
    # The same figures without storing anything, for one client.
    assert profiles.profile_as_of(a.pk, d) == (Profile.NEGLIGENT, at_d["A"].evidence)

    # Today: A paid, B's dispute is resolved, C's history is older than 24 months.
    call_command("compute_profiles", stdout=io.StringIO())
    now = {row.client.legal_name: row for row in ClientProfile.objects.select_related("client")}
    assert now["A"].evidence["overdue_count"] == 0 and now["B"].evidence["disputes_open"] == 0
    assert now["C"].computed == Profile.NEW and now["C"].evidence["settled_24m"] == 0


def test_compute_profiles_refuses_a_bad_or_future_day():
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("compute_profiles", "--as-of", "31/12/2024")
    with pytest.raises(CommandError, match="future"):
        call_command("compute_profiles", "--as-of", (TODAY + dt.timedelta(days=2)).isoformat())


def test_compute_for_some_clients_leaves_the_others_alone(gerente, debtor, gestora):
    other = make_client(by=gerente, collector=gestora)
    result = profiles.compute_profiles(today=TODAY, client_ids=[debtor.pk])
    assert result["clients"] == 1
    assert ClientProfile.objects.filter(client=debtor).exists()
    assert not ClientProfile.objects.filter(client=other).exists()


def test_compute_is_a_few_statements_whatever_the_clients(gerente, gestora):
    for _ in range(3):
        client = make_client(by=gerente, collector=gestora)
        settle(gerente, client, due_days_ago=40, days_late=3)
    with CaptureQueriesContext(connection) as few:
        profiles.compute_profiles(today=TODAY)
    for _ in range(12):
        client = make_client(by=gerente, collector=gestora)
        settle(gerente, client, due_days_ago=40, days_late=3)
        overdue(gerente, client, days=100)
    with CaptureQueriesContext(connection) as many:
        profiles.compute_profiles(today=TODAY)
    assert len(many) == len(few) <= 8


# --- good-payer standing ------------------------------------------------------------------------------


def test_a_good_payer_who_stops_being_good_gets_one_task_and_one_timeline_entry(gerente, gestora, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    profiles.compute_profiles(today=ago(5))
    row = profile_of(debtor)
    assert row.computed == Profile.GOOD and row.good_payer_since == ago(5)

    # One invoice paid 60 days late: 1 of 7 = 14.3 % late → casual.
    settle(gerente, debtor, due_days_ago=64, days_late=60)
    first = profiles.compute_profiles(today=TODAY)
    second = profiles.compute_profiles(today=TODAY)
    row = profile_of(debtor)
    assert row.computed == Profile.CASUAL
    assert row.good_payer_since == ago(5) and row.good_payer_lost_on == TODAY
    assert (first["good_payer_lost"], second["good_payer_lost"]) == (1, 0)
    tasks = CollectorTask.objects.filter(client=debtor, kind=TaskKind.GOOD_PAYER_LOST)
    assert tasks.count() == 1
    assert tasks.get().assigned_to == gestora and tasks.get().due_on == TODAY
    entries = Interaction.objects.filter(client=debtor, summary__startswith="Perdió la condición de buen pagador")
    assert entries.count() == 1
    assert "Atraso casual" in entries.get().summary


def test_a_regained_standing_starts_again_and_can_be_lost_again(gerente, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    profiles.compute_profiles(today=TODAY)
    profile_services.profile_override(by=gerente, client=debtor, profile=Profile.CASUAL, reason="Reclamó descuentos")
    assert profile_of(debtor).good_payer_lost_on == TODAY
    profile_services.profile_override(by=gerente, client=debtor, profile="")
    row = profile_of(debtor)
    assert row.good_payer_since == TODAY and row.good_payer_lost_on is None
    profile_services.profile_override(by=gerente, client=debtor, profile=Profile.CHRONIC, reason="Sin liquidez")
    assert CollectorTask.objects.filter(client=debtor, kind=TaskKind.GOOD_PAYER_LOST).count() == 2


# --- the collector's override ------------------------------------------------------------------------


def test_an_override_wins_over_the_computed_profile_until_cleared(gerente, gestora, debtor):
    settle(gerente, debtor, due_days_ago=40, days_late=10)
    profiles.compute_profiles(today=TODAY)
    assert profile_of(debtor).effective == Profile.NEW
    row = profile_services.profile_override(
        by=gestora, client=debtor, profile=Profile.CIRCUMSTANTIAL, reason="Reclamo por entrega incompleta"
    )
    assert row.effective == Profile.CIRCUMSTANTIAL and row.computed == Profile.NEW
    assert row.override_by == gestora and row.override_reason == "Reclamo por entrega incompleta"
    profiles.compute_profiles(today=TODAY)  # the nightly job does not undo it
    assert profile_of(debtor).effective == Profile.CIRCUMSTANTIAL
    summaries = list(Interaction.objects.filter(client=debtor).values_list("summary", flat=True))
    assert any("Perfil de morosidad asignado: Moroso por circunstancias" in s for s in summaries)

    profile_services.profile_override(by=gestora, client=debtor, profile="")
    row = profile_of(debtor)
    assert (row.override, row.override_reason, row.override_by) == ("", "", None)
    assert row.effective == Profile.NEW


def test_an_override_needs_a_reason_a_valid_profile_and_the_right_collector(gerente, gestor, gestora, debtor):
    with pytest.raises(ValidationError) as exc:
        profile_services.profile_override(by=gestora, client=debtor, profile=Profile.CHRONIC, reason="  ")
    assert "reason" in exc.value.message_dict
    with pytest.raises(ValidationError):
        profile_services.profile_override(by=gestora, client=debtor, profile="moroso", reason="x")
    with pytest.raises(PermissionDenied):
        profile_services.profile_override(by=gestor, client=debtor, profile=Profile.CHRONIC, reason="x")


def test_an_override_to_good_grants_the_standing(gerente, debtor):
    row = profile_services.profile_override(
        by=gerente, client=debtor, profile=Profile.GOOD, reason="Cliente de 20 años"
    )
    assert row.good_payer_since == TODAY


# --- pages and panel ------------------------------------------------------------------------------------


def test_the_client_page_shows_profile_evidence_protocol_and_badge(client, gerente, gestora, debtor):
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    profiles.compute_profiles(today=TODAY)
    client.force_login(gestora)
    html = client_page_html(client, debtor.pk)
    assert 'data-testid="profile-panel"' in html
    assert 'data-profile="good"' in html
    assert 'data-testid="good-payer-badge"' in html
    assert 'data-evidence="settled_24m">6<' in html
    assert str(profiles.PROTOCOLS[Profile.GOOD].tone) in html
    assert "Al menos 6 facturas liquidadas" in html  # the rule that decided


def test_the_panel_shows_the_profile_at_a_chosen_day(client, gerente, gestora, debtor):
    """Today a casual late payer (one invoice of seven paid late); 400 days ago the same client
    owed that invoice 100 days overdue and had paid nothing for 60 days: negligent then. The
    panel shows both, and stores nothing."""
    d = ago(400)
    late = make_invoice(
        by=gerente, client=debtor, amount="800.00", due_date=d - dt.timedelta(days=100), issue_date=ago(600)
    )
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("800.00"),
        received_on=d + dt.timedelta(days=5),
        allocations=[AllocationRequest(late.pk, Decimal("800.00"))],
    )
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    profiles.compute_profiles(today=TODAY)
    assert profile_of(debtor).computed == Profile.CASUAL
    client.force_login(gestora)
    url = reverse("client_detail", args=[debtor.pk])
    html = client.get(url, {"tab": "cobranza", "perfil_al": d.isoformat()}).content.decode()
    assert 'data-testid="profile-as-of"' in html and 'data-profile="negligent"' in html
    assert 'data-testid="profile-as-of-evidence"' in html and "Vencido ese día" in html
    assert profile_of(debtor).computed == Profile.CASUAL  # nothing stored
    # Bad input is a field error, not a 500.
    for bad, message in (
        ("31/12/2024", "Escriba la fecha como AAAA-MM-DD."),
        ((TODAY + dt.timedelta(days=1)).isoformat(), "posterior a hoy"),
    ):
        page = client.get(url, {"tab": "cobranza", "perfil_al": bad})
        assert page.status_code == 200 and message in page.content.decode()


def test_the_panel_says_when_the_standing_was_lost_and_which_ladder_the_profile_has(client, gerente, gestora, debtor):
    Policy.objects.create(name="Escalera para crónicos", profile=Profile.CHRONIC)
    for i in range(6):
        settle(gerente, debtor, due_days_ago=40 + 30 * i, days_late=0)
    profiles.compute_profiles(today=TODAY)
    profile_services.profile_override(
        by=gestora, client=debtor, profile=Profile.CHRONIC, reason="Problemas de liquidez"
    )
    client.force_login(gestora)
    html = client_page_html(client, debtor.pk)
    assert 'data-testid="good-payer-lost"' in html
    assert "Escalera para crónicos" in html
    assert "Problemas de liquidez" in html


def test_override_form_as_owner_other_collector_and_without_reason(client, gerente, gestora, gestor, debtor):
    url = reverse("cobranza:profile_override", args=[debtor.pk])
    client.force_login(gestor)
    assert client.post(url, {"profile": "chronic", "reason": "x"}).status_code == 404
    client.force_login(gestora)
    response = client.post(url, {"profile": "chronic", "reason": ""}, follow=True)
    assert "Indique el motivo del cambio de perfil." in response.content.decode()
    assert not ClientProfile.objects.filter(client=debtor, override="chronic").exists()
    response = client.post(url, {"profile": "zzz", "reason": "x"})
    assert response.status_code == 302
    response = client.post(url, {"profile": "chronic", "reason": "Siempre paga tarde"})
    assert response.status_code == 302 and response.url.endswith("#perfil")
    assert profile_of(debtor).effective == Profile.CHRONIC
    assert client.get(url).status_code == 405


def test_profile_list_counts_per_profile_and_filters(client, gerente, gestora, debtor):
    good = make_client(by=gerente, collector=gestora, legal_name="Puntual S.A.")
    for i in range(6):
        settle(gerente, good, due_days_ago=40 + 30 * i, days_late=0)
    profiles.compute_profiles(today=TODAY)
    make_client(by=gerente, collector=gestora, legal_name="Sin calcular S.A.")
    client.force_login(gestora)
    assert client.get(reverse("cobranza:profile_list")).status_code == 403
    client.force_login(gerente)
    response = client.get(reverse("cobranza:profile_list"))
    assert response.status_code == 200
    counts = {row["profile"]: row["count"] for row in response.context["summary"]}
    assert counts[Profile.GOOD] == 1 and counts[Profile.NEW] == 2
    html = client.get(reverse("cobranza:profile_list"), {"profile": "good"}).content.decode()
    assert "Puntual S.A." in html and "Sin calcular S.A." not in html
    assert client.get(reverse("cobranza:profile_list"), {"profile": "bogus"}).status_code == 200


# --- query counts -------------------------------------------------------------------------------------


def _grow(by, client, n, tag):
    for i in range(n):
        invoice = overdue(by, client, days=40 + i)
        LateFee.objects.create(invoice=invoice, kind="fixed", amount=Decimal("50.00"), computed_on=TODAY)
        LateFee.objects.create(
            invoice=invoice,
            kind="interest",
            amount=Decimal("12.00"),
            computed_on=TODAY,
            waived=bool(i % 2),
            waived_reason="Cortesía" if i % 2 else "",
            waived_by=by if i % 2 else None,
        )
        profile_services.discount_request(by=by, invoice=invoice, amount=Decimal("5.00"), reason=f"{tag}{i}")


def _panel_queries(user, debtor) -> tuple[int, str]:
    request = RequestFactory().get("/")
    request.user = user
    with CaptureQueriesContext(connection) as ctx:
        html = profile_panel(request, debtor)
    return len(ctx.captured_queries), html


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_the_panel_costs_a_constant_number_of_queries(client, request, gerente, gestora, debtor, role):
    user = request.getfixturevalue(role)
    _grow(gerente, debtor, 1, "A")
    profiles.compute_profiles(today=TODAY)
    profile_services.profile_override(by=gerente, client=debtor, profile=Profile.CHRONIC, reason="x")
    roles_of(user)  # read once per request, before the panels
    few, html = _panel_queries(user, debtor)
    assert 'data-testid="late-fees"' in html
    _grow(gerente, debtor, 15, "B")
    many, html = _panel_queries(user, debtor)
    assert many == few == 6  # profile, its ladder, the fee rule, open invoices, fees, discounts
    assert html.count('data-testid="fee-waived"') == 7

    client.force_login(user)
    url = reverse("client_detail", args=[debtor.pk])
    with CaptureQueriesContext(connection) as page_many:
        assert client.get(url).status_code == 200
    _grow(gerente, debtor, 10, "C")
    with CaptureQueriesContext(connection) as page_more:
        client.get(url)
    assert len(page_more) == len(page_many)


def test_fees_accrue_into_the_panel_apart_from_the_principal(client, gerente, gestora, debtor):
    profile_services.late_fee_rule_save(
        by=gerente,
        segment=debtor.segment,
        is_active=True,
        grace_days=0,
        fixed_fee=Decimal("150.00"),
        monthly_rate=Decimal("2"),
    )
    overdue(gerente, debtor, days=45, amount="10000.00")
    fees.accrue_late_fees(today=TODAY)
    client.force_login(gestora)
    html = client_page_html(client, debtor.pk)
    assert 'data-testid="fee-total"' in html
    assert "$450.00" in html  # 150.00 fixed + 300.00 interest, shown apart
    assert "$10,000.00" in html  # the principal, unchanged


# --- who may open what ------------------------------------------------------------------------------

LOGIN = "login"
STAFF_POST = {"anonymous": LOGIN, "owner": 302, "other": 404, "manager": 302, "admin": 302, "no_role": 403}
MANAGER_GET = {"anonymous": LOGIN, "owner": 403, "other": 403, "manager": 200, "admin": 200, "no_role": 403}
MANAGER_POST = {**MANAGER_GET, "manager": 302, "admin": 302}
URLS = [
    ("cobranza:profile_list", None, "get", MANAGER_GET),
    ("cobranza:profile_override", "client", "post", STAFF_POST),
    ("cobranza:fee_rules", None, "get", MANAGER_GET),
    ("cobranza:fee_waive", "late_fee", "post", STAFF_POST),
    ("cobranza:discount_request", "invoice", "post", STAFF_POST),
    ("cobranza:discounts", None, "get", MANAGER_GET),
    ("cobranza:discount_decide", "discount", "post", MANAGER_POST),
]


@pytest.mark.parametrize("role", ["anonymous", "owner", "other", "manager", "admin", "no_role"])
def test_every_profile_url_answers_each_role(client, role, admin_user, gerente, gestora, gestor, nobody, debtor):
    invoice = overdue(gerente, debtor, days=20)
    objects = {
        "client": debtor,
        "invoice": invoice,
        "late_fee": LateFee.objects.create(invoice=invoice, kind="fixed", amount=Decimal("10.00"), computed_on=TODAY),
        "discount": profile_services.discount_request(by=gestora, invoice=invoice, amount="5.00", reason="x"),
    }
    user = {"owner": gestora, "other": gestor, "manager": gerente, "admin": admin_user, "no_role": nobody}.get(role)
    if user is not None:
        client.force_login(user)
    failures = []
    for name, obj, method, expect in URLS:
        url = reverse(name, args=[objects[obj].pk] if obj else [])
        # Empty posts: a form error is a redirect with a message, never a 500.
        response = client.post(url, {}) if method == "post" else client.get(url)
        expected = expect[role]
        if expected == LOGIN:
            ok = response.status_code == 302 and response.url.startswith(reverse("login"))
        else:
            ok = response.status_code == expected
        if not ok:
            failures.append(f"{method.upper()} {name} as {role}: {response.status_code}, expected {expected}")
    assert not failures, "\n".join(failures)


def test_profile_list_and_discount_queue_query_counts_do_not_grow(client, gerente, gestora):
    def add(n):
        for _ in range(n):
            debtor = make_client(by=gerente, collector=gestora)
            invoice = overdue(gerente, debtor, days=100)
            profile_services.discount_request(by=gestora, invoice=invoice, amount="5.00", reason="x")
            profile_services.discount_request(by=gerente, invoice=invoice, amount="5.00", reason="y")
        profiles.compute_profiles(today=TODAY)

    client.force_login(gerente)
    urls = [reverse("cobranza:profile_list"), reverse("cobranza:discounts")]
    add(2)
    few = []
    for url in urls:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        few.append(len(ctx))
    add(12)
    for url, expected in zip(urls, few, strict=True):
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        assert len(ctx) == expected, url
