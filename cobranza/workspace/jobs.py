"""Payment commitments: promises to pay, payment plans (*fraccionamiento*) and term extensions.

While a commitment is open its invoices are out of the ladder (the planner, the dispatcher's
re-check and escalation all skip them). Each installment is judged the day after its date
plus the commitment's grace days, against the payments applied to the commitment's invoices
from the day it was made up to that cutoff, cumulatively: installment *n* is kept when the
payments cover installments 1..n, partly kept when they cover more than 1..n-1, missed
otherwise — so a late catch-up counts for the next installment.

- A promise or an extension ends at its first missed or partly kept date (broken / partial)
  or when its last date is kept (kept).
- A plan tolerates ``missed_allowed`` missed installments (each opens a task); one more and
  the plan is broken.
- Paying every invoice off keeps the commitment at once, whatever its dates.

A broken or partly kept commitment resumes the ladder **one step firmer**: for each invoice
still owed, the step after the last one it reached becomes due today (``LadderBump``), and a
task goes to the collector. The judgement is idempotent (only pending installments whose
cutoff has passed are judged, and statuses move forward once).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Contact, Interaction, Invoice, PaymentAllocation
from accounts.rules import OPEN_STATUSES, collectible_q, is_open_invoice, open_invoice_q
from accounts.services import ensure_can_work
from accounts.utils import actor, money_str
from cobranza.engine import channels, contact_rules
from cobranza.engine.contacts import choose_contact
from cobranza.engine.planner import effective_policy_of
from cobranza.models import (
    CollectorTask,
    Commitment,
    CommitmentKind,
    CommitmentStatus,
    Installment,
    InstallmentStatus,
    LadderBump,
    NoticeItem,
    PolicyStep,
    TaskKind,
)
from cobranza.rules import open_commitment_q
from cobranza.webhooks import outgoing as webhooks_out

ZERO = Decimal("0.00")


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
        summary=summary[:255],
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
        labels = {
            CommitmentKind.PROMISE: _("Promesa de pago"),
            CommitmentKind.PLAN: _("Plan de pagos"),
            CommitmentKind.EXTENSION: _("Prórroga"),
        }
        _note(
            by=by,
            client=client,
            summary=_("%(kind)s: %(dates)s") % {"kind": labels[kind], "dates": _dates_text(rows, currency)},
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
            summary=_("%(kind)s cancelada") % {"kind": commitment.get_kind_display()},
            body=reason.strip(),
        )
    return commitment


# --- judging -------------------------------------------------------------------------------


def _paid_by_cutoff(installment_ids: list[int]) -> dict[int, Decimal]:
    """For each installment: what was applied to its commitment's invoices from the day the
    commitment was made to the installment's cutoff (date + grace). One query."""
    if not installment_ids:
        return {}
    inst_t = Installment._meta.db_table
    com_t = Commitment._meta.db_table
    link_t = Commitment.invoices.through._meta.db_table
    alloc_t = PaymentAllocation._meta.db_table
    pay_t = PaymentAllocation._meta.get_field("payment").related_model._meta.db_table
    cutoff = "(i.due_on + c.grace_days)"
    placeholders = ", ".join(["%s"] * len(installment_ids))
    sql = f"""
        SELECT i.id, COALESCE(SUM(pa.amount), 0)
        FROM {inst_t} i
        JOIN {com_t} c ON c.id = i.commitment_id
        JOIN {link_t} ci ON ci.commitment_id = c.id
        JOIN {alloc_t} pa ON pa.invoice_id = ci.invoice_id
        JOIN {pay_t} p ON p.id = pa.payment_id
        WHERE i.id IN ({placeholders}) AND p.received_on >= c.made_on AND p.received_on <= {cutoff}
        GROUP BY i.id
    """
    with connection.cursor() as cur:
        cur.execute(sql, installment_ids)
        return {row[0]: Decimal(row[1]) for row in cur.fetchall()}


