"""Payment recording and allocation: money is conserved, balances follow payments."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum

from accounts import services
from accounts.models import Interaction, Invoice, Payment, PaymentAllocation
from accounts.services import AllocationRequest
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


def _assert_ledger_consistent(client):
    """amount_paid equals the allocations; unallocated equals amount minus allocations."""
    for inv in Invoice.objects.filter(client=client):
        allocated = PaymentAllocation.objects.filter(invoice=inv).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        assert inv.amount_paid == allocated, inv.number
        assert inv.open_balance == inv.amount - inv.amount_paid
    for pay in Payment.objects.filter(client=client):
        allocated = PaymentAllocation.objects.filter(payment=pay).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        assert pay.unallocated == pay.amount - allocated


@pytest.fixture
def client_with_invoices(gerente, gestora):
    client = make_client(by=gerente, collector=gestora)
    old = make_invoice(by=gerente, client=client, amount="1000.00", due_in_days=-60, number="A-OLD")
    mid = make_invoice(by=gerente, client=client, amount="500.00", due_in_days=-10, number="B-MID")
    new = make_invoice(by=gerente, client=client, amount="300.00", due_in_days=20, number="C-NEW")
    return client, old, mid, new


def test_it_applies_a_payment_to_the_oldest_due_invoice_first(client_with_invoices, gestora):
    client, old, mid, new = client_with_invoices
    services.payment_record(by=gestora, client=client, amount=Decimal("1200.00"), received_on=TODAY)
    old.refresh_from_db()
    mid.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, old.open_balance) == (Invoice.Status.PAID, Decimal("0.00"))
    assert (mid.status, mid.amount_paid, mid.open_balance) == (
        Invoice.Status.PARTIALLY_PAID,
        Decimal("200.00"),
        Decimal("300.00"),
    )
    assert (new.status, new.amount_paid) == (Invoice.Status.OPEN, Decimal("0.00"))
    _assert_ledger_consistent(client)


def test_an_overpayment_is_kept_as_client_credit(client_with_invoices, gestora):
    client, *_ = client_with_invoices
    payment = services.payment_record(by=gestora, client=client, amount=Decimal("2000.00"), received_on=TODAY)
    assert payment.unallocated == Decimal("200.00")
    assert set(Invoice.objects.filter(client=client).values_list("status", flat=True)) == {Invoice.Status.PAID}
    _assert_ledger_consistent(client)


def test_credit_is_applied_to_a_later_invoice_on_request(client_with_invoices, gerente, gestora):
    client, *_ = client_with_invoices
    services.payment_record(by=gestora, client=client, amount=Decimal("2000.00"), received_on=TODAY)
    later = make_invoice(by=gerente, client=client, amount="150.00", due_in_days=30)
    applied = services.client_apply_credit(by=gestora, client=client)
    later.refresh_from_db()
    assert applied == {"MXN": Decimal("150.00")}
    assert later.status == Invoice.Status.PAID
    assert Payment.objects.get(client=client).unallocated == Decimal("50.00")
    _assert_ledger_consistent(client)


def test_manual_allocation_goes_where_the_user_says(client_with_invoices, gestora):
    client, old, mid, new = client_with_invoices
    services.payment_record(
        by=gestora,
        client=client,
        amount=Decimal("400.00"),
        received_on=TODAY,
        allocations=[AllocationRequest(new.pk, Decimal("300.00")), AllocationRequest(mid.pk, Decimal("50.00"))],
    )
    old.refresh_from_db()
    mid.refresh_from_db()
    new.refresh_from_db()
    assert old.amount_paid == 0
    assert mid.amount_paid == Decimal("50.00")
    assert new.status == Invoice.Status.PAID
    assert Payment.objects.get(client=client).unallocated == Decimal("50.00")
    _assert_ledger_consistent(client)


def test_an_empty_allocation_list_keeps_everything_as_credit(client_with_invoices, gestora):
    client, old, *_ = client_with_invoices
    payment = services.payment_record(
        by=gestora, client=client, amount=Decimal("250.00"), received_on=TODAY, allocations=[]
    )
    assert payment.unallocated == Decimal("250.00")
    old.refresh_from_db()
    assert old.amount_paid == 0
    _assert_ledger_consistent(client)


def test_manual_allocation_above_the_balance_is_refused_and_writes_nothing(client_with_invoices, gestora):
    client, old, mid, new = client_with_invoices
    with pytest.raises(ValidationError) as exc:
        services.payment_record(
            by=gestora,
            client=client,
            amount=Decimal("400.00"),
            received_on=TODAY,
            allocations=[AllocationRequest(new.pk, Decimal("350.00"))],
        )
    assert "allocations" in exc.value.message_dict
    assert not Payment.objects.exists()
    new.refresh_from_db()
    assert new.amount_paid == 0


def test_allocations_larger_than_the_payment_are_refused(client_with_invoices, gestora):
    client, old, *_ = client_with_invoices
    with pytest.raises(ValidationError):
        services.payment_record(
            by=gestora,
            client=client,
            amount=Decimal("100.00"),
            received_on=TODAY,
            allocations=[AllocationRequest(old.pk, Decimal("150.00"))],
        )
    assert not Payment.objects.exists()


def test_it_refuses_an_invoice_of_another_client(client_with_invoices, gerente, gestora):
    client, *_ = client_with_invoices
    other = make_client(by=gerente, collector=gestora)
    foreign = make_invoice(by=gerente, client=other)
    with pytest.raises(ValidationError):
        services.payment_record(
            by=gestora,
            client=client,
            amount=Decimal("100.00"),
            received_on=TODAY,
            allocations=[AllocationRequest(foreign.pk, Decimal("100.00"))],
        )
    foreign.refresh_from_db()
    assert foreign.amount_paid == 0


def test_it_does_not_mix_currencies(gerente, gestora):
    client = make_client(by=gerente, collector=gestora)
    usd = make_invoice(by=gerente, client=client, amount="100.00", currency="USD", due_in_days=-5)
    services.payment_record(by=gestora, client=client, amount=Decimal("100.00"), received_on=TODAY)  # MXN
    usd.refresh_from_db()
    assert usd.amount_paid == 0
    assert Payment.objects.get().unallocated == Decimal("100.00")
    services.payment_record(by=gestora, client=client, amount=Decimal("60.00"), currency="USD", received_on=TODAY)
    usd.refresh_from_db()
    assert usd.status == Invoice.Status.PARTIALLY_PAID


def test_a_payment_delivered_twice_is_recorded_once(client_with_invoices, gestora):
    client, old, *_ = client_with_invoices
    first = services.payment_record(
        by=gestora, client=client, amount=Decimal("100.00"), received_on=TODAY, reference="SPEI-123"
    )
    second = services.payment_record(
        by=gestora, client=client, amount=Decimal("100.00"), received_on=TODAY, reference="SPEI-123"
    )
    assert first.pk == second.pk
    assert first.created and not second.created
    assert Payment.objects.count() == 1
    old.refresh_from_db()
    assert old.amount_paid == Decimal("100.00")


def test_a_different_payment_under_a_known_reference_is_an_error(client_with_invoices, gestora):
    client, *_ = client_with_invoices
    services.payment_record(by=gestora, client=client, amount=Decimal("100.00"), received_on=TODAY, reference="R-1")
    with pytest.raises(ValidationError) as exc:
        services.payment_record(by=gestora, client=client, amount=Decimal("999.00"), received_on=TODAY, reference="R-1")
    assert "reference" in exc.value.message_dict


def test_disputed_invoices_are_skipped_by_automatic_allocation(client_with_invoices, gerente, gestora):
    client, old, mid, new = client_with_invoices
    services.invoice_set_status(by=gerente, invoice=old, status=Invoice.Status.DISPUTED, reason="Mercancía dañada")
    services.payment_record(by=gestora, client=client, amount=Decimal("500.00"), received_on=TODAY)
    old.refresh_from_db()
    mid.refresh_from_db()
    assert old.amount_paid == 0 and old.status == Invoice.Status.DISPUTED
    assert mid.status == Invoice.Status.PAID


def test_a_collector_cannot_record_payments_for_another_collectors_client(client_with_invoices, gestor):
    client, *_ = client_with_invoices
    with pytest.raises(PermissionDenied):
        services.payment_record(by=gestor, client=client, amount=Decimal("10.00"), received_on=TODAY)


def test_a_payment_is_written_to_the_timeline(client_with_invoices, gestora):
    client, old, *_ = client_with_invoices
    services.payment_record(by=gestora, client=client, amount=Decimal("1000.00"), received_on=TODAY)
    entry = Interaction.objects.filter(client=client, kind=Interaction.Kind.SYSTEM).first()
    assert "A-OLD" in entry.summary
    assert list(entry.invoices.all()) == [old]
    assert entry.author == gestora


def test_negative_or_zero_amounts_are_field_errors(client_with_invoices, gestora):
    client, *_ = client_with_invoices
    for bad in ("0", "-5"):
        with pytest.raises(ValidationError) as exc:
            services.payment_record(by=gestora, client=client, amount=Decimal(bad), received_on=TODAY)
        assert "amount" in exc.value.message_dict


def test_money_is_conserved_over_many_mixed_payments(gerente, gestora):
    """A long sequence of partial, over- and manual payments never creates or loses a cent."""
    import random

    rng = random.Random(7)
    client = make_client(by=gerente, collector=gestora)
    invoices = [
        make_invoice(
            by=gerente,
            client=client,
            amount=f"{rng.randint(100, 5000)}.{rng.randint(0, 99):02d}",
            due_in_days=rng.randint(-200, 40),
        )
        for _ in range(12)
    ]
    paid_in = Decimal(0)
    for i in range(25):
        amount = Decimal(f"{rng.randint(1, 3000)}.{rng.randint(0, 99):02d}")
        paid_in += amount
        services.payment_record(by=gestora, client=client, amount=amount, received_on=TODAY, reference=f"P{i}")
        if i % 7 == 0:
            make_invoice(by=gerente, client=client, amount="777.77", due_in_days=rng.randint(-30, 30))
            services.client_apply_credit(by=gestora, client=client)
    _assert_ledger_consistent(client)
    applied = Invoice.objects.filter(client=client).aggregate(s=Sum("amount_paid"))["s"]
    credit = Payment.objects.filter(client=client).aggregate(s=Sum("unallocated"))["s"]
    assert applied + credit == paid_in
    assert len(invoices) == 12


def test_a_historical_payment_is_dated_in_the_timeline_on_the_day_it_was_received(gerente, gestora):
    client = make_client(by=gerente, collector=gestora)
    make_invoice(by=gerente, client=client, amount="100.00", due_in_days=-60)
    received = dt.date.today() - dt.timedelta(days=45)
    services.payment_record(by=None, client=client, amount=Decimal("100.00"), received_on=received, historical=True)
    services.payment_record(by=None, client=client, amount=Decimal("5.00"), received_on=received)
    old, new = Interaction.objects.filter(client=client, summary__startswith="Pago").order_by("occurred_at")
    assert old.occurred_at.astimezone().date() == received and old.occurred_at.hour in range(10, 24)
    assert new.occurred_at.date() >= dt.date.today() - dt.timedelta(days=1)  # recorded now


# --- what the payment form shows before saving (docs/domain.md#automatic-allocation) ----------


@pytest.mark.parametrize("amount", ["200.00", "1000.00", "1250.00", "1800.00", "2500.00"])
def test_the_preview_is_what_recording_the_payment_does(client_with_invoices, gerente, gestora, amount):
    from accounts import selectors

    client, old, mid, new = client_with_invoices
    services.invoice_set_status(by=gerente, invoice=mid, status="disputed", reason="Precio")  # skipped by both
    preview = selectors.payment_preview(client, amount=Decimal(amount), currency="MXN")
    payment = services.payment_record(by=gestora, client=client, amount=Decimal(amount), received_on=TODAY)
    recorded = [(a.invoice.number, a.amount) for a in payment.allocations.select_related("invoice").order_by("id")]
    assert [(invoice.number, paid) for invoice, paid, _left in preview.rows] == recorded
    assert preview.credit == payment.unallocated
    for invoice, _paid, left in preview.rows:
        invoice.refresh_from_db()
        assert invoice.open_balance == left


def test_the_payment_form_shows_what_is_owed_and_previews_by_post(client, client_with_invoices, gestora):
    from django.urls import reverse

    debtor, old, mid, new = client_with_invoices
    client.force_login(gestora)
    url = reverse("payment_create", args=[debtor.pk])
    html = client.get(url).content.decode()
    assert 'data-testid="owed"' in html and "$1,800.00" in html and "$1,500.00 vencido" in html
    assert 'id="payment-preview"' in html and 'hx-post="' in html
    hx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "payment-preview"}
    part = client.post(url, {"amount": "1200.00", "currency": "mxn"}, **hx).content.decode()
    assert "A-OLD" in part and "B-MID" in part and "C-NEW" not in part
    assert "$1,000.00" in part and "$200.00" in part and "$300.00" in part  # paid, paid, left on B-MID
    assert Payment.objects.count() == 0  # a preview records nothing
    part = client.post(url, {"amount": "2000.00", "currency": "MXN"}, **hx).content.decode()
    assert "Quedan $200.00 como saldo a favor del cliente." in part
    # Bad input: no preview, no error page.
    part = client.post(url, {"amount": "abc", "currency": "MXN"}, **hx)
    assert part.status_code == 200 and b"payment-preview" not in part.content
