"""Reads of the collections set-up pages: policies with their use, ladders, templates.

The list functions cost a fixed number of queries whatever the number of policies,
templates or clients (tests/cobranza/test_policy_ui.py asserts it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import clock, numbers
from accounts.models import Client, Invoice
from accounts.rules import open_invoice_q
from accounts.selectors import clients_visible_to
from cobranza.engine import planner
from cobranza.models import (
    ClientDunning,
    MessageTemplate,
    MessageTemplateText,
    Notice,
    NoticeItem,
    Policy,
    PolicyStep,
)


def _count(qs: QuerySet, group_by: str) -> Subquery:
    """``COUNT(*)`` of ``qs`` per ``group_by`` as a scalar subquery (0 when none)."""
    return Coalesce(
        Subquery(qs.order_by().values(group_by).annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()),
        Value(0),
    )


def policies_overview() -> QuerySet[Policy]:
    """Every policy with its segment and, in one query: ``steps_total``, ``steps_active``,
    ``own_clients`` (clients given this policy as their own), ``segment_clients`` (the
    segment's clients without an own policy) and ``clients_total``."""
    steps = PolicyStep.objects.filter(policy=OuterRef("pk"))
    own = ClientDunning.objects.filter(policy=OuterRef("pk"))
    # A client follows its segment's policy unless it has one of its own (a reverse
    # one-to-one: no ClientDunning row, or one without a policy).
    segment_clients = Client.objects.filter(segment=OuterRef("segment"), dunning__policy__isnull=True)
    return (
        Policy.objects.select_related("segment")
        .annotate(
            steps_total=_count(steps, "policy"),
            steps_active=_count(steps.filter(is_active=True), "policy"),
            own_clients=_count(own, "policy"),
            segment_clients=_count(segment_clients, "segment"),
        )
        .annotate(clients_total=F("own_clients") + F("segment_clients"))
        .order_by("name")
    )


def amount_label(value: Decimal | None) -> str:
    """A policy amount, which applies to invoices in any currency: grouped, two decimals."""
    if value is None:
        return ""
    return numbers.format_number(value, 2)


def offset_label(days: int) -> str:
    """ "3 días antes del vencimiento", "el día del vencimiento", "15 días después del vencimiento"."""
    if days < 0:
        return ngettext("%(n)d día antes del vencimiento", "%(n)d días antes del vencimiento", -days) % {"n": -days}
    if days == 0:
        return _("el día del vencimiento")
    return ngettext("%(n)d día después del vencimiento", "%(n)d días después del vencimiento", days) % {"n": days}


@dataclass
class LadderRow:
    step: PolicyStep
    when: str
    used: bool  # has notices: it cannot be deleted, only deactivated
    out_of_order: bool  # fewer days than an earlier active step: the planner goes by position
    is_first: bool
    is_last: bool
    min_amount: str = ""


def policy_ladder(policy: Policy) -> list[LadderRow]:
    """The steps of ``policy`` in order, with what the ladder table shows. One query."""
    steps = list(
        PolicyStep.objects.filter(policy=policy)
        .select_related("template")
        .annotate(
            has_notices=Exists(Notice.objects.filter(step=OuterRef("pk"))),
            has_items=Exists(NoticeItem.objects.filter(step=OuterRef("pk"))),
        )
        .order_by("position")
    )
    rows = []
    furthest = None
    for index, step in enumerate(steps):
        out_of_order = False
        if step.is_active:
            out_of_order = furthest is not None and step.offset_days < furthest
            furthest = step.offset_days if furthest is None else max(furthest, step.offset_days)
        rows.append(
            LadderRow(
                step=step,
                when=offset_label(step.offset_days),
                used=step.has_notices or step.has_items,
                out_of_order=out_of_order,
                is_first=index == 0,
                is_last=index == len(steps) - 1,
                min_amount=amount_label(step.min_overdue_amount) if step.min_overdue_amount else "",
            )
        )
    return rows


def templates_overview() -> QuerySet[MessageTemplate]:
    """Every template with ``step_count`` (steps using it) and its texts' languages. Two queries."""
    return (
        MessageTemplate.objects.annotate(
            step_count=_count(PolicyStep.objects.filter(template=OuterRef("pk")), "template"),
            policy_count=Coalesce(
                Subquery(
                    PolicyStep.objects.filter(template=OuterRef("pk"))
                    .order_by()
                    .values("template")
                    .annotate(n=Count("policy", distinct=True))
                    .values("n")[:1],
                    output_field=IntegerField(),
                ),
                Value(0),
            ),
        )
        .prefetch_related(
            Prefetch(
                "texts",
                queryset=MessageTemplateText.objects.only("id", "template_id", "language").order_by("language"),
            )
        )
        .order_by("channel", "name")
    )


def template_usage(template: MessageTemplate) -> list[PolicyStep]:
    """The steps that send ``template``, with their policy."""
    return list(
        PolicyStep.objects.filter(template=template).select_related("policy").order_by("policy__name", "position")
    )


def step_templates(current: MessageTemplate | None = None) -> list[MessageTemplate]:
    """Templates a step may use: the active ones, and the one it already has."""
    condition = Q(is_active=True)
    if current is not None:
        condition |= Q(pk=current.pk)
    return list(MessageTemplate.objects.filter(condition).order_by("channel", "name"))


# --- the preview's client picker ----------------------------------------------------------

PREVIEW_CLIENTS_LIMIT = 50


def preview_clients(*, user, q: str = "", selected: Client | None = None) -> list[Client]:
    """Clients ``user`` may see for the live preview: those with open invoices first, then
    by name; filtered by name or RFC/NIF when ``q`` is given. The selected one always."""
    qs = clients_visible_to(user).annotate(
        has_open=Exists(Invoice.objects.filter(open_invoice_q(), client=OuterRef("pk")))
    )
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(legal_name__icontains=q) | Q(trade_name__icontains=q) | Q(tax_id__icontains=q))
    clients = list(qs.order_by("-has_open", "legal_name", "id")[:PREVIEW_CLIENTS_LIMIT])
    if selected is not None and all(c.pk != selected.pk for c in clients):
        clients.insert(0, selected)
    return clients


