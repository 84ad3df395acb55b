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

Workers go by batches (``dispatch_batch``): one claim for up to DUNNING_BATCH_SIZE notices, the
re-check's reads made once for all of them, one SMTP connection — and steps 3 and 4 still one
message at a time, so a crash leaves at most the message being sent in doubt, as above
(docs/reliability.md, "Batches: why exactly-once still holds").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Prefetch, Q
from django.db.models.sql import UpdateQuery
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
    BusinessProfile,
    CollectorTask,
    Notice,
    NoticeItem,
    StepChannel,
    TaskKind,
    WebhookEvent,
)
from cobranza.portal import links
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


def _with_relations(queryset):
    return queryset.select_related(
        "client", "client__collector", "client__dunning", "step", "step__policy", "step__template"
    ).prefetch_related(
        # The items, then their invoices by primary key: two reads whose plans do not depend on
        # the table statistics. Joined in one read, a day's notices freshly planned (statistics
        # not yet updated) made PostgreSQL hash the whole invoice table for fifty notices.
        # Ordered by due date where they are used (``_still_due_items``).
        Prefetch("items", queryset=NoticeItem.objects.order_by("invoice_id")),
        "items__invoice",
        Prefetch("client__contacts", queryset=Contact.objects.filter(is_active=True).order_by("id")),
        # The template's texts come with the notice (one query for a whole batch); each text
        # compiles once per process (messaging._compile caches by source: an edit is a new
        # entry, so the cache is per template version).
        "step__template__texts",
    )


def _load(notice_id: int) -> Notice:
    return _with_relations(Notice.objects.all()).get(pk=notice_id)


def _dunnable(invoice_ids, today: dt.date) -> set[int]:
    # The planner's rule, re-read now: paid, disputed, held or under a promise, plan or
    # extension agreed since planning, and the invoice no longer calls for the notice.
    return set(
        Invoice.objects.filter(rules.dunnable_invoice_q(today), pk__in=list(invoice_ids)).values_list("pk", flat=True)
    )


def _still_due_items(notice: Notice, today: dt.date, *, dunnable: set[int] | None = None) -> list[NoticeItem]:
    """The items whose invoice still calls for this notice (re-read now, not at planning;
    ``dunnable``: the batch's read of the same rule, made a moment earlier)."""
    tolerance = notice.step.policy.tolerance
    if dunnable is None:
        dunnable = _dunnable([i.invoice_id for i in notice.items.all()], today)
    due = [
        item
        for item in notice.items.all()
        if item.invoice_id in dunnable and item.invoice.open_balance >= max(tolerance, 0)
    ]
    return sorted(due, key=lambda item: (item.invoice.due_date, item.invoice_id))


def _later_items(invoice_ids) -> list[tuple[int, int, int, int]]:
    """Every notice item of these invoices as (invoice, notice, policy, step position): the
    batch's one read for ``_without_firmer``."""
    return list(
        NoticeItem.objects.filter(invoice_id__in=list(invoice_ids)).values_list(
            "invoice_id", "notice_id", "step__policy_id", "step__position"
        )
    )


def _without_firmer(
    notice: Notice, items: list[NoticeItem], *, later_items: list[tuple[int, int, int, int]] | None = None
) -> tuple[list[NoticeItem], Notice | None]:
    """The items whose invoice has not reached a later step of the policy since this notice was
    planned (an older notice still waiting — deferred, awaiting approval — when the ladder moved
    on), and the latest notice that moved one of them on (docs/domain.md#pacing). One query
    (none with ``later_items``, the batch's read of ``_later_items``)."""
    if later_items is None:
        moved = dict(
            NoticeItem.objects.filter(
                invoice_id__in=[i.invoice_id for i in items],
                step__policy_id=notice.step.policy_id,
                step__position__gt=notice.step.position,
            )
            .order_by("notice_id")
            .values_list("invoice_id", "notice_id")
        )
    else:
        wanted = {i.invoice_id for i in items}
        moved = {}
        for invoice_id, notice_id, policy_id, position in sorted(later_items, key=lambda row: row[1]):
            if invoice_id in wanted and policy_id == notice.step.policy_id and position > notice.step.position:
                moved[invoice_id] = notice_id
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
    entry = {
        "client": notice.client,
        "kind": kind,
        "direction": direction,
        "outcome": outcome,
        "summary": summary,
        "body": body,
        "contact": notice.contact,
        "invoices": list(invoices),
    }
    if getattr(notice, "in_batch", False):
        # A batch's entries are built here from rows it has just read: one statement, without
        # interaction_log's checks of what a person types (accounts.services).
        ledger.interaction_log_system(**entry)
    else:
        ledger.interaction_log(by=None, **entry)


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
    return _dispatch_claimed(notice, now=now)


