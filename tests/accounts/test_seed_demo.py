"""seed_demo: a deterministic demo portfolio whose money adds up, seeded once."""

import datetime as dt
import io
import re
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from accounts import demo, services
from accounts.models import Client, Contact, Interaction, Invoice, Payment, PaymentAllocation
from accounts.roles import GROUP_NAMES, Role
from accounts.selectors import BUCKETS, COLLECTIBLE, aging_bucket

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 3, 15)
CLIENTS = 30


def seed(*args: str, clients: int = CLIENTS) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--clients", str(clients), "--today", TODAY.isoformat(), *args, stdout=out)
    return out.getvalue()


def fingerprint():
    """Everything that makes the portfolio, without database ids (they differ between runs)."""
    return (
        sorted(
            Client.objects.values_list(
                "tax_id", "legal_name", "kind", "segment__code", "collector__username", "status", "currency",
                "country", "time_zone", "credit_limit", "payment_terms_days", "client_since", "business_group__name",
            )
        ),
        sorted(Contact.objects.values_list("client__tax_id", "role", "name", "email", "phone", "whatsapp")),
        sorted(
            Invoice.objects.values_list(
                "number", "client__tax_id", "issue_date", "due_date", "currency", "amount", "amount_paid", "status"
            )
        ),
        sorted(
            Payment.objects.values_list("client__tax_id", "reference", "received_on", "amount", "unallocated", "method")
        ),
        sorted(PaymentAllocation.objects.values_list("payment__reference", "invoice__number", "amount")),
        sorted(
            Interaction.objects.values_list(
                "client__tax_id", "occurred_at", "kind", "outcome", "summary", "body", "next_action_on"
            )
        ),
    )  # fmt: skip


def test_the_same_seed_and_day_give_the_same_portfolio():
    seed("--seed", "7")
    first = fingerprint()
    assert len(first[2]) > CLIENTS * 5  # invoices

    seed("--seed", "7", "--reset")
    assert fingerprint() == first

    # The chunk size only changes how rows are batched, not what they are.
    seed("--seed", "7", "--reset", "--chunk-size", "7")
    assert fingerprint() == first

    seed("--seed", "8", "--reset")
    assert fingerprint() != first


def test_the_history_depends_on_the_day_it_ends():
    seed("--seed", "7")
    first = fingerprint()
    call_command(
        "seed_demo", "--clients", str(CLIENTS), "--seed", "7", "--today", "2026-04-01", "--reset", stdout=io.StringIO()
    )
    assert fingerprint() != first  # fmt: skip


def test_every_invoice_and_payment_adds_up():
    seed()
    allocated_to_invoice = defaultdict(Decimal)
    allocated_from_payment = defaultdict(Decimal)
    for alloc in PaymentAllocation.objects.select_related("payment", "invoice"):
        assert alloc.amount > 0
        assert alloc.payment.client_id == alloc.invoice.client_id
        assert alloc.payment.currency == alloc.invoice.currency
        assert alloc.payment.received_on >= alloc.invoice.issue_date
        allocated_to_invoice[alloc.invoice_id] += alloc.amount
        allocated_from_payment[alloc.payment_id] += alloc.amount

    invoices = list(Invoice.objects.all())
    for inv in invoices:
        assert inv.amount_paid == allocated_to_invoice[inv.pk], inv.number
        assert inv.open_balance == inv.amount - inv.amount_paid
        assert inv.due_date >= inv.issue_date
        if inv.status == Invoice.Status.PAID:
            assert inv.amount_paid == inv.amount
        elif inv.status == Invoice.Status.OPEN:
            assert inv.amount_paid == 0
        elif inv.status == Invoice.Status.PARTIALLY_PAID:
            assert 0 < inv.amount_paid < inv.amount
        elif inv.status == Invoice.Status.CANCELLED:
            assert inv.amount_paid == 0
    for payment in Payment.objects.all():
        assert payment.unallocated == payment.amount - allocated_from_payment[payment.pk], payment.reference
        assert 0 <= payment.unallocated <= payment.amount
    assert len({inv.number for inv in invoices}) == len(invoices)


