"""Reads of the dunning operations pages: what goes out on a day, the notices, the approval
queue, the letters to print and the client's dunning panel.

Every function costs a fixed number of queries, whatever the number of notices, invoices or
items (tests/cobranza/test_ops_ui.py asserts it). Visibility is always derived from
``accounts.selectors.clients_visible_to``: a collector reads only the notices of their clients.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Count,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts import clock
from accounts.models import Client, Contact, Invoice, Payment
from accounts.rules import COLLECTIBLE
from accounts.selectors import clients_visible_to
from accounts.utils import money_str
from cobranza.engine import contact_rules, planner
from cobranza.models import (
    ClientDunning,
    Commitment,
    CommitmentStatus,
    Dispute,
    DisputeStatus,
    InvoiceHold,
    LadderBump,
    Notice,
    NoticeItem,
    NoticeStatus,
    Policy,
    PolicyStep,
    StepChannel,
)
from cobranza.rules import (
    dunnable_invoice_q,
    effective_policy,
    effective_profile_expr,
    hold_active_q,
    hold_is_active,
    open_commitment_exists,
    pause_active,
    profile_policy_q,
    step_applies,
    step_day,
    step_due,
)

# A pseudo-status of the notice list: failed after the message was stored, i.e. the worker
# died mid-send and nobody knows whether it went out (dispatch keeps the Message-ID then).
INTERRUPTED = "interrupted"
OUTBOX_DETAIL = 300
OUTBOX_MAX_DAYS_AHEAD = 60
LAST_NOTICES = 10


def notices_visible_to(user) -> QuerySet[Notice]:
    """Managers see every notice; a collector those of their own clients."""
    return Notice.objects.filter(client__in=clients_visible_to(user).values("pk"))


def interrupted_q() -> Q:
    return Q(status=NoticeStatus.FAILED) & ~Q(message_id="")


def _attach_totals(notices: list[Notice]) -> list[Notice]:
    """``notice.totals``: the listed balance per currency, ``{currency: amount}`` (one query)."""
    totals: dict[int, dict[str, Decimal]] = {}
    if notices:
        rows = (
            NoticeItem.objects.filter(notice__in=[n.pk for n in notices])
            .values("notice_id", "invoice__currency")
            .annotate(total=Sum("open_balance"))
            .order_by()
            .values_list("notice_id", "invoice__currency", "total")
        )
        for notice_id, currency, total in rows:
            totals.setdefault(notice_id, {})[currency] = total
    for notice in notices:
        notice.totals = dict(sorted(totals.get(notice.pk, {}).items()))
    return notices


def with_totals(notices) -> list[Notice]:
    """Evaluate a page of notices and attach their totals per currency."""
    return _attach_totals(list(notices))


# --- counts for the badges -------------------------------------------------------------------


@dataclass
class OpsCounts:
    failed: int = 0
    interrupted: int = 0
    awaiting_approval: int = 0
    letters_to_print: int = 0


def ops_counts(user) -> OpsCounts:
    """What needs a person: failed and interrupted sends, approvals, letters to print (1 query)."""
    row = notices_visible_to(user).aggregate(
        failed=Count("id", filter=Q(status=NoticeStatus.FAILED)),
        interrupted=Count("id", filter=interrupted_q()),
        awaiting_approval=Count("id", filter=Q(status=NoticeStatus.AWAITING_APPROVAL)),
        letters_to_print=Count(
            "id", filter=Q(channel=StepChannel.LETTER, status=NoticeStatus.SENT, printed_at__isnull=True)
        ),
    )
    return OpsCounts(**row)


# --- the notice list -------------------------------------------------------------------------


def notice_list(
    *,
    user,
    status: str = "",
    channel: str = "",
    policy: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    q: str = "",
) -> QuerySet[Notice]:
    """Notices the user may see, newest first. Dates filter the day the notice was planned
    for; ``status="interrupted"`` are the failed sends that may have gone out."""
    qs = notices_visible_to(user)
    if status == INTERRUPTED:
        qs = qs.filter(interrupted_q())
    elif status:
        qs = qs.filter(status=status)
    if channel:
        qs = qs.filter(channel=channel)
    if policy:
        qs = qs.filter(step__policy_id=policy)
    if date_from:
        qs = qs.filter(planned_for__gte=date_from)
    if date_to:
        qs = qs.filter(planned_for__lte=date_to)
    q = (q or "").strip()
    if q:
        qs = qs.filter(
            Q(client__legal_name__icontains=q)
            | Q(client__trade_name__icontains=q)
            | Q(client__tax_id__istartswith=q)
            | Q(recipient__icontains=q)
        )
    return (
        qs.select_related("client", "step", "step__policy")
        .annotate(invoice_count=Count("items"))
        .order_by("-planned_for", "-scheduled_at", "-id")
    )


def notice_detail(*, user, pk: int) -> Notice:
    """One notice with everything its page shows (a fixed number of queries)."""
    return (
        notices_visible_to(user)
        .select_related(
            "client",
            "client__collector",
            "contact",
            "step",
            "step__policy",
            "step__template",
            "approved_by",
            "printed_by",
            "superseded_by__step",
        )
        .prefetch_related(
            Prefetch(
                "items",
                queryset=NoticeItem.objects.select_related("invoice").order_by("invoice__due_date", "invoice_id"),
            ),
            "step__template__texts",
            Prefetch("client__contacts", queryset=Contact.objects.filter(is_active=True).order_by("id")),
        )
        .get(pk=pk)
    )


# --- approvals ---------------------------------------------------------------------------


def approval_queue() -> QuerySet[Notice]:
    """Notices waiting for a manager, oldest first, loaded for rendering their message
    (select + 3 prefetches, whatever the page size)."""
    return (
        Notice.objects.filter(status=NoticeStatus.AWAITING_APPROVAL)
        .select_related("client", "client__collector", "step", "step__policy", "step__template")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=NoticeItem.objects.select_related("invoice").order_by("invoice__due_date", "invoice_id"),
            ),
            "step__template__texts",
            Prefetch("client__contacts", queryset=Contact.objects.filter(is_active=True).order_by("id")),
        )
        .order_by("scheduled_at", "id")
    )


# Steps that hand the client over: never while the client has a promise or plan running or a
# dispute open (docs/domain.md#hand-offs).
HANDOFF_CHANNELS = (StepChannel.AGENCY, StepChannel.LEGAL)


@dataclass
class ApprovalFacts:
    """A notice waiting for approval, re-read now rather than as the planner saw it: the
    invoices it still covers (live balances), the ones it no longer does and why, what the
    manager should know about the client, and why approving it is refused, if it is."""

    due: list[NoticeItem]
    dropped: list[tuple[NoticeItem, str]]
    warnings: list[str]
    blocked: str = ""

    @property
    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for item in self.due:
            totals[item.invoice.currency] = totals.get(item.invoice.currency, Decimal("0")) + item.invoice.open_balance
        return dict(sorted(totals.items()))


def approval_facts(notices: list[Notice], today: dt.date | None = None) -> dict[int, ApprovalFacts]:
    """Live facts for each notice (a fixed number of queries for any number of notices; the
    notices' items with their invoices are best prefetched, as ``approval_queue`` does).
    The invoices still due follow the dispatcher's re-check (dunnable now and above the
    policy's tolerance), so what a manager approves is what would go out."""
    today = today or clock.localdate()
    items = {n.pk: list(n.items.all()) for n in notices}
    invoice_ids = {item.invoice_id for rows in items.values() for item in rows}
    client_ids = {n.client_id for n in notices}
    dunnable = set(Invoice.objects.filter(dunnable_invoice_q(today), pk__in=invoice_ids).values_list("pk", flat=True))
    held = set(Invoice.objects.filter(hold_active_q(today), pk__in=invoice_ids).values_list("pk", flat=True))
    promised = set(
        Commitment.invoices.through.objects.filter(
            invoice_id__in=invoice_ids, commitment__status=CommitmentStatus.OPEN
        ).values_list("invoice_id", flat=True)
    )
    commitments: dict[int, list[Commitment]] = {}
    for commitment in Commitment.objects.filter(client_id__in=client_ids, status=CommitmentStatus.OPEN).order_by("id"):
        commitments.setdefault(commitment.client_id, []).append(commitment)
    disputes: dict[int, list[Dispute]] = {}
    for dispute in Dispute.objects.filter(client_id__in=client_ids, status=DisputeStatus.OPEN).order_by("id"):
        disputes.setdefault(dispute.client_id, []).append(dispute)
    since = min((n.planned_for for n in notices), default=today)
    payments: dict[int, list[Payment]] = {}
    for payment in Payment.objects.filter(client_id__in=client_ids, received_on__gte=since).order_by("received_on"):
        payments.setdefault(payment.client_id, []).append(payment)

    facts = {}
    for notice in notices:
        tolerance = notice.step.policy.tolerance
        due, dropped = [], []
        for item in items[notice.pk]:
            invoice = item.invoice
            if invoice.pk in dunnable and invoice.open_balance >= max(tolerance, 0):
                due.append(item)
            elif invoice.status not in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID):
                dropped.append((item, invoice.get_status_display()))
            elif invoice.open_balance <= 0:
                dropped.append((item, _("Sin saldo")))
            elif invoice.pk in held:
                dropped.append((item, _("Retenida")))
            elif invoice.pk in promised:
                dropped.append((item, _("Con un compromiso de pago vigente")))
            else:
                dropped.append((item, _("Saldo menor al mínimo de la política")))
        warnings = []
        for commitment in commitments.get(notice.client_id, []):
            warnings.append(
                _("%(kind)s vigente por %(amount)s, acordado el %(date)s.")
                % {
                    "kind": commitment.get_kind_display(),
                    "amount": money_str(commitment.total, commitment.currency),
                    "date": date_format(commitment.made_on, "SHORT_DATE_FORMAT"),
                }
            )
        for dispute in disputes.get(notice.client_id, []):
            warnings.append(
                _("Disputa abierta desde el %(date)s: %(reason)s.")
                % {"date": date_format(dispute.opened_on, "SHORT_DATE_FORMAT"), "reason": dispute.get_reason_display()}
            )
        for payment in payments.get(notice.client_id, []):
            if payment.received_on >= notice.planned_for:
                warnings.append(
                    _("Pagó %(amount)s el %(date)s, después de planearse este aviso.")
                    % {
                        "amount": money_str(payment.amount, payment.currency),
                        "date": date_format(payment.received_on, "SHORT_DATE_FORMAT"),
                    }
                )
        blocked = ""
        if not due:
            blocked = _("Ya no queda ninguna factura por cobrar en este aviso: cancélelo.")
        elif notice.channel in HANDOFF_CHANNELS and (
            commitments.get(notice.client_id) or disputes.get(notice.client_id)
        ):
            blocked = _(
                "El cliente tiene una promesa, un plan o una disputa vigente: no se envía a agencia ni a "
                "jurídico mientras siga así."
            )
        facts[notice.pk] = ApprovalFacts(due=due, dropped=dropped, warnings=warnings, blocked=blocked)
    return facts


