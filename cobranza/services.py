"""Writes of the collections app. Same conventions as accounts.services."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as ledger
from accounts.models import Client, Interaction, Invoice
from accounts.services import ensure_can_work, ensure_manager

from .models import ClientDunning, InvoiceHold, Notice, Policy


def _note(*, by, client: Client, summary: str, body: str = "", invoices=()) -> None:
    ledger.interaction_log(
        by=by,
        client=client,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        summary=summary,
        body=body,
        invoices=list(invoices),
    )


def client_pause(
    *, by: AbstractBaseUser | None, client: Client, until: dt.date | None, reason: str = ""
) -> ClientDunning:
    """Stop reminders for a client until a date (``until=None`` resumes them)."""
    ensure_can_work(by, client)
    reason = reason.strip()
    if until is not None:
        if until < timezone.localdate():
            raise ValidationError({"until": _("La fecha de la pausa ya pasó.")})
        if not reason:
            raise ValidationError({"reason": _("Indique el motivo de la pausa.")})
    with transaction.atomic():
        dunning, _created = ClientDunning.objects.select_for_update().get_or_create(client=client)
        dunning.paused_until = until
        dunning.pause_reason = reason if until else ""
        dunning.updated_at = timezone.now()
        dunning.updated_by = by if by is not None and by.is_authenticated else None
        dunning.save(update_fields=["paused_until", "pause_reason", "updated_at", "updated_by"])
        if until:
            summary = _("Recordatorios en pausa hasta el %(date)s") % {"date": until.isoformat()}
        else:
            summary = _("Recordatorios reanudados")
        _note(by=by, client=client, summary=summary, body=reason)
    return dunning


def client_set_policy(*, by: AbstractBaseUser | None, client: Client, policy: Policy | None) -> ClientDunning:
    """Give a client its own ladder (``None``: back to its segment's)."""
    ensure_manager(by)
    with transaction.atomic():
        dunning, _created = ClientDunning.objects.select_for_update().get_or_create(client=client)
        dunning.policy = policy
        dunning.updated_at = timezone.now()
        dunning.save(update_fields=["policy", "updated_at"])
        _note(
            by=by,
            client=client,
            summary=_("Política de cobranza: %(name)s") % {"name": policy.name if policy else _("la del segmento")},
        )
    return dunning


def invoice_hold(*, by: AbstractBaseUser | None, invoice: Invoice, until: dt.date | None, reason: str) -> InvoiceHold:
    """Keep one invoice out of the ladder (until a date, or until released)."""
    ensure_can_work(by, invoice.client)
    if not reason.strip():
        raise ValidationError({"reason": _("Indique el motivo.")})
    with transaction.atomic():
        hold, _created = InvoiceHold.objects.update_or_create(
            invoice=invoice,
            defaults={
                "until": until,
                "reason": reason.strip(),
                "created_by": by if by and by.is_authenticated else None,
            },
        )
        _note(
            by=by,
            client=invoice.client,
            summary=_("Factura %(n)s retenida: sin recordatorios") % {"n": invoice.number},
            body=reason,
            invoices=[invoice],
        )
    return hold


def invoice_release(*, by: AbstractBaseUser | None, invoice: Invoice) -> None:
    ensure_can_work(by, invoice.client)
    with transaction.atomic():
        deleted, _per_model = InvoiceHold.objects.filter(invoice=invoice).delete()
        if deleted:
            _note(
                by=by,
                client=invoice.client,
                summary=_("Factura %(n)s liberada: vuelve a la escalera") % {"n": invoice.number},
                invoices=[invoice],
            )


def notice_approve(*, by: AbstractBaseUser | None, notice: Notice) -> Notice:
    """A person approves a step that needs it; dispatch picks it up."""
    ensure_manager(by)
    now = timezone.now()
    changed = Notice.objects.filter(pk=notice.pk, status=Notice.Status.AWAITING_APPROVAL).update(
        status=Notice.Status.PLANNED, approved_by=by, scheduled_at=now, updated_at=now
    )
    if not changed:
        raise ValidationError(_("El aviso ya no está pendiente de aprobación."))
    notice.refresh_from_db()
    _note(by=by, client=notice.client, summary=_("Aviso aprobado: %(step)s") % {"step": notice.step.name})
    return notice


def notice_cancel(*, by: AbstractBaseUser | None, notice: Notice, reason: str) -> Notice:
    """Stop a notice that has not gone out."""
    ensure_can_work(by, notice.client)
    if not reason.strip():
        raise ValidationError({"reason": _("Indique el motivo.")})
    now = timezone.now()
    changed = Notice.objects.filter(
        pk=notice.pk, status__in=[Notice.Status.PLANNED, Notice.Status.AWAITING_APPROVAL]
    ).update(status=Notice.Status.CANCELLED, reason=reason.strip()[:255], updated_at=now)
    if not changed:
        raise ValidationError(_("El aviso ya se envió o se está enviando."))
    notice.refresh_from_db()
    _note(by=by, client=notice.client, summary=_("Aviso cancelado: %(step)s") % {"step": notice.step.name}, body=reason)
    return notice
