"""The debtor's self-service page, the reads: the statement it shows (invoices still owed, with
days overdue in the client's own time zone), what the debtor may act on and agree to alone
(the portal limits, docs/domain.md#portal-limits), their promises and plans, and the staff
panel of the client page. What the page records is ``cobranza.portal.services``; the link that
opens it, ``cobranza.portal.links``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal

from django.db.models import Prefetch, Q, prefetch_related_objects
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import ZERO, Client, Invoice
from accounts.rules import COLLECTIBLE, open_invoice_q
from accounts.utils import money_str
from cobranza import rules
from cobranza.engine.contacts import choose_contact
from cobranza.models import (
    PORTAL_PLAN_MAX_INSTALLMENTS,
    PORTAL_PROMISE_MAX_DAYS,
    PORTAL_PROMISE_MIN_SHARE,
    Commitment,
    CommitmentKind,
    CommitmentStatus,
    Policy,
    PortalMessage,
    PortalProposal,
    ProposalStatus,
    SelfServiceAccess,
)

CENT = Decimal("0.01")


@dataclass
class StatementLine:
    invoice: Invoice
    days_overdue: int


@dataclass
class CurrencyTotal:
    currency: str
    total: Decimal = ZERO
    overdue: Decimal = ZERO
    count: int = 0


@dataclass
class Statement:
    client: Client
    today: dt.date
    lines: list[StatementLine] = field(default_factory=list)
    totals: list[CurrencyTotal] = field(default_factory=list)


def client_today(client: Client) -> dt.date:
    try:
        tz = zoneinfo.ZoneInfo(client.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = None
    return timezone.localdate(timezone=tz)


def statement_of(client: Client) -> Statement:
    """The client's invoices still owed (disputed ones included, marked), oldest due first,
    with days overdue in the client's own time zone and totals per currency."""
    today = client_today(client)
    invoices = client.invoices.filter(COLLECTIBLE).order_by("due_date", "number")
    result = Statement(client=client, today=today)
    totals: dict[str, CurrencyTotal] = {}
    for invoice in invoices:
        days = max((today - invoice.due_date).days, 0)
        result.lines.append(StatementLine(invoice=invoice, days_overdue=days))
        total = totals.setdefault(invoice.currency, CurrencyTotal(currency=invoice.currency))
        total.total += invoice.open_balance
        total.count += 1
        if days > 0:
            total.overdue += invoice.open_balance
    result.totals = [totals[c] for c in sorted(totals)]
    return result


def open_currencies(client: Client) -> list[str]:
    return sorted(set(client.invoices.filter(open_invoice_q()).values_list("currency", flat=True)))


# --- limits: what the debtor may agree to alone (docs/domain.md#portal-limits) ---------------


@dataclass(frozen=True)
class PortalLimits:
    """A policy's portal limits; None: no limit on that point."""

    promise_max_days: int | None
    promise_min_share: Decimal | None
    plan_max_installments: int | None

    @classmethod
    def of(cls, policy: Policy | None) -> PortalLimits:
        # A client without a policy gets the defaults a new policy gets.
        if policy is None:
            return cls(PORTAL_PROMISE_MAX_DAYS, PORTAL_PROMISE_MIN_SHARE, PORTAL_PLAN_MAX_INSTALLMENTS)
        return cls(policy.portal_promise_max_days, policy.portal_promise_min_share, policy.portal_plan_max_installments)


def limits_for(client: Client) -> PortalLimits:
    """The portal limits of the client's effective policy (docs/domain.md#effective-policy)."""
    policy_id = (
        Client.objects.filter(pk=client.pk)
        .annotate(policy_id=rules.effective_policy_expr())
        .values_list("policy_id", flat=True)
        .first()
    )
    return PortalLimits.of(Policy.objects.filter(pk=policy_id).first() if policy_id else None)


def minimum_promise(limits: PortalLimits, overdue: Decimal) -> Decimal:
    """The smallest amount a promise may cover without a collector's approval."""
    if not limits.promise_min_share or overdue <= 0:
        return ZERO
    return (overdue * limits.promise_min_share / 100).quantize(CENT, rounding=ROUND_UP)