# --- letters -----------------------------------------------------------------------------


def letters(*, user, to_print: bool = True) -> QuerySet[Notice]:
    """Letter notices the user may see. ``to_print``: produced (PDF written) and not yet
    printed, oldest first, the order they go into the envelope."""
    qs = (
        notices_visible_to(user)
        .filter(channel=StepChannel.LETTER)
        .select_related("client", "step", "step__policy", "printed_by")
    )
    if to_print:
        return qs.filter(status=NoticeStatus.SENT, printed_at__isnull=True).order_by("sent_at", "id")
    return qs.order_by("-planned_for", "-id")


# --- what goes out on a day ------------------------------------------------------------------


@dataclass
class ChannelTotal:
    channel: str
    label: str
    new: int = 0
    scheduled: int = 0

    @property
    def total(self) -> int:
        return self.new + self.scheduled


@dataclass
class StepTotal:
    step: PolicyStep
    new: int = 0
    scheduled: int = 0
    invoices: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.new + self.scheduled


@dataclass
class HourCount:
    hour: int
    messages: int
    share: int  # percent of the busiest hour, for the bar

    @property
    def label(self) -> str:
        return f"{self.hour:02d}:00"


def hour_counts(*counts: dict[int, int]) -> list[HourCount]:
    """Hours from the first to the last with a message, with their counts summed."""
    total: dict[int, int] = {}
    for by_hour in counts:
        for hour, n in by_hour.items():
            total[hour] = total.get(hour, 0) + n
    if not total:
        return []
    busiest = max(total.values())
    return [
        HourCount(hour=h, messages=total.get(h, 0), share=round(100 * total.get(h, 0) / busiest))
        for h in range(min(total), max(total) + 1)
    ]


