"""Payment commitments: promises to pay, payment plans (*fraccionamiento*) and term extensions,
judged nightly (``judge``) and their installments reminded hourly (``remind_installments``).
Creating and cancelling one are writes staff make, in ``cobranza.workspace.services``.

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
from django.db import connection, transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts import clock
from accounts import services as ledger
from accounts.models import Contact, Interaction, Invoice, PaymentAllocation
from accounts.rules import OPEN_STATUSES, collectible_q, is_open_invoice
from accounts.utils import money_str
from cobranza import texts
from cobranza.business import selectors as business
from cobranza.engine import channels, contact_rules, html_email
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
from cobranza.portal import links
from cobranza.replies import tokens as reply_tokens
from cobranza.webhooks import outgoing as webhooks_out
from cobranza.workspace.services import ZERO, _note

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
            **texts.columns(
                "title",
                texts.PLAN_MISSED(
                    n=inst.number, amount=texts.money(inst.amount, commitment.currency), date=texts.date(inst.due_on)
                ),
            ),
            "assigned_to": client.collector,
        },
    )


def _end(commitment: Commitment, status: str, *, today: dt.date) -> None:
    Commitment.objects.filter(pk=commitment.pk, status=CommitmentStatus.OPEN).update(status=status, resolved_on=today)
    commitment.status = status
    client = commitment.client
    invoices = list(commitment.invoices.all())
    with translation.override(settings.LANGUAGE_CODE):
        figures = {
            "kind": texts.choice(CommitmentKind, commitment.kind),
            "paid": texts.money(commitment.paid_amount, commitment.currency),
            "total": texts.money(commitment.total, commitment.currency),
        }
        if status == CommitmentStatus.KEPT:
            summary = texts.COMMITMENT_KEPT(**figures)
            outcome = Interaction.Outcome.PAID
        elif status == CommitmentStatus.PARTIAL:
            summary = texts.COMMITMENT_PARTIAL(**figures)
            outcome = ""
        else:
            summary = texts.COMMITMENT_BROKEN(**figures)
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
                **texts.columns(
                    "title",
                    texts.join([summary, texts.LADDER_RESUMES() if bumped else texts.LADDER_ENDED()], sep=". "),
                ),
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
    profile = business.current()
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
                reason=texts.REMINDER_NO_EMAIL(),
            )
            continue
        if profile.setup_completed_at is None:
            # Never under an empty name (docs/domain.md, "Who the debtor hears from").
            decision = contact_rules.Decision(
                allowed=False, send_at=now + NO_CONTACT_RETRY, reason=business.not_set_up_reason()
            )
        else:
            # A reminder is a batch send like the ladder's: at the client's slot (docs/domain.md#spread).
            decision = contact_rules.decide(client=client, channel="email", at=now, spread=True)
        if not decision.allowed:
            counts["deferred"] += 1
            _hold_reminder(inst, now=now, until=decision.send_at, reason=decision.reason)
            continue
        claimed = Installment.objects.filter(pk=inst.pk, reminded_at__isnull=True).update(reminded_at=now)
        if not claimed:
            continue
        message = _installment_message(inst, contact, today, profile)
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
                summary=texts.REMINDER_NOT_SENT(error=str(exc)),
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
        summary=texts.REMINDER_DEFERRED(due=texts.date(inst.due_on), when=when, reason=reason),
        invoices=inst.commitment.invoices.all(),
    )


def _reminder_contact(inst: Installment) -> Contact | None:
    chosen = inst.commitment.contact
    if chosen is not None and chosen.is_active and chosen.email and not chosen.opted_out("email"):
        return chosen
    return choose_contact(inst.commitment.client, "email")


def _installment_message(inst: Installment, contact: Contact, today: dt.date, profile) -> channels.OutgoingMessage:
    commitment = inst.commitment
    client = commitment.client
    domain = business.message_id_domain(profile)
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
            "company": profile.trade_name,
            "signature": business.by_language(profile, "signature", client.language),
            "legal_footer": business.by_language(profile, "legal_footer", client.language),
            "link": links.link_for(client, profile) if profile.public_base_url else "",
            "days": (inst.due_on - today).days,
        }
        subject = " ".join(render_to_string("cobranza/email/installment_subject.txt", context).split())
        body = render_to_string("cobranza/email/installment_body.txt", context).strip() + "\n"
    # The HTML part every debtor email has; its pay button asks for this installment.
    email = html_email.wrap_text(
        subject=subject,
        body=body,
        language=client.language,
        client=client,
        contact=contact,
        invoices=[i for i in commitment.invoices.all() if is_open_invoice(i)],
        amounts={commitment.currency: inst.amount},
    )
    return channels.OutgoingMessage(
        notice_id=0,
        channel="email",
        recipient=contact.email,
        subject=subject,
        body=email.text + "\n",
        message_id=f"<installment-{inst.pk}@{domain}>",
        # A reply finds its client again (docs/domain.md#replies).
        headers={"Reply-To": reply_tokens.reply_address(client.pk)},
        html=email.html,
        images=tuple((i.cid, i.content, i.mimetype) for i in email.images),
        from_email=business.sender(profile),
        reply_to=business.reply_to(profile),
    )
