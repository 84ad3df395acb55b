"""Profiles' writes, the ones staff trigger: negotiated discounts, the collector's profile
override, waiving a late fee and a segment's late-fee rule. The nightly work is
``cobranza.profiles.jobs`` (the classification) and ``cobranza.profiles.fees`` (the late-fee
accrual); the reads behind the profile panel and the overview, ``cobranza.profiles.selectors``.

**Negotiated discounts**, one of the things to negotiate (docs/domain.md#negotiation).
A collector requests a discount on one invoice of their client, with a reason. It is applied
at once when the requester is a manager, or when the amount is within the segment's
``LateFeeRule.discount_approval_over`` (a segment without a rule: every collector discount
needs approval; the threshold applies whether or not surcharges are active). Otherwise it
waits, with a task in the managers' queue (kind DISCOUNT, unassigned), for a manager to
approve or reject it.

Applying records a non-cash payment (method ``discount``) through
``accounts.services.payment_record`` with one explicit allocation, so the invoice's balance,
status and the collections metrics (which leave non-cash methods out) stay truthful; the
payment is linked on ``Discount.payment``. Every step goes to the client's timeline.

**The profile override** (``profile_override``): a collector sets the client's profile by hand
with a reason; it wins over the computed one until cleared, and moves the good-payer standing
like a nightly run would (``jobs._update_standing``).

**Late fees** (docs/domain.md#late-fees): ``late_fee_waive`` forgives one (it stays, marked
waived, and the accrual never changes it again); ``late_fee_rule_save`` sets a segment's rule
(managers). How fees accrue is ``cobranza.profiles.fees``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import clock
from accounts.models import Client, Interaction, Invoice, PaymentMethod, Segment
from accounts.roles import is_manager
from accounts.services import AllocationRequest, ensure_can_work, ensure_manager, payment_record, to_money
from accounts.utils import actor, money_str
from cobranza import texts
from cobranza.models import (
    ClientProfile,
    CollectorTask,
    Discount,
    LateFee,
    LateFeeKind,
    LateFeeRule,
    Profile,
    TaskKind,
    TaskStatus,
)
from cobranza.profiles.jobs import _update_standing

DISCOUNTABLE_STATUSES = Invoice.COLLECTIBLE_STATUSES


def _log(*, by, invoice: Invoice, summary: str, body: str = "") -> None:
    entry = Interaction(
        client=invoice.client,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        **texts.columns("summary", summary),
        body=body,
        author=actor(by),
    )
    entry.save()
    entry.invoices.add(invoice)


def _amount(value) -> Decimal:
    try:
        amount = to_money(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValidationError({"amount": _("Indique un importe válido.")}) from exc
    if amount <= 0:
        raise ValidationError({"amount": _("El descuento debe ser mayor que cero.")})
    return amount


def _check_balance(invoice: Invoice, amount: Decimal) -> None:
    if invoice.status not in DISCOUNTABLE_STATUSES or invoice.open_balance <= 0:
        raise ValidationError({"invoice": _("La factura %(n)s no tiene saldo pendiente.") % {"n": invoice.number}})
    if amount > invoice.open_balance:
        raise ValidationError(
            {
                "amount": _("El descuento (%(amount)s) supera el saldo de la factura %(n)s (%(balance)s).")
                % {
                    "amount": money_str(amount, invoice.currency),
                    "n": invoice.number,
                    "balance": money_str(invoice.open_balance, invoice.currency),
                }
            }
        )


def needs_approval(*, by: AbstractBaseUser | None, invoice: Invoice, amount: Decimal) -> bool:
    """Managers (and the system) apply at once; a collector up to the segment's threshold."""
    if by is None or is_manager(by):
        return False
    rule = LateFeeRule.objects.filter(segment_id=invoice.client.segment_id).first()
    return rule is None or amount > rule.discount_approval_over


def _apply(*, by, discount: Discount, invoice: Invoice) -> None:
    """Record the discount as a non-cash payment on its invoice and link it."""
    payment = payment_record(
        by=by,
        client=invoice.client,
        amount=discount.amount,
        currency=invoice.currency,
        received_on=clock.localdate(),
        method=PaymentMethod.DISCOUNT,
        allocations=[AllocationRequest(invoice.pk, discount.amount)],
        notes=_("Descuento negociado: %(reason)s") % {"reason": discount.reason},
    )
    discount.payment = payment
    discount.status = Discount.Status.APPLIED