def judge(*, today: dt.date | None = None) -> dict:
    """Judge every installment whose cutoff has passed and settle the commitments that ended.
    Returns counts (for the beat task's log and the tests)."""
    today = today or clock.localdate()
    counts = {"paid_off": 0, "kept": 0, "partial": 0, "missed": 0, "broken": 0}
    with transaction.atomic():
        counts["paid_off"] = _settle_paid_off(today)
        due = list(
            Installment.objects.select_for_update(of=("self",))
            # due_on < today is implied by the cutoff (grace >= 0); the grace is applied below.
            .filter(status=InstallmentStatus.PENDING, commitment__status=CommitmentStatus.OPEN, due_on__lt=today)
            .select_related("commitment", "commitment__client", "commitment__client__collector")
            .order_by("commitment_id", "number")
        )
        due = [i for i in due if i.due_on + dt.timedelta(days=i.commitment.grace_days) < today]
        if not due:
            return counts
        paid = _paid_by_cutoff([i.pk for i in due])
        commitment_ids = sorted({i.commitment_id for i in due})
        schedule: dict[int, list[Installment]] = {}
        for inst in Installment.objects.filter(commitment_id__in=commitment_ids).order_by("commitment_id", "number"):
            schedule.setdefault(inst.commitment_id, []).append(inst)
        ended: dict[int, str] = {}
        # One instance per commitment: several of its installments may be judged in one run.
        commitments: dict[int, Commitment] = {}
        for inst in due:
            commitment = commitments.setdefault(inst.commitment_id, inst.commitment)
            if commitment.pk in ended:
                continue  # a promise already broken by an earlier date of this run
            rows = schedule[commitment.pk]
            before = sum((r.amount for r in rows if r.number < inst.number), ZERO)
            upto = before + inst.amount
            got = paid.get(inst.pk, ZERO)
            inst.covered = min(max(got - before, ZERO), inst.amount)
            inst.judged_on = today
            if got >= upto:
                inst.status = InstallmentStatus.KEPT
                counts["kept"] += 1
            elif got > before:
                inst.status = InstallmentStatus.PARTIAL
                counts["partial"] += 1
            else:
                inst.status = InstallmentStatus.MISSED
                counts["missed"] += 1
            inst.save(update_fields=["status", "covered", "judged_on"])
            commitment.paid_amount = min(got, commitment.total)
            last = inst.number == rows[-1].number
            outcome = _commitment_outcome(commitment, inst, last)
            if outcome:
                ended[commitment.pk] = outcome
            commitment.save(update_fields=["paid_amount", "missed_count"])
        for commitment_id, outcome in ended.items():
            _end(commitments[commitment_id], outcome, today=today)
            if outcome in (CommitmentStatus.BROKEN, CommitmentStatus.PARTIAL):
                counts["broken"] += 1
    return counts


def _commitment_outcome(commitment: Commitment, inst: Installment, last: bool) -> str:
    """The commitment's final status after judging ``inst``, or "" while it goes on."""
    if inst.status == InstallmentStatus.KEPT:
        return CommitmentStatus.KEPT if last else ""
    if commitment.kind != CommitmentKind.PLAN:
        return CommitmentStatus.PARTIAL if inst.status == InstallmentStatus.PARTIAL else CommitmentStatus.BROKEN
    commitment.missed_count += 1
    _plan_missed_task(commitment, inst)
    if commitment.missed_count > commitment.missed_allowed or last:
        # Too many missed installments, or the plan's time is over with money still owed.
        return CommitmentStatus.PARTIAL if commitment.paid_amount > 0 else CommitmentStatus.BROKEN
    return ""


def _settle_paid_off(today: dt.date) -> int:
    """Open commitments whose invoices are all paid (or otherwise no longer owed) are kept."""
    done = list(
        Commitment.objects.filter(status=CommitmentStatus.OPEN)
        .annotate(
            owed=Count(
                "invoices",
                filter=collectible_q("invoices__"),
            )
        )
        .filter(owed=0)
        .select_related("client")
    )
    for commitment in done:
        commitment.paid_amount = commitment.total
        commitment.save(update_fields=["paid_amount"])
        commitment.installments.filter(status=InstallmentStatus.PENDING).update(
            status=InstallmentStatus.KEPT, judged_on=today
        )
        _end(commitment, CommitmentStatus.KEPT, today=today)
    return len(done)


def _plan_missed_task(commitment: Commitment, inst: Installment) -> None:
    client = commitment.client
    CollectorTask.objects.get_or_create(
        commitment=commitment,
        kind=TaskKind.PLAN_MISSED,
        due_on=inst.judged_on,
        defaults={
            "client": client,
            "title": (
                _("Cuota %(n)s del plan incumplida: %(amount)s del %(date)s")
                % {
                    "n": inst.number,
                    "amount": money_str(inst.amount, commitment.currency),
                    "date": inst.due_on.strftime("%d/%m/%Y"),
                }
            )[:255],
            "assigned_to": client.collector,
        },
    )


