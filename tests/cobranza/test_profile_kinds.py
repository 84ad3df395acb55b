"""The five kinds of late payer with all their evidence (docs/domain.md#late-payers): named
synthetic histories, one per boundary, and each threshold just below, at and just above.

Disputes, promises kept and broken, contact responses and write-offs are evidence alongside
lateness; the thresholds are the constants of ``cobranza.profiles.jobs``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from accounts import services
from accounts.models import Interaction
from cobranza.models import Dispute, Profile
from cobranza.profiles import jobs as profiles
from tests.cobranza.test_profiles import TODAY, ago, overdue, promise, settle
from tests.factories import client_page_html, make_client

pytestmark = pytest.mark.django_db

K = Interaction.Kind
D = Interaction.Direction
O = Interaction.Outcome  # noqa: E741 - the outcome choices, as in the demo


@pytest.fixture
def debtor(gerente, gestora):
    return make_client(by=gerente, collector=gestora)


def classify(client) -> tuple[str, dict]:
    """The stored profile after a run, checked against ``profile_as_of`` (one rule, one SQL)."""
    profiles.compute_profiles(today=TODAY, client_ids=[client.pk])
    stored = client.profile
    stored.refresh_from_db()
    assert profiles.profile_as_of(client.pk, TODAY) == (stored.computed, stored.evidence)
    return stored.computed, stored.evidence


def on_day(days_ago: int, hour: int = 11) -> dt.datetime:
    return dt.datetime.combine(ago(days_ago), dt.time(hour), tzinfo=timezone.get_current_timezone())


def contact(client, *, days_ago: int, kind=K.CALL, direction=D.OUTBOUND, outcome=O.NO_ANSWER, by=None):
    return Interaction.objects.create(
        client=client,
        kind=kind,
        direction=direction,
        outcome=outcome,
        summary="Contacto",
        author=by,
        occurred_at=on_day(days_ago),
    )


def disputed_then_paid(by, client, *, due_days_ago: int):
    """An invoice disputed before its due date, resolved, then paid on the due date."""
    invoice = settle(by, client, due_days_ago=due_days_ago, days_late=0)
    dispute = Dispute.objects.create(
        client=client,
        reason=Dispute.Reason.PRODUCT,
        description="Mercancía dañada",
        status=Dispute.Status.RESOLVED,
        opened_on=ago(due_days_ago + 6),
        resolution=Dispute.Resolution.REJECTED,
        resolved_on=ago(due_days_ago + 2),
        opened_by=by,
    )
    dispute.invoices.set([invoice])
    return invoice


def on_time_history(by, client, n: int, *, first_due_days_ago: int = 40):
    for i in range(n):
        settle(by, client, due_days_ago=first_due_days_ago + 30 * i, days_late=0)


# --- circumstantial: disputes, then pays once solved ----------------------------------------------


def test_disputes_most_invoices_is_not_good_payer(gerente, debtor):
    # Every invoice paid on time, but 4 of 10 went through a dispute — all resolved more than
    # 12 months ago, none open today: without the disputed share this would be a good payer.
    for i in range(10):
        due = 400 + 20 * i
        if i < 4:
            disputed_then_paid(gerente, debtor, due_days_ago=due)
        else:
            settle(gerente, debtor, due_days_ago=due, days_late=0)
    computed, ev = classify(debtor)
    assert computed == Profile.CIRCUMSTANTIAL
    assert (ev["settled_24m"], ev["late_24m"], ev["disputes_open"], ev["disputes_12m"]) == (10, 0, 0, 0)
    assert ev["disputed_settled_24m"] == 4
    assert Decimal(str(ev["disputed_share_pct"])) == Decimal("40.0")


@pytest.mark.parametrize(
    ("settled", "disputed", "expected"),
    [
        (7, 2, Profile.GOOD),  # 28.6 %: just below 30 %
        (10, 3, Profile.CIRCUMSTANTIAL),  # 30 %: at the threshold
        (9, 3, Profile.CIRCUMSTANTIAL),  # 33.3 %: just above
    ],
)
def test_disputed_share_threshold(gerente, debtor, settled, disputed, expected):
    assert profiles.CIRCUMSTANTIAL_MIN_DISPUTED_SHARE == 30
    for i in range(settled):
        due = 400 + 20 * i
        if i < disputed:
            disputed_then_paid(gerente, debtor, due_days_ago=due)
        else:
            settle(gerente, debtor, due_days_ago=due, days_late=0)
    computed, ev = classify(debtor)
    assert (ev["settled_24m"], ev["disputed_settled_24m"]) == (settled, disputed)
    assert computed == expected


def test_a_dispute_opened_after_the_invoice_was_paid_does_not_count(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=400)
    paid = settle(gerente, debtor, due_days_ago=500, days_late=0)
    late_complaint = Dispute.objects.create(
        client=debtor,
        reason=Dispute.Reason.SERVICE,
        description="Queja posterior",
        status=Dispute.Status.RESOLVED,
        opened_on=ago(480),
        resolution=Dispute.Resolution.REJECTED,
        resolved_on=ago(470),
    )
    late_complaint.invoices.set([paid])
    computed, ev = classify(debtor)
    assert ev["disputed_settled_24m"] == 0 and computed == Profile.GOOD


# --- chronic and intentional: lateness, and paying in the end ------------------------------------


def test_late_every_invoice_by_many_days_is_chronic(gerente, debtor):
    for i in range(8):
        settle(gerente, debtor, due_days_ago=100 + 45 * i, days_late=40 + i)
    computed, ev = classify(debtor)
    assert computed == Profile.CHRONIC
    assert Decimal(str(ev["share_late_pct"])) == Decimal("100.0")
    assert Decimal(str(ev["avg_days_late"])) == Decimal("43.5")


@pytest.mark.parametrize(
    ("days_late", "expected"),
    [(29, Profile.INTENTIONAL), (30, Profile.INTENTIONAL), (31, Profile.CHRONIC)],
)
def test_chronic_average_days_threshold(gerente, debtor, days_late, expected):
    # Every invoice late (100 % > 60 %): the average decides, "above 30" is strict.
    for i in range(5):
        settle(gerente, debtor, due_days_ago=100 + 40 * i, days_late=days_late)
    computed, ev = classify(debtor)
    assert Decimal(str(ev["avg_days_late"])) == Decimal(days_late)
    assert computed == expected


@pytest.mark.parametrize(
    ("settled", "late", "expected"),
    [
        (7, 4, Profile.INTENTIONAL),  # 57.1 %: below 60 %
        (5, 3, Profile.INTENTIONAL),  # 60 %: at, not "more than"
        (6, 4, Profile.CHRONIC),  # 66.7 %: above
    ],
)
def test_chronic_share_late_threshold(gerente, debtor, settled, late, expected):
    # Late ones by 90 days: the average is above 30 days in every case.
    for i in range(settled):
        settle(gerente, debtor, due_days_ago=150 + 40 * i, days_late=90 if i < late else 0)
    computed, ev = classify(debtor)
    assert Decimal(str(ev["avg_days_late"])) > profiles.CHRONIC_MIN_AVG_DAYS
    assert computed == expected


def test_late_on_most_by_a_few_days_always_paying_is_intentional(gerente, debtor):
    for i in range(8):
        settle(gerente, debtor, due_days_ago=60 + 30 * i, days_late=5 if i < 6 else 0)
    computed, ev = classify(debtor)
    assert computed == Profile.INTENTIONAL
    assert (ev["late_24m"], ev["written_off_24m"], ev["overdue_count"]) == (6, 0, 0)
    assert Decimal(str(ev["share_late_pct"])) == Decimal("75.0")
    assert Decimal(str(ev["avg_days_late"])) == Decimal("3.8")


@pytest.mark.parametrize(
    ("settled", "late", "expected"),
    [(6, 3, Profile.CASUAL), (7, 4, Profile.INTENTIONAL)],  # 50 % is not "more than 50 %"; 57 % is
)
def test_intentional_share_late_threshold(gerente, debtor, settled, late, expected):
    for i in range(settled):
        settle(gerente, debtor, due_days_ago=60 + 30 * i, days_late=5 if i < late else 0)
    assert classify(debtor)[0] == expected


def test_late_on_most_but_an_invoice_written_off_did_not_pay_in_the_end(gerente, debtor):
    for i in range(8):
        settle(gerente, debtor, due_days_ago=60 + 30 * i, days_late=5 if i < 6 else 0)
    lost = overdue(gerente, debtor, days=200, amount="300.00")
    services.invoice_set_status(by=gerente, invoice=lost, status="written_off", reason="Incobrable")
    computed, ev = classify(debtor)
    assert ev["written_off_24m"] == 1
    assert computed == Profile.NEGLIGENT


# --- negligent: unanswered contacts, broken promises against kept ones ---------------------------


def test_unanswered_contacts_while_overdue_is_negligent(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)  # young, and paid recently: the old rule would not fire
    contact(debtor, days_ago=18, kind=K.EMAIL, outcome=O.SENT)
    contact(debtor, days_ago=12, outcome=O.NO_ANSWER, by=gerente)
    contact(debtor, days_ago=5, outcome=O.LEFT_MESSAGE, by=gerente)
    computed, ev = classify(debtor)
    assert (ev["contacts_90d"], ev["responses_90d"], ev["overdue_count"]) == (3, 0, 1)
    assert computed == Profile.NEGLIGENT


@pytest.mark.parametrize(("attempts", "expected"), [(2, Profile.GOOD), (3, Profile.NEGLIGENT), (4, Profile.NEGLIGENT)])
def test_unanswered_attempts_threshold(gerente, debtor, attempts, expected):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    for n in range(attempts):
        contact(debtor, days_ago=2 + 3 * n)
    computed, ev = classify(debtor)
    assert ev["contacts_90d"] == attempts
    assert computed == expected


def test_the_contact_window_is_90_days_today_included(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    contact(debtor, days_ago=90)  # outside: the window starts 89 days ago
    contact(debtor, days_ago=89)
    contact(debtor, days_ago=30)
    computed, ev = classify(debtor)
    assert (ev["contacts_90d"], ev["contacts_12m"]) == (2, 3)
    assert computed != Profile.NEGLIGENT
    contact(debtor, days_ago=0)
    computed, ev = classify(debtor)
    assert ev["contacts_90d"] == 3 and computed == Profile.NEGLIGENT


def test_unanswered_contacts_with_nothing_overdue_are_not_negligent(gerente, debtor):
    on_time_history(gerente, debtor, 6)
    for n in range(4):
        contact(debtor, days_ago=3 + 5 * n, kind=K.EMAIL, outcome=O.SENT)
    computed, ev = classify(debtor)
    assert ev["contacts_90d"] == 4 and ev["responses_90d"] == 0
    assert computed == Profile.GOOD


def test_failed_sends_are_not_attempts(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    for n in range(3):
        contact(debtor, days_ago=3 + 5 * n, kind=K.SMS, outcome=O.FAILED)
    computed, ev = classify(debtor)
    assert ev["contacts_90d"] == 0 and computed == Profile.GOOD


@pytest.mark.parametrize(
    "answer",
    [
        {"kind": K.EMAIL, "direction": D.INBOUND, "outcome": ""},  # a reply
        {"kind": K.SYSTEM, "direction": D.INBOUND, "outcome": ""},  # a portal visit
        {"kind": K.CALL, "direction": D.OUTBOUND, "outcome": O.REACHED},  # a call picked up
        {"kind": K.CALL, "direction": D.OUTBOUND, "outcome": O.REFUSED},  # answered, even if to refuse
    ],
)
def test_one_answer_in_the_window_is_a_response(gerente, debtor, answer):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    for n in range(4):
        contact(debtor, days_ago=3 + 5 * n)
    contact(debtor, days_ago=40, **answer)
    computed, ev = classify(debtor)
    assert ev["responses_90d"] == 1
    assert computed != Profile.NEGLIGENT


def test_a_promise_made_is_a_response(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    for n in range(3):
        contact(debtor, days_ago=3 + 5 * n)
    promise(debtor, status="kept", resolved_days_ago=2)  # made 12 days ago
    computed, ev = classify(debtor)
    assert (ev["responses_90d"], ev["promises_kept_12m"]) == (1, 1)
    assert computed != Profile.NEGLIGENT


def test_answered_contacts_and_kept_promises_are_not_negligent(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    # Five attempts, one answered; two promises broken but three kept.
    for n in range(4):
        contact(debtor, days_ago=3 + 5 * n)
    contact(debtor, days_ago=25, outcome=O.PROMISE)
    for days in (30, 60):
        promise(debtor, status="broken", resolved_days_ago=days)
    for days in (90, 120, 150):
        promise(debtor, status="kept", resolved_days_ago=days)
    computed, ev = classify(debtor)
    assert (ev["contacts_90d"], ev["promises_broken_12m"], ev["promises_kept_12m"]) == (5, 2, 3)
    assert ev["responses_90d"] >= 1
    # Not negligent; a broken promise still keeps them from good.
    assert computed == Profile.CASUAL


@pytest.mark.parametrize(("kept", "expected"), [(1, Profile.NEGLIGENT), (2, Profile.CASUAL), (3, Profile.CASUAL)])
def test_broken_promises_must_outnumber_kept_ones(gerente, debtor, kept, expected):
    on_time_history(gerente, debtor, 6)
    for days in (30, 60):
        promise(debtor, status="broken", resolved_days_ago=days)
    for n in range(kept):
        promise(debtor, status="kept", resolved_days_ago=90 + 30 * n)
    computed, ev = classify(debtor)
    assert (ev["promises_broken_12m"], ev["promises_kept_12m"]) == (2, kept)
    assert computed == expected


def test_evidence_as_of_a_past_day_counts_only_what_had_happened(gerente, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=200)
    overdue(gerente, debtor, days=60)
    for days in (50, 45, 40):
        contact(debtor, days_ago=days)
    contact(debtor, days_ago=10, direction=D.INBOUND, kind=K.EMAIL, outcome="")  # a reply, later
    promise(debtor, status="kept", resolved_days_ago=5)
    computed, ev = profiles.profile_as_of(debtor.pk, ago(30))
    assert (ev["contacts_90d"], ev["responses_90d"], ev["promises_kept_12m"]) == (3, 0, 0)
    assert computed == Profile.NEGLIGENT
    # compute_profiles --as-of stores the very same.
    profiles.compute_profiles(today=ago(30), standing=False)
    debtor.profile.refresh_from_db()
    assert (debtor.profile.computed, debtor.profile.evidence) == (computed, ev)
    computed, ev = classify(debtor)
    assert ev["responses_90d"] == 2 and computed != Profile.NEGLIGENT


# --- where a collector and a manager see it ---------------------------------------------------------


def test_the_panel_and_the_profiles_page_show_the_new_evidence_and_rules(client, gerente, gestora, debtor):
    on_time_history(gerente, debtor, 6, first_due_days_ago=100)
    overdue(gerente, debtor, days=20)
    for n in range(3):
        contact(debtor, days_ago=2 + 3 * n)
    promise(debtor, status="kept", resolved_days_ago=200)
    profiles.compute_profiles(today=TODAY)
    client.force_login(gestora)
    html = client_page_html(client, debtor.pk)
    assert 'data-profile="negligent"' in html
    assert 'data-evidence="contacts_90d">3 intentos · 0 respuestas<' in html
    assert 'data-evidence="promises_kept">1<' in html
    assert 'data-evidence="disputed_settled">0 (0,0 %)<' in html
    assert 'data-evidence="written_off">0<' in html
    assert "3 o más intentos de contacto en 90 días sin ninguna respuesta" in html  # the rule that decided
    client.force_login(gerente)
    page = client.get(reverse("cobranza:profile_list")).content.decode()
    assert "pasaron por una disputa" in page and "al final paga" in page
    with translation.override("en"):
        page = client.get(reverse("cobranza:profile_list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "contact attempts in 90 days without a single response" in page


def test_a_profile_stored_before_the_new_evidence_still_renders(client, gerente, gestora, debtor):
    on_time_history(gerente, debtor, 6)
    profiles.compute_profiles(today=TODAY)
    row = debtor.profile
    row.evidence = {k: v for k, v in row.evidence.items() if k not in {"contacts_90d", "promises_kept_12m"}}
    row.save(update_fields=["evidence"])
    client.force_login(gestora)
    html = client_page_html(client, debtor.pk)
    assert 'data-evidence="settled_24m">6<' in html and 'data-evidence="contacts_90d"' not in html