def _dispatch_claimed(notice: Notice, *, now: dt.datetime, batch: _Batch | None = None) -> DispatchResult:
    """Re-check, send and record a notice this worker holds (``notice.claimed_lease``). With
    ``batch``, what the batch read once stands in for the per-notice reads, as long as no
    earlier notice of the batch touched the same client (``_Batch.knows``)."""
    today = timezone.localdate(now)
    known = batch if batch is not None and batch.knows(notice.client_id) else None

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
    items = _still_due_items(notice, today, dunnable=known.dunnable if known else None) if not stop else []
    if items:
        items, firmer = _without_firmer(notice, items, later_items=known.later_items if known else None)
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
    pacing = contact_rules.pacing_for(notice, last=known.last_sent.get(notice.client_id, NEVER_SENT) if known else None)
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
    profile = batch.profile if batch is not None else business.current()
    if profile.setup_completed_at is None:
        decision = contact_rules.Decision(
            allowed=False, send_at=now + BUSINESS_SETUP_RETRY, reason=business.not_set_up_reason()
        )
    else:
        # Ladder messages go at the client's slot in the window, not all at its opening
        # (docs/domain.md#spread).
        decision = contact_rules.decide(
            client=notice.client,
            channel=notice.channel,
            at=now,
            pacing=pacing,
            spread=True,
            facts=known.facts if known else None,
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

    send = batch.mailer.send if batch is not None else channels.send
    try:
        if notice.channel == StepChannel.LETTER:
            result = letters.store_letter(notice, rendered)
        else:
            result = send(
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

    _record_sent(
        notice,
        invoices=invoices,
        sent_at=clock.now(),
        provider_ref=result.provider_ref,
        webhooks=batch is None or batch.webhooks,
        summary=texts.join([_step_label(notice), recipient], sep=" → "),
        body=(f"{rendered.subject}\n\n" if rendered.subject else "") + rendered.body,
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


def _fenced_update_after_send(notice: Notice, **values) -> tuple[str, list]:
    """The SQL of ``_mine(notice).update(**values)``, returning the id of the row it changed:
    the guard of a timeline entry written in the same statement (``interaction_log_system``).

    Its transaction commits without waiting for the disk (``synchronous_commit`` off for that
    transaction alone, set by the statement itself): it is written after a send, never before
    one. It is visible to every session at once; only a crash of the database server itself
    within a fraction of a second could lose it, and then the notice is still "sending" with its
    message stored — flagged for a person, never sent again, exactly as after a crash between
    the send and its record. The next message's store (before its send) waits for the disk, and
    with it everything committed earlier (docs/reliability.md#batches)."""
    queryset = _mine(notice)
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    sql, params = query.get_compiler(queryset.db).as_sql()
    pk = connection.ops.quote_name(Notice._meta.pk.column)
    return f"{sql} RETURNING {pk}, set_config('synchronous_commit', 'off', true)", list(params)


def _record_sent(
    notice: Notice, *, invoices, sent_at: dt.datetime, provider_ref: str, summary, body: str, webhooks: bool = True
) -> None:
    """The message is out: record it, its timeline entry and its outgoing webhook, together. A
    database connection dropped at this moment would leave a sent notice looking interrupted (a
    person then checks it), so the write is retried on a fresh connection a few times; the
    lease fence (``_mine``) keeps a late retry from touching a notice another worker holds, and
    a retry of a write that did commit from writing the entry twice.
    In a batch the "sent" mark and the entry are one statement (one round trip, one commit);
    ``webhooks=False`` (a batch that found no endpoint taking ``notice.sent``): only that."""
    fields = {"status": Notice.Status.SENT, **texts.columns("reason", ""), "lease_until": None}
    fields |= {"updated_at": sent_at, "sent_at": sent_at, "provider_ref": provider_ref[:255]}
    entry = {
        "kind": INTERACTION_KIND[notice.channel],
        "direction": Interaction.Direction.OUTBOUND,
        "outcome": Interaction.Outcome.SENT,
        "summary": summary,
        "body": body,
        "invoices": invoices,
    }
    in_batch = getattr(notice, "in_batch", False)
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            with transaction.atomic() if webhooks else contextlib.nullcontext():
                if in_batch:
                    recorded = (
                        ledger.interaction_log_system(
                            client=notice.client,
                            contact=notice.contact,
                            **entry,
                            only_if=_fenced_update_after_send(notice, **fields),
                        )
                        is not None
                    )
                else:
                    recorded = _mine(notice).update(**fields) == 1
                if recorded and webhooks:
                    webhooks_out.notice_sent(notice=notice, invoices=invoices, sent_at=sent_at)
            break
        except (OperationalError, InterfaceError):
            if attempt == RECORD_ATTEMPTS or connection.in_atomic_block:
                raise
            log.warning("notice %s sent; recording it failed (attempt %s), retrying", notice.pk, attempt)
            connection.close()
            time.sleep(0.5 * attempt)
    if not recorded:
        # Taken over while it was being sent (a stall past the lease): the other worker's
        # records stand; this one writes nothing more (docs/reliability.md).
        log.warning("notice %s sent, but no longer held by this worker: not recorded", notice.pk)
    elif not in_batch:
        _timeline(notice, **entry)


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


# --- Batches ---------------------------------------------------------------------------------

NEVER_SENT = {"any": None, "escalation": None}


@dataclass
class _Batch:
    """What a batch reads once for all its notices (``dispatch_batch``)."""

    profile: BusinessProfile
    mailer: channels.EmailSession
    webhooks: bool
    dunnable: set[int]
    later_items: list[tuple[int, int, int, int]]
    last_sent: dict[int, dict]
    facts: contact_rules.Facts
    # Clients whose state an earlier notice of this batch may have changed (a message sent,
    # a deferral logged, a hand-off): their later notices read everything afresh.
    touched: set[int] = field(default_factory=set)

    def knows(self, client_id: int) -> bool:
        return client_id not in self.touched


def claim_many(notice_ids, *, now: dt.datetime) -> tuple[dt.datetime, list[int]]:
    """``claim`` for many notices in one statement: the ones planned and due, or abandoned by
    a dead worker, all under one lease (the batch's fencing token). Rows another worker is
    claiming at this instant are skipped (SKIP LOCKED, in id order: no deadlock between two
    overlapping batches); it has them."""
    until = now + lease()
    table = Notice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH due AS (
                SELECT id FROM {table}
                WHERE id = ANY(%(ids)s)
                  AND ((status = %(planned)s AND scheduled_at <= %(now)s)
                       OR (status = %(sending)s AND lease_until < %(now)s))
                ORDER BY id
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {table} AS n
               SET status = %(sending)s, lease_until = %(until)s, attempts = n.attempts + 1, updated_at = %(now)s
              FROM due WHERE n.id = due.id
            RETURNING n.id
            """,  # noqa: S608 - the table name is the model's own
            {
                "ids": list(notice_ids),
                "planned": Notice.Status.PLANNED,
                "sending": Notice.Status.SENDING,
                "now": now,
                "until": until,
            },
        )
        return until, sorted(row[0] for row in cursor.fetchall())


def _renew(ids: list[int], *, token: dt.datetime, until: dt.datetime) -> set[int]:
    """Extend the batch's lease on the notices not yet handled, fenced by the current token;
    returns those still ours (the others were taken over while this worker was slow)."""
    table = Notice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_until = %s WHERE id = ANY(%s) AND status = %s AND lease_until = %s RETURNING id",  # noqa: S608
            [until, ids, Notice.Status.SENDING, token],
        )
        return {row[0] for row in cursor.fetchall()}


def dispatch_batch(notice_ids, *, now: dt.datetime | None = None) -> dict[int, DispatchResult]:
    """``dispatch`` for many notices: one claim, a few set-based reads for the whole batch, the
    same re-checks per notice on what was read, one SMTP connection for all the emails — and,
    as in ``dispatch``, each message stored before its send and recorded as sent right after
    it, fenced by the lease (docs/reliability.md#batches). Results by notice id; notices not
    claimed (another worker has them, or they are no longer due) are ``not_claimed``.

    Other channels (SMS, WhatsApp, letters, tasks and hand-offs) go through the same code
    after the batch's claim, with the batch's reads; only their sending is one by one."""
    now = now or clock.now()
    notice_ids = list(dict.fromkeys(notice_ids))
    results = {notice_id: DispatchResult(Outcome.NOT_CLAIMED) for notice_id in notice_ids}
    token, claimed = claim_many(notice_ids, now=now) if notice_ids else (None, [])
    if not claimed:
        return results
    started = time.monotonic()
    notices = list(_with_relations(Notice.objects.filter(pk__in=claimed)).order_by("id"))
    for notice in notices:
        notice.claimed_lease = token
        notice.in_batch = True  # its timeline entries are written by _timeline's batch path
    today = timezone.localdate(now)
    invoice_ids = {item.invoice_id for notice in notices for item in notice.items.all()}
    client_ids = {notice.client_id for notice in notices}
    with (
        business.remembered() as profile,
        links.versions_read(client_ids),
        channels.EmailSession() as mailer,
    ):
        batch = _Batch(
            profile=profile,
            mailer=mailer,
            webhooks=webhooks_out.is_subscribed(WebhookEvent.NOTICE_SENT),
            dunnable=_dunnable(invoice_ids, today),
            later_items=_later_items(invoice_ids),
            last_sent=contact_rules.last_sent_by_client(client_ids, excluding=claimed),
            facts=contact_rules.load_facts([n.client for n in notices], at=now),
        )
        ours = set(claimed)
        renewed = started
        for index, notice in enumerate(notices):
            # A long batch (a slow SMTP server) keeps its remaining notices before the lease
            # runs out: renewed at a third of it, fenced like every other write.
            if time.monotonic() - renewed > lease().total_seconds() / 3:
                remaining = [n.pk for n in notices[index:] if n.pk in ours]
                until = now + dt.timedelta(seconds=time.monotonic() - started) + lease()
                ours = _renew(remaining, token=token, until=until)
                token, renewed = until, time.monotonic()
                for later in notices[index:]:
                    later.claimed_lease = token
            if notice.pk not in ours:
                continue
            try:
                results[notice.pk] = _dispatch_claimed(notice, now=now, batch=batch)
            except SoftTimeLimitExceeded:
                # The time is up: the rest of the batch waits for its lease to run out and is
                # taken over then, as a dead worker's would.
                raise
            except (OperationalError, InterfaceError):
                if connection.in_atomic_block:
                    raise
                # The database connection dropped (a restart, a terminated session): this
                # notice waits for its lease, as after a crash (flagged for a person if its
                # message was stored); the rest of the batch goes on over a new connection,
                # every write still fenced by the token.
                log.warning("notice %s: database connection lost, going on with the batch", notice.pk)
                connection.close()
            except Exception:
                # One notice's unexpected error must not hold the others back: it stays
                # "sending" until its lease runs out, then it is taken over (or, if its
                # message was stored, flagged for a person), as after a crash.
                log.exception("notice %s: dispatch failed", notice.pk)
            finally:
                batch.touched.add(notice.client_id)
    return results


def is_message_channel(channel: str) -> bool:
    return channel in MESSAGE_CHANNELS
