"""Who performs and what works: collector performance and dunning effectiveness.

Each number has one definition here, used by the pages, their CSV/XLSX exports and any later
API. Everything is aggregated in SQL, grouped once per table, so a page costs the same
number of queries whatever the number of collectors, clients, notices or payments (the
tests assert it). Money is never summed across currencies: each function takes the
currency to report in.

Periods are inclusive local dates (``start`` … ``end``, the site's time zone). Formulas, as
shown to managers, are in ``FORMULAS`` (and in docs/domain.md#collector-performance and
docs/domain.md#dunning-effectiveness; keep them in step).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    DecimalField,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Least, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts.models import (
    MONEY,
    NON_CASH_METHODS,
    ZERO,
    Client,
    Interaction,
    InteractionKind,
    Payment,
    PaymentAllocation,
    Segment,
)
from accounts.roles import GROUP_NAMES, Role
from cobranza.dashboard import metrics
from cobranza.models import (
    MESSAGE_CHANNELS,
    CollectorTask,
    Commitment,
    CommitmentKind,
    Notice,
    NoticeItem,
    NoticeStatus,
    PolicyStep,
    Profile,
    StepChannel,
    TaskStatus,
)
from cobranza.rules import effective_profile_expr

MONEY_FIELD = DecimalField(**MONEY)
HUNDRED = Decimal(100)

# Kinds of timeline entry that are a contact with the client (notes and system events are not).
CONTACT_KINDS = (
    InteractionKind.CALL,
    InteractionKind.EMAIL,
    InteractionKind.SMS,
    InteractionKind.WHATSAPP,
    InteractionKind.VISIT,
    InteractionKind.LETTER,
)
# A promise is judged once it ends in one of these; a cancelled one is not judged.
# Days after the send in which a payment counts as a response to the notice.
PAID_WINDOWS = (7, 14)

FORMULAS = {
    "collected": _(
        "Cobrado = suma de los pagos recibidos en el periodo (fecha de pago entre el inicio y el fin, "
        "ambos incluidos) en la moneda elegida, sin notas de crédito ni descuentos negociados. Se "
        "atribuye al gestor asignado hoy al cliente, no al que lo tenía cuando llegó el pago."
    ),
    "contacts": _(
        "Contactos = entradas del historial registradas por el gestor en el periodo de tipo llamada, "
        "correo, SMS, WhatsApp, visita o carta (entrantes o salientes). No cuentan notas, eventos del "
        "sistema ni correcciones de una entrada anterior."
    ),
    "promises_made": _(
        "Promesas hechas = promesas de pago registradas por el gestor con fecha de acuerdo en el periodo."
    ),
    "promise_kept_rate": metrics.FORMULAS["promise_kept"],
    "completion": _(
        "Cumplimiento de la agenda = tareas con fecha en el periodo asignadas al gestor y marcadas "
        "como hechas por él ÷ tareas con fecha en el periodo asignadas a él × 100. Las tareas "
        "canceladas (el motivo desapareció) no cuentan."
    ),
    "notices": _(
        "Avisos = avisos planeados para un día del periodo, por paso de la política: enviados, "
        "fallidos, omitidos, cancelados y aún pendientes. Aplazados = los que las reglas de "
        "contacto movieron al menos una vez (tengan el estado que tengan)."
    ),
    "delivered": _(
        "Entregados = avisos enviados por un canal de mensaje (correo, SMS, WhatsApp, carta). Los "
        "pasos de llamada, revisión, agencia o jurídico crean tareas y no entregan mensajes."
    ),
    "paid_7": _(
        "Pagado en 7 días = de las facturas listadas en los avisos enviados (su saldo al planear el "
        "aviso), la parte pagada con pagos recibidos del día siguiente al envío hasta 7 días después "
        "÷ saldo listado × 100. Solo avisos enviados hace al menos 7 días (ventana completa), en la "
        "moneda elegida, sin notas de crédito ni descuentos."
    ),
    "paid_14": _(
        "Pagado en 14 días = igual que en 7 días, con pagos recibidos hasta 14 días después del envío "
        "y solo avisos enviados hace al menos 14 días."
    ),
    "channel_groups": _(
        "Qué canal funciona con quién: el porcentaje pagado en 14 días de los avisos enviados en el "
        "periodo, por canal y segmento o perfil de morosidad actuales del cliente."
    ),
}


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start 00:00, the day after end 00:00) in the site's time zone."""
        tz = timezone.get_current_timezone()
        first = dt.datetime.combine(self.start, dt.time.min, tzinfo=tz)
        after = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return first, after


