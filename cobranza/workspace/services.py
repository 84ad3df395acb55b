"""The collector's workspace, the writes: disputes opened and resolved, and commitments
(promises to pay, payment plans, term extensions) created and cancelled. Judging commitments
(nightly) and reminding installments (hourly) are ``cobranza.workspace.jobs``; the reads behind
the client page, ``cobranza.workspace.selectors``.

**Disputes** (docs/domain.md#disputes): the client withholds payment over a
complaint. Opening one puts its invoices in dispute — out of the ladder, out of automatic
payment allocation — and gives it an owner; resolving it records the outcome and returns the
invoices to collection:

- credit note / adjustment: the credited amount settles part of the invoices as a non-cash
  payment (method ``credit_note``), oldest due first, never more than they owe;
- rejected: the invoices are collected in full.

Both the opening and the resolution land in the client's timeline; the owner gets a task.

**Commitments** (docs/domain.md#commitments): while one is open its invoices are out of the
ladder; how it is judged is told in ``cobranza.workspace.jobs``. Creating and cancelling one
write the client's timeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Contact, Interaction, Invoice, Payment
from accounts.roles import is_manager, is_staff_member
from accounts.rules import is_open_invoice, open_invoice_q
from accounts.services import AllocationRequest, ensure_can_work
from accounts.utils import actor, money_str
from cobranza import texts
from cobranza.models import (
    CollectorTask,
    Commitment,
    CommitmentKind,
    CommitmentStatus,
    Dispute,
    DisputeReason,
    DisputeResolution,
    DisputeStatus,
    Installment,
    InstallmentStatus,
    TaskKind,
    TaskStatus,
)
from cobranza.rules import open_commitment_q
from cobranza.webhooks import outgoing as webhooks_out

ZERO = Decimal("0.00")


# --- disputes ------------------------------------------------------------------------------


def dispute_open(
    *,
    by: AbstractBaseUser | None,
    client: Client,
    invoices: Sequence[Invoice],
    reason: str,
    description: str,
    owner=None,
) -> Dispute:
    ensure_can_work(by, client)
    errors: dict[str, str] = {}
    if reason not in DisputeReason.values:
        errors["reason"] = _("Elija el motivo de la disputa.")
    if not description.strip():
        errors["description"] = _("Describa la reclamación del cliente.")
    if not invoices:
        errors["invoices"] = _("Elija al menos una factura.")
    elif any(inv.client_id != client.pk for inv in invoices):
        errors["invoices"] = _("Alguna factura no pertenece a este cliente.")
    elif any(inv.status not in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID) for inv in invoices):
        errors["invoices"] = _(
            "Solo se disputan facturas pendientes de pago (no pagadas, canceladas ni ya en disputa)."
        )
    if owner is not None and not is_staff_member(owner):
        errors["owner"] = _("El responsable debe ser alguien del equipo de cobranza.")
    if errors:
        raise ValidationError(errors)
    owner = owner or client.collector or actor(by)
    today = clock.localdate()
    with transaction.atomic():
        dispute = Dispute.objects.create(
            client=client,
            reason=reason,
            description=description.strip(),
            owner=owner,
            opened_on=today,
            opened_by=actor(by),
        )
        dispute.invoices.set(invoices)
        ledger.invoices_set_disputed(
            by=by,
            client=client,
            invoices=invoices,
            disputed=True,
            reason=f"{dispute.get_reason_display()}: {description.strip()}",
        )
        ledger.interaction_log(
            by=by,
            client=client,
            kind=Interaction.Kind.NOTE,
            direction=Interaction.Direction.INBOUND,
            outcome=Interaction.Outcome.DISPUTE,
            summary=texts.DISPUTE_OPENED(reason=texts.choice(DisputeReason, dispute.reason)),
            body=description.strip(),
            invoices=list(invoices),
        )
        CollectorTask.objects.create(
            client=client,
            kind=TaskKind.DISPUTE,
            dispute=dispute,
            **texts.columns(
                "title",
                texts.DISPUTE_TASK(
                    reason=texts.choice(DisputeReason, dispute.reason), list=", ".join(inv.number for inv in invoices)
                ),
            ),
            assigned_to=owner,
            due_on=today,
        )
        webhooks_out.dispute_opened(dispute=dispute, invoices=invoices)
    return dispute


def dispute_resolve(
    *,
    by: AbstractBaseUser | None,
    dispute: Dispute,
    resolution: str,
    amount: Decimal = ZERO,
    notes: str = "",
) -> Dispute:
    """Close a dispute. The owner or a manager resolves; a credit of more than the invoices
    owe is refused."""
    client = dispute.client
    ensure_can_work(by, client)
    if by is not None and not is_manager(by) and dispute.owner_id not in (None, by.pk):
        raise ValidationError(_("Solo el responsable de la disputa o un gerente la resuelven."))
    errors: dict[str, str] = {}
    if resolution not in DisputeResolution.values:
        errors["resolution"] = _("Elija cómo se resolvió.")
    amount = Decimal(amount or 0)
    credited = resolution in (DisputeResolution.CREDIT_NOTE, DisputeResolution.ADJUSTMENT)
    if credited and amount <= 0:
        errors["amount"] = _("Indique el importe acreditado.")
    if not credited and amount:
        errors["amount"] = _("Una disputa rechazada no acredita importe.")
    if not notes.strip():
        errors["notes"] = _("Explique la resolución: el cliente la verá reflejada en su estado de cuenta.")
    if errors:
        raise ValidationError(errors)
    today = clock.localdate()
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if dispute.status != DisputeStatus.OPEN:
            raise ValidationError(_("La disputa ya está resuelta."))
        invoices = list(dispute.invoices.order_by("due_date", "pk"))
        # Back to collection first, so the credit note settles them like any payment.
        ledger.invoices_set_disputed(
            by=by, client=client, invoices=invoices, disputed=False, reason=_("Disputa resuelta")
        )
        if credited:
            invoices = list(Invoice.objects.filter(pk__in=[inv.pk for inv in invoices]).order_by("due_date", "pk"))
            currencies = {inv.currency for inv in invoices}
            owed = sum((inv.open_balance for inv in invoices), ZERO)
            if len(currencies) != 1:
                raise ValidationError(
                    {"amount": _("Las facturas de la disputa tienen varias monedas: acredite cada una por separado.")}
                )
            if amount > owed:
                raise ValidationError(
                    {
                        "amount": _("El crédito (%(amount)s) supera lo que deben las facturas (%(owed)s).")
                        % {
                            "amount": money_str(amount, invoices[0].currency),
                            "owed": money_str(owed, invoices[0].currency),
                        }
                    }
                )
            allocations, left = [], amount
            for inv in invoices:
                take = min(left, inv.open_balance)
                if take > 0:
                    allocations.append(AllocationRequest(invoice_id=inv.pk, amount=take))
                    left -= take
            ledger.payment_record(
                by=by,
                client=client,
                amount=amount,
                currency=invoices[0].currency,
                received_on=today,
                method=Payment.Method.CREDIT_NOTE,
                allocations=allocations,
                notes=_("Nota de crédito por la disputa #%(id)s") % {"id": dispute.pk},
            )
        dispute.status = DisputeStatus.RESOLVED
        dispute.resolution = resolution
        dispute.resolution_amount = amount
        dispute.resolution_notes = notes.strip()
        dispute.resolved_on = today
        dispute.resolved_by = actor(by)
        dispute.save(
            update_fields=[
                "status",
                "resolution",
                "resolution_amount",
                "resolution_notes",
                "resolved_on",
                "resolved_by",
            ]
        )
        summary = texts.DISPUTE_RESOLVED(resolution=texts.choice(DisputeResolution, dispute.resolution))
        if credited:
            summary = texts.join([summary, " (", texts.money(amount, invoices[0].currency), ")"], sep="")
        ledger.interaction_log(
            by=by,
            client=client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            summary=summary,
            body=notes.strip(),
            invoices=invoices,
        )
        now = clock.now()
        dispute.tasks.filter(status=TaskStatus.OPEN).update(
            status=TaskStatus.DONE, completed_at=now, completed_by=dispute.resolved_by
        )
    return dispute


# --- commitments: promises, payment plans, extensions ---------------------------------------


def _stamp(day: dt.date | None, hour: int = 12) -> dt.datetime | None:
    """When a timeline entry about ``day`` happened: now for today, or that day at ``hour``
    (local time) when the work is about a past day (the demo seeds history as of --today)."""
    if day is None or day >= clock.localdate():
        return None  # now
    return dt.datetime.combine(day, dt.time(hour), tzinfo=timezone.get_current_timezone())


def _note(
    *, by, client: Client, summary: str, body: str = "", invoices=(), outcome: str = "", on: dt.date | None = None
) -> None:
    ledger.interaction_log(
        by=by,
        client=client,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        outcome=outcome,
        summary=summary,
        body=body,
        invoices=list(invoices),
        occurred_at=_stamp(on),
    )


def _dates_text(installments: Sequence[tuple[dt.date, Decimal]], currency: str) -> str:
    return ", ".join(f"{money_str(amount, currency)} ({when:%d/%m/%Y})" for when, amount in installments)


# --- creating and cancelling ---------------------------------------------------------------


def commitment_create(
    *,
    by: AbstractBaseUser | None,
    client: Client,
    kind: str,
    installments: Sequence[tuple[dt.date, Decimal]],
    invoices: Sequence[Invoice] | None = None,
    contact: Contact | None = None,
    grace_days: int | None = None,
    missed_allowed: int | None = None,
    notes: str = "",
    made_on: dt.date | None = None,
) -> Commitment:
    """Record a promise (one or several dates), a plan (installments) or an extension (one
    new date) for some of the client's open invoices (default: all of them in the client's
    currency). Reminders stop for those invoices while it is open."""
    ensure_can_work(by, client)
    today = made_on or clock.localdate()
    errors: dict[str, list[str]] = {}
    if kind not in CommitmentKind.values:
        errors.setdefault("kind", []).append(_("Tipo de compromiso no válido."))
    rows = sorted((when, Decimal(amount)) for when, amount in installments)
    if not rows:
        errors.setdefault("installments", []).append(_("Indique al menos una fecha con su importe."))
    if kind == CommitmentKind.EXTENSION and len(rows) > 1:
        errors.setdefault("installments", []).append(_("Una prórroga tiene una sola fecha nueva."))
    if any(amount <= 0 for _when, amount in rows):
        errors.setdefault("installments", []).append(_("Cada importe debe ser mayor que cero."))
    if any(when < today for when, _amount in rows):
        errors.setdefault("installments", []).append(_("Las fechas no pueden estar en el pasado."))
    if len({when for when, _amount in rows}) != len(rows):
        errors.setdefault("installments", []).append(_("Hay dos cuotas con la misma fecha."))

    if invoices is None:
        # Default: every open invoice in the client's currency not already under a commitment.
        owed_here = client.invoices.filter(open_invoice_q(), currency=client.currency)
        chosen = list(owed_here.exclude(open_commitment_q()))
        if not chosen:
            busy = sorted(owed_here.filter(open_commitment_q()).values_list("number", flat=True))
            if busy:
                errors.setdefault("invoices", []).append(
                    _("Ya hay un compromiso vigente para: %(list)s. Cancélelo o espere a que se resuelva.")
                    % {"list": ", ".join(busy)}
                )
    else:
        chosen = list(invoices)
    if not chosen and "invoices" not in errors:
        errors.setdefault("invoices", []).append(_("Elija al menos una factura pendiente."))
    if any(inv.client_id != client.pk for inv in chosen):
        errors.setdefault("invoices", []).append(_("Alguna factura no pertenece a este cliente."))
    if any(not is_open_invoice(inv) for inv in chosen):
        errors.setdefault("invoices", []).append(_("Solo se comprometen facturas con saldo pendiente."))
    currencies = {inv.currency for inv in chosen}
    if len(currencies) > 1:
        errors.setdefault("invoices", []).append(
            _("Las facturas de un compromiso deben ser de una sola moneda (hay %(list)s).")
            % {"list": ", ".join(sorted(currencies))}
        )
    if contact is not None and contact.client_id != client.pk:
        errors.setdefault("contact", []).append(_("El contacto no pertenece a este cliente."))
    total = sum((amount for _when, amount in rows), ZERO)
    owed = sum((inv.open_balance for inv in chosen), ZERO)
    if chosen and total > owed:
        currency = next(iter(currencies)) if currencies else client.currency
        errors.setdefault("installments", []).append(
            _("Se comprometen %(total)s pero las facturas elegidas suman %(owed)s.")
            % {"total": money_str(total, currency), "owed": money_str(owed, currency)}
        )
    if errors:
        raise ValidationError(errors)

    currency = chosen[0].currency
    if grace_days is None:
        grace_days = settings.PLAN_GRACE_DAYS if kind == CommitmentKind.PLAN else 0
    if missed_allowed is None:
        missed_allowed = settings.PLAN_MISSED_ALLOWED if kind == CommitmentKind.PLAN else 0
    with transaction.atomic():
        # One open commitment per invoice: lock the invoices and look.
        locked = list(Invoice.objects.select_for_update().filter(pk__in=[inv.pk for inv in chosen]).order_by("pk"))
        busy = sorted(
            Invoice.objects.filter(open_commitment_q(), pk__in=[inv.pk for inv in locked])
            .values_list("number", flat=True)
            .distinct()
        )
        if busy:
            raise ValidationError(
                {
                    "invoices": _("Ya hay un compromiso vigente para: %(list)s. Cancélelo o espere a que se resuelva.")
                    % {"list": ", ".join(busy)}
                }
            )
        commitment = Commitment.objects.create(
            client=client,
            kind=kind,
            currency=currency,
            total=total,
            made_on=today,
            contact=contact,
            grace_days=grace_days,
            missed_allowed=missed_allowed,
            notes=notes.strip(),
            created_by=actor(by),
        )
        commitment.invoices.set(locked)
        Installment.objects.bulk_create(
            Installment(commitment=commitment, number=n, due_on=when, amount=amount)
            for n, (when, amount) in enumerate(rows, start=1)
        )
        _note(
            by=by,
            client=client,
            summary=texts.COMMITMENT_MADE(kind=texts.choice(CommitmentKind, kind), dates=_dates_text(rows, currency)),
            body=_("Facturas: %(list)s. Los recordatorios de estas facturas se detienen mientras esté vigente.")
            % {"list": ", ".join(inv.number for inv in locked)}
            + (f"\n{notes.strip()}" if notes.strip() else ""),
            invoices=locked,
            on=today,
        )
    return commitment


def commitment_cancel(*, by: AbstractBaseUser | None, commitment: Commitment, reason: str) -> Commitment:
    """Withdraw an open commitment (agreed by mistake, replaced by another): the ladder resumes
    where it was, without a bump."""
    ensure_can_work(by, commitment.client)
    if not reason.strip():
        raise ValidationError({"reason": _("Indique el motivo.")})
    today = clock.localdate()
    with transaction.atomic():
        changed = Commitment.objects.filter(pk=commitment.pk, status=CommitmentStatus.OPEN).update(
            status=CommitmentStatus.CANCELLED, resolved_on=today
        )
        if not changed:
            raise ValidationError(_("El compromiso ya no está vigente."))
        commitment.installments.filter(status=InstallmentStatus.PENDING).update(status=InstallmentStatus.CANCELLED)
        commitment.refresh_from_db()
        _note(
            by=by,
            client=commitment.client,
            summary=texts.COMMITMENT_CANCELLED(kind=texts.choice(CommitmentKind, commitment.kind)),
            body=reason.strip(),
        )
    return commitment
