"""The debtor's self-service page, the reads: the statement it shows (invoices still owed, with
days overdue in the client's own time zone) and what the debtor may act on. What the page
records is ``cobranza.portal.services``; the link that opens it, ``cobranza.portal.links``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from accounts.models import ZERO, Client, Invoice
from accounts.rules import COLLECTIBLE, open_invoice_q


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
