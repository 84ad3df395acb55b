"""Writes of the collections app. Same conventions as accounts.services."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction, Invoice
from accounts.services import ensure_can_work, ensure_manager
from accounts.utils import actor
from cobranza import texts
from cobranza.models import (
    ClientDunning,
    CollectorTask,
    InvoiceHold,
    Notice,
    Policy,
    StepChannel,
    TaskKind,
    TaskStatus,
)
from cobranza.ops import selectors


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
        if until < clock.localdate():
            raise ValidationError({"until": _("La fecha de la pausa ya pasó.")})
        if not reason:
            raise ValidationError({"reason": _("Indique el motivo de la pausa.")})
    with transaction.atomic():
        dunning, _created = ClientDunning.objects.select_for_update().get_or_create(client=client)
        dunning.paused_until = until
        dunning.pause_reason = reason if until else ""
        dunning.updated_at = clock.now()
        dunning.updated_by = actor(by)
        dunning.save(update_fields=["paused_until", "pause_reason", "updated_at", "updated_by"])
        summary = texts.REMINDERS_PAUSED(date=until.isoformat()) if until else texts.REMINDERS_RESUMED()
        _note(by=by, client=client, summary=summary, body=reason)
    return dunning


def client_set_policy(*, by: AbstractBaseUser | None, client: Client, policy: Policy | None) -> ClientDunning:
    """Give a client its own ladder (``None``: back to its segment's)."""
    ensure_manager(by)
    with transaction.atomic():
        dunning, _created = ClientDunning.objects.select_for_update().get_or_create(client=client)
        dunning.policy = policy
        dunning.updated_at = clock.now()
        dunning.save(update_fields=["policy", "updated_at"])
        _note(
            by=by,
            client=client,
            summary=texts.POLICY_SET(name=policy.name if policy else texts.SEGMENT_POLICY()),
        )
    return dunning


def invoice_hold(*, by: AbstractBaseUser | None, invoice: Invoice, until: dt.date | None, reason: str) -> InvoiceHold:
    """Keep one invoice out of the ladder (until a date, or until released)."""
    ensure_can_work(by, invoice.client)
    errors = {}
    if not reason.strip():
        errors["reason"] = _("Indique el motivo.")
    if until is not None and until < clock.localdate():
        errors["until"] = _("La fecha ya pasó: elija hoy o una fecha futura, o deje la retención sin fecha.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        hold, _created = InvoiceHold.objects.update_or_create(
            invoice=invoice,
            defaults={
                "until": until,
                "reason": reason.strip(),
                "created_by": actor(by),
            },
        )
        _note(
            by=by,
            client=invoice.client,
            summary=texts.INVOICE_HELD(n=invoice.number),
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
                summary=texts.INVOICE_RELEASED(n=invoice.number),
                invoices=[invoice],
            )


def notice_approve(*, by: AbstractBaseUser | None, notice: Notice) -> Notice:
    """A person approves a step that needs it; dispatch picks it up. Refused when nothing is
    left to collect on it, or for a hand-off while the client has a promise, a plan or a
    dispute running (``selectors.approval_facts``: the facts the approvals page shows)."""
    ensure_manager(by)
    blocked = selectors.approval_facts([notice])[notice.pk].blocked
    if blocked:
        raise ValidationError(blocked)
    now = clock.now()
    changed = Notice.objects.filter(pk=notice.pk, status=Notice.Status.AWAITING_APPROVAL).update(
        status=Notice.Status.PLANNED, approved_by=by, scheduled_at=now, updated_at=now
    )
    if not changed:
        raise ValidationError(_("El aviso ya no está pendiente de aprobación."))
    notice.refresh_from_db()
    _note(by=by, client=notice.client, summary=texts.NOTICE_APPROVED(step=notice.step.name))
    return notice


def notice_cancel(*, by: AbstractBaseUser | None, notice: Notice, reason: str) -> Notice:
    """Stop a notice that has not gone out."""
    ensure_can_work(by, notice.client)
    if not reason.strip():
        raise ValidationError({"reason": _("Indique el motivo.")})
    now = clock.now()
    changed = Notice.objects.filter(
        pk=notice.pk, status__in=[Notice.Status.PLANNED, Notice.Status.AWAITING_APPROVAL]
    ).update(status=Notice.Status.CANCELLED, **texts.columns("reason", reason), updated_at=now)
    if not changed:
        raise ValidationError(_("El aviso ya se envió o se está enviando."))
    notice.refresh_from_db()
    _note(by=by, client=notice.client, summary=texts.NOTICE_CANCELLED(step=notice.step.name), body=reason)
    return notice


def notice_retry(*, by: AbstractBaseUser | None, notice: Notice) -> Notice:
    """Put a failed notice back in the queue: ``planned`` and due now, so the dispatcher
    sends it on its next pass. Attempts are kept (the history of the failure stays visible).

    An interrupted send (the worker died after storing the message) may have gone out: a
    manager retries it only after checking, so the stored Message-ID is cleared here —
    otherwise the dispatcher would take the notice for interrupted again."""
    ensure_manager(by)
    now = clock.now()
    with transaction.atomic():
        previous = (
            Notice.objects.select_for_update()
            .filter(pk=notice.pk, status=Notice.Status.FAILED)
            .values_list("reason", flat=True)
            .first()
        )
        if previous is None:
            raise ValidationError(_("Solo se puede reintentar un aviso fallido."))
        Notice.objects.filter(pk=notice.pk).update(
            status=Notice.Status.PLANNED,
            scheduled_at=now,
            lease_until=None,
            message_id="",
            **texts.columns("reason", ""),
            updated_at=now,
        )
        # The "check the interrupted send" task is answered by this decision.
        CollectorTask.objects.filter(notice=notice, kind=TaskKind.REVIEW, status=TaskStatus.OPEN).update(
            status=TaskStatus.DONE, completed_at=now, completed_by=actor(by)
        )
        notice.refresh_from_db()
        _note(
            by=by,
            client=notice.client,
            summary=texts.NOTICE_REQUEUED(step=notice.step.name),
            body=_("Motivo del fallo: %(reason)s") % {"reason": previous} if previous else "",
        )
    return notice


def letters_mark_printed(*, by: AbstractBaseUser | None, notice_ids: list[int]) -> int:
    """Record that the PDFs of these letter notices were printed for mailing. Only letters
    that were produced (sent) and not yet printed change; returns how many did."""
    notice_ids = [int(pk) for pk in notice_ids]
    if not notice_ids:
        raise ValidationError(_("Seleccione al menos una carta."))
    now = clock.now()
    with transaction.atomic():
        letters = list(
            Notice.objects.select_for_update(of=("self",))
            .select_related("client", "step")
            .filter(
                pk__in=notice_ids,
                channel=StepChannel.LETTER,
                status=Notice.Status.SENT,
                printed_at__isnull=True,
            )
            .order_by("pk")
        )
        for letter in letters:
            ensure_can_work(by, letter.client)
        Notice.objects.filter(pk__in=[n.pk for n in letters]).update(
            printed_at=now,
            printed_by=actor(by),
            updated_at=now,
        )
        for letter in letters:
            _note(by=by, client=letter.client, summary=texts.LETTER_PRINTED(step=letter.step.name))
    return len(letters)
