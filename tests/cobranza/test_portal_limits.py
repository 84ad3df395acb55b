"""Portal promises and plan requests within the limits of the client's policy
(docs/domain.md#portal-limits): inside them agreed at once, outside them a proposal for the
collector while reminders go on; approval, rejection, and the debtor's confirmations sent
through the normal sending path (real SMTP)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Interaction, Invoice
from cobranza import rules
from cobranza.business import selectors as business_selectors
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import (
    CollectorTask,
    Commitment,
    Notice,
    Policy,
    PortalMessage,
    PortalProposal,
    TaskKind,
)
from cobranza.portal import jobs, links, selectors
from cobranza.portal import services as portal
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
TODAY = dt.date(2026, 3, 2)  # a Monday: contact allowed 07:00-22:00 in Mexico


def at(d: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hour), tzinfo=MX)


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(at(TODAY), tick=False) as traveller:
        yield lambda d, hour=10: traveller.move_to(at(d, hour))


@pytest.fixture
def debtor(clock, gerente, gestora):
    """The issue's client: five overdue invoices, $25,781.63 in all, and an email contact."""
    client = make_client(by=gerente, collector=gestora, legal_name="Abarrotes La Esquina", segment_code="regular")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@esquina.example", phone="+5255501")
    amounts = ["7500.00", "6250.50", "5031.13", "4000.00", "3000.00"]
    for n, (amount, days) in enumerate(zip(amounts, (-1, -10, -20, -35, -50), strict=True), start=1):
        make_invoice(by=gerente, client=client, number=f"E-{n}", amount=amount, due_date=day(days), issue_date=day(-60))
    return client


def _policy(client) -> Policy:
    return client.segment.policy


def _send_all(now=None) -> list[str]:
    return [jobs.send(pk, now=now) for pk in jobs.due_message_ids(now=now or at(TODAY))]


# --- the limits --------------------------------------------------------------------------------


def test_the_issues_six_month_promise_of_100_is_a_request_and_reminders_keep_going(debtor, clock, gestora, smtp):
    overdue = selectors.overdue_of(list(debtor.invoices.all()), TODAY)
    assert overdue == Decimal("25781.63")

    result = portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100.00"), currency="MXN")

    assert isinstance(result, PortalProposal) and result.status == "pending"
    assert not Commitment.objects.exists()
    assert "más de 30 días" in result.reasons and "25%" in result.reasons
    task = CollectorTask.objects.get(client=debtor, kind=TaskKind.PORTAL_PROPOSAL)
    assert task.assigned_to == gestora and result.task == task
    # Nothing is agreed: every invoice is still dunnable, and the ladder sends today.
    assert Invoice.objects.filter(rules.dunnable_invoice_q(TODAY), client=debtor).count() == 5
    plan(today=TODAY, now=at(TODAY))
    notices = list(Notice.objects.filter(client=debtor).values_list("pk", flat=True))
    assert notices
    # at 21:00, after the client's slot whichever it is (docs/domain.md#spread)
    outcomes = {dispatch.dispatch(pk, now=at(TODAY, 21)).outcome for pk in notices}
    assert dispatch.Outcome.SENT in outcomes
    # One step a day, the firmest due (docs/domain.md#pacing): it went out, about these invoices.
    sent = Notice.objects.filter(client=debtor, status="sent").prefetch_related("items")
    assert sent and all(n.items.exists() for n in sent)


def test_a_promise_inside_the_limits_is_accepted_at_once_and_confirmed_by_email(debtor, smtp):
    result = portal.promise_create(client=debtor, pay_on=day(10), amount=Decimal("10000.00"), currency="MXN")

    assert isinstance(result, Commitment) and result.status == "open"
    assert not PortalProposal.objects.exists()
    assert Invoice.objects.filter(rules.dunnable_invoice_q(TODAY), client=debtor).count() == 0
    assert _send_all() == ["sent"]
    (mail,) = smtp.messages
    assert mail["To"] == "rosa@esquina.example" and "Confirmamos su promesa de pago" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "$10,000.00" in body and "BAJA" in body
    # Signed by the business (whatever its configured name); our product's name is not added.
    name = business_selectors.current().trade_name
    assert name in body and "Morosos" not in body.replace(name, "")
    assert Interaction.objects.filter(client=debtor, kind="email", direction="outbound", outcome="sent").exists()


