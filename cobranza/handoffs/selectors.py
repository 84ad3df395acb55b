"""Hand-offs, the reads: the list and its recovery totals, one hand-off with its updates and
invoices, the client page's panel, the invoices a manager may send, and the case file's
contents (what its PDF and CSV are made from, and where they are stored). The writes, and the
rules they follow, are ``cobranza.handoffs.services``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import Case, Count, DecimalField, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import clock
from accounts import selectors as ledger_selectors
from accounts.models import MONEY, ZERO, Client, Invoice
from accounts.rules import COLLECTIBLE, open_invoice_q, overdue_q
from cobranza.business import selectors as business
from cobranza.models import HandOff, HandOffStatus, HandOffUpdate

CASE_FILES_DIR = "expedientes"
FORMATS = ("pdf", "csv")


# --- the case file ---------------------------------------------------------------------------


def case_files_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / CASE_FILES_DIR


def case_file_path(handoff: HandOff, fmt: str = "pdf") -> Path | None:
    """Where the case file of ``handoff`` is in ``fmt`` (pdf or csv), or None if it has
    none. The stored path is trusted only inside ``MEDIA_ROOT/expedientes``."""
    if fmt not in FORMATS or not handoff.case_file:
        return None
    root = case_files_dir().resolve()
    path = (Path(settings.MEDIA_ROOT) / handoff.case_file).with_suffix(f".{fmt}").resolve()
    if root not in path.parents:
        return None
    return path


@dataclass
class CaseFileInvoice:
    invoice: Invoice
    days_overdue: int


def _case_file_context(handoff: HandOff) -> dict:
    client = Client.objects.select_related("segment", "collector", "business_group").get(pk=handoff.client_id)
    today = handoff.opened_on
    invoices = [CaseFileInvoice(inv, inv.days_overdue(today)) for inv in handoff.invoices.order_by("due_date", "id")]
    timeline = list(
        ledger_selectors.client_timeline(client).order_by("occurred_at", "id")  # oldest first: a case reads forward
    )
    profile = business.current()
    return {
        # The creditor: the business that is owed (docs/domain.md, "Who the debtor hears from").
        "business": profile,
        "company": profile.trade_name,
        "logo_file": business.logo_file_uri(profile),
        "handoff": handoff,
        "client": client,
        "contacts": list(ledger_selectors.client_contacts(client)),
        "invoices": invoices,
        "payments": list(ledger_selectors.client_payments(client).order_by("received_on", "id")),
        "timeline": timeline,
        "generated_at": timezone.localtime(),
    }


def case_file_html(handoff: HandOff, context: dict | None = None) -> str:
    """The HTML the case file's PDF is printed from."""
    return render_to_string("cobranza/handoffs/case_file.html", context or _case_file_context(handoff))


# --- invoices to send ------------------------------------------------------------------------


def default_invoices(client: Client, *, today: dt.date | None = None) -> QuerySet[Invoice]:
    """What a hand-off sends when no invoices are chosen: the overdue invoices still owed."""
    today = today or clock.localdate()
    return Invoice.objects.filter(open_invoice_q(), overdue_q(today), client=client).order_by("due_date", "id")


def sendable_invoices(client: Client) -> QuerySet[Invoice]:
    """The invoices a manager may choose to send (overdue or not), oldest due first."""
    return Invoice.objects.filter(open_invoice_q(), client=client).order_by("due_date", "id")


# --- lists, details and totals ----------------------------------------------------------------


def handoffs_visible_to(user) -> QuerySet[HandOff]:
    """Managers see every hand-off; a collector those of their own clients."""
    return HandOff.objects.filter(client__in=ledger_selectors.clients_visible_to(user).values("pk"))


def _recovered() -> Coalesce:
    rows = (
        HandOffUpdate.objects.filter(handoff=OuterRef("pk"))
        .order_by()
        .values("handoff")
        .annotate(total=Sum("recovered"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=DecimalField(**MONEY)), Value(ZERO), output_field=DecimalField(**MONEY))


def with_recovery(qs: QuerySet[HandOff]) -> QuerySet[HandOff]:
    """Annotate ``recovered`` (sum of the updates) and ``invoice_count``, in the same query."""
    through = HandOff.invoices.through
    count = (
        through.objects.filter(handoff=OuterRef("pk")).order_by().values("handoff").annotate(n=Count("id")).values("n")
    )
    return qs.annotate(
        recovered=_recovered(),
        invoice_count=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
    )


def handoff_list(
    *, user, kind: str = "", status: str = "", agency: str = "", client: int | None = None
) -> QuerySet[HandOff]:
    """The hand-offs the user sees, open ones first, newest first."""
    qs = handoffs_visible_to(user)
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    agency = (agency or "").strip()
    if agency:
        qs = qs.filter(agency__icontains=agency)
    if client:
        qs = qs.filter(client_id=client)
    open_first = Case(When(status=HandOffStatus.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())
    return with_recovery(qs.select_related("client", "client__collector", "opened_by")).order_by(
        open_first, "-opened_on", "-id"
    )


@dataclass
class RecoveryTotal:
    currency: str
    count: int
    sent: Decimal
    recovered: Decimal

    @property
    def rate(self) -> Decimal:
        """Recovery rate = recovered ÷ amount sent × 100."""
        return (self.recovered / self.sent * 100) if self.sent > 0 else Decimal(0)


def recovery_totals(qs: QuerySet[HandOff]) -> list[RecoveryTotal]:
    """Amount sent and recovered per currency over ``qs`` (two queries)."""
    base = qs.order_by().values("pk")
    sent = (
        HandOff.objects.filter(pk__in=base)
        .values("currency")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("currency")
    )
    recovered = dict(
        HandOffUpdate.objects.filter(handoff__in=base)
        .values("handoff__currency")
        .annotate(total=Sum("recovered"))
        .order_by()
        .values_list("handoff__currency", "total")
    )
    return [
        RecoveryTotal(row["currency"], row["n"], row["total"] or ZERO, recovered.get(row["currency"]) or ZERO)
        for row in sent
    ]


def known_agencies() -> list[str]:
    """Agency and law-firm names already used: suggestions for the forms and the filter."""
    return list(HandOff.objects.exclude(agency="").order_by("agency").values_list("agency", flat=True).distinct()[:200])


def handoff_detail(*, user, pk: int) -> HandOff:
    return (
        with_recovery(handoffs_visible_to(user))
        .select_related("client", "client__collector", "client__segment", "opened_by")
        .get(pk=pk)
    )


def handoff_updates(handoff: HandOff) -> QuerySet[HandOffUpdate]:
    return handoff.updates.select_related("created_by", "payment").order_by("-on", "-id")


def handoff_invoices(handoff: HandOff) -> QuerySet[Invoice]:
    """The invoices sent, with their balances as they are today."""
    return handoff.invoices.order_by("due_date", "id")


def client_open_handoffs(client: Client) -> list[HandOff]:
    """The client panel's open hand-offs (one query)."""
    return list(
        with_recovery(HandOff.objects.filter(client=client, status=HandOffStatus.OPEN)).order_by("opened_on", "id")
    )


def outstanding(handoff: HandOff) -> Decimal:
    """What the hand-off's invoices still owe today (one query)."""
    total = handoff.invoices.filter(COLLECTIBLE).aggregate(total=Sum("open_balance")).get("total")
    return total or ZERO
