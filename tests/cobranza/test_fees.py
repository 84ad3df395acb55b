"""Late fees and interest (*recargos*): fixed fee once, simple interest by hand, the cap,
waivers, exclusions, idempotence, and the managers' rule editor."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import Interaction, Invoice
from accounts.services import AllocationRequest
from cobranza.models import LateFee, LateFeeRule
from cobranza.profiles import fees
from cobranza.profiles import services as profile_services
from tests.factories import client_page_html, make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def rule(by, code="regular", **fields) -> LateFeeRule:
    values = {
        "is_active": True,
        "grace_days": 5,
        "fixed_fee": Decimal("150.00"),
        "monthly_rate": Decimal("2.000"),
        "max_percent": Decimal("0"),
    }
    values.update(fields)
    return profile_services.late_fee_rule_save(by=by, segment=segment(code), **values)


def late_invoice(by, client, *, days: int, amount: str = "10000.00") -> Invoice:
    due = ago(days)
    return make_invoice(by=by, client=client, amount=amount, due_date=due, issue_date=due - dt.timedelta(days=30))


def fee(invoice, kind) -> LateFee | None:
    return LateFee.objects.filter(invoice=invoice, kind=kind).first()


@pytest.fixture
def debtor(gerente, gestora):
    return make_client(by=gerente, collector=gestora)


def test_fixed_fee_and_interest_by_hand(gerente, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)  # 50 days late, 5 of grace: 45 days of interest
    result = fees.accrue_late_fees(today=TODAY)
    assert result == {"today": TODAY.isoformat(), "fixed_created": 1, "interest_rows": 1}
    assert fee(invoice, "fixed").amount == Decimal("150.00")
    # 10,000 × 2 % × 45 / 30 = 300.00
    interest = fee(invoice, "interest")
    assert interest.amount == Decimal("300.00") and interest.computed_on == TODAY
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("10000.00")  # fees stay apart from the principal


def test_interest_is_recomputed_each_day_and_the_fixed_fee_charged_once(gerente, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    result = fees.accrue_late_fees(today=TODAY + dt.timedelta(days=1))
    assert result["fixed_created"] == 0
    assert LateFee.objects.filter(invoice=invoice).count() == 2
    assert fee(invoice, "fixed").amount == Decimal("150.00")
    # 10,000 × 2 % × 46 / 30 = 306.666… → 306.67
    assert fee(invoice, "interest").amount == Decimal("306.67")
    assert fee(invoice, "interest").computed_on == TODAY + dt.timedelta(days=1)


def test_running_twice_the_same_day_changes_nothing(gerente, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    before = list(LateFee.objects.filter(invoice=invoice).values_list("kind", "amount", "computed_on"))
    second = fees.accrue_late_fees(today=TODAY)
    assert second["fixed_created"] == 0
    assert list(LateFee.objects.filter(invoice=invoice).values_list("kind", "amount", "computed_on")) == before
    assert Interaction.objects.filter(client=debtor, summary__startswith="Recargo por atraso").count() == 1


def test_interest_is_on_the_open_principal_never_on_fees(gerente, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("4000.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(invoice.pk, Decimal("4000.00"))],
    )
    fees.accrue_late_fees(today=TODAY)
    # 6,000 × 2 % × 45 / 30 = 180.00 (the 150.00 fee earns nothing)
    assert fee(invoice, "interest").amount == Decimal("180.00")


def test_nothing_within_the_grace_days(gerente, debtor):
    rule(gerente)
    on_the_edge = late_invoice(gerente, debtor, days=5)
    fees.accrue_late_fees(today=TODAY)
    assert not LateFee.objects.filter(invoice=on_the_edge).exists()
    fees.accrue_late_fees(today=TODAY + dt.timedelta(days=1))  # 6 days late: 1 day of interest
    assert fee(on_the_edge, "fixed").amount == Decimal("150.00")
    assert fee(on_the_edge, "interest").amount == Decimal("6.67")  # 10,000 × 2 % × 1 / 30


def test_the_cap_limits_fixed_fee_plus_interest(gerente, debtor):
    rule(gerente, max_percent=Decimal("3"))  # 3 % of 10,000 = 300.00
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    assert fee(invoice, "fixed").amount == Decimal("150.00")
    assert fee(invoice, "interest").amount == Decimal("150.00")  # 300.00 by the rate, capped
    fees.accrue_late_fees(today=TODAY + dt.timedelta(days=30))
    assert fee(invoice, "interest").amount == Decimal("150.00")


def test_a_fixed_fee_above_the_cap_is_cut_and_leaves_no_room_for_interest(gerente, debtor):
    rule(gerente, fixed_fee=Decimal("400.00"), max_percent=Decimal("3"))
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    assert fee(invoice, "fixed").amount == Decimal("300.00")
    assert fee(invoice, "interest") is None


def test_a_waived_fee_is_never_changed(gerente, gestora, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    interest = profile_services.late_fee_waive(
        by=gestora, fee=fee(invoice, "interest"), reason="Acordado en la llamada"
    )
    assert interest.waived and interest.waived_by == gestora and interest.waived_reason == "Acordado en la llamada"
    fees.accrue_late_fees(today=TODAY + dt.timedelta(days=10))
    interest.refresh_from_db()
    assert (interest.amount, interest.computed_on, interest.waived) == (Decimal("300.00"), TODAY, True)
    entry = Interaction.objects.filter(client=debtor, summary__startswith="Recargo condonado").get()
    assert entry.body == "Acordado en la llamada" and entry.author == gestora
    assert list(entry.invoices.all()) == [invoice]


def test_waiving_needs_a_reason_the_right_collector_and_happens_once(gerente, gestora, gestor, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    fixed = fee(invoice, "fixed")
    with pytest.raises(ValidationError) as exc:
        profile_services.late_fee_waive(by=gestora, fee=fixed, reason=" ")
    assert "reason" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        profile_services.late_fee_waive(by=gestor, fee=fixed, reason="x")
    profile_services.late_fee_waive(by=gestora, fee=fixed, reason="Primera vez")
    with pytest.raises(ValidationError):
        profile_services.late_fee_waive(by=gerente, fee=fixed, reason="Otra vez")


def test_disputed_paid_and_other_segments_invoices_are_left_alone(gerente, gestora, debtor):
    rule(gerente)
    disputed = late_invoice(gerente, debtor, days=50)
    services.invoice_set_status(by=gerente, invoice=disputed, status="disputed", reason="Reclamo")
    paid = late_invoice(gerente, debtor, days=50)
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("10000.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(paid.pk, Decimal("10000.00"))],
    )
    no_rule = make_client(by=gerente, collector=gestora, segment_code="cuenta-clave")
    elsewhere = late_invoice(gerente, no_rule, days=50)
    inactive = make_client(by=gerente, collector=gestora, segment_code="esporadico")
    rule(gerente, code="esporadico", is_active=False)
    off = late_invoice(gerente, inactive, days=50)
    result = fees.accrue_late_fees(today=TODAY)
    assert result["fixed_created"] == 0 and result["interest_rows"] == 0
    assert not LateFee.objects.filter(invoice__in=[disputed, paid, elsewhere, off]).exists()


def test_a_paid_invoice_keeps_the_fees_it_accrued(gerente, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("10000.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(invoice.pk, Decimal("10000.00"))],
    )
    fees.accrue_late_fees(today=TODAY + dt.timedelta(days=5))
    assert fee(invoice, "interest").amount == Decimal("300.00")
    assert fee(invoice, "interest").computed_on == TODAY


def test_a_rule_with_only_interest_or_only_a_fee(gerente, gestora, debtor):
    rule(gerente, fixed_fee=Decimal("0"))
    only_interest = late_invoice(gerente, debtor, days=35)
    other = make_client(by=gerente, collector=gestora, segment_code="alto-riesgo")
    rule(gerente, code="alto-riesgo", monthly_rate=Decimal("0"), fixed_fee=Decimal("40.00"), grace_days=0)
    only_fee = late_invoice(gerente, other, days=3, amount="900.00")
    fees.accrue_late_fees(today=TODAY)
    assert fee(only_interest, "fixed") is None
    assert fee(only_interest, "interest").amount == Decimal("200.00")  # 10,000 × 2 % × 30 / 30
    assert fee(only_fee, "fixed").amount == Decimal("40.00")
    assert fee(only_fee, "interest") is None


# --- the rule editor -----------------------------------------------------------------------------------


def test_fee_rules_page_is_for_managers(client, gestora, gerente):
    client.force_login(gestora)
    assert client.get(reverse("cobranza:fee_rules")).status_code == 403
    assert client.post(reverse("cobranza:fee_rules"), {"segment": segment().pk}).status_code == 403
    client.force_login(gerente)
    response = client.get(reverse("cobranza:fee_rules"))
    assert response.status_code == 200
    assert "Cuenta clave" in response.content.decode()


def test_a_manager_saves_a_segments_rule(client, gerente):
    client.force_login(gerente)
    regular = segment()
    url = reverse("cobranza:fee_rules")
    data = {
        "segment": regular.pk,
        "is_active": "on",
        "grace_days": "10",
        "fixed_fee": "250.00",
        "monthly_rate": "1.5",
        "max_percent": "20",
        "discount_approval_over": "500",
    }
    response = client.post(url, data)
    assert response.status_code == 302 and response.url.endswith(f"?segment={regular.pk}")
    saved = LateFeeRule.objects.get(segment=regular)
    assert (saved.is_active, saved.grace_days, saved.fixed_fee, saved.monthly_rate, saved.max_percent) == (
        True,
        10,
        Decimal("250.00"),
        Decimal("1.500"),
        Decimal("20.00"),
    )
    assert saved.discount_approval_over == Decimal("500.00")
    html = client.get(url, {"segment": regular.pk}).content.decode()
    assert 'value="250.00"' in html
    client.post(url, {**data, "is_active": "", "grace_days": "3"})
    saved.refresh_from_db()
    assert (saved.is_active, saved.grace_days) == (False, 3)
    assert LateFeeRule.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("monthly_rate", "-1"),
        ("monthly_rate", "1.2345"),
        ("monthly_rate", "1000"),
        ("fixed_fee", "doscientos"),
        ("fixed_fee", "123456789012345"),
        ("max_percent", "150"),
        ("grace_days", "-3"),
        ("grace_days", ""),
        ("discount_approval_over", "-5"),
    ],
)
def test_the_rule_editor_shows_field_errors_never_a_500(client, gerente, field, value):
    client.force_login(gerente)
    data = {
        "segment": segment().pk,
        "is_active": "on",
        "grace_days": "10",
        "fixed_fee": "250.00",
        "monthly_rate": "1.5",
        "max_percent": "20",
        "discount_approval_over": "500",
        field: value,
    }
    response = client.post(reverse("cobranza:fee_rules"), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not LateFeeRule.objects.exists()


def test_the_rule_editor_refuses_an_unknown_segment_without_a_500(client, gerente):
    client.force_login(gerente)
    response = client.post(reverse("cobranza:fee_rules"), {"segment": "999999", "grace_days": "1"})
    assert response.status_code == 302
    assert client.get(reverse("cobranza:fee_rules"), {"segment": "nope"}).status_code == 200


def test_rule_service_is_for_managers(gestora):
    with pytest.raises(PermissionDenied):
        profile_services.late_fee_rule_save(by=gestora, segment=segment(), is_active=True)


# --- waiving from the client page ---------------------------------------------------------------------


def test_waive_from_the_panel(client, gerente, gestora, gestor, debtor):
    rule(gerente)
    invoice = late_invoice(gerente, debtor, days=50)
    fees.accrue_late_fees(today=TODAY)
    fixed = fee(invoice, "fixed")
    url = reverse("cobranza:fee_waive", args=[fixed.pk])
    client.force_login(gestor)
    assert client.post(url, {"reason": "x"}).status_code == 404
    client.force_login(gestora)
    response = client.post(url, {"reason": ""}, follow=True)
    assert response.status_code == 200
    fixed.refresh_from_db()
    assert not fixed.waived
    response = client.post(url, {"reason": "Cliente de muchos años"})
    assert response.status_code == 302 and response.url.endswith("#perfil")
    fixed.refresh_from_db()
    assert fixed.waived and fixed.waived_reason == "Cliente de muchos años"
    html = client_page_html(client, debtor.pk)
    assert 'data-testid="fee-waived"' in html and "Cliente de muchos años" in html
    response = client.post(url, {"reason": "Otra vez"}, follow=True)
    assert "ya estaba condonado" in response.content.decode()
    assert client.get(url).status_code == 405