@dataclass
class Outbox:
    day: dt.date
    plan: planner.PlanResult
    new_rows: list[dict]
    superseded_rows: list[dict]
    scheduled_rows: list[dict]
    scheduled_total: int
    by_channel: list[ChannelTotal]
    by_step: list[StepTotal]
    amounts: dict[str, Decimal]
    needs_approval: int
    limit: int
    # Messages going out per local hour of their client, new and scheduled (docs/domain.md#spread).
    by_hour: list[HourCount] = field(default_factory=list)

    @property
    def new_truncated(self) -> bool:
        return self.plan.notices > len(self.new_rows)

    @property
    def scheduled_truncated(self) -> bool:
        return self.scheduled_total > len(self.scheduled_rows)

    @property
    def total(self) -> int:
        return self.plan.notices + self.scheduled_total


def company_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The first and the last moment (exclusive) of ``day`` in the company's time zone."""
    tz = ZoneInfo(settings.TIME_ZONE)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


def _row(notice: Notice, totals: dict[str, Decimal], *, origin: str) -> dict:
    return {
        "notice": notice,
        # when it goes, in the client's local time (docs/domain.md#spread)
        "local_time": notice.scheduled_at.astimezone(contact_rules.client_time_zone(notice.client)).strftime("%H:%M"),
        "client": notice.client,
        "step": notice.step,
        "policy": notice.step.policy,
        "channel": notice.channel,
        "status": notice.status,
        "language": notice.language,
        "invoice_count": notice.invoice_count,
        "totals": dict(sorted(totals.items())),
        "origin": origin,
    }


