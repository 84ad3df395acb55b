"""Invariants held by the database itself, and the services that write the ledger."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from accounts import services
from accounts.models import Client, Contact, Interaction, Invoice, Payment
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


@pytest.fixture
def client_(gerente, gestora):
    return make_client(by=gerente, collector=gestora)


def _raw_update(sql, params):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_refuses_amount_paid_above_the_amount(client_, gerente):
    inv = make_invoice(by=gerente, client=client_, amount="100.00")
    with pytest.raises(IntegrityError):
        _raw_update("UPDATE accounts_invoice SET amount_paid = 150, status = 'partially_paid' WHERE id = %s", [inv.pk])


def test_the_database_refuses_a_paid_status_that_the_money_contradicts(client_, gerente):
    inv = make_invoice(by=gerente, client=client_, amount="100.00")
    with pytest.raises(IntegrityError):
        _raw_update("UPDATE accounts_invoice SET status = 'paid' WHERE id = %s", [inv.pk])


def test_open_balance_is_computed_by_the_database(client_, gerente):
    inv = make_invoice(by=gerente, client=client_, amount="100.00")
    _raw_update("UPDATE accounts_invoice SET amount_paid = 40, status = 'partially_paid' WHERE id = %s", [inv.pk])
    inv.refresh_from_db()
    assert inv.open_balance == Decimal("60.00")


def test_invoice_numbers_are_unique(client_, gerente):
    make_invoice(by=gerente, client=client_, number="F-1")
    with pytest.raises(ValidationError) as exc:
        make_invoice(by=gerente, client=client_, number="F-1")
    assert "number" in exc.value.message_dict


def test_due_date_before_issue_date_is_refused(client_, gerente):
    with pytest.raises(ValidationError):
        services.invoice_create(
            by=gerente,
            client=client_,
            number="X",
            issue_date=TODAY,
            due_date=TODAY - dt.timedelta(days=1),
            amount=Decimal("10"),
        )


def test_due_date_defaults_to_the_clients_payment_terms(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, payment_terms_days=45)
    inv = services.invoice_create(by=gerente, client=client, number="T-45", issue_date=TODAY, amount=Decimal("10"))
    assert inv.due_date == TODAY + dt.timedelta(days=45)
    assert inv.currency == "MXN"


def test_money_is_stored_as_decimal_to_the_cent(client_, gerente):
    inv = make_invoice(by=gerente, client=client_, amount="100.005")
    inv.refresh_from_db()
    assert inv.amount == Decimal("100.01")
    assert isinstance(inv.amount, Decimal)


def test_the_timeline_is_append_only_in_the_database(client_, gestora):
    entry = services.interaction_log(by=gestora, client=client_, kind=Interaction.Kind.CALL, summary="Llamada")
    with pytest.raises(ValidationError):
        entry.summary = "cambiado"
        entry.save()
    with pytest.raises(Exception, match="append-only"):
        _raw_update("UPDATE accounts_interaction SET summary = 'x' WHERE id = %s", [entry.pk])


def test_a_correction_is_a_new_entry_pointing_at_the_old_one(client_, gestora):
    entry = services.interaction_log(
        by=gestora, client=client_, kind=Interaction.Kind.CALL, summary="Promete pagar el 5"
    )
    fix = services.interaction_log(
        by=gestora,
        client=client_,
        kind=Interaction.Kind.NOTE,
        summary="Corrección: promete pagar el 15",
        corrects=entry,
    )
    assert fix.corrects == entry
    entry.refresh_from_db()
    assert entry.summary == "Promete pagar el 5"


def test_removing_a_contact_keeps_the_history(client_, gestora):
    contact = services.contact_create(by=gestora, client=client_, name="Pedro Páramo", email="pp@example.mx")
    entry = services.interaction_log(
        by=gestora, client=client_, kind=Interaction.Kind.CALL, summary="Llamada", contact=contact
    )
    contact.delete()
    entry.refresh_from_db()
    assert entry.contact is None and entry.summary == "Llamada"


def test_tax_ids_are_unique_when_given(gerente):
    make_client(by=gerente, tax_id="AAA010101AAA")
    with pytest.raises(ValidationError):
        make_client(by=gerente, tax_id="aaa010101aaa")
    make_client(by=gerente, tax_id="")
    make_client(by=gerente, tax_id="")  # many clients without a tax id are fine


def test_currency_and_time_zone_are_validated(gerente):
    with pytest.raises(ValidationError) as exc:
        make_client(by=gerente, currency="pesos", time_zone="Mars/Olympus")
    assert {"currency", "time_zone"} <= set(exc.value.message_dict)
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.create(legal_name="X", segment=segment(), currency="mxn")


def test_payment_references_are_unique_in_the_database(client_):
    Payment.objects.create(client=client_, received_on=TODAY, amount=1, unallocated=1, currency="MXN", reference="R")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(
            client=client_, received_on=TODAY, amount=1, unallocated=1, currency="MXN", reference="R"
        )
    Payment.objects.create(client=client_, received_on=TODAY, amount=1, unallocated=1, currency="MXN", reference="")
    Payment.objects.create(client=client_, received_on=TODAY, amount=1, unallocated=1, currency="MXN", reference="")


def test_only_managers_create_clients_and_invoices(gestora, client_):
    with pytest.raises(PermissionDenied):
        make_client(by=gestora)
    with pytest.raises(PermissionDenied):
        make_invoice(by=gestora, client=client_)


def test_a_collector_works_only_their_own_clients(gestor, client_):
    with pytest.raises(PermissionDenied):
        services.interaction_log(by=gestor, client=client_, kind=Interaction.Kind.NOTE, summary="x")
    with pytest.raises(PermissionDenied):
        services.contact_create(by=gestor, client=client_, name="X")


def test_status_changes_need_a_reason_and_go_to_the_timeline(client_, gerente):
    inv = make_invoice(by=gerente, client=client_)
    with pytest.raises(ValidationError):
        services.invoice_set_status(by=gerente, invoice=inv, status=Invoice.Status.WRITTEN_OFF, reason=" ")
    services.invoice_set_status(by=gerente, invoice=inv, status=Invoice.Status.WRITTEN_OFF, reason="Incobrable")
    inv.refresh_from_db()
    assert inv.status == Invoice.Status.WRITTEN_OFF
    assert Interaction.objects.filter(client=client_, body="Incobrable", invoices=inv).exists()
    services.invoice_set_status(by=gerente, invoice=inv, status=Invoice.Status.OPEN, reason="Reactivada")
    inv.refresh_from_db()
    assert inv.status == Invoice.Status.OPEN


def test_an_invoice_with_payments_cannot_be_cancelled(client_, gerente, gestora):
    inv = make_invoice(by=gerente, client=client_, amount="100.00")
    services.payment_record(by=gestora, client=client_, amount=Decimal("10.00"), received_on=TODAY)
    with pytest.raises(ValidationError):
        services.invoice_set_status(by=gerente, invoice=inv, status=Invoice.Status.CANCELLED, reason="Error")


def test_reassignment_is_set_based_and_logged(gerente, gestora, gestor):
    clients = [make_client(by=gerente, collector=gestora) for _ in range(3)]
    changed = services.clients_assign_collector(by=gerente, client_ids=[c.pk for c in clients], collector=gestor)
    assert changed == 3
    assert set(Client.objects.values_list("collector", flat=True)) == {gestor.pk}
    assert Interaction.objects.filter(summary__contains="reasignada").count() == 3
    assert services.clients_assign_collector(by=gerente, client_ids=[c.pk for c in clients], collector=gestor) == 0


def test_reassignment_only_to_collectors(gerente, nobody, client_):
    with pytest.raises(ValidationError):
        services.clients_assign_collector(by=gerente, client_ids=[client_.pk], collector=nobody)


def test_client_update_logs_what_changed(client_, gerente):
    services.client_update(by=gerente, client=client_, status=Client.Status.LEGAL, credit_limit=Decimal("5000.00"))
    entry = Interaction.objects.filter(client=client_).first()
    assert "En vía judicial" in entry.body
    assert "5000" in entry.body


def test_opt_outs_are_recorded_on_the_timeline(client_, gestora):
    contact = services.contact_create(by=gestora, client=client_, name="Ana", role=Contact.Role.GUARANTOR)
    services.contact_update(by=gestora, contact=contact, opt_out_whatsapp=True)
    assert Interaction.objects.filter(client=client_, body__icontains="WhatsApp").exists()
    contact.refresh_from_db()
    assert contact.opted_out("whatsapp") and not contact.opted_out("email")


def test_interactions_cannot_reference_other_clients_data(gerente, gestora, client_):
    other = make_client(by=gerente, collector=gestora)
    foreign = make_invoice(by=gerente, client=other)
    with pytest.raises(ValidationError) as exc:
        services.interaction_log(
            by=gestora, client=client_, kind=Interaction.Kind.CALL, summary="x", invoices=[foreign]
        )
    assert "invoices" in exc.value.message_dict