def test_the_limits_themselves_are_inside(debtor, smtp):
    # Exactly the furthest day and exactly 25% of 25,781.63 (6,445.41 rounded up to the cent).
    least = selectors.minimum_promise(selectors.limits_for(debtor), Decimal("25781.63"))
    assert least == Decimal("6445.41")
    result = portal.promise_create(client=debtor, pay_on=day(30), amount=least, currency="MXN")
    assert isinstance(result, Commitment)


@pytest.mark.parametrize(
    ("pay_on", "amount", "reason"),
    [
        (31, "6445.41", "más de 30 días"),  # one day too far
        (30, "6445.40", "25%"),  # one cent too little
    ],
)
def test_one_step_past_either_limit_is_a_request(debtor, pay_on, amount, reason):
    result = portal.promise_create(client=debtor, pay_on=day(pay_on), amount=Decimal(amount), currency="MXN")
    assert isinstance(result, PortalProposal)
    assert reason in result.reasons and len(result.reasons.splitlines()) == 1


def test_a_plan_within_the_limits_is_agreed_with_equal_monthly_installments(debtor, smtp):
    result = portal.plan_request(client=debtor, installments=6, first_on=day(30), spacing="monthly", comment="")
    assert isinstance(result, Commitment) and result.kind == "plan"
    rows = list(result.installments.values_list("due_on", "amount"))
    assert len(rows) == 6 and rows[0] == (day(30), Decimal("4296.93")) and rows[1][0] == dt.date(2026, 5, 1)
    assert sum(amount for _d, amount in rows) == Decimal("25781.63")
    assert Interaction.objects.filter(client=debtor, outcome="plan_request", direction="inbound").exists()


@pytest.mark.parametrize(("count", "first", "reason"), [(7, 10, "7 cuotas"), (3, 31, "primer pago")])
def test_a_plan_past_a_limit_is_a_request(debtor, count, first, reason):
    result = portal.plan_request(
        client=debtor, installments=count, first_on=day(first), spacing="biweekly", comment="x"
    )
    assert isinstance(result, PortalProposal) and result.kind == "plan"
    assert reason in result.reasons
    assert len(result.rows()) == count and result.rows()[1][0] == day(first + 14)


def test_empty_limits_mean_no_limit(debtor):
    Policy.objects.filter(pk=_policy(debtor).pk).update(
        portal_promise_max_days=None, portal_promise_min_share=None, portal_plan_max_installments=None
    )
    assert isinstance(
        portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100"), currency="MXN"), Commitment
    )


def test_a_client_without_policy_gets_the_default_limits(debtor):
    Policy.objects.filter(pk=_policy(debtor).pk).update(segment=None)
    limits = selectors.limits_for(debtor)
    assert (limits.promise_max_days, limits.promise_min_share, limits.plan_max_installments) == (30, 25, 6)


def test_a_second_proposal_while_one_waits_is_refused(debtor):
    portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100"), currency="MXN")
    with pytest.raises(ValidationError) as exc:
        portal.promise_create(client=debtor, pay_on=day(5), amount=Decimal("25781.63"), currency="MXN")
    assert "pendiente de aprobación" in str(exc.value)
    with pytest.raises(ValidationError):
        portal.plan_request(client=debtor, installments=3, first_on=day(5), comment="")


def test_more_than_owed_is_a_field_error_not_a_request(debtor):
    with pytest.raises(ValidationError) as exc:
        portal.promise_create(client=debtor, pay_on=day(200), amount=Decimal("99999"), currency="MXN")
    assert "amount" in exc.value.message_dict
    assert not PortalProposal.objects.exists()


# --- approval and rejection ------------------------------------------------------------------


