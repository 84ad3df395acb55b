"""Profiles' reads: the profile panel of the client page (profile, protocol, late fees and
discounts of the client's invoices) and the managers' overview of clients by profile. The
rules and protocols they show are defined with the classification, in
``cobranza.profiles.jobs``; the writes are ``cobranza.profiles.services``."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, Count, QuerySet, Value, When

from accounts import clock
from accounts.models import Client, Invoice
from accounts.rules import COLLECTIBLE
from cobranza.models import ClientProfile, Discount, LateFee, LateFeeRule, Policy, Profile
from cobranza.profiles.jobs import PROFILE_ORDER, PROTOCOLS, RULE_BY_PROFILE, Protocol
from cobranza.rules import effective_profile, effective_profile_expr


@dataclass
class InvoiceRow:
    """One invoice of the panel: its principal apart from its surcharges, and whether a
    discount may still be requested on it."""

    invoice: Invoice
    fixed: LateFee | None = None
    interest: LateFee | None = None
    open: bool = False

    @property
    def fees(self) -> list[LateFee]:
        return [f for f in (self.fixed, self.interest) if f is not None]

    @property
    def fee_total(self) -> Decimal:
        """Surcharges still to collect (waived ones left out)."""
        return sum((f.amount for f in self.fees if not f.waived), Decimal("0.00"))


@dataclass
class ProfilePanel:
    client: Client
    profile: ClientProfile | None
    effective: str
    policy: Policy | None
    rule: LateFeeRule | None
    rows: list[InvoiceRow]
    fee_totals: dict[str, Decimal]
    discounts: list[Discount]
    today: dt.date

    @property
    def protocol(self) -> Protocol:
        return PROTOCOLS[self.effective]

    @property
    def rule_text(self) -> str:
        return RULE_BY_PROFILE[self.profile.computed if self.profile else Profile.NEW]

    @property
    def effective_label(self) -> str:
        return Profile(self.effective).label

    @property
    def is_good_payer(self) -> bool:
        return is_good_payer(self.profile)

    @property
    def pending_discounts(self) -> int:
        return sum(1 for d in self.discounts if d.status == Discount.Status.REQUESTED)

    @property
    def has_fees(self) -> bool:
        return any(row.fees for row in self.rows)


PANEL_DISCOUNTS = 10


def client_profile_panel(client: Client, *, today: dt.date | None = None) -> ProfilePanel:
    """Everything the profile panel of the client page shows, in six queries whatever the
    number of invoices, fees and discounts: the profile, the profile's ladder, the segment's
    surcharge rule, the open invoices, the fees and the latest discounts."""
    today = today or clock.localdate()
    profile = ClientProfile.objects.filter(client=client).select_related("override_by").first()
    effective = effective_profile(profile)
    policy = Policy.objects.filter(profile=effective).first()
    rule = LateFeeRule.objects.filter(segment_id=client.segment_id).first()
    rows: dict[int, InvoiceRow] = {
        invoice.pk: InvoiceRow(invoice=invoice, open=True)
        for invoice in Invoice.objects.filter(COLLECTIBLE, client=client)
    }
    totals: dict[str, Decimal] = {}
    for fee in LateFee.objects.filter(invoice__client=client).select_related("invoice", "waived_by"):
        row = rows.setdefault(fee.invoice_id, InvoiceRow(invoice=fee.invoice))
        setattr(row, fee.kind, fee)
        if not fee.waived:
            currency = row.invoice.currency
            totals[currency] = totals.get(currency, Decimal("0.00")) + fee.amount
    discounts = list(
        Discount.objects.filter(invoice__client=client)
        .select_related("invoice", "requested_by", "decided_by")
        .order_by(
            Case(When(status=Discount.Status.REQUESTED, then=Value(0)), default=Value(1)), "-requested_at", "-id"
        )[:PANEL_DISCOUNTS]
    )
    return ProfilePanel(
        client=client,
        profile=profile,
        effective=effective,
        policy=policy,
        rule=rule,
        rows=sorted(rows.values(), key=lambda r: (r.invoice.due_date, r.invoice.pk)),
        fee_totals=dict(sorted(totals.items())),
        discounts=discounts,
        today=today,
    )


def profiles_overview(*, clients: QuerySet[Client], profile: str = "") -> tuple[list[dict], QuerySet[Client]]:
    """Counts per effective profile (one query) and the clients of one profile (a queryset
    to paginate: clients with their profile, collector and segment in one query)."""
    annotated = clients.annotate(effective_profile=effective_profile_expr())
    rows = annotated.order_by().values_list("effective_profile").annotate(n=Count("pk"))
    counts = Counter(dict(rows.values_list("effective_profile", "n")))
    policies = {p.profile: p for p in Policy.objects.exclude(profile="")}
    summary = [
        {
            "profile": value,
            "label": Profile(value).label,
            "count": counts.get(value, 0),
            "rule": RULE_BY_PROFILE[value],
            "protocol": PROTOCOLS[value],
            "policy": policies.get(value),
        }
        for value in PROFILE_ORDER
    ]
    listed = annotated.select_related("profile", "collector", "segment").order_by("legal_name", "id")
    if profile:
        listed = listed.filter(effective_profile=profile)
    return summary, listed


def is_good_payer(profile: ClientProfile | None) -> bool:
    """Good-payer standing held now (docs/domain.md#good-payer): gained and not lost since."""
    return bool(profile and profile.good_payer_since and not profile.good_payer_lost_on)


@dataclass
class ProfileSummary:
    """The client's profile as the client page summary shows it (one query)."""

    profile: ClientProfile | None
    effective: str

    @property
    def effective_label(self) -> str:
        return Profile(self.effective).label

    @property
    def protocol(self) -> Protocol | None:
        return PROTOCOLS.get(self.effective)

    @property
    def is_good_payer(self) -> bool:
        return is_good_payer(self.profile)


def client_profile_summary(client: Client) -> ProfileSummary:
    profile = ClientProfile.objects.filter(client=client).first()
    return ProfileSummary(profile=profile, effective=effective_profile(profile))
