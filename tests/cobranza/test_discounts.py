"""Negotiated discounts: applied at once under the segment's threshold (or by a manager),
otherwise approved or rejected by a manager; always a non-cash payment on the invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import Interaction, Invoice, Payment
from accounts.services import AllocationRequest
from cobranza.models import CollectorTask, Discount, TaskKind, TaskStatus
from cobranza.profiles.services import discount_approve, discount_reject, discount_request, late_fee_rule_save
from tests.factories import client_page_html, make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


@pytest.fixture
def debtor(gerente, gestora):
    return make_client(by=gerente, collector=gestora)


@pytest.fixture
def invoice(gerente, debtor):
    return make_invoice(by=gerente, client=debtor, amount="1000.00", due_date=TODAY - dt.timedelta(days=20))


@pytest.fixture
def threshold(gerente):
    """Collectors of the regular segment apply discounts up to 500.00 on their own."""
    return late_fee_rule_save(by=gerente, segment=segment(), discount_approval_over=Decimal("500.00"))


def test_a_discount_under_the_threshold_is_applied_at_once(gestora, debtor, invoice, threshold):
    discount = discount_request(by=gestora, invoice=invoice, amount=Decimal("300.00"), reason="Pago hoy en efectivo")
    assert discount.status == Discount.Status.APPLIED
    assert discount.decided_by == gestora and discount.requested_by == gestora
    payment = discount.payment
    assert (payment.method, payment.amount, payment.received_on, payment.unallocated) == (
        Payment.Method.DISCOUNT,
        Decimal("300.00"),
        TODAY,
        Decimal("0.00"),
    )
    assert list(payment.allocations.values_list("invoice_id", "amount")) == [(invoice.pk, Decimal("300.00"))]
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("700.00") and invoice.status == Invoice.Status.PARTIALLY_PAID
    assert not CollectorTask.objects.filter(kind=TaskKind.DISCOUNT).exists()
    entry = Interaction.objects.filter(client=debtor, summary__startswith="Descuento de").get()
    assert "aplicado en la factura" in entry.summary and entry.body == "Pago hoy en efectivo"


def test_exactly_the_threshold_is_still_applied(gestora, invoice, threshold):
    assert discount_request(by=gestora, invoice=invoice, amount="500.00", reason="x").status == "applied"


def test_a_manager_applies_any_discount_at_once(gerente, invoice, threshold):
    discount = discount_request(by=gerente, invoice=invoice, amount=Decimal("1000.00"), reason="Cierre de cuenta")
    assert discount.status == Discount.Status.APPLIED
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("0.00") and invoice.status == Invoice.Status.PAID


def test_without_a_rule_every_collector_discount_needs_approval(gestora, invoice):
    discount = discount_request(by=gestora, invoice=invoice, amount=Decimal("1.00"), reason="Redondeo")
    assert discount.status == Discount.Status.REQUESTED and discount.payment is None


def test_above_the_threshold_it_waits_for_a_manager_then_applies(gerente, gestora, debtor, invoice, threshold):
    discount = discount_request(by=gestora, invoice=invoice, amount=Decimal("600.00"), reason="Paga el resto hoy")
    assert discount.status == Discount.Status.REQUESTED and discount.payment is None
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("1000.00")
    task = CollectorTask.objects.get(kind=TaskKind.DISCOUNT)
    assert task.assigned_to is None and task.client == debtor and task.status == TaskStatus.OPEN
    assert invoice.number in task.title

    with pytest.raises(PermissionDenied):
        discount_approve(by=gestora, discount=discount)
    approved = discount_approve(by=gerente, discount=discount, notes="De acuerdo")
    assert approved.status == Discount.Status.APPLIED
    assert (approved.decided_by, approved.decision_notes) == (gerente, "De acuerdo")
    assert approved.payment.method == Payment.Method.DISCOUNT and approved.payment.amount == Decimal("600.00")
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("400.00")
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE and task.completed_by == gerente
    summaries = list(Interaction.objects.filter(client=debtor).values_list("summary", flat=True))
    assert any("pendiente de aprobación" in s for s in summaries)
    assert any("aprobado y aplicado" in s for s in summaries)
    with pytest.raises(ValidationError):
        discount_approve(by=gerente, discount=discount)


def test_a_rejection_needs_notes_and_changes_no_balance(gerente, gestora, debtor, invoice):
    discount = discount_request(by=gestora, invoice=invoice, amount=Decimal("200.00"), reason="Cliente molesto")
    with pytest.raises(ValidationError) as exc:
        discount_reject(by=gerente, discount=discount, notes="")
    assert "notes" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        discount_reject(by=gestora, discount=discount, notes="No")
    rejected = discount_reject(by=gerente, discount=discount, notes="Ya tuvo un descuento este año")
    assert rejected.status == Discount.Status.REJECTED and rejected.payment is None
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("1000.00")
    assert not Payment.objects.filter(method=Payment.Method.DISCOUNT).exists()
    assert CollectorTask.objects.get(kind=TaskKind.DISCOUNT).status == TaskStatus.DONE
    entry = Interaction.objects.filter(client=debtor, summary__contains="rechazado").get()
    assert entry.body == "Ya tuvo un descuento este año"


def test_the_managers_task_stays_open_while_another_discount_waits(gerente, gestora, debtor, invoice):
    first = discount_request(by=gestora, invoice=invoice, amount=Decimal("10.00"), reason="a")
    discount_request(by=gestora, invoice=invoice, amount=Decimal("20.00"), reason="b")
    discount_reject(by=gerente, discount=first, notes="No")
    assert CollectorTask.objects.filter(kind=TaskKind.DISCOUNT, status=TaskStatus.OPEN).count() == 2


def test_a_discount_cannot_exceed_the_open_balance(gerente, gestora, debtor, invoice, threshold):
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("900.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(invoice.pk, Decimal("900.00"))],
    )
    with pytest.raises(ValidationError) as exc:
        discount_request(by=gerente, invoice=invoice, amount=Decimal("100.01"), reason="x")
    assert "amount" in exc.value.message_dict
    assert not Discount.objects.exists()


def test_approval_checks_the_balance_again(gerente, gestora, debtor, invoice):
    discount = discount_request(by=gestora, invoice=invoice, amount=Decimal("600.00"), reason="x")
    services.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("500.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(invoice.pk, Decimal("500.00"))],
    )
    with pytest.raises(ValidationError):
        discount_approve(by=gerente, discount=discount)
    discount.refresh_from_db()
    assert discount.status == Discount.Status.REQUESTED


def test_input_errors(gerente, gestora, gestor, invoice):
    with pytest.raises(ValidationError) as exc:
        discount_request(by=gestora, invoice=invoice, amount=Decimal("0"), reason="")
    assert set(exc.value.message_dict) == {"amount", "reason"}
    with pytest.raises(ValidationError):
        discount_request(by=gestora, invoice=invoice, amount="diez", reason="x")
    with pytest.raises(PermissionDenied):
        discount_request(by=gestor, invoice=invoice, amount=Decimal("1.00"), reason="x")
    cancelled = make_invoice(by=gerente, client=invoice.client, amount="50.00")
    services.invoice_set_status(by=gerente, invoice=cancelled, status="cancelled", reason="Error")
    with pytest.raises(ValidationError):
        discount_request(by=gerente, invoice=cancelled, amount=Decimal("1.00"), reason="x")


# --- pages ----------------------------------------------------------------------------------------------


def test_request_from_the_panel(client, gestora, gestor, invoice, threshold):
    url = reverse("cobranza:discount_request", args=[invoice.pk])
    client.force_login(gestor)
    assert client.post(url, {"amount": "10", "reason": "x"}).status_code == 404
    client.force_login(gestora)
    html = client_page_html(client, invoice.client_id)
    assert url in html  # the panel's form for this invoice
    response = client.post(url, {"amount": "2000", "reason": "Demasiado"}, follow=True)
    assert "supera el saldo" in response.content.decode()
    response = client.post(url, {"amount": "abc", "reason": ""}, follow=True)
    assert response.status_code == 200
    assert not Discount.objects.exists()
    response = client.post(url, {"amount": "100.00", "reason": "Pronto pago"})
    assert response.status_code == 302 and response.url.endswith("#perfil")
    assert Discount.objects.get().status == Discount.Status.APPLIED
    response = client.post(url, {"amount": "700.00", "reason": "Liquidación"}, follow=True)
    assert "enviado al gerente" in response.content.decode()
    html = client_page_html(client, invoice.client_id)
    assert 'data-status="requested"' in html and 'data-status="applied"' in html


def test_the_approval_queue_is_for_managers(client, gerente, gestora, invoice):
    discount = discount_request(by=gestora, invoice=invoice, amount=Decimal("50.00"), reason="Pronto pago")
    client.force_login(gestora)
    assert client.get(reverse("cobranza:discounts")).status_code == 403
    decide = reverse("cobranza:discount_decide", args=[discount.pk])
    assert client.post(decide, {"action": "approve"}).status_code == 403
    client.force_login(gerente)
    response = client.get(reverse("cobranza:discounts"))
    assert response.status_code == 200
    assert f'data-discount="{discount.pk}"' in response.content.decode()
    assert [d.pk for d in response.context["pending"]] == [discount.pk]


def test_deciding_from_the_queue(client, gerente, gestora, invoice):
    first = discount_request(by=gestora, invoice=invoice, amount=Decimal("50.00"), reason="a")
    second = discount_request(by=gestora, invoice=invoice, amount=Decimal("60.00"), reason="b")
    client.force_login(gerente)
    queue = reverse("cobranza:discounts")
    response = client.post(reverse("cobranza:discount_decide", args=[first.pk]), {"action": "approve"})
    assert response.status_code == 302 and response.url == queue
    first.refresh_from_db()
    assert first.status == Discount.Status.APPLIED
    response = client.post(reverse("cobranza:discount_decide", args=[second.pk]), {"action": "reject"}, follow=True)
    assert "Indique el motivo del rechazo." in response.content.decode()
    response = client.post(
        reverse("cobranza:discount_decide", args=[second.pk]), {"action": "reject", "notes": "No procede"}
    )
    second.refresh_from_db()
    assert second.status == Discount.Status.REJECTED and second.decision_notes == "No procede"
    response = client.post(reverse("cobranza:discount_decide", args=[second.pk]), {"action": "approve"}, follow=True)
    assert "ya no está pendiente" in response.content.decode()
    assert client.post(reverse("cobranza:discount_decide", args=[second.pk]), {"action": "??"}).status_code == 302
    assert client.post(reverse("cobranza:discount_decide", args=[99999]), {"action": "approve"}).status_code == 404
    html = client.get(queue).content.decode()
    assert "No procede" in html  # in the recent decisions