def test_approval_creates_the_promise_as_if_accepted_stops_reminders_and_tells_the_debtor(debtor, gestora, smtp):
    proposal = portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100.00"), currency="MXN")
    commitment = portal.proposal_approve(by=gestora, proposal=proposal)

    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.commitment == commitment and proposal.decided_by == gestora
    assert commitment.kind == "promise" and commitment.total == Decimal("100.00") and commitment.approved_by == gestora
    assert list(commitment.installments.values_list("due_on", flat=True)) == [day(183)]
    assert commitment.invoices.count() == 5
    assert CollectorTask.objects.get(kind=TaskKind.PORTAL_PROPOSAL).status == "done"
    assert Invoice.objects.filter(rules.dunnable_invoice_q(TODAY), client=debtor).count() == 0
    plan(today=day(6), now=at(day(6)))
    assert not Notice.objects.filter(client=debtor).exists()
    assert _send_all() == ["sent", "sent"]
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert subjects == ["Aprobamos su promesa de pago", "Recibimos su propuesta de promesa de pago"]
    with pytest.raises(ValidationError):
        portal.proposal_approve(by=gestora, proposal=proposal)  # once


def test_rejection_tells_the_debtor_with_the_note_and_reminders_go_on(debtor, gestora, smtp):
    proposal = portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100.00"), currency="MXN")
    portal.proposal_reject(by=gestora, proposal=proposal, note="Podemos aceptar 3 pagos mensuales.")
    proposal.refresh_from_db()
    assert proposal.status == "rejected" and not Commitment.objects.exists()
    assert Invoice.objects.filter(rules.dunnable_invoice_q(TODAY), client=debtor).count() == 5
    _send_all()
    rejected = next(m for m in smtp.messages if m["Subject"].startswith("Sobre su propuesta"))
    assert "Podemos aceptar 3 pagos mensuales." in rejected.get_body(("plain",)).get_content()
    assert Interaction.objects.filter(client=debtor, summary__startswith="Propuesta del portal rechazada").exists()
    # The debtor may propose again.
    assert isinstance(
        portal.promise_create(client=debtor, pay_on=day(20), amount=Decimal("25781.63"), currency="MXN"), Commitment
    )


def test_only_the_clients_collector_or_a_manager_decides(client, debtor, gestor, gestora, gerente):
    proposal = portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100.00"), currency="MXN")
    with pytest.raises(PermissionDenied):
        portal.proposal_approve(by=gestor, proposal=proposal)
    url = reverse("selfservice:proposal_approve", args=[proposal.pk])
    assert client.post(url).status_code == 302 and not client.post(url)["Location"].startswith("/clientes")
    client.force_login(gestor)
    assert client.post(url).status_code == 404
    assert client.post(reverse("selfservice:proposal_reject", args=[proposal.pk])).status_code == 404
    client.force_login(gerente)
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].endswith("#portal")
    assert PortalProposal.objects.get().status == "approved"


def test_an_approval_that_no_longer_fits_shows_why(debtor, gestora, gerente):
    proposal = portal.promise_create(client=debtor, pay_on=day(183), amount=Decimal("100.00"), currency="MXN")
    # Everything was paid meanwhile: there is nothing left to promise.
    ledger.payment_record(by=gerente, client=debtor, amount=Decimal("25781.63"), received_on=TODAY)
    with pytest.raises(ValidationError):
        portal.proposal_approve(by=gestora, proposal=proposal)
    assert PortalProposal.objects.get().status == "pending"


# --- the confirmations go through the sending path --------------------------------------------


def test_a_confirmation_outside_contact_hours_waits_and_says_so(debtor, clock, smtp):
    clock(TODAY, 23)
    portal.promise_create(client=debtor, pay_on=day(10), amount=Decimal("10000.00"), currency="MXN")
    assert _send_all(now=at(TODAY, 23)) == ["deferred"]
    assert not smtp.messages
    assert Interaction.objects.filter(client=debtor, summary__contains="aplazado hasta 2026-03-03 07:00").exists()
    clock(day(1), 7)
    assert _send_all(now=at(day(1), 7)) == ["sent"]
    assert len(smtp.messages) == 1


def test_no_email_contact_or_an_opt_out_means_no_confirmation(debtor, gerente, smtp):
    debtor.contacts.update(opt_out_email=True)
    portal.promise_create(client=debtor, pay_on=day(10), amount=Decimal("10000.00"), currency="MXN")
    assert not PortalMessage.objects.exists()