def outbox(*, day: dt.date, limit: int = OUTBOX_DETAIL) -> Outbox:
    """What goes out on ``day``: what the planner would plan that day (a dry run, rolled
    back: nothing is written) plus the notices already planned or deferred to that day.

    The planner's counts (notices, invoices, per channel) cover everything; its rows, and so
    the totals per policy and step of new notices, cover the first ``limit`` (largest first)."""
    # A later day is planned by its first hourly run, at the start of the day: its messages
    # are shown at their clients' slots (docs/domain.md#spread), not at this hour of that day.
    later = day > clock.localdate()
    result = planner.plan(today=day, now=company_day_bounds(day)[0] if later else None, dry_run=True, detail=limit)
    # The planner's rows are the notices it would plan and those it would record as
    # superseded by them (docs/domain.md#pacing): shown apart, never counted as going out.
    new_rows = [{**row, "notice": None, "origin": "new"} for row in result.rows if row["status"] != "superseded"]
    superseded_rows = [
        {**row, "notice": None, "origin": "superseded"} for row in result.rows if row["status"] == "superseded"
    ]

    start, end = company_day_bounds(day)
    scheduled = Notice.objects.filter(
        status__in=[NoticeStatus.PLANNED, NoticeStatus.AWAITING_APPROVAL], scheduled_at__gte=start, scheduled_at__lt=end
    )
    scheduled_notices = list(
        scheduled.select_related("client", "client__collector", "step", "step__policy")
        .annotate(invoice_count=Count("items"), amount=Sum("items__open_balance"))
        .order_by("scheduled_at", "-amount", "id")[:limit]
    )
    _attach_totals(scheduled_notices)
    scheduled_rows = [_row(n, n.totals, origin="scheduled") for n in scheduled_notices]

    # Totals of the scheduled notices over all of them, not only the rows shown (2 queries).
    per_step = {
        row["step_id"]: row
        for row in scheduled.values("step_id")
        .annotate(
            n=Count("id"),
            approval=Count("id", filter=Q(status=NoticeStatus.AWAITING_APPROVAL)),
        )
        .order_by()
    }
    amounts_by_step: dict[int, dict[str, Decimal]] = {}
    invoices_by_step: dict[int, int] = {}
    for row in (
        NoticeItem.objects.filter(notice__in=scheduled)
        .values("notice__step_id", "invoice__currency")
        .annotate(total=Sum("open_balance"), n=Count("id"))
        .order_by()
    ):
        step_id = row["notice__step_id"]
        amounts_by_step.setdefault(step_id, {})[row["invoice__currency"]] = row["total"]
        invoices_by_step[step_id] = invoices_by_step.get(step_id, 0) + row["n"]

    steps: dict[int, PolicyStep] = {row["step"].pk: row["step"] for row in new_rows}
    missing = set(per_step) - set(steps)
    if missing:
        steps.update({s.pk: s for s in PolicyStep.objects.filter(pk__in=missing).select_related("policy")})

    by_step: dict[int, StepTotal] = {}
    for row in new_rows:
        total = by_step.setdefault(row["step"].pk, StepTotal(step=row["step"]))
        total.new += 1
        total.invoices += row["invoice_count"]
        for currency, amount in row["totals"].items():
            total.amounts[currency] = total.amounts.get(currency, Decimal(0)) + amount
    for step_id, row in per_step.items():
        total = by_step.setdefault(step_id, StepTotal(step=steps[step_id]))
        total.scheduled += row["n"]
        total.invoices += invoices_by_step.get(step_id, 0)
        for currency, amount in amounts_by_step.get(step_id, {}).items():
            total.amounts[currency] = total.amounts.get(currency, Decimal(0)) + amount

    channels: dict[str, ChannelTotal] = {}
    for channel, n in result.by_channel.items():
        channels.setdefault(channel, ChannelTotal(channel, StepChannel(channel).label)).new += n
    for step_id, row in per_step.items():
        channel = steps[step_id].channel
        channels.setdefault(channel, ChannelTotal(channel, StepChannel(channel).label)).scheduled += row["n"]
    order = {c: i for i, c in enumerate(StepChannel.values)}

    amounts: dict[str, Decimal] = {}
    for total in by_step.values():
        for currency, amount in total.amounts.items():
            amounts[currency] = amounts.get(currency, Decimal(0)) + amount

    needs_approval = sum(1 for row in new_rows if row["status"] == NoticeStatus.AWAITING_APPROVAL) + sum(
        row["approval"] for row in per_step.values()
    )
    return Outbox(
        day=day,
        plan=result,
        new_rows=new_rows,
        superseded_rows=superseded_rows,
        scheduled_rows=scheduled_rows,
        scheduled_total=sum(row["n"] for row in per_step.values()),
        by_channel=sorted(channels.values(), key=lambda c: order.get(c.channel, 99)),
        by_step=sorted(by_step.values(), key=lambda t: (t.step.policy.name, t.step.position)),
        amounts=dict(sorted(amounts.items())),
        needs_approval=needs_approval,
        limit=limit,
        by_hour=hour_counts(result.by_hour, planner.messages_by_local_hour(scheduled)),
    )