def default_period(today: dt.date | None = None) -> Period:
    """The last 30 days, today included."""
    today = today or clock.localdate()
    return Period(today - dt.timedelta(days=29), today)


def rate(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """``part ÷ whole × 100`` to one decimal; None when there is nothing to divide by."""
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(Decimal("0.1"))


def cents(value) -> Decimal:
    """Money to the cent; an empty aggregate (None) is zero."""
    return Decimal(value or 0).quantize(Decimal("0.01"))


def currencies_in_use() -> list[str]:
    """The clients' currencies, most common first: the first is the company's main currency
    (the default of every money figure). One query."""
    rows = Client.objects.values("currency").annotate(n=Count("id")).order_by("-n", "currency")
    return [row["currency"] for row in rows]


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


# --- promises kept -----------------------------------------------------------------------------


def _promises_made_q(period: Period) -> Q:
    """Promises to pay a person registered in the period (their activity, by ``created_by``)."""
    return Q(
        kind=CommitmentKind.PROMISE,
        created_by__isnull=False,
        made_on__gte=period.start,
        made_on__lte=period.end,
    )


# --- collector performance -----------------------------------------------------------------------


@dataclass
class CollectorRow:
    collector_id: int | None
    name: str
    currency: str
    collected: Decimal = ZERO
    contacts: int = 0
    promises_made: int = 0
    promises_kept: int = 0
    promises_judged: int = 0
    tasks_due: int = 0
    tasks_done: int = 0

    @property
    def promise_kept_rate(self) -> Decimal | None:
        return rate(self.promises_kept, self.promises_judged)

    @property
    def completion_rate(self) -> Decimal | None:
        return rate(self.tasks_done, self.tasks_due)

    def as_dict(self) -> dict:
        return {
            "collector": self.name,
            "currency": self.currency,
            "collected": self.collected,
            "contacts": self.contacts,
            "promises_made": self.promises_made,
            "promises_kept": self.promises_kept,
            "promises_judged": self.promises_judged,
            "promise_kept_rate": self.promise_kept_rate,
            "tasks_due": self.tasks_due,
            "tasks_done": self.tasks_done,
            "completion_rate": self.completion_rate,
        }


@dataclass
class CollectorPerformance:
    period: Period
    currency: str
    rows: list[CollectorRow]
    total: CollectorRow
    # Payments of clients with no collector assigned: in the company's total, in no row.
    unassigned_collected: Decimal = ZERO

    @property
    def collected_all(self) -> Decimal:
        return self.total.collected + self.unassigned_collected


def collector_performance(
    *, start: dt.date, end: dt.date, currency: str, segment: int | None = None
) -> CollectorPerformance:
    """Per collector over the period: money collected on their clients, contacts logged,
    promises made and kept, and their worklist completion. Five grouped queries, whatever
    the number of collectors or rows; rows are the active collectors plus anyone with
    figures in the period."""
    period = Period(start, end)
    first, after = period.bounds()
    by_client = Q(client__segment_id=segment) if segment else Q()

    collected = dict(
        Payment.objects.filter(by_client, received_on__gte=start, received_on__lte=end, currency=currency)
        .exclude(method__in=NON_CASH_METHODS)
        .order_by()
        .values("client__collector")
        .annotate(total=Sum("amount"))
        .values_list("client__collector", "total")
    )
    contacts = dict(
        Interaction.objects.filter(
            by_client,
            author__isnull=False,
            kind__in=CONTACT_KINDS,
            corrects__isnull=True,
            occurred_at__gte=first,
            occurred_at__lt=after,
        )
        .order_by()
        .values("author")
        .annotate(n=Count("id"))
        .values_list("author", "n")
    )
    # Promises made count for who registered them; the promise-kept rate is the dashboard's
    # (metrics.promise_kept_by_collector: promises and extensions judged in the period, for the
    # client's collector), read in the same query, grouped by both.
    made_q, window = _promises_made_q(period), metrics.promise_window_q(start, end)
    made: dict[int, int] = {}
    kept_judged: dict[int | None, tuple[int, int]] = {}
    for row in (
        Commitment.objects.filter(by_client)
        .filter(made_q | window)
        .order_by()
        .values("created_by", metrics.PROMISE_ATTRIBUTION)
        .annotate(made=Count("id", filter=made_q), **metrics.promise_kept_aggregates(window))
    ):
        if row["made"]:
            made[row["created_by"]] = made.get(row["created_by"], 0) + row["made"]
        kept, judged = kept_judged.get(row[metrics.PROMISE_ATTRIBUTION], (0, 0))
        kept_judged[row[metrics.PROMISE_ATTRIBUTION]] = (kept + row["kept"], judged + row["judged"])
    promises = {pk: {"made": made.get(pk, 0)} for pk in made}
    for pk, (kept, judged) in kept_judged.items():
        if judged:
            promises.setdefault(pk, {"made": 0}).update(kept=kept, judged=judged)
    tasks = {
        row["assigned_to"]: row
        for row in CollectorTask.objects.filter(
            by_client, assigned_to__isnull=False, due_on__gte=start, due_on__lte=end
        )
        .exclude(status=TaskStatus.CANCELLED)
        .order_by()
        .values("assigned_to")
        .annotate(
            due=Count("id"),
            done=Count("id", filter=Q(status=TaskStatus.DONE, completed_by=F("assigned_to"))),
        )
    }

    with_figures = {pk for pk in (*collected, *contacts, *promises, *tasks) if pk is not None}
    people = (
        get_user_model()
        .objects.filter(Q(is_active=True, groups__name=GROUP_NAMES[Role.COLLECTOR]) | Q(pk__in=with_figures))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
    rows = []
    for user in people:
        promise = promises.get(user.pk, {})
        task = tasks.get(user.pk, {})
        rows.append(
            CollectorRow(
                collector_id=user.pk,
                name=_person(user),
                currency=currency,
                collected=cents(collected.get(user.pk)),
                contacts=contacts.get(user.pk, 0),
                promises_made=promise.get("made", 0),
                promises_kept=promise.get("kept", 0),
                promises_judged=promise.get("judged", 0),
                tasks_due=task.get("due", 0),
                tasks_done=task.get("done", 0),
            )
        )
    total = CollectorRow(
        collector_id=None,
        name=str(_("Total")),
        currency=currency,
        collected=sum((r.collected for r in rows), ZERO),
        contacts=sum(r.contacts for r in rows),
        promises_made=sum(r.promises_made for r in rows),
        promises_kept=sum(r.promises_kept for r in rows),
        promises_judged=sum(r.promises_judged for r in rows),
        tasks_due=sum(r.tasks_due for r in rows),
        tasks_done=sum(r.tasks_done for r in rows),
    )
    return CollectorPerformance(
        period=period,
        currency=currency,
        rows=rows,
        total=total,
        unassigned_collected=cents(collected.get(None)),
    )


# --- dunning effectiveness -----------------------------------------------------------------------


def _paid_within(days: int):
    """Per notice item: cash applied to its invoice from payments received on days 1…``days``
    after the notice was sent, capped at the balance the notice listed."""
    paid = (
        PaymentAllocation.objects.filter(
            invoice_id=OuterRef("invoice_id"),
            payment__received_on__gt=OuterRef("sent_day"),
            payment__received_on__lte=OuterRef(f"window_{days}"),
        )
        .exclude(payment__method__in=NON_CASH_METHODS)
        .order_by()
        .values("invoice_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Least(
        Coalesce(Subquery(paid, output_field=MONEY_FIELD), Value(ZERO), output_field=MONEY_FIELD),
        F("open_balance"),
        output_field=MONEY_FIELD,
    )


def _sent_items(period: Period, *, currency: str, policy: int | None, segment: int | None):
    """Invoices listed on the notices of the period that were sent, in ``currency``, each
    with what was paid in the 7 and 14 days after the send."""
    items = NoticeItem.objects.filter(
        notice__planned_for__gte=period.start,
        notice__planned_for__lte=period.end,
        notice__status=NoticeStatus.SENT,
        invoice__currency=currency,
    )
    if policy:
        items = items.filter(notice__step__policy_id=policy)
    if segment:
        items = items.filter(notice__client__segment_id=segment)
    items = items.annotate(sent_day=TruncDate("notice__sent_at"))
    # The last day of each window: sent day + N (a date plus an interval, on either database).
    items = items.annotate(**{f"window_{days}": F("sent_day") + dt.timedelta(days=days) for days in PAID_WINDOWS})
    return items.annotate(**{f"paid_{days}": _paid_within(days) for days in PAID_WINDOWS})


def _money_sums(today: dt.date) -> dict:
    """Listed and paid amounts per group. A window counts only once it is over (sent at
    least N days before ``today``): a notice sent yesterday has had no chance yet."""
    sums = {
        "listed": Coalesce(Sum("open_balance"), Value(ZERO), output_field=MONEY_FIELD),
        "sent_notices": Count("notice", distinct=True),
    }
    for days in PAID_WINDOWS:
        closed = Q(sent_day__lte=today - dt.timedelta(days=days))
        sums[f"listed_{days}"] = Coalesce(Sum("open_balance", filter=closed), Value(ZERO), output_field=MONEY_FIELD)
        sums[f"paid_{days}"] = Coalesce(Sum(f"paid_{days}", filter=closed), Value(ZERO), output_field=MONEY_FIELD)
    return sums


@dataclass
class MoneyFigures:
    listed: Decimal = ZERO
    listed_7: Decimal = ZERO
    paid_7: Decimal = ZERO
    listed_14: Decimal = ZERO
    paid_14: Decimal = ZERO

    @property
    def share_7(self) -> Decimal | None:
        return rate(self.paid_7, self.listed_7)

    @property
    def share_14(self) -> Decimal | None:
        return rate(self.paid_14, self.listed_14)

    def add(self, other: MoneyFigures) -> None:
        for name in ("listed", "listed_7", "paid_7", "listed_14", "paid_14"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def of(cls, row: dict | None) -> MoneyFigures:
        row = row or {}
        return cls(**{name: cents(row.get(name)) for name in ("listed", "listed_7", "paid_7", "listed_14", "paid_14")})


@dataclass
class StepRow:
    step_id: int | None
    policy: str
    position: int | None
    step: str
    channel: str
    channel_label: str
    currency: str
    notices: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    cancelled: int = 0
    pending: int = 0
    # Sent notices of a message channel; a task step delivers nothing (None, not 0).
    delivered: int | None = None
    money: MoneyFigures = field(default_factory=MoneyFigures)

    def as_dict(self) -> dict:
        return {
            "policy": self.policy,
            "step": f"{self.position}. {self.step}" if self.position is not None else "",
            "channel": self.channel_label,
            "currency": self.currency,
            "notices": self.notices,
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "skipped": self.skipped,
            "deferred": self.deferred,
            "cancelled": self.cancelled,
            "pending": self.pending,
            "listed": self.money.listed,
            "listed_7": self.money.listed_7,
            "paid_7": self.money.paid_7,
            "share_7": self.money.share_7,
            "listed_14": self.money.listed_14,
            "paid_14": self.money.paid_14,
            "share_14": self.money.share_14,
        }


@dataclass
class ChannelRow:
    channel: str
    channel_label: str
    key: str
    label: str
    currency: str
    sent_notices: int
    money: MoneyFigures

    def as_dict(self) -> dict:
        return {
            "channel": self.channel_label,
            "group": self.label,
            "currency": self.currency,
            "sent_notices": self.sent_notices,
            "listed_14": self.money.listed_14,
            "paid_14": self.money.paid_14,
            "share_14": self.money.share_14,
        }


@dataclass
class DunningEffectiveness:
    period: Period
    currency: str
    today: dt.date
    steps: list[StepRow]
    total: StepRow
    by_segment: list[ChannelRow]
    by_profile: list[ChannelRow]


CHANNEL_LABELS = dict(StepChannel.choices)
PROFILE_LABELS = dict(Profile.choices)


def dunning_effectiveness(
    *,
    start: dt.date,
    end: dt.date,
    currency: str,
    today: dt.date | None = None,
    policy: int | None = None,
    segment: int | None = None,
) -> DunningEffectiveness:
    """Per policy and step over the notices planned in the period: what happened to them and
    how much of what they listed was paid within 7 and 14 days of the send; then the 14-day
    share by channel × segment and channel × profile. Six queries, whatever the volume."""
    period = Period(start, end)
    today = today or clock.localdate()

    # A superseded notice was never meant to go out (docs/domain.md#pacing): not a notice of the step.
    notices = Notice.objects.filter(planned_for__gte=start, planned_for__lte=end).exclude(
        status=NoticeStatus.SUPERSEDED
    )
    if policy:
        notices = notices.filter(step__policy_id=policy)
    if segment:
        notices = notices.filter(client__segment_id=segment)
    counts = {
        row["step"]: row
        for row in notices.order_by()
        .values("step")
        .annotate(
            notices=Count("id"),
            sent=Count("id", filter=Q(status=NoticeStatus.SENT)),
            failed=Count("id", filter=Q(status=NoticeStatus.FAILED)),
            skipped=Count("id", filter=Q(status=NoticeStatus.SKIPPED)),
            cancelled=Count("id", filter=Q(status=NoticeStatus.CANCELLED)),
            pending=Count("id", filter=Q(status__in=Notice.OPEN_STATUSES)),
            deferred=Count("id", filter=Q(deferrals__gt=0)),
        )
    }
    items = _sent_items(period, currency=currency, policy=policy, segment=segment)
    sums = _money_sums(today)
    money = {row["notice__step"]: row for row in items.order_by().values("notice__step").annotate(**sums)}

    # The steps with notices in the period; for one policy, all its active steps too (a step
    # that sent nothing is a finding).
    shown = Q(pk__in=set(counts) | set(money))
    if policy:
        shown |= Q(policy_id=policy, is_active=True)
    steps_qs = PolicyStep.objects.select_related("policy").filter(shown).order_by("policy__name", "position")

    total = StepRow(None, str(_("Total")), None, "", "", "", currency, delivered=0)
    rows = []
    for step in steps_qs:
        c = counts.get(step.pk, {})
        row = StepRow(
            step_id=step.pk,
            policy=step.policy.name,
            position=step.position,
            step=step.name,
            channel=step.channel,
            channel_label=str(CHANNEL_LABELS.get(step.channel, step.channel)),
            currency=currency,
            money=MoneyFigures.of(money.get(step.pk)),
            delivered=c.get("sent", 0) if step.channel in MESSAGE_CHANNELS else None,
            **{k: c.get(k, 0) for k in ("notices", "sent", "failed", "skipped", "deferred", "cancelled", "pending")},
        )
        rows.append(row)
        for name in ("notices", "sent", "failed", "skipped", "deferred", "cancelled", "pending"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        total.delivered += row.delivered or 0
        total.money.add(row.money)

    segment_names = dict(Segment.objects.values_list("pk", "name"))
    by_segment = [
        ChannelRow(
            channel=row["notice__channel"],
            channel_label=str(CHANNEL_LABELS.get(row["notice__channel"], row["notice__channel"])),
            key=str(row["notice__client__segment"]),
            label=segment_names.get(row["notice__client__segment"], "—"),
            currency=currency,
            sent_notices=row["sent_notices"],
            money=MoneyFigures.of(row),
        )
        for row in items.order_by()
        .values("notice__channel", "notice__client__segment")
        .annotate(**sums)
        .order_by("notice__channel", "notice__client__segment")
    ]
    by_profile = [
        ChannelRow(
            channel=row["notice__channel"],
            channel_label=str(CHANNEL_LABELS.get(row["notice__channel"], row["notice__channel"])),
            key=row["profile"],
            label=str(PROFILE_LABELS.get(row["profile"], row["profile"])),
            currency=currency,
            sent_notices=row["sent_notices"],
            money=MoneyFigures.of(row),
        )
        for row in items.annotate(profile=effective_profile_expr("notice__client__profile__"))
        .order_by()
        .values("notice__channel", "profile")
        .annotate(**sums)
        .order_by("notice__channel", "profile")
    ]
    return DunningEffectiveness(
        period=period,
        currency=currency,
        today=today,
        steps=rows,
        total=total,
        by_segment=by_segment,
        by_profile=by_profile,
    )