def test_an_opt_out_after_the_confirmation_was_queued_stops_it(debtor, smtp):
    portal.promise_create(client=debtor, pay_on=day(10), amount=Decimal("10000.00"), currency="MXN")
    debtor.contacts.update(opt_out_email=True)
    assert _send_all() == ["skipped"]
    assert not smtp.messages
    assert PortalMessage.objects.get().status == "skipped"


def test_a_message_interrupted_mid_send_is_never_sent_twice(debtor, smtp):
    portal.promise_create(client=debtor, pay_on=day(10), amount=Decimal("10000.00"), currency="MXN")
    message = PortalMessage.objects.get()
    PortalMessage.objects.filter(pk=message.pk).update(status="sending", lease_until=at(TODAY, 9), message_id="<x>")
    assert _send_all() == ["failed"]
    assert not smtp.messages


# --- what the portal shows --------------------------------------------------------------------


def test_the_portal_shows_pending_accepted_kept_and_broken_with_installments(client, debtor, gestora, gerente):
    proposal = portal.plan_request(client=debtor, installments=8, first_on=day(5), comment="")
    page = client.get(links.link_for(debtor)).content.decode()
    assert "Pendiente de aprobación" in page and page.count('data-state="pending"') == 1
    portal.proposal_approve(by=gestora, proposal=proposal)
    page = client.get(links.link_for(debtor)).content.decode()
    assert 'data-state="open"' in page and "Aceptada" in page and page.count("<tr><td>") >= 8
    Commitment.objects.update(status="broken", resolved_on=day(1))
    page = client.get(links.link_for(debtor)).content.decode()
    assert 'data-state="broken"' in page and "Incumplida" in page


def test_the_promise_page_says_when_it_waits_for_the_collector(client, debtor):
    url = reverse("selfservice:promise", args=[links.token_for(debtor)])
    response = client.post(url, {"pay_on": day(183).isoformat(), "amount": "100.00", "currency": "MXN"})
    assert response.status_code == 302 and "hecho=proposal" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "su gestor de cobranza la revisará" in page


def test_the_plan_form_gives_field_errors(client, debtor):
    url = reverse("selfservice:plan_request", args=[links.token_for(debtor)])
    response = client.post(url, {"installments": "1", "first_on": day(-1).isoformat(), "spacing": "yearly"})
    assert response.status_code == 200
    assert {"installments", "first_on", "spacing"} <= set(response.context["form"].errors)


# --- the policy editor -----------------------------------------------------------------------


def test_the_policy_editor_sets_the_limits_with_field_errors(client, debtor, gerente):
    policy = _policy(debtor)
    client.force_login(gerente)
    url = reverse("cobranza:policy_edit", args=[policy.pk])
    data = {
        "name": policy.name,
        "segment": policy.segment_id,
        "tolerance": "1.00",
        "is_active": "on",
        "portal_promise_max_days": "45",
        "portal_promise_min_share": "150",
        "portal_plan_max_installments": "1",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "portal_promise_min_share" in errors and "portal_plan_max_installments" in errors
    data.update(portal_promise_min_share="10", portal_plan_max_installments="")
    assert client.post(url, data).status_code == 302
    policy.refresh_from_db()
    assert (policy.portal_promise_max_days, policy.portal_promise_min_share, policy.portal_plan_max_installments) == (
        45,
        Decimal("10.00"),
        None,
    )


def test_an_english_client_is_confirmed_in_english(clock, gerente, gestora, smtp):
    client = make_client(by=gerente, collector=gestora, language="en")
    ledger.contact_create(by=gerente, client=client, name="Pat Payables", email="pat@example.com")
    make_invoice(by=gerente, client=client, number="EN-1", amount="800.00", due_date=day(-5), issue_date=day(-35))
    portal.promise_create(client=client, pay_on=day(120), amount=Decimal("10.00"), currency="MXN")
    _send_all()
    (mail,) = smtp.messages
    assert mail["Subject"] == "We received your proposed promise to pay"
    body = mail.get_body(("plain",)).get_content()
    assert "your collector will review it" in body and "STOP" in body and "Estimado" not in body