def preview_client(*, user, pk) -> Client | None:
    """The client ``pk`` if ``user`` may see it (another collector's client is simply none)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return clients_visible_to(user).select_related("collector").filter(pk=pk).first()


# --- catch-up of a new or edited step (docs/domain.md#pacing) ----------------------------


@dataclass(frozen=True)
class CatchUp:
    """What confirming a step's catch-up changes in today's planning, from two dry runs of
    the planner (without and with the catch-up): pacing and superseding included."""

    day: dt.date
    notices: int  # more notices at this step (one per client)
    invoices: int  # more invoices listed at this step
    superseded: int  # more steps recorded as superseded by them
    total_without: int  # notices today's planning would create without the catch-up
    total_with: int  # ... and with it

    @property
    def clients(self) -> int:
        return self.notices

    def same_figures(self, other: CatchUp) -> bool:
        return (self.notices, self.invoices, self.superseded) == (other.notices, other.invoices, other.superseded)


def catch_up_preview(step: PolicyStep, *, today: dt.date | None = None) -> CatchUp:
    """What the planner would plan today if ``step`` reached the invoices already past its
    day. Nothing is written (both runs and the change between them are rolled back)."""
    today = today or clock.localdate()
    with transaction.atomic():
        without = planner.plan(today=today, dry_run=True)
        PolicyStep.objects.filter(pk=step.pk).update(applies_from=None)
        with_ = planner.plan(today=today, dry_run=True)
        transaction.set_rollback(True)
    before = without.by_step.get(step.pk, {})
    after = with_.by_step.get(step.pk, {})
    return CatchUp(
        day=today,
        notices=after.get("notices", 0) - before.get("notices", 0),
        invoices=after.get("invoices", 0) - before.get("invoices", 0),
        superseded=with_.superseded - without.superseded,
        total_without=without.notices,
        total_with=with_.notices,
    )