def test_every_aging_bucket_is_populated():
    seed()
    buckets = Counter(
        Invoice.objects.filter(COLLECTIBLE).annotate(bucket=aging_bucket(TODAY)).values_list("bucket", flat=True)
    )
    assert set(buckets) == {b.code for b in BUCKETS}, buckets


def test_the_five_kinds_of_late_payer_show_in_the_data():
    out = seed()
    for profile in demo.PROFILES:
        assert profile in out  # the summary counts clients per profile

    allocations = list(PaymentAllocation.objects.select_related("payment", "invoice"))
    days_late = [(a.payment.received_on - a.invoice.due_date).days for a in allocations]
    # Punctual payers pay on or before the due date.
    assert sum(d <= 0 for d in days_late) > len(days_late) / 3
    # Casual: a few days late now and then; intentional: 20–45 days late, but in full.
    assert any(1 <= d <= 25 for d in days_late)
    assert any(20 <= d <= 52 and a.amount == a.invoice.amount for d, a in zip(days_late, allocations, strict=True))
    # Chronic: installments, and invoices still partially paid.
    assert Invoice.objects.annotate(n=Count("allocations")).filter(n__gte=2).exists()
    assert Invoice.objects.filter(status=Invoice.Status.PARTIALLY_PAID).exists()
    # Negligent: old debts nobody has paid a cent of, and escalation up to the guarantor.
    assert Invoice.objects.filter(status=Invoice.Status.OPEN, due_date__lt=TODAY - dt.timedelta(days=120)).exists()
    assert Interaction.objects.filter(contact__role=Contact.Role.GUARANTOR).exists()
    # Por circunstancias: disputed invoices, each with the complaint in its timeline.
    disputed = list(Invoice.objects.filter(status=Invoice.Status.DISPUTED))
    assert disputed
    for inv in disputed:
        assert inv.interactions.filter(outcome=Interaction.Outcome.DISPUTE).exists(), inv.number
        assert inv.interactions.filter(kind=Interaction.Kind.NOTE).exists(), inv.number
    # Overpayments and advances leave client credit (saldo a favor).
    assert Payment.objects.filter(unallocated__gt=0).exists()


def test_the_history_ends_yesterday_with_next_steps_around_today():
    seed()
    assert not Payment.objects.filter(received_on__gte=TODAY).exists()
    assert not Invoice.objects.filter(issue_date__gte=TODAY).exists()
    assert Invoice.objects.filter(due_date__gte=TODAY).exists()  # some not yet due
    latest = Interaction.objects.order_by("-occurred_at").first().occurred_at
    assert latest.date() < TODAY
    next_steps = list(Interaction.objects.filter(next_action_on__isnull=False).values_list("next_action_on", flat=True))
    assert next_steps
    assert all(day >= TODAY - dt.timedelta(days=10) for day in next_steps)
    assert any(day <= TODAY for day in next_steps) and any(day > TODAY for day in next_steps)
    assert Interaction.objects.filter(kind=Interaction.Kind.CALL).exclude(outcome="").exists()
    assert Interaction.objects.filter(kind=Interaction.Kind.SYSTEM, summary__startswith="Pago recibido").exists()


def test_clients_and_contacts_look_real_and_pass_validation():
    seed(clients=60)
    clients = list(Client.objects.all())
    assert {c.segment.code for c in clients} == {"cuenta-clave", "regular", "esporadico", "alto-riesgo"}
    assert {c.kind for c in clients} == {Client.Kind.COMPANY, Client.Kind.PERSON}
    assert Counter(c.currency for c in clients).most_common(1)[0][0] == "MXN"
    assert all(c.payment_terms_days in (15, 30, 45, 60) for c in clients)
    assert len({c.tax_id for c in clients}) == len(clients)
    rfc = re.compile(r"^[A-Z]{3,4}\d{6}[A-Z0-9]{3}$")
    assert all(rfc.match(c.tax_id) for c in clients if c.country == "MX")
    for client in clients:
        client.full_clean(validate_unique=False, validate_constraints=False)
        roles = [c.role for c in client.contacts.all()]
        assert 1 <= len(roles) <= 3 and Contact.Role.BILLING in roles

    for contact in Contact.objects.all():
        contact.full_clean(validate_unique=False, validate_constraints=False)
        domain = contact.email.rsplit("@", 1)[1]
        assert domain.endswith((".example.com", "example.net", "example.org")), contact.email
    assert Contact.objects.filter(phone__startswith="+52 ").exists()
    for invoice in Invoice.objects.all():
        invoice.full_clean(exclude=["open_balance"], validate_unique=False, validate_constraints=False)
    for payment in Payment.objects.all():
        payment.full_clean(validate_unique=False, validate_constraints=False)
    for entry in Interaction.objects.all():
        entry.full_clean(validate_unique=False, validate_constraints=False)


