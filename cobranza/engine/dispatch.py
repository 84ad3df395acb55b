"""Dispatch: claim a notice, re-check it, send it, record it. At most once.

1. **Claim** with one conditional UPDATE (``planned`` and due, or ``sending`` with an expired
   lease) — two workers can never both win the same notice.
2. **Re-check** against the current state: invoices paid, disputed or held since planning,
   client paused or written off, contact opted out, contact rules (quiet hours, holidays,
   frequency caps). Anything that stops the send is recorded; a deferral moves
   ``scheduled_at`` to the next allowed moment and the notice waits — never dropped.
3. **Render and store** the message (recipient, subject, body, Message-ID) and mark the moment
   the send starts, committed *before* any network I/O.
4. **Send** outside any transaction; then mark ``sent`` and write the timeline.

A worker killed between 3 and 4 leaves a notice whose send may or may not have happened. It is
never sent again blindly (that is how customers get duplicates): it is marked failed as
"interrupted" and a task asks a person to check. Transient provider errors are retried with
exponential backoff by rescheduling the notice in the database, so losing Redis loses nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Prefetch, Q
from django.utils import timezone

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Contact, Interaction, Invoice
from cobranza import rules, texts
from cobranza.business import selectors as business
from cobranza.engine import channels, contact_rules, html_email, letters, messaging
from cobranza.engine.contacts import ADDRESS_FIELD, choose_contact
from cobranza.handoffs import services as handoffs
from cobranza.models import (
    MESSAGE_CHANNELS,
    CollectorTask,
    Notice,
    NoticeItem,
    StepChannel,
    TaskKind,
)
from cobranza.replies import tokens as reply_tokens
from cobranza.webhooks import outgoing as webhooks_out

log = logging.getLogger(__name__)


def lease() -> dt.timedelta:
    """How long a claim holds before another worker may take the notice over."""
    return dt.timedelta(seconds=settings.DUNNING_LEASE_SECONDS)


MAX_ATTEMPTS = 6
SUMMARY_LENGTH = Interaction._meta.get_field("summary").max_length
# A message held because the business is not set up is looked at again a day later (like a
# country without contact rules); finishing the setup releases the held ones at once.
BUSINESS_SETUP_RETRY = dt.timedelta(days=1)

# Which timeline kind records a sent message of each channel.
INTERACTION_KIND = {
    StepChannel.EMAIL: Interaction.Kind.EMAIL,
    StepChannel.SMS: Interaction.Kind.SMS,
    StepChannel.WHATSAPP: Interaction.Kind.WHATSAPP,
    StepChannel.LETTER: Interaction.Kind.LETTER,
}
TASK_FOR_CHANNEL = {
    StepChannel.CALL: TaskKind.CALL,
    StepChannel.REVIEW: TaskKind.REVIEW,
    StepChannel.AGENCY: TaskKind.AGENCY,
    StepChannel.LEGAL: TaskKind.LEGAL,
}
STATUS_FOR_HANDOFF = {StepChannel.AGENCY: Client.Status.AGENCY, StepChannel.LEGAL: Client.Status.LEGAL}


class Outcome:
    SENT = "sent"
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"
    SUPERSEDED = "superseded"
    NOT_CLAIMED = "not_claimed"


@dataclass
class DispatchResult:
    outcome: str
    reason: str = ""


def claim(notice_id: int, *, now: dt.datetime) -> dt.datetime | None:
    """Take the notice for this worker: planned and due, or abandoned by a dead worker.
    Returns the lease this worker set (its fencing token), or None when another has it."""
    until = now + lease()
    won = (
        Notice.objects.filter(pk=notice_id)
        .filter(
            Q(status=Notice.Status.PLANNED, scheduled_at__lte=now)
            | Q(status=Notice.Status.SENDING, lease_until__lt=now)
        )
        .update(status=Notice.Status.SENDING, lease_until=until, attempts=F("attempts") + 1, updated_at=now)
    )
    return until if won == 1 else None


def _mine(notice: Notice):
    """The notice, only while this worker still holds it. Every write after the claim goes
    through here: a worker that stalled past its lease (and whose notice another worker took
    over) then writes nothing and, above all, does not send (tests/faults/test_lease_fencing)."""
    return Notice.objects.filter(pk=notice.pk, status=Notice.Status.SENDING, lease_until=notice.claimed_lease)


def due_notice_ids(*, now: dt.datetime, limit: int = 500) -> list[int]:
    return list(
        Notice.objects.filter(
            Q(status=Notice.Status.PLANNED, scheduled_at__lte=now)
            | Q(status=Notice.Status.SENDING, lease_until__lt=now)
        )
        .order_by("scheduled_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def next_due_at(*, after: dt.datetime, before: dt.datetime) -> dt.datetime | None:
    """The next moment in (``after``, ``before``) at which a planned notice falls due, or None:
    where a replay of a day moves its clock to (``jobs.run``)."""
    return (
        Notice.objects.filter(status=Notice.Status.PLANNED, scheduled_at__gt=after, scheduled_at__lt=before)
        .order_by("scheduled_at")
        .values_list("scheduled_at", flat=True)
        .first()
    )


def _load(notice_id: int) -> Notice:
    return (
        Notice.objects.select_related(
            "client", "client__collector", "client__dunning", "step", "step__policy", "step__template"
        )
        .prefetch_related(
            Prefetch(
                "items",
                queryset=NoticeItem.objects.select_related("invoice").order_by("invoice__due_date", "invoice_id"),
            ),
            Prefetch("client__contacts", queryset=Contact.objects.filter(is_active=True).order_by("id")),
        )
        .get(pk=notice_id)
    )


def _still_due_items(notice: Notice, today: dt.date) -> list[NoticeItem]:
    """The items whose invoice still calls for this notice (re-read now, not at planning)."""
    tolerance = notice.step.policy.tolerance
    invoice_ids = [i.invoice_id for i in notice.items.all()]
    # The planner's rule, re-read now: paid, disputed, held or under a promise, plan or
    # extension agreed since planning, and the invoice no longer calls for the notice.
    dunnable = set(
        Invoice.objects.filter(rules.dunnable_invoice_q(today), pk__in=invoice_ids).values_list("pk", flat=True)
    )
    return [
        item
        for item in notice.items.all()
        if item.invoice_id in dunnable and item.invoice.open_balance >= max(tolerance, 0)
    ]


def _without_firmer(notice: Notice, items: list[NoticeItem]) -> tuple[list[NoticeItem], Notice | None]:
    """The items whose invoice has not reached a later step of the policy since this notice was
    planned (an older notice still waiting — deferred, awaiting approval — when the ladder moved
    on), and the latest notice that moved one of them on (docs/domain.md#pacing). One query."""
    moved = dict(
        NoticeItem.objects.filter(
            invoice_id__in=[i.invoice_id for i in items],
            step__policy_id=notice.step.policy_id,
            step__position__gt=notice.step.position,
        )
        .order_by("notice_id")
        .values_list("invoice_id", "notice_id")
    )
    if not moved:
        return items, None
    firmer = Notice.objects.select_related("step").get(pk=max(moved.values()))
    return [i for i in items if i.invoice_id not in moved], firmer


def _client_stop(notice: Notice, today: dt.date) -> str:
    client = notice.client
    if client.status == Client.Status.WRITTEN_OFF:
        return texts.CLIENT_WRITTEN_OFF()
    if client.status in (Client.Status.AGENCY, Client.Status.LEGAL) and notice.channel not in STATUS_FOR_HANDOFF:
        return texts.CLIENT_HANDED_OFF(status=texts.choice(Client.Status, client.status, lower=True))
    dunning = getattr(client, "dunning", None)
    if rules.pause_active(dunning, today):
        return texts.CLIENT_PAUSED(date=dunning.paused_until.isoformat(), reason=dunning.pause_reason)
    return ""


def _message_id(notice: Notice, profile) -> str:
    return f"<notice-{notice.pk}.{notice.planned_for:%Y%m%d}@{business.message_id_domain(profile)}>"


def _finish(notice: Notice, status: str, reason: str, *, now: dt.datetime, **fields) -> None:
    _mine(notice).update(status=status, **texts.columns("reason", reason), lease_until=None, updated_at=now, **fields)


def _timeline(notice: Notice, *, kind: str, direction: str, outcome: str, summary: str, body: str = "", invoices=()):
    ledger.interaction_log(
        by=None,
        client=notice.client,
        kind=kind,
        direction=direction,
        outcome=outcome,
        summary=summary,
        body=body,
        contact=notice.contact,
        invoices=list(invoices),
    )


def _task(notice: Notice, kind: str, title: str, *, due_on: dt.date, assigned_to=None) -> CollectorTask:
    task, _created = CollectorTask.objects.get_or_create(
        notice=notice,
        kind=kind,
        defaults={
            "client": notice.client,
            **texts.columns("title", title),
            "assigned_to": assigned_to or notice.client.collector,
            "due_on": due_on,
        },
    )
    return task


def _fail(notice: Notice, reason: str, *, now: dt.datetime, invoices=(), **fields) -> DispatchResult:
    """Record a failed notice and say so in the client's timeline (one place for every cause)."""
    _finish(notice, Notice.Status.FAILED, reason, now=now, **fields)
    _timeline(
        notice,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        outcome=Interaction.Outcome.FAILED,
        summary=texts.join([_step_label(notice), reason], sep=": "),
        invoices=invoices,
    )
    return DispatchResult(Outcome.FAILED, reason)


def _step_label(notice: Notice) -> texts.Text:
    # The step's name is the business's data; its channel is shown in the reader's language.
    return texts.join([notice.step.name, " (", texts.choice(StepChannel, notice.channel), ")"], sep="")


def dispatch(notice_id: int, *, now: dt.datetime | None = None) -> DispatchResult:
    """Claim, re-check, send and record one notice. Safe to call any number of times."""
    now = now or clock.now()
    claimed_lease = claim(notice_id, now=now)
    if claimed_lease is None:
        return DispatchResult(Outcome.NOT_CLAIMED)
    notice = _load(notice_id)
    notice.claimed_lease = claimed_lease
    today = timezone.localdate(now)

    if notice.message_id:
        # A previous worker stored the message and started sending, then died (retries and
        # deferrals clear message_id): it may have gone out. Do not send it a second time;
        # ask a person to check.
        reason = texts.INTERRUPTED()
        _finish(notice, Notice.Status.FAILED, reason, now=now)
        _task(
            notice,
            TaskKind.REVIEW,
            texts.CHECK_INTERRUPTED(step=_step_label(notice)),
            due_on=today,
        )
        _timeline(
            notice,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            outcome=Interaction.Outcome.FAILED,
            summary=texts.join([_step_label(notice), reason], sep=": "),
        )
        return DispatchResult(Outcome.FAILED, reason)

    stop = _client_stop(notice, today)
    items = _still_due_items(notice, today) if not stop else []
    if items:
        items, firmer = _without_firmer(notice, items)
        if not items:
            # Every invoice of it has a firmer step planned since: only the firmest goes.
            reason = texts.SUPERSEDED(step=firmer.step.name)
            _finish(notice, Notice.Status.SUPERSEDED, reason, now=now, superseded_by=firmer)
            return DispatchResult(Outcome.SUPERSEDED, reason)
    if not stop and not items:
        stop = texts.NOT_PENDING()
    if stop:
        _finish(notice, Notice.Status.SKIPPED, stop, now=now)
        _timeline(
            notice,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            outcome="",
            summary=texts.join([_step_label(notice), " — ", texts.OMITTED(), ": ", stop], sep=""),
            invoices=[i.invoice for i in notice.items.all()],
        )
        return DispatchResult(Outcome.SKIPPED, stop)

    invoices = [i.invoice for i in items]
    # Pacing holds every step, tasks and hand-offs included, whoever planned or approved it
    # (docs/domain.md#pacing).
    pacing = contact_rules.pacing_for(notice)
    if notice.channel in TASK_FOR_CHANNEL:
        # A task is work for a person, not a contact at a time of day: pacing only.
        if pacing.frees_at is not None and pacing.frees_at > now:
            decision = contact_rules.Decision(allowed=False, send_at=pacing.frees_at, reason=pacing.reason)
            return _defer(notice, decision, invoices=invoices, now=now)
        return _dispatch_task(notice, invoices, now=now, today=today)

    contact = choose_contact(notice.client, notice.channel)
    if contact is None:
        reason = texts.NO_CONTACT(channel=texts.choice(StepChannel, notice.channel))
        _finish(notice, Notice.Status.SKIPPED, reason, now=now)
        _task(
            notice,
            TaskKind.FIND_CONTACT,
            texts.FIND_CONTACT(channel=texts.choice(StepChannel, notice.channel)),
            due_on=today,
        )
        _timeline(
            notice,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            outcome="",
            summary=texts.join([_step_label(notice), reason], sep=" — "),
            invoices=invoices,
        )
        return DispatchResult(Outcome.SKIPPED, reason)

    # Never under an empty name: until an administrator sets up the business, messages wait
    # (docs/domain.md, "Who the debtor hears from"), re-checked every BUSINESS_SETUP_RETRY.
    profile = business.current()
    if profile.setup_completed_at is None:
        decision = contact_rules.Decision(
            allowed=False, send_at=now + BUSINESS_SETUP_RETRY, reason=business.not_set_up_reason()
        )
    else:
        # Ladder messages go at the client's slot in the window, not all at its opening
        # (docs/domain.md#spread).
        decision = contact_rules.decide(
            client=notice.client, channel=notice.channel, at=now, pacing=pacing, spread=True
        )
    if not decision.allowed:
        return _defer(notice, decision, invoices=invoices, now=now)

    notice.contact = contact
    html = None
    try:
        if notice.channel == StepChannel.EMAIL:
            # Both parts from one render: the text is the template's, the HTML wraps it.
            html = html_email.compose_notice(notice, items=items, today=today, business=profile)
            rendered = messaging.Rendered(subject=html.subject, body=html.text, language=html.language)
        else:
            rendered = messaging.render_notice(notice, items=items, today=today, business=profile)
    except messaging.TemplateRenderError as exc:
        reason = texts.TEMPLATE_FAILED(error=str(exc))
        return _fail(notice, reason, now=now, invoices=invoices)

    recipient = (
        contact.email
        if notice.channel == StepChannel.EMAIL
        else getattr(contact, ADDRESS_FIELD.get(notice.channel, "email"), "")
        if notice.channel != StepChannel.LETTER
        else (notice.client.address or contact.name)
    )
    message_id = _message_id(notice, profile)
    # Committed before the network: from here on a crash means "may have been sent".
    stored = _mine(notice).update(
        contact=contact,
        recipient=recipient[:254],
        subject=rendered.subject[:255],
        body=rendered.body,
        message_id=message_id,
        updated_at=now,
    )
    if not stored:
        return DispatchResult(Outcome.NOT_CLAIMED)

    try:
        if notice.channel == StepChannel.LETTER:
            result = letters.store_letter(notice, rendered)
        else:
            result = channels.send(
                channels.OutgoingMessage(
                    notice_id=notice.pk,
                    channel=notice.channel,
                    recipient=recipient,
                    subject=rendered.subject,
                    body=rendered.body,
                    message_id=message_id,
                    # A reply finds its client again (docs/domain.md#replies).
                    headers={"Reply-To": reply_tokens.reply_address(notice.client_id)}
                    if notice.channel == StepChannel.EMAIL
                    else {},
                    html=html.html if html else "",
                    images=tuple((i.cid, i.content, i.mimetype) for i in html.images) if html else (),
                    **(
                        {"from_email": business.sender(profile), "reply_to": business.reply_to(profile)}
                        if notice.channel == StepChannel.EMAIL
                        else {}
                    ),
                )
            )
    except channels.TransientSendError as exc:
        return _retry_later(notice, str(exc), now=now, invoices=invoices)
    except channels.PermanentSendError as exc:
        reason = texts.REJECTED(error=str(exc))
        return _fail(notice, reason, now=now, invoices=invoices, message_id="", body=rendered.body)

    sent_at = clock.now()
    _record_sent(notice, invoices=invoices, sent_at=sent_at, provider_ref=result.provider_ref)
    _timeline(
        notice,
        kind=INTERACTION_KIND[notice.channel],
        direction=Interaction.Direction.OUTBOUND,
        outcome=Interaction.Outcome.SENT,
        summary=texts.join([_step_label(notice), recipient], sep=" → "),
        body=(f"{rendered.subject}\n\n" if rendered.subject else "") + rendered.body,
        invoices=invoices,
    )
    return DispatchResult(Outcome.SENT)


def _defer(notice: Notice, decision: contact_rules.Decision, *, invoices, now: dt.datetime) -> DispatchResult:
    """Back to planned, not before ``decision.send_at``, with the reason in the timeline."""
    _mine(notice).update(
        status=Notice.Status.PLANNED,
        scheduled_at=decision.send_at,
        deferrals=F("deferrals") + 1,
        attempts=F("attempts") - 1,
        **texts.columns("reason", decision.reason),
        lease_until=None,
        updated_at=now,
    )
    summary = texts.DEFERRED(
        step=_step_label(notice),
        when=timezone.localtime(decision.send_at, contact_rules.client_time_zone(notice.client)).strftime(
            "%Y-%m-%d %H:%M"
        ),
        reason=decision.reason,
    )
    _timeline(
        notice,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        outcome="",
        summary=summary,
        # A summary longer than the field (a long step name, several rules in the way) is cut:
        # the detail then keeps the whole reason (docs/domain.md#contact-rules).
        body=decision.reason if len(summary) > SUMMARY_LENGTH else "",
        invoices=invoices,
    )
    return DispatchResult(Outcome.DEFERRED, decision.reason)


RECORD_ATTEMPTS = 3


def _record_sent(notice: Notice, *, invoices, sent_at: dt.datetime, provider_ref: str) -> None:
    """The message is out: record it, and queue its outgoing webhook, together. A database
    connection dropped at this moment would leave a sent notice looking interrupted (a person
    then checks it), so the write is retried on a fresh connection a few times; the lease
    fence (``_mine``) keeps a late retry from touching a notice another worker holds."""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _finish(notice, Notice.Status.SENT, "", now=sent_at, sent_at=sent_at, provider_ref=provider_ref[:255])
                webhooks_out.notice_sent(notice=notice, invoices=invoices, sent_at=sent_at)
            return
        except (OperationalError, InterfaceError):
            if attempt == RECORD_ATTEMPTS or connection.in_atomic_block:
                raise
            log.warning("notice %s sent; recording it failed (attempt %s), retrying", notice.pk, attempt)
            connection.close()
            time.sleep(0.5 * attempt)


def _retry_later(notice: Notice, error: str, *, now: dt.datetime, invoices) -> DispatchResult:
    attempts = Notice.objects.values_list("attempts", flat=True).get(pk=notice.pk)
    if attempts >= MAX_ATTEMPTS:
        reason = texts.FAILED_AFTER(n=attempts, error=error)
        return _fail(notice, reason, now=now, invoices=invoices, message_id="")
    # 2, 4, 8, 16 … minutes: the provider gets time to recover.
    backoff = dt.timedelta(minutes=2**attempts)
    _mine(notice).update(
        status=Notice.Status.PLANNED,
        scheduled_at=now + backoff,
        lease_until=None,
        message_id="",
        **texts.columns("reason", texts.RETRY(error=error)),
        updated_at=now,
    )
    return DispatchResult(Outcome.RETRY, error)


def _dispatch_task(notice: Notice, invoices, *, now: dt.datetime, today: dt.date) -> DispatchResult:
    """Call, review and hand-off steps become work for a person (and, for hand-offs, a
    change of the client's status)."""
    kind = TASK_FOR_CHANNEL[notice.channel]
    numbers = ", ".join(inv.number for inv in invoices)
    title = f"{notice.step.name}: {numbers}"
    try:
        with transaction.atomic():
            _task(notice, kind, title, due_on=today)
            if notice.channel in STATUS_FOR_HANDOFF:
                # The case file (PDF + CSV), the hand-off record and the client's new status.
                handoffs.open_for_notice(notice)
                new_status = STATUS_FOR_HANDOFF[notice.channel]
                if notice.client.status != new_status:
                    ledger.client_update(by=None, client=notice.client, status=new_status)
            _finish(notice, Notice.Status.SENT, "", now=now, sent_at=now)
    except ValidationError as exc:
        reason = texts.COULD_NOT_OPEN(error="; ".join(exc.messages))
        return _fail(notice, reason, now=now, invoices=invoices)
    _timeline(
        notice,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        outcome="",
        summary=texts.TASK_CREATED(
            step=_step_label(notice),
            who=(notice.client.collector.get_full_name() or notice.client.collector.username)
            if notice.client.collector
            else texts.THE_TEAM(),
        ),
        invoices=invoices,
    )
    return DispatchResult(Outcome.SENT)


def is_message_channel(channel: str) -> bool:
    return channel in MESSAGE_CHANNELS