# --- the client's dunning panel --------------------------------------------------------------


@dataclass
class InvoiceLadder:
    """One open invoice on the client's ladder: its hold and the next step it will reach."""

    invoice: Invoice
    hold: InvoiceHold | None
    hold_active: bool
    reached: PolicyStep | None
    next_step: PolicyStep | None
    next_on: dt.date | None
    note: str = ""  # why the invoice does not advance, when it does not


@dataclass
class ClientDunningPanel:
    client: Client
    dunning: ClientDunning | None
    own_policy: Policy | None
    segment_policy: Policy | None
    steps: list[PolicyStep]
    invoices: list[InvoiceLadder]
    notices: list[Notice]
    today: dt.date
    policies: list[Policy] | None = None  # the choices for an own policy (managers only)
    profile_policy: Policy | None = None  # the ladder of the client's delinquency profile
    # The client's country has no contact rules: every call and message is held until they
    # are configured (docs/domain.md#contact-rules).
    missing_contact_rules: bool = False

    @property
    def policy(self) -> Policy | None:
        return self.own_policy or self.profile_policy or self.segment_policy

    @property
    def paused(self) -> bool:
        return bool(self.dunning and self.dunning.paused_until and self.dunning.paused_until >= self.today)


def next_step_for(
    *, due_date: dt.date, steps: list[PolicyStep], reached_position: int, start: dt.date
) -> tuple[PolicyStep | None, dt.date | None]:
    """The step the planner will plan next for an invoice and the day, from ``start`` on.

    As the planner: on a day, the step planned is the highest not yet reached that is due
    (``cobranza.rules.step_due``). The minimum overdue amount of a step (summed over the
    client's invoices) is not evaluated here."""
    candidates = [
        s for s in steps if s.position > reached_position and step_applies(due_date, s.offset_days, s.applies_from)
    ]
    days = [start] + sorted(
        {step_day(due_date, s.offset_days) for s in candidates if step_day(due_date, s.offset_days) > start}
    )
    for day in days:
        ready = [s for s in candidates if step_due(due_date, s.offset_days, day)]
        if ready:
            return max(ready, key=lambda s: s.position), day
    return None, None