def _end(commitment: Commitment, status: str, *, today: dt.date) -> None:
    Commitment.objects.filter(pk=commitment.pk, status=CommitmentStatus.OPEN).update(status=status, resolved_on=today)
    commitment.status = status
    client = commitment.client
    invoices = list(commitment.invoices.all())
    with translation.override(settings.LANGUAGE_CODE):
        label = commitment.get_kind_display()
        paid = money_str(commitment.paid_amount, commitment.currency)
        total = money_str(commitment.total, commitment.currency)
        if status == CommitmentStatus.KEPT:
            summary = _("%(kind)s cumplida: pagó %(paid)s de %(total)s") % {"kind": label, "paid": paid, "total": total}
            outcome = Interaction.Outcome.PAID
        elif status == CommitmentStatus.PARTIAL:
            summary = _("%(kind)s cumplida en parte: pagó %(paid)s de %(total)s") % {
                "kind": label,
                "paid": paid,
                "total": total,
            }
            outcome = ""
        else:
            summary = _("%(kind)s incumplida: pagó %(paid)s de %(total)s") % {
                "kind": label,
                "paid": paid,
                "total": total,
            }
            outcome = ""
    _note(by=None, client=client, summary=summary, invoices=invoices, outcome=outcome, on=today)
    if status in (CommitmentStatus.BROKEN, CommitmentStatus.PARTIAL):
        webhooks_out.promise_broken(commitment=commitment, invoices=invoices, on=today)
        bumped = bump_ladder(
            invoices=[i for i in invoices if i.status in OPEN_STATUSES], today=today, commitment=commitment
        )
        CollectorTask.objects.get_or_create(
            commitment=commitment,
            kind=TaskKind.BROKEN_PROMISE,
            due_on=today,
            defaults={
                "client": client,
                "title": (
                    f"{summary}. "
                    + (
                        _("La escalera se reanuda un paso más firme.")
                        if bumped
                        else _("La escalera ya no tiene pasos: decida el siguiente.")
                    )
                )[:255],
                "assigned_to": client.collector,
            },
        )


def bump_ladder(*, invoices: Sequence[Invoice], today: dt.date, commitment: Commitment | None = None) -> int:
    """Make the step after the last one each invoice reached due today (one step firmer).
    Returns how many invoices got a bump (an invoice already past its last step gets none)."""
    if not invoices:
        return 0
    policy_of = effective_policy_of({inv.client_id for inv in invoices})
    steps: dict[int, list[PolicyStep]] = {}
    for step in PolicyStep.objects.filter(policy_id__in={p for p in policy_of.values() if p}, is_active=True):
        steps.setdefault(step.policy_id, []).append(step)
    client_of = {inv.pk: inv.client_id for inv in invoices}
    reached: dict[int, int] = {}
    for invoice_id, policy_id, position in NoticeItem.objects.filter(invoice__in=invoices).values_list(
        "invoice_id", "step__policy_id", "step__position"
    ):
        if policy_of.get(client_of[invoice_id]) == policy_id:
            reached[invoice_id] = max(reached.get(invoice_id, 0), position)
    bumps = []
    for inv in invoices:
        ladder = sorted(steps.get(policy_of.get(inv.client_id) or 0, []), key=lambda s: s.position)
        later = [s for s in ladder if s.position > reached.get(inv.pk, 0) and s.offset_days >= 0]
        if later:
            bumps.append(LadderBump(invoice=inv, step=later[0], since=today, commitment=commitment))
    LadderBump.objects.bulk_create(bumps, ignore_conflicts=True)
    return len(bumps)


# --- installment reminders -----------------------------------------------------------------