def _locked_invoice(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().select_related("client").get(pk=invoice.pk)


def discount_request(*, by: AbstractBaseUser | None, invoice: Invoice, amount, reason: str) -> Discount:
    """Request a discount on an invoice; applied at once when no approval is needed."""
    ensure_can_work(by, invoice.client)
    reason = (reason or "").strip()
    errors = {}
    try:
        amount = _amount(amount)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not reason:
        errors["reason"] = [_("Indique el motivo del descuento.")]
    if errors:
        raise ValidationError(errors)
    now = clock.now()
    with transaction.atomic():
        invoice = _locked_invoice(invoice)
        _check_balance(invoice, amount)
        discount = Discount(
            invoice=invoice,
            amount=amount,
            reason=reason[:255],
            requested_by=actor(by),
            requested_at=now,
        )
        amount_text = texts.money(amount, invoice.currency)
        if needs_approval(by=by, invoice=invoice, amount=amount):
            discount.status = Discount.Status.REQUESTED
            discount.save()
            name = invoice.client.trade_name or invoice.client.legal_name
            CollectorTask.objects.create(
                client=invoice.client,
                kind=TaskKind.DISCOUNT,
                **texts.columns("title", texts.DISCOUNT_TASK(amount=amount_text, n=invoice.number, name=name)),
                assigned_to=None,  # the managers' queue
                due_on=clock.localdate(),
                created_at=now,
            )
            _log(
                by=by,
                invoice=invoice,
                summary=texts.DISCOUNT_REQUESTED(amount=amount_text, n=invoice.number),
                body=reason,
            )
        else:
            discount.decided_by = actor(by)
            discount.decided_at = now
            _apply(by=by, discount=discount, invoice=invoice)
            discount.save()
            _log(
                by=by,
                invoice=invoice,
                summary=texts.DISCOUNT_APPLIED(amount=amount_text, n=invoice.number),
                body=reason,
            )
    return discount


def _close_tasks(*, by, discount: Discount, now) -> None:
    """The managers' DISCOUNT tasks of the client are done once none of its discounts waits."""
    client_id = discount.invoice.client_id
    if Discount.objects.filter(invoice__client_id=client_id, status=Discount.Status.REQUESTED).exists():
        return
    CollectorTask.objects.filter(client_id=client_id, kind=TaskKind.DISCOUNT, status=TaskStatus.OPEN).update(
        status=TaskStatus.DONE, completed_at=now, completed_by=actor(by)
    )


def _locked_pending(discount: Discount) -> Discount:
    locked = Discount.objects.select_for_update().filter(pk=discount.pk).first()
    if locked is None or locked.status != Discount.Status.REQUESTED:
        raise ValidationError(_("Este descuento ya no está pendiente de aprobación."))
    return locked


def discount_approve(*, by: AbstractBaseUser | None, discount: Discount, notes: str = "") -> Discount:
    """A manager approves a requested discount: it is applied now (if the balance allows)."""
    ensure_manager(by)
    notes = (notes or "").strip()
    now = clock.now()
    with transaction.atomic():
        invoice = _locked_invoice(discount.invoice)
        locked = _locked_pending(discount)
        _check_balance(invoice, locked.amount)
        locked.decided_by = actor(by)
        locked.decided_at = now
        locked.decision_notes = notes[:255]
        _apply(by=by, discount=locked, invoice=invoice)
        locked.save(update_fields=["status", "payment", "decided_by", "decided_at", "decision_notes"])
        _log(
            by=by,
            invoice=invoice,
            summary=texts.DISCOUNT_APPROVED(amount=texts.money(locked.amount, invoice.currency), n=invoice.number),
            body=notes,
        )
        _close_tasks(by=by, discount=locked, now=now)
    return locked


def discount_reject(*, by: AbstractBaseUser | None, discount: Discount, notes: str) -> Discount:
    """A manager rejects a requested discount; the reason is required (the collector reads it)."""
    ensure_manager(by)
    notes = (notes or "").strip()
    if not notes:
        raise ValidationError({"notes": _("Indique el motivo del rechazo.")})
    now = clock.now()
    with transaction.atomic():
        locked = _locked_pending(discount)
        invoice = Invoice.objects.select_related("client").get(pk=locked.invoice_id)
        locked.status = Discount.Status.REJECTED
        locked.decided_by = actor(by)
        locked.decided_at = now
        locked.decision_notes = notes[:255]
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_notes"])
        _log(
            by=by,
            invoice=invoice,
            summary=texts.DISCOUNT_REJECTED(amount=texts.money(locked.amount, invoice.currency), n=invoice.number),
            body=notes,
        )
        _close_tasks(by=by, discount=locked, now=now)
    return locked


# --- the collector's override -------------------------------------------------------------------


def profile_override(*, by: AbstractBaseUser | None, client: Client, profile: str, reason: str = "") -> ClientProfile:
    """Set the client's profile by hand (it wins over the computed one), or clear the override
    with ``profile=""``. A reason is required to set it; both go to the timeline."""
    ensure_can_work(by, client)
    profile = (profile or "").strip()
    reason = (reason or "").strip()
    if profile and profile not in Profile.values:
        raise ValidationError({"profile": _("Perfil no válido.")})
    if profile and not reason:
        raise ValidationError({"reason": _("Indique el motivo del cambio de perfil.")})
    now = clock.now()
    author = actor(by)
    with transaction.atomic():
        row, _created = ClientProfile.objects.select_for_update().get_or_create(client=client)
        previous = row.override
        row.override = profile
        row.override_reason = reason[:255] if profile else ""
        row.override_by = author if profile else None
        row.override_at = now if profile else None
        row.save(update_fields=["override", "override_reason", "override_by", "override_at"])
        computed_label = texts.choice(Profile, row.computed)
        if profile:
            summary = texts.PROFILE_SET(profile=texts.choice(Profile, profile), computed=computed_label)
        elif previous:
            summary = texts.PROFILE_CLEARED(computed=computed_label)
        else:
            summary = ""
        if summary:
            Interaction(
                client=client,
                kind=Interaction.Kind.SYSTEM,
                direction=Interaction.Direction.INTERNAL,
                **texts.columns("summary", summary),
                body=reason,
                author=author,
            ).save()
        _update_standing(client_ids=[client.pk], today=clock.localdate(), now=now, by=by)
    row.refresh_from_db()
    return row


# --- late fees: waiving one, and the segment's rule (managers) ---------------------------------


def late_fee_waive(*, by: AbstractBaseUser | None, fee: LateFee, reason: str) -> LateFee:
    """Forgive a fee (it stays, marked waived with its reason, and is never recomputed)."""
    invoice = fee.invoice
    ensure_can_work(by, invoice.client)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Indique el motivo de la condonación.")})
    now = clock.now()
    author = actor(by)
    with transaction.atomic():
        changed = LateFee.objects.filter(pk=fee.pk, waived=False).update(
            waived=True, waived_reason=reason[:255], waived_by=author, waived_at=now
        )
        if not changed:
            raise ValidationError(_("Este recargo ya estaba condonado."))
        fee.refresh_from_db()
        entry = Interaction(
            client=invoice.client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            **texts.columns(
                "summary",
                texts.FEE_WAIVED(
                    kind=texts.choice(LateFeeKind, fee.kind),
                    amount=texts.money(fee.amount, invoice.currency),
                    number=invoice.number,
                ),
            ),
            body=reason,
            author=author,
        )
        entry.save()
        entry.invoices.add(invoice)
    return fee


RULE_FIELDS = ("is_active", "grace_days", "fixed_fee", "monthly_rate", "max_percent", "discount_approval_over")


def late_fee_rule_save(*, by: AbstractBaseUser | None, segment: Segment, **fields) -> LateFeeRule:
    """Create or change the surcharge rule of a segment (managers)."""
    ensure_manager(by)
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"late_fee_rule_save got unknown fields: {sorted(unknown)}")
    for name in ("fixed_fee", "discount_approval_over"):
        if fields.get(name) is not None:
            fields[name] = to_money(fields[name])
    with transaction.atomic():
        rule = LateFeeRule.objects.select_for_update().filter(segment=segment).first() or LateFeeRule(segment=segment)
        for name, value in fields.items():
            setattr(rule, name, value)
        rule.full_clean(validate_constraints=True)
        rule.save()
    return rule