def client_dunning_panel(
    client: Client, *, today: dt.date | None = None, with_policies: bool = False
) -> ClientDunningPanel:
    """Everything the client page's dunning panel shows: five queries (six with the policy
    choices of a manager), whatever the number of invoices and notices."""
    today = today or clock.localdate()
    dunning = ClientDunning.objects.filter(client=client).select_related("policy").first()
    own = dunning.policy if dunning else None
    policies = None
    if with_policies:
        policies = list(Policy.objects.order_by("name"))
        segment_policy = next((p for p in policies if p.segment_id == client.segment_id), None)
    else:
        segment_policy = Policy.objects.filter(segment_id=client.segment_id).first()
    # Own > the profile's ladder (when there is an active one) > the segment's: as the planner.
    effective_profile = Client.objects.filter(pk=client.pk).values(p=effective_profile_expr())
    profile_policy = Policy.objects.filter(profile_policy_q(Subquery(effective_profile))).first()
    policy = effective_policy(own=own, profile_policy=profile_policy, segment_policy=segment_policy)

    steps: list[PolicyStep] = []
    invoices = Invoice.objects.filter(COLLECTIBLE, client=client).select_related("hold")
    if policy is not None:
        steps = list(PolicyStep.objects.filter(policy=policy, is_active=True).order_by("position"))
        reached = (
            NoticeItem.objects.filter(invoice=OuterRef("pk"), step__policy=policy)
            .order_by()
            .values("invoice")
            .annotate(top=Max("step__position"))
            .values("top")
        )
        # A broken promise's bump makes a later step due today (planner: one step firmer).
        bumped = (
            LadderBump.objects.filter(invoice=OuterRef("pk"), step__policy=policy, since__lte=today)
            .order_by()
            .values("invoice")
            .annotate(top=Max("step__position"))
            .values("top")
        )
        invoices = invoices.annotate(
            reached=Subquery(reached, output_field=IntegerField()),
            bumped=Subquery(bumped, output_field=IntegerField()),
            promised=open_commitment_exists(),
        )
    by_position = {s.position: s for s in steps}

    paused_until = dunning.paused_until if pause_active(dunning, today) else None
    rows = []
    for invoice in invoices.order_by("due_date", "id"):
        hold = getattr(invoice, "hold", None)
        hold_active = hold_is_active(hold, today)
        reached_position = getattr(invoice, "reached", None) or 0
        row = InvoiceLadder(
            invoice=invoice,
            hold=hold,
            hold_active=hold_active,
            reached=by_position.get(reached_position),
            next_step=None,
            next_on=None,
        )
        rows.append(row)
        if client.status == Client.Status.WRITTEN_OFF:
            row.note = _("Cliente castigado: no se envían avisos.")
        elif client.status in (Client.Status.AGENCY, Client.Status.LEGAL):
            row.note = _("El cliente está %(status)s: nuestros recordatorios se detienen.") % {
                "status": client.get_status_display().lower()
            }
        elif getattr(invoice, "promised", False):
            row.note = _("Con un compromiso de pago vigente: sin recordatorios mientras se cumpla.")
        elif invoice.status == Invoice.Status.DISPUTED:
            row.note = _("En disputa: fuera de la escalera hasta resolverla.")
        elif policy is None:
            row.note = _("Sin política de cobranza.")
        elif not policy.is_active:
            row.note = _("La política está inactiva.")
        elif invoice.open_balance < policy.tolerance:
            row.note = _("Saldo menor al mínimo de la política.")
        elif hold_active and hold.until is None:
            row.note = _("Retenida hasta que se libere.")
        else:
            start = today
            if paused_until:
                start = max(start, paused_until + dt.timedelta(days=1))
            if hold_active:
                start = max(start, hold.until + dt.timedelta(days=1))
            bumped_position = getattr(invoice, "bumped", None) or 0
            if bumped_position > reached_position and bumped_position in by_position:
                row.next_step, row.next_on = by_position[bumped_position], start
            else:
                row.next_step, row.next_on = next_step_for(
                    due_date=invoice.due_date, steps=steps, reached_position=reached_position, start=start
                )
            if row.next_step is None:
                row.note = _("Escalera terminada: no quedan pasos.")

    notices = list(
        Notice.objects.filter(client=client)
        .select_related("step", "step__policy")
        .order_by("-planned_for", "-id")[:LAST_NOTICES]
    )
    return ClientDunningPanel(
        client=client,
        dunning=dunning,
        own_policy=own,
        segment_policy=segment_policy,
        steps=steps,
        invoices=rows,
        notices=notices,
        today=today,
        policies=policies,
        profile_policy=profile_policy,
        missing_contact_rules=contact_rules.rules_for(client.country) is None,
    )


def client_next_notice(client: Client) -> Notice | None:
    """The client's next reminder still to go out (planned, awaiting approval or being sent),
    soonest first, with its ladder step: the client page summary's "next step" (one query)."""
    return (
        Notice.objects.filter(client=client, status__in=Notice.OPEN_STATUSES)
        .select_related("step")
        .order_by("scheduled_at", "id")
        .first()
    )