def test_demo_users_are_in_their_groups_and_log_in_with_the_documented_password():
    seed()
    User = get_user_model()
    expected = {
        "admin": GROUP_NAMES[Role.ADMIN],
        "gerente": GROUP_NAMES[Role.MANAGER],
        "gestor1": GROUP_NAMES[Role.COLLECTOR],
        "gestor2": GROUP_NAMES[Role.COLLECTOR],
        "gestor3": GROUP_NAMES[Role.COLLECTOR],
    }
    for username, group in expected.items():
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert user.email == f"{username}@example.com" and user.first_name and user.last_name
        assert authenticate(None, username=username, password=demo.DEMO_PASSWORD) == user
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert not User.objects.get(username="gestor1").is_staff

    collectors = Counter(Client.objects.values_list("collector__username", flat=True))
    assert {"gestor1", "gestor2", "gestor3"} <= set(collectors)
    assert set(collectors) <= {"gestor1", "gestor2", "gestor3", None}


def test_an_existing_demo_user_keeps_its_password():
    User = get_user_model()
    User.objects.create_user("gestor1", password="cambiada-por-el-usuario")
    seed()
    assert authenticate(None, username="gestor1", password="cambiada-por-el-usuario") is not None
    assert User.objects.get(username="gestor1").groups.filter(name=GROUP_NAMES[Role.COLLECTOR]).exists()


def test_if_empty_seeds_only_the_first_time():
    seed("--if-empty")
    counts = (Client.objects.count(), Invoice.objects.count(), Interaction.objects.count())
    assert counts[0] == CLIENTS

    out = seed("--if-empty", clients=5)
    assert "nothing to do" in out
    assert (Client.objects.count(), Invoice.objects.count(), Interaction.objects.count()) == counts


def test_seeding_over_existing_clients_is_refused_without_reset():
    seed()
    with pytest.raises(CommandError, match="--reset"):
        seed()
    assert Client.objects.count() == CLIENTS


def test_reset_deletes_the_old_ledger_and_seeds_again():
    seed("--seed", "1")
    # A correction protects the entry it corrects; reset must still get through.
    gerente = get_user_model().objects.get(username="gerente")
    client = Client.objects.order_by("pk").first()
    original = client.interactions.order_by("pk").first()
    services.interaction_log(
        by=gerente, client=client, kind=Interaction.Kind.NOTE, summary="Corrección de prueba", corrects=original
    )
    old_ids = set(Client.objects.values_list("pk", flat=True))

    out = seed("--seed", "2", "--reset", clients=12)

    assert "Deleting 30 clients" in out
    assert Client.objects.count() == 12
    assert not Client.objects.filter(pk__in=old_ids).exists()
    assert not Interaction.objects.filter(summary="Corrección de prueba").exists()
    assert Invoice.objects.exclude(client__in=Client.objects.all()).count() == 0
    assert get_user_model().objects.filter(username__in=["admin", "gerente"]).count() == 2


def test_nonsense_arguments_are_refused():
    with pytest.raises(CommandError):
        seed(clients=0)
    with pytest.raises(CommandError):
        seed("--if-empty", "--reset")
    assert not Client.objects.exists()


def test_payment_entries_read_as_the_services_write_them():
    seed()
    payments = Payment.objects.filter(allocations__isnull=False).distinct().order_by("pk")[:25]
    for payment in payments:
        allocations = list(
            payment.allocations.select_related("invoice").order_by("invoice__due_date", "invoice__number")
        )
        summary = services._payment_summary(payment, allocations)
        entry = Interaction.objects.filter(client=payment.client, kind=Interaction.Kind.SYSTEM, summary=summary).first()
        assert entry is not None, summary
        assert set(entry.invoices.all()) == {a.invoice for a in allocations}