def promise_breaches(
    limits: PortalLimits, *, today: dt.date, pay_on: dt.date, amount: Decimal, overdue: Decimal, currency: str
) -> list[str]:
    """Why a promise is outside the limits (empty: inside). The limits themselves are inside:
    a promise for exactly the furthest day, or for exactly the minimum share, is accepted."""
    reasons = []
    if limits.promise_max_days is not None and pay_on > today + dt.timedelta(days=limits.promise_max_days):
        reasons.append(
            _("La fecha está a más de %(n)s días (hasta el %(date)s se acepta sin aprobación).")
            % {
                "n": limits.promise_max_days,
                "date": date_format(today + dt.timedelta(days=limits.promise_max_days), "SHORT_DATE_FORMAT"),
            }
        )
    least = minimum_promise(limits, overdue)
    if amount < least:
        reasons.append(
            _("El importe cubre menos del %(share)s%% de lo vencido (%(overdue)s): el mínimo es %(least)s.")
            % {
                "share": f"{limits.promise_min_share.normalize():f}",
                "overdue": money_str(overdue, currency),
                "least": money_str(least, currency),
            }
        )
    return reasons


def plan_breaches(limits: PortalLimits, *, today: dt.date, count: int, first_on: dt.date) -> list[str]:
    """Why a plan request is outside the limits (empty: inside): more installments than the
    policy allows, or a first payment further away than a promise may be."""
    reasons = []
    if limits.plan_max_installments is not None and count > limits.plan_max_installments:
        reasons.append(
            _("Pide %(count)s cuotas; sin aprobación se aceptan hasta %(n)s.")
            % {"count": count, "n": limits.plan_max_installments}
        )
    if limits.promise_max_days is not None and first_on > today + dt.timedelta(days=limits.promise_max_days):
        reasons.append(
            _("El primer pago está a más de %(n)s días.") % {"n": limits.promise_max_days},
        )
    return reasons


def overdue_of(invoices, today: dt.date) -> Decimal:
    """What is overdue among ``invoices`` on the client's ``today`` (due before it)."""
    return sum((inv.open_balance for inv in invoices if inv.due_date < today), ZERO)


# --- what the debtor sees of their commitments ----------------------------------------------

# Resolved commitments and rejected proposals stay on the page this long.
RECENT_DAYS = 60


@dataclass
class PortalAgreements:
    commitments: list[Commitment]
    proposals: list[PortalProposal]

    def __bool__(self) -> bool:
        return bool(self.commitments or self.proposals)


def agreements_of(client: Client, today: dt.date) -> PortalAgreements:
    """The client's promises and plans as the debtor sees them: open ones and those resolved
    lately (kept, partly kept, broken), with their installments; proposals pending approval
    or rejected lately. Three queries."""
    since = today - dt.timedelta(days=RECENT_DAYS)
    commitments = list(
        Commitment.objects.filter(client=client, kind__in=[CommitmentKind.PROMISE, CommitmentKind.PLAN])
        .filter(Q(status=CommitmentStatus.OPEN) | Q(resolved_on__gte=since))
        .exclude(status=CommitmentStatus.CANCELLED)
        .prefetch_related("installments")
        .order_by("-made_on", "-id")
    )
    proposals = list(
        PortalProposal.objects.filter(client=client)
        .filter(Q(status=ProposalStatus.PENDING) | Q(status=ProposalStatus.REJECTED, decided_at__date__gte=since))
        .order_by("-created_at", "-id")
    )
    return PortalAgreements(commitments=commitments, proposals=proposals)


def pending_proposals(client: Client) -> list[PortalProposal]:
    return list(
        PortalProposal.objects.filter(client=client, status=ProposalStatus.PENDING)
        .select_related("task")
        .order_by("created_at", "id")
    )


# --- the staff panel -------------------------------------------------------------------------


@dataclass
class StaffPanel:
    access: SelfServiceAccess | None
    proposals: list[PortalProposal]
    messages: list[PortalMessage]
    # Channel → whether a contact may receive the link by it (active, not opted out, an address).
    reachable: dict[str, bool]


def staff_panel(client: Client) -> StaffPanel:
    """What the client page shows of the portal: revocation and last visit, proposals waiting
    for a decision, the last messages sent. Four queries, whatever the client has."""
    prefetch_related_objects([client], Prefetch("contacts"))
    return StaffPanel(
        access=SelfServiceAccess.objects.filter(client=client).first(),
        proposals=pending_proposals(client),
        messages=list(PortalMessage.objects.filter(client=client).order_by("-created_at", "-id")[:5]),
        reachable={channel: choose_contact(client, channel) is not None for channel in ("email", "sms", "whatsapp")},
    )