def remind_installments(*, now: dt.datetime | None = None) -> dict:
    """Email a reminder a few days before each installment of an open plan (and each date of
    a promise), once: the row is claimed (``reminded_at``) before the send, so two workers
    never both send; a transient failure releases the claim for the next run.

    The reminder follows the debtor's contact rules like a notice (docs/domain.md#contact-rules):
    when they hold it back, or the client has no email address to send it to, the timeline says
    so once, with the reason and when it will be tried again (``remind_after``)."""
    now = now or clock.now()
    today = timezone.localdate(now)
    horizon = today + dt.timedelta(days=settings.PLAN_REMINDER_DAYS_BEFORE)
    counts = {"sent": 0, "deferred": 0, "no_contact": 0, "failed": 0}
    candidates = list(
        Installment.objects.filter(
            Q(remind_after__isnull=True) | Q(remind_after__lte=now),
            status=InstallmentStatus.PENDING,
            reminded_at__isnull=True,
            commitment__status=CommitmentStatus.OPEN,
            due_on__gte=today,
            due_on__lte=horizon,
        )
        .select_related("commitment", "commitment__client", "commitment__client__collector", "commitment__contact")
        .order_by("due_on", "pk")[:1000]
    )
    for inst in candidates:
        client = inst.commitment.client
        contact = _reminder_contact(inst)
        if contact is None:
            counts["no_contact"] += 1
            _hold_reminder(
                inst,
                now=now,
                until=now + NO_CONTACT_RETRY,
                reason=_("el cliente no tiene un correo activo para recibirlo"),
            )
            continue
        decision = contact_rules.decide(client=client, channel="email", at=now)
        if not decision.allowed:
            counts["deferred"] += 1
            _hold_reminder(inst, now=now, until=decision.send_at, reason=decision.reason)
            continue
        claimed = Installment.objects.filter(pk=inst.pk, reminded_at__isnull=True).update(reminded_at=now)
        if not claimed:
            continue
        message = _installment_message(inst, contact, today)
        try:
            channels.send_email(message)
        except channels.TransientSendError:
            Installment.objects.filter(pk=inst.pk).update(reminded_at=None)
            counts["failed"] += 1
            continue
        except channels.PermanentSendError as exc:
            counts["failed"] += 1
            _note(
                by=None,
                client=client,
                summary=_("Recordatorio de cuota no enviado: %(error)s") % {"error": exc},
                outcome=Interaction.Outcome.FAILED,
            )
            continue
        ledger.interaction_log(
            by=None,
            client=client,
            kind=Interaction.Kind.EMAIL,
            direction=Interaction.Direction.OUTBOUND,
            outcome=Interaction.Outcome.SENT,
            summary=message.subject[:255],
            body=message.body,
            contact=contact,
            invoices=list(inst.commitment.invoices.all()),
        )
        counts["sent"] += 1
    return counts


# A reminder held for want of an email address is looked at again a day later.
NO_CONTACT_RETRY = dt.timedelta(days=1)


def _hold_reminder(inst: Installment, *, now: dt.datetime, until: dt.datetime, reason: str) -> None:
    """Hold the reminder until ``until``; the timeline hears of it once per hold (a claim on
    ``remind_after``: of two workers, only the one that moves it logs)."""
    moved = (
        Installment.objects.filter(pk=inst.pk, reminded_at__isnull=True)
        .filter(Q(remind_after__isnull=True) | Q(remind_after__lte=now))
        .update(remind_after=until)
    )
    if not moved:
        return
    client = inst.commitment.client
    when = timezone.localtime(until, contact_rules.client_time_zone(client)).strftime("%Y-%m-%d %H:%M")
    _note(
        by=None,
        client=client,
        summary=_("Recordatorio de la cuota del %(due)s aplazado hasta %(when)s: %(reason)s")
        % {"due": inst.due_on.strftime("%d/%m/%Y"), "when": when, "reason": reason},
        invoices=inst.commitment.invoices.all(),
    )


def _reminder_contact(inst: Installment) -> Contact | None:
    chosen = inst.commitment.contact
    if chosen is not None and chosen.is_active and chosen.email and not chosen.opted_out("email"):
        return chosen
    return choose_contact(inst.commitment.client, "email")


def _installment_message(inst: Installment, contact: Contact, today: dt.date) -> channels.OutgoingMessage:
    commitment = inst.commitment
    client = commitment.client
    domain = getattr(settings, "DUNNING_MESSAGE_ID_DOMAIN", "") or settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1]
    with translation.override(client.language):
        context = {
            "client": client,
            "contact": contact,
            "installment": inst,
            "commitment": commitment,
            "count": len(commitment.installments.all()),
            "amount": money_str(inst.amount, commitment.currency),
            "total": money_str(commitment.total, commitment.currency),
            "collector": client.collector,
            "company": getattr(settings, "COMPANY_NAME", "Morosos"),
            "days": (inst.due_on - today).days,
        }
        subject = " ".join(render_to_string("cobranza/email/installment_subject.txt", context).split())
        body = render_to_string("cobranza/email/installment_body.txt", context).strip() + "\n"
    return channels.OutgoingMessage(
        notice_id=0,
        channel="email",
        recipient=contact.email,
        subject=subject,
        body=body,
        message_id=f"<installment-{inst.pk}@{domain.strip('<> ')}>",
        headers={},
    )
