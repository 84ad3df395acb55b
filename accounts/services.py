"""Every write to the ledger goes through a function here.

Conventions: ``<noun>_<verb>``, keyword-only typed arguments, the acting user
passed in as ``by``, one transaction per call, side effects only after commit. Errors are
``ValidationError`` with field names, so forms and the API can show them next to the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import clock, numbers

from . import audit, rules, signals, texts
from .models import (
    ZERO,
    BusinessGroup,
    Client,
    Contact,
    ContactRole,
    Interaction,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    Segment,
    UserPreference,
    money_errors,
)
from .roles import is_collector, is_manager
from .utils import actor

CENT = Decimal("0.01")


def to_money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


# --- permissions (enforced here as well as in views: services are the last line) ---------


def ensure_can_work(user, client: Client) -> None:
    """Managers work every client; a collector only the clients assigned to them."""
    if user is None:  # the system itself (imports, workers)
        return
    if is_manager(user):
        return
    if is_collector(user) and client.collector_id == user.pk:
        return
    raise PermissionDenied(_("No tiene permiso para trabajar este cliente."))


def ensure_manager(user) -> None:
    if user is not None and not is_manager(user):
        raise PermissionDenied(_("Esta acción requiere el rol de gerente."))


def _system_event(
    *,
    client: Client,
    by,
    summary: str,
    body: str = "",
    invoices: Iterable[Invoice] = (),
    occurred_at: dt.datetime | None = None,
) -> Interaction:
    entry = Interaction(
        client=client,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        **texts.columns("summary", summary),
        body=body,
        author=actor(by),
        occurred_at=occurred_at or clock.now(),
    )
    entry.save()
    invoices = list(invoices)
    if invoices:
        entry.invoices.add(*invoices)
    return entry


def _full_clean(obj, *, exclude: Sequence[str] = ()) -> None:
    """The model's own validation, plus the money rules (ISO 4217 currency, the largest
    amount) that every single-row write of money passes: forms, API, webhook."""
    errors = money_errors(obj, exclude=exclude)
    try:
        obj.full_clean(exclude=list(exclude), validate_constraints=True)
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


# --- clients -------------------------------------------------------------------------------

CLIENT_FIELDS = (
    "legal_name",
    "trade_name",
    "tax_id",
    "kind",
    "segment",
    "collector",
    "credit_limit",
    "payment_terms_days",
    "currency",
    "language",
    "time_zone",
    "country",
    "business_group",
    "client_since",
    "status",
    "address",
    "notes",
)


def client_create(
    *,
    by: AbstractBaseUser | None,
    legal_name: str,
    segment: Segment,
    trade_name: str = "",
    tax_id: str = "",
    kind: str = Client.Kind.COMPANY,
    collector: AbstractBaseUser | None = None,
    credit_limit: Decimal = ZERO,
    payment_terms_days: int = 30,
    currency: str = "MXN",
    language: str = "es",
    time_zone: str = "America/Mexico_City",
    country: str = "MX",
    business_group: BusinessGroup | None = None,
    client_since: dt.date | None = None,
    status: str = Client.Status.ACTIVE,
    address: str = "",
    notes: str = "",
) -> Client:
    ensure_manager(by)
    client = Client(
        legal_name=legal_name.strip(),
        trade_name=trade_name.strip(),
        tax_id=tax_id.strip().upper(),
        kind=kind,
        segment=segment,
        collector=collector,
        credit_limit=to_money(credit_limit),
        payment_terms_days=payment_terms_days,
        currency=currency.upper(),
        language=language,
        time_zone=time_zone,
        country=country.upper(),
        business_group=business_group,
        client_since=client_since,
        status=status,
        address=address,
        notes=notes,
    )
    _full_clean(client)
    with transaction.atomic():
        client.save()
        _system_event(client=client, by=by, summary=texts.CLIENT_CREATED())
    return client


def client_update(*, by: AbstractBaseUser | None, client: Client, **changes) -> Client:
    """Change master data. Status and collector changes are written to the timeline."""
    ensure_manager(by)
    unknown = set(changes) - set(CLIENT_FIELDS)
    if unknown:
        raise TypeError(f"client_update got unknown fields: {sorted(unknown)}")
    if "tax_id" in changes:
        changes["tax_id"] = (changes["tax_id"] or "").strip().upper()
    if "currency" in changes:
        changes["currency"] = changes["currency"].upper()
    changed = {}
    for field, value in changes.items():
        old = getattr(client, field)
        if old != value:
            changed[field] = (old, value)
            setattr(client, field, value)
    if not changed:
        return client
    client.updated_at = clock.now()
    _full_clean(client)
    with transaction.atomic():
        client.save(update_fields=[*changed, "updated_at"])
        lines = []
        for field, (old, new) in changed.items():
            label = Client._meta.get_field(field).verbose_name
            if field == "status":
                old, new = Client.Status(old).label, Client.Status(new).label
            lines.append(f"{label}: {old or '—'} → {new or '—'}")
        _system_event(client=client, by=by, summary=texts.CLIENT_UPDATED(), body="\n".join(lines))
    return client


def clients_assign_collector(
    *, by: AbstractBaseUser | None, client_ids: Iterable[int], collector: AbstractBaseUser | None
) -> int:
    """Reassign many clients at once (set-based); returns how many changed."""
    ensure_manager(by)
    if collector is not None and not is_collector(collector):
        raise ValidationError({"collector": _("El usuario elegido no es gestor de cobranza.")})
    ids = list(client_ids)
    with transaction.atomic():
        to_change = list(Client.objects.filter(pk__in=ids).exclude(collector=collector).values_list("pk", flat=True))
        if not to_change:
            return 0
        before = audit.snapshot(Client.objects.filter(pk__in=to_change))
        Client.objects.filter(pk__in=to_change).update(collector=collector, updated_at=clock.now())
        audit.log_updates(by=by, before=before, after=Client.objects.filter(pk__in=to_change))
        name = (collector.get_full_name() or collector.get_username()) if collector else texts.UNASSIGNED()
        summary = texts.PORTFOLIO_REASSIGNED(name=name)
        Interaction.objects.bulk_create(
            Interaction(
                client_id=pk,
                kind=Interaction.Kind.SYSTEM,
                direction=Interaction.Direction.INTERNAL,
                **texts.columns("summary", summary),
                author=actor(by),
            )
            for pk in to_change
        )
    return len(to_change)


# --- contacts ------------------------------------------------------------------------------

CONTACT_FIELDS = (
    "role",
    "name",
    "position",
    "email",
    "phone",
    "whatsapp",
    "preferred_channel",
    "opt_out_email",
    "opt_out_sms",
    "opt_out_whatsapp",
    "opt_out_phone",
    "opt_out_letter",
    "is_active",
    "notes",
)


def contact_create(*, by: AbstractBaseUser | None, client: Client, name: str, **fields) -> Contact:
    ensure_can_work(by, client)
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"contact_create got unknown fields: {sorted(unknown)}")
    contact = Contact(client=client, name=name.strip(), **fields)
    _full_clean(contact)
    with transaction.atomic():
        contact.save()
        _system_event(
            client=client,
            by=by,
            summary=texts.CONTACT_CREATED(name=contact.name, role=texts.choice(ContactRole, contact.role)),
        )
    return contact


def contact_update(*, by: AbstractBaseUser | None, contact: Contact, **changes) -> Contact:
    ensure_can_work(by, contact.client)
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"contact_update got unknown fields: {sorted(unknown)}")
    changed = [f for f, v in changes.items() if getattr(contact, f) != v]
    if not changed:
        return contact
    for field in changed:
        setattr(contact, field, changes[field])
    _full_clean(contact)
    with transaction.atomic():
        contact.save(update_fields=changed)
        opt_outs = [Contact._meta.get_field(f).verbose_name for f in changed if f.startswith("opt_out_") and changes[f]]
        summary = texts.CONTACT_UPDATED(name=contact.name)
        body = (
            (_("Se registró la baja de: %(channels)s") % {"channels": ", ".join(map(str, opt_outs))})
            if opt_outs
            else ""
        )
        _system_event(client=contact.client, by=by, summary=summary, body=body)
    return contact


# --- invoices ------------------------------------------------------------------------------


def _payment_status(amount: Decimal, amount_paid: Decimal) -> str:
    if amount_paid >= amount:
        return Invoice.Status.PAID
    if amount_paid > 0:
        return Invoice.Status.PARTIALLY_PAID
    return Invoice.Status.OPEN


def invoice_create(
    *,
    by: AbstractBaseUser | None,
    client: Client,
    number: str,
    issue_date: dt.date,
    due_date: dt.date | None = None,
    amount: Decimal,
    currency: str | None = None,
    external_ref: str = "",
    description: str = "",
) -> Invoice:
    ensure_manager(by)
    invoice = Invoice(
        client=client,
        number=number.strip(),
        issue_date=issue_date,
        due_date=due_date or issue_date + dt.timedelta(days=client.payment_terms_days),
        amount=to_money(amount),
        currency=(currency or client.currency).upper(),
        external_ref=external_ref.strip(),
        description=description.strip(),
    )
    _full_clean(invoice, exclude=["open_balance"])
    if invoice.due_date < invoice.issue_date:
        raise ValidationError({"due_date": _("El vencimiento no puede ser anterior a la fecha de emisión.")})
    with transaction.atomic():
        try:
            with transaction.atomic():
                invoice.save()
        except IntegrityError as exc:
            # Concurrent insert of the same number: report it on the field, like full_clean.
            raise ValidationError({"number": _("Ya existe una factura con este folio.")}) from exc
        _system_event(
            client=client,
            by=by,
            invoices=[invoice],
            summary=texts.INVOICE_ISSUED(
                number=invoice.number,
                amount=texts.money(invoice.amount, invoice.currency),
                due=texts.date(invoice.due_date),
            ),
        )
    return invoice


# Statuses a person may set by hand, and which of them take the invoice out of collection.
MANUAL_STATUSES = (Invoice.Status.DISPUTED, Invoice.Status.WRITTEN_OFF, Invoice.Status.CANCELLED)


def invoices_set_disputed(
    *, by: AbstractBaseUser | None, client: Client, invoices: Sequence[Invoice], disputed: bool, reason: str
) -> list[Invoice]:
    """Put a client's open invoices in dispute (out of collection) or take them out of it
    (back to their payment-derived status). Unlike ``invoice_set_status`` a collector may do
    this for their own client: a complaint is opened where it is heard."""
    ensure_can_work(by, client)
    if not reason.strip():
        raise ValidationError({"reason": _("Indique el motivo.")})
    if any(inv.client_id != client.pk for inv in invoices):
        raise ValidationError({"invoices": _("Alguna factura no pertenece a este cliente.")})
    with transaction.atomic():
        locked = list(Invoice.objects.select_for_update().filter(pk__in=[inv.pk for inv in invoices]).order_by("pk"))
        before = audit.snapshot(locked)
        changed = []
        now = clock.now()
        for invoice in locked:
            if disputed and invoice.status in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID):
                invoice.status = Invoice.Status.DISPUTED
            elif not disputed and invoice.status == Invoice.Status.DISPUTED:
                invoice.status = _payment_status(invoice.amount, invoice.amount_paid)
            else:
                continue
            invoice.updated_at = now
            changed.append(invoice)
        Invoice.objects.bulk_update(changed, ["status", "updated_at"])
        audit.log_updates(by=by, before=before, after=changed)
        if changed:
            numbers = ", ".join(inv.number for inv in changed)
            summary = (texts.INVOICES_DISPUTED if disputed else texts.INVOICES_UNDISPUTED)(list=numbers)
            _system_event(client=client, by=by, invoices=changed, summary=summary, body=reason.strip())
    return changed


def invoice_set_status(*, by: AbstractBaseUser | None, invoice: Invoice, status: str, reason: str) -> Invoice:
    """Dispute, write off or cancel an invoice, or return it to its payment-derived status
    (``status="open"``). A reason is mandatory: it goes to the timeline."""
    ensure_manager(by)
    if not reason.strip():
        raise ValidationError({"reason": _("Indique el motivo.")})
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if status in Invoice.PAYMENT_STATUSES:
            new = _payment_status(invoice.amount, invoice.amount_paid)
        elif status in MANUAL_STATUSES:
            if status == Invoice.Status.CANCELLED and invoice.amount_paid > 0:
                raise ValidationError({"status": _("No se puede cancelar una factura con pagos aplicados.")})
            new = status
        else:
            raise ValidationError({"status": _("Estado no válido.")})
        if new == invoice.status:
            return invoice
        old_label = texts.choice(InvoiceStatus, invoice.status)
        invoice.status = new
        invoice.updated_at = clock.now()
        invoice.save(update_fields=["status", "updated_at"])
        _system_event(
            client=invoice.client,
            by=by,
            invoices=[invoice],
            summary=texts.INVOICE_STATUS(
                number=invoice.number, old=old_label, new=texts.choice(InvoiceStatus, invoice.status)
            ),
            body=reason.strip(),
        )
    return invoice


# --- payments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationRequest:
    invoice_id: int
    amount: Decimal


def _apply(payment: Payment, invoices: Sequence[Invoice], wanted: dict[int, Decimal] | None) -> list[PaymentAllocation]:
    """Apply ``payment.unallocated`` to locked invoices, oldest due first unless ``wanted``
    names amounts. Updates invoices and the payment in memory; the caller saves."""
    remaining = payment.unallocated
    allocations = []
    if wanted is None:
        plan = rules.auto_allocation(invoices, remaining)
    else:
        plan = [(invoice, wanted.get(invoice.pk, ZERO)) for invoice in invoices]
    for invoice, take in plan:
        if remaining <= 0:
            break
        if take <= 0:
            continue
        invoice.amount_paid += take
        if invoice.status in Invoice.PAYMENT_STATUSES:
            invoice.status = _payment_status(invoice.amount, invoice.amount_paid)
        invoice.updated_at = clock.now()
        remaining -= take
        allocations.append(PaymentAllocation(payment=payment, invoice=invoice, amount=take))
    payment.unallocated = remaining
    return allocations


def _merge_allocations(payment: Payment, allocations: list[PaymentAllocation]) -> None:
    """Save allocations; a second application to the same invoice adds to the first row."""
    existing = {
        a.invoice_id: a
        for a in PaymentAllocation.objects.filter(payment=payment, invoice__in=[a.invoice_id for a in allocations])
    }
    new = []
    for alloc in allocations:
        if alloc.invoice_id in existing:
            PaymentAllocation.objects.filter(pk=existing[alloc.invoice_id].pk).update(amount=F("amount") + alloc.amount)
        else:
            new.append(alloc)
    PaymentAllocation.objects.bulk_create(new)
    audit.log_creations(by=None, objects=new)  # by=None: the request's user, if any


def payment_record(
    *,
    by: AbstractBaseUser | None,
    client: Client,
    amount: Decimal,
    received_on: dt.date,
    currency: str | None = None,
    method: str = Payment.Method.TRANSFER,
    reference: str = "",
    allocations: Sequence[AllocationRequest] | None = None,
    notes: str = "",
    historical: bool = False,
) -> Payment:
    """Record a payment and apply it to invoices.

    ``historical=True`` (loading past payments: imports, demo data) dates the timeline entry
    on the day the money was received instead of now.

    With ``allocations=None`` the money goes to the client's collectible invoices in the same
    currency, oldest due date first (disputed invoices are skipped: they wait for their
    resolution); an explicit list applies just those amounts, and an empty list none.
    Whatever is not applied stays on the payment as client credit.

    A payment whose ``reference`` was already recorded for the same client, amount and
    currency is returned as is (``payment.created`` is False): a file or webhook delivered
    twice records one payment. A different payment under a known reference is an error.
    """
    ensure_can_work(by, client)
    amount = to_money(amount)
    currency = (currency or client.currency).upper()
    reference = reference.strip()
    payment = Payment(
        client=client,
        received_on=received_on,
        amount=amount,
        currency=currency,
        method=method,
        reference=reference,
        unallocated=amount,
        notes=notes,
        recorded_by=actor(by),
    )
    _full_clean(payment, exclude=["reference"] if reference else ())
    if received_on > clock.localdate() + dt.timedelta(days=1):
        raise ValidationError({"received_on": _("La fecha de pago no puede estar en el futuro.")})

    wanted = None
    if allocations is not None:  # an empty list: keep the whole payment as client credit
        wanted = {}
        for req in allocations:
            req_amount = to_money(req.amount)
            if req_amount < 0:
                raise ValidationError({"allocations": _("Los importes aplicados no pueden ser negativos.")})
            if req_amount > 0:
                wanted[int(req.invoice_id)] = wanted.get(int(req.invoice_id), ZERO) + req_amount
        if sum(wanted.values(), ZERO) > amount:
            raise ValidationError({"allocations": _("Lo aplicado a facturas supera el importe del pago.")})

    with transaction.atomic():
        if reference:
            duplicate = _existing_by_reference(client=client, amount=amount, currency=currency, reference=reference)
            if duplicate is not None:
                return duplicate
        # Lock the invoices first (in a stable order) so two payments for one client
        # cannot both read the same open balance.
        invoices_qs = Invoice.objects.select_for_update().filter(client=client).order_by(*rules.AUTO_ALLOCATION_ORDER)
        if wanted is not None:
            invoices = list(invoices_qs.filter(pk__in=wanted))
            _check_requested(invoices, wanted, currency)
        else:
            invoices = list(invoices_qs.filter(rules.auto_allocation_q(currency)))
        before = audit.snapshot(invoices)
        try:
            with transaction.atomic():
                payment.save()
        except IntegrityError:
            # Another request recorded this reference between our check and insert.
            duplicate = _existing_by_reference(client=client, amount=amount, currency=currency, reference=reference)
            if duplicate is not None:
                return duplicate
            raise
        new_allocations = _apply(payment, invoices, wanted)
        touched = [a.invoice for a in new_allocations]
        Invoice.objects.bulk_update(touched, ["amount_paid", "status", "updated_at"])
        PaymentAllocation.objects.bulk_create(new_allocations)
        audit.log_updates(by=by, before=before, after=touched)
        audit.log_creations(by=by, objects=new_allocations)
        payment.save(update_fields=["unallocated"])
        payment.created = True
        signals.payment_recorded.send(
            sender=Payment, payment=payment, allocations=new_allocations, historical=historical
        )
        _system_event(
            client=client,
            by=by,
            invoices=touched,
            summary=_payment_summary(payment, new_allocations),
            body=notes,
            occurred_at=_day_at_noon(received_on) if historical else None,
        )
    return payment


def _day_at_noon(day: dt.date) -> dt.datetime:
    moment = dt.datetime.combine(day, dt.time(12), tzinfo=timezone.get_current_timezone())
    return min(moment, clock.now())


def _existing_by_reference(*, client, amount, currency, reference) -> Payment | None:
    existing = Payment.objects.filter(reference=reference).first()
    if existing is None:
        return None
    if existing.client_id != client.pk or existing.amount != amount or existing.currency != currency:
        raise ValidationError(
            {"reference": _("La referencia %(ref)s ya corresponde a otro pago.") % {"ref": reference}}
        )
    existing.created = False
    return existing


def _check_requested(invoices: Sequence[Invoice], wanted: dict[int, Decimal], currency: str) -> None:
    found = {inv.pk: inv for inv in invoices}
    errors = []
    for invoice_id, req_amount in wanted.items():
        inv = found.get(invoice_id)
        if inv is None:
            errors.append(_("La factura %(id)s no es de este cliente.") % {"id": invoice_id})
            continue
        if inv.currency != currency:
            errors.append(
                _("La factura %(n)s está en %(c)s, no en %(p)s.") % {"n": inv.number, "c": inv.currency, "p": currency}
            )
        if inv.status == Invoice.Status.CANCELLED:
            errors.append(_("La factura %(n)s está cancelada.") % {"n": inv.number})
        if req_amount > inv.amount - inv.amount_paid:
            errors.append(
                _("A la factura %(n)s se le quiere aplicar %(a)s, pero su saldo es %(b)s.")
                % {"n": inv.number, "a": req_amount, "b": inv.amount - inv.amount_paid}
            )
    if errors:
        raise ValidationError({"allocations": errors})


def _payment_summary(payment: Payment, allocations: Sequence[PaymentAllocation]) -> texts.Text:
    parts: list = [texts.PAYMENT_RECEIVED(amount=texts.money(payment.amount, payment.currency))]
    if allocations:
        parts.append(" → " + ", ".join(a.invoice.number for a in allocations))
    if payment.unallocated > 0:
        parts += [" · ", texts.PAYMENT_CREDIT(credit=texts.money(payment.unallocated, payment.currency))]
    return texts.join(parts, sep="")


def client_apply_credit(*, by: AbstractBaseUser | None, client: Client) -> dict[str, Decimal]:
    """Apply the client's unallocated payments to its collectible invoices in the same
    currency, oldest first. Returns the amount applied per currency."""
    ensure_can_work(by, client)
    applied: dict[str, Decimal] = {}
    with transaction.atomic():
        payments = list(
            Payment.objects.select_for_update().filter(client=client, unallocated__gt=0).order_by("received_on", "id")
        )
        if not payments:
            return applied
        before_credit = audit.snapshot(
            Invoice.objects.filter(client=client, status__in=[Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID])
        )
        touched: dict[int, Invoice] = {}
        for payment in payments:
            invoices = list(
                Invoice.objects.select_for_update()
                .filter(rules.auto_allocation_q(payment.currency), client=client)
                .order_by(*rules.AUTO_ALLOCATION_ORDER)
            )
            # Reuse the in-memory objects already changed by an earlier payment.
            invoices = [touched.get(inv.pk, inv) for inv in invoices]
            before = payment.unallocated
            allocations = _apply(payment, invoices, None)
            if not allocations:
                continue
            applied[payment.currency] = applied.get(payment.currency, ZERO) + before - payment.unallocated
            for alloc in allocations:
                touched[alloc.invoice.pk] = alloc.invoice
            _merge_allocations(payment, allocations)
            payment.save(update_fields=["unallocated"])
        if touched:
            Invoice.objects.bulk_update(list(touched.values()), ["amount_paid", "status", "updated_at"])
            audit.log_updates(by=by, before=before_credit, after=touched.values())
            amounts = texts.join(
                [texts.money(amount, currency) for currency, amount in sorted(applied.items())], sep=", "
            )
            _system_event(
                client=client,
                by=by,
                invoices=list(touched.values()),
                summary=texts.CREDIT_APPLIED(amount=amounts),
            )
    return applied


# --- interactions --------------------------------------------------------------------------


def interaction_log_system(
    *,
    client: Client,
    kind: str,
    summary: str,
    direction: str,
    outcome: str = "",
    body: str = "",
    contact: Contact | None = None,
    invoices: Iterable[Invoice] = (),
    occurred_at: dt.datetime | None = None,
    only_if: tuple[str, Sequence] | None = None,
) -> Interaction | None:
    """``interaction_log`` for an entry the system writes from rows it has just read (a notice
    of a dispatch batch): the same rows — the entry and its invoices — in one statement, without
    the per-entry checks that guard what a person types (the contact and the invoices are the
    client's own by construction, the choices are constants).

    ``only_if``: a data-modifying statement with its parameters (``UPDATE … RETURNING``) run in
    the same statement; the entry is written only if it returned a row, and None is returned
    when it did not (a write fenced by a condition and its timeline entry, all or nothing, in
    one round trip)."""
    invoices = list(invoices)
    entry = Interaction(
        client=client,
        kind=kind,
        direction=direction,
        outcome=outcome or "",
        **texts.columns("summary", summary),
        body=body,
        contact=contact,
        author=None,
        occurred_at=occurred_at or clock.now(),
    )
    # The INSERT Django would run (defaults and pre_save included), and the invoice links taken
    # from its RETURNING in the same statement: one round trip, atomic, no explicit transaction.
    query = InsertQuery(Interaction)
    fields = [f for f in Interaction._meta.local_concrete_fields if not f.primary_key]
    query.insert_values(fields, [entry])
    compiler = query.get_compiler(using=router.db_for_write(Interaction))
    through = Interaction.invoices.through._meta
    entry_id, invoice_id = (through.get_field(name).column for name in ("interaction", "invoice"))
    links = (
        f"links AS (INSERT INTO {through.db_table} ({entry_id}, {invoice_id}) "  # noqa: S608 - the model's table
        "SELECT entry.id, invoice FROM entry, UNNEST(%s::bigint[]) AS invoice)"
    )
    invoice_ids = [inv.pk for inv in invoices]
    if only_if is None:
        compiler.returning_fields = [Interaction._meta.pk]
        [(insert, params)] = compiler.as_sql()
        sql = f"WITH entry AS ({insert}), {links} SELECT id FROM entry"  # noqa: S608 - Django's own INSERT
        params = [*params, invoice_ids]
    else:
        # The same INSERT, its values selected from the guard's rows: none, no entry.
        guard, guard_params = only_if
        [placeholders], [values] = compiler.assemble_as_sql(
            fields, [[compiler.prepare_value(f, compiler.pre_save_val(f, entry)) for f in fields]]
        )
        qn = compiler.connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in fields)
        insert = (
            f"INSERT INTO {qn(Interaction._meta.db_table)} ({columns}) "  # noqa: S608 - the model's table
            f"SELECT {', '.join(placeholders)} FROM guard LIMIT 1 RETURNING id"
        )
        sql = f"WITH guard AS ({guard}), entry AS ({insert}), {links} SELECT id FROM entry"  # noqa: S608 - as above
        params = [*guard_params, *values, invoice_ids]
    with connections[compiler.using].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    entry.pk = row[0]
    entry._state.adding = False
    return entry


def interaction_log(
    *,
    by: AbstractBaseUser | None,
    client: Client,
    kind: str,
    summary: str,
    direction: str = Interaction.Direction.OUTBOUND,
    outcome: str = "",
    body: str = "",
    contact: Contact | None = None,
    occurred_at: dt.datetime | None = None,
    next_action_on: dt.date | None = None,
    invoices: Iterable[Invoice] = (),
    corrects: Interaction | None = None,
    nonpayment_reason: str = "",
) -> Interaction:
    """Add an entry to the client's timeline (never edits one: corrections are new rows)."""
    ensure_can_work(by, client)
    invoices = list(invoices)
    errors = {}
    if contact is not None and contact.client_id != client.pk:
        errors["contact"] = _("El contacto no pertenece a este cliente.")
    if any(inv.client_id != client.pk for inv in invoices):
        errors["invoices"] = _("Alguna factura no pertenece a este cliente.")
    if corrects is not None and corrects.client_id != client.pk:
        errors["corrects"] = _("La entrada corregida es de otro cliente.")
    occurred_at = occurred_at or clock.now()
    if occurred_at > clock.now() + dt.timedelta(minutes=5):
        errors["occurred_at"] = _("La fecha y hora no puede estar en el futuro.")
    if errors:
        raise ValidationError(errors)
    entry = Interaction(
        client=client,
        kind=kind,
        direction=direction,
        outcome=outcome or "",
        **texts.columns("summary", summary),
        body=body,
        contact=contact,
        author=actor(by),
        occurred_at=occurred_at,
        next_action_on=next_action_on,
        nonpayment_reason=nonpayment_reason or "",
        corrects=corrects,
    )
    _full_clean(entry)
    with transaction.atomic():
        entry.save()
        if invoices:
            entry.invoices.add(*invoices)
    return entry


def preference_update(*, by: AbstractBaseUser, number_format: str) -> UserPreference:
    """A staff member's own number format ("" = the business's; docs/domain.md#number-formats)."""
    if not getattr(by, "is_authenticated", False):
        raise PermissionDenied(_("Inicie sesión para cambiar sus preferencias."))
    if number_format and number_format not in numbers.RULES:
        raise ValidationError({"number_format": _("Elija uno de los formatos de la lista.")})
    preference, _created = UserPreference.objects.update_or_create(user=by, defaults={"number_format": number_format})
    return preference
