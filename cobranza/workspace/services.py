"""Disputes (docs/domain.md#disputes): the client withholds payment over a
complaint. Opening one puts its invoices in dispute — out of the ladder, out of automatic
payment allocation — and gives it an owner; resolving it records the outcome and returns the
invoices to collection:

- credit note / adjustment: the credited amount settles part of the invoices as a non-cash
  payment (method ``credit_note``), oldest due first, never more than they owe;
- rejected: the invoices are collected in full.

Both the opening and the resolution land in the client's timeline; the owner gets a task.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction, Invoice, Payment
from accounts.roles import is_manager, is_staff_member
from accounts.services import AllocationRequest, ensure_can_work
from accounts.utils import actor, money_str
from cobranza.models import (
    CollectorTask,
    Dispute,
    DisputeReason,
    DisputeResolution,
    DisputeStatus,
    TaskKind,
    TaskStatus,
)
from cobranza.webhooks import outgoing as webhooks_out

ZERO = Decimal("0.00")


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
            summary=(_("Disputa abierta: %(reason)s") % {"reason": dispute.get_reason_display()})[:255],
            body=description.strip(),
            invoices=list(invoices),
        )
        CollectorTask.objects.create(
            client=client,
            kind=TaskKind.DISPUTE,
            dispute=dispute,
            title=(
                _("Resolver la disputa: %(reason)s (%(list)s)")
                % {"reason": dispute.get_reason_display(), "list": ", ".join(inv.number for inv in invoices)}
            )[:255],
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
        summary = _("Disputa resuelta: %(resolution)s") % {"resolution": dispute.get_resolution_display()}
        if credited:
            summary += f" ({money_str(amount, invoices[0].currency)})"
        ledger.interaction_log(
            by=by,
            client=client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            summary=summary[:255],
            body=notes.strip(),
            invoices=invoices,
        )
        now = clock.now()
        dispute.tasks.filter(status=TaskStatus.OPEN).update(
            status=TaskStatus.DONE, completed_at=now, completed_by=dispute.resolved_by
        )
    return dispute
