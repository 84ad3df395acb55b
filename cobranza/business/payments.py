"""The business's ways to pay: its payment provider's link and its bank-transfer details, for
one client and a set of invoices (docs/domain.md#ways-to-pay).

:func:`ways_to_pay` is the only place that builds them: the HTML email
(``cobranza.engine.html_email``), the message templates' ``{{ pago }}`` placeholder
(``cobranza.engine.messaging``) and the portal's *Pagar ahora* section all call it.

The payment link comes from ``BusinessProfile.payment_link_template``, an https address with the
placeholders ``{cliente}`` (our client id: the ``client_id`` the payment webhook expects back),
``{facturas}`` (the invoice numbers, comma-separated: the webhook's ``invoices``), ``{importe}``
(the amount owed, digits and a point, as many decimals as the currency has) and ``{moneda}``
(the ISO code). Every value is URL-encoded. Invoices in several currencies get one link per
currency when the template names the amount or the currency (a provider charges one currency
at a time). Placeholders are replaced by plain text substitution, never ``str.format`` (which
would let a template reach attributes: ``{cliente.__class__}``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import quote, urlsplit

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.rules import is_open_invoice
from accounts.selectors import client_payments
from cobranza.business import selectors
from cobranza.models import BusinessProfile

LINK_PLACEHOLDERS = ("cliente", "facturas", "importe", "moneda")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# What a bank transfer's concept/reference field holds at most (SPEI's "concepto" is 40).
REFERENCE_MAX_CHARS = 40
# Sample values for validating a template (a long invoice list, so the length check is honest).
_SAMPLE_VALUES = {"cliente": "1042", "facturas": "F-2026-00871,F-2026-00912", "importe": "16820.50", "moneda": "MXN"}
LINK_MAX_CHARS = 2000


@dataclass(frozen=True)
class Owed:
    """One invoice's part of what is owed: its number, open balance and currency."""

    number: str
    balance: Decimal
    currency: str


@dataclass(frozen=True)
class PayLink:
    currency: str
    amount: Decimal
    url: str


@dataclass(frozen=True)
class BankDetails:
    bank: str = ""
    holder: str = ""
    clabe: str = ""
    iban: str = ""
    account: str = ""

    def __bool__(self) -> bool:
        return bool(self.clabe or self.iban or self.account)


@dataclass(frozen=True)
class WaysToPay:
    links: tuple[PayLink, ...] = ()
    bank: BankDetails = field(default_factory=BankDetails)
    # What the debtor quotes on a bank transfer, so the payment is matched to them.
    reference: str = ""
    totals: tuple[tuple[str, Decimal], ...] = ()

    @property
    def link(self) -> str:
        """The first (largest currency's) payment link, or empty."""
        return self.links[0].url if self.links else ""

    def __bool__(self) -> bool:
        return bool(self.links or self.bank)


# --- the link template -----------------------------------------------------------------------


def validate_payment_link_template(value: str) -> None:
    """Raise ``ValidationError`` unless ``value`` is empty or an https address whose only
    placeholders are {cliente}, {facturas}, {importe} and {moneda}, none of them in the host."""
    value = (value or "").strip()
    if not value:
        return
    errors = []
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        errors.append(_("La dirección no puede contener espacios ni saltos de línea."))
    unknown = sorted({name for name in _PLACEHOLDER.findall(value) if name not in LINK_PLACEHOLDERS})
    if unknown:
        errors.append(
            _("Marcadores desconocidos: %(names)s. Se permiten: %(allowed)s.")
            % {
                "names": ", ".join("{" + n + "}" for n in unknown),
                "allowed": ", ".join("{" + n + "}" for n in LINK_PLACEHOLDERS),
            }
        )
    if "{" in _PLACEHOLDER.sub("", value) or "}" in _PLACEHOLDER.sub("", value):
        errors.append(_("Hay una llave «{» o «}» sin cerrar."))
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        errors.append(
            _("Debe ser una dirección https:// completa (p. ej. https://pagos.proveedor.com/?ref={cliente}).")
        )
    elif "{" in parts.netloc or "@" in parts.netloc:
        errors.append(_("Los marcadores van en la ruta o en los parámetros, no en el dominio."))
    if not errors and len(fill_link_template(value, _SAMPLE_VALUES)) > LINK_MAX_CHARS:
        errors.append(_("La dirección resultante es demasiado larga."))
    if errors:
        raise ValidationError(errors)


def fill_link_template(template: str, values: dict[str, str]) -> str:
    """``template`` with each known placeholder replaced by its URL-encoded value."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in LINK_PLACEHOLDERS:
            return match.group(0)
        return quote(str(values.get(name, "")), safe="")

    return _PLACEHOLDER.sub(replace, template)


def amount_text(amount: Decimal, currency: str) -> str:
    """The amount as a payment provider reads it: digits, a point, the currency's decimals."""
    digits = get_currency_precision(currency)
    return str(Decimal(amount).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


# --- the ways to pay -------------------------------------------------------------------------


def _totals(owed: list[Owed]) -> list[tuple[str, Decimal]]:
    sums: dict[str, Decimal] = {}
    for item in owed:
        sums[item.currency] = sums.get(item.currency, Decimal("0")) + Decimal(item.balance)
    # The largest amount first, as the messages' totals.
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))


def _reference(client_ref: str, numbers: list[str]) -> str:
    base = f"C{client_ref}" if client_ref else ""
    with_invoices = " ".join([base, *numbers]).strip()
    return with_invoices if len(with_invoices) <= REFERENCE_MAX_CHARS else base


def ways_to_pay(
    *,
    client_ref: str | int,
    invoices: Iterable[Owed],
    business: BusinessProfile | None = None,
    amounts: dict[str, Decimal] | None = None,
) -> WaysToPay:
    """How the client ``client_ref`` (our client id) can pay ``invoices``: the provider links
    (one per currency when the template names amount or currency), the bank details and the
    reference to quote. ``amounts`` (currency → amount) replaces the open balances as what to
    pay now (an installment of a payment plan). ``business`` defaults to the saved profile
    (one query)."""
    business = business if business is not None else selectors.current()
    owed = [item for item in invoices if Decimal(item.balance) > 0]
    client_ref = str(client_ref or "")
    numbers = list(dict.fromkeys(item.number for item in owed))
    totals = _totals(owed)
    if amounts is not None:
        totals = sorted(((c, Decimal(a)) for c, a in amounts.items() if a > 0), key=lambda kv: (-kv[1], kv[0]))
    links: list[PayLink] = []
    template = (business.payment_link_template or "").strip()
    try:
        # Saved around the settings form (the admin shell, an import): never put an address
        # that is not https, or a broken template, behind a debtor's pay button.
        validate_payment_link_template(template)
    except ValidationError:
        template = ""
    if template and totals:
        seen = set()
        for currency, amount in totals:
            in_currency = [item.number for item in owed if item.currency == currency]
            url = fill_link_template(
                template,
                {
                    "cliente": client_ref,
                    "facturas": ",".join(dict.fromkeys(in_currency)),
                    "importe": amount_text(amount, currency),
                    "moneda": currency,
                },
            )
            if url not in seen:
                seen.add(url)
                links.append(PayLink(currency=currency, amount=amount, url=url))
    bank = BankDetails(
        bank=business.bank_name,
        holder=business.bank_account_holder or business.legal_name,
        clabe=business.clabe,
        iban=business.iban,
        account=business.bank_account,
    )
    return WaysToPay(links=tuple(links), bank=bank, reference=_reference(client_ref, numbers), totals=tuple(totals))


def owed_from_invoices(invoices: Iterable) -> list[Owed]:
    """``Owed`` rows from ledger invoices (their current open balance)."""
    return [Owed(number=inv.number, balance=inv.open_balance, currency=inv.currency) for inv in invoices]


# --- the portal's "Pagar ahora" --------------------------------------------------------------

# Payments received this many days back are listed on the portal, so a debtor who just paid
# sees it arrived.
RECENT_PAYMENT_DAYS = 60


@dataclass(frozen=True)
class PortalPayment:
    """What the portal's *Pagar ahora* section shows: the ways to pay what is open now, and
    the payments received lately."""

    ways: WaysToPay
    received: tuple = ()


def portal_section(*, client, invoices: Iterable, today) -> PortalPayment:
    """For the portal: ``invoices`` are the client's invoices on the statement; only the open
    ones (not disputed: docs/domain.md#open-invoice) are offered for payment. Three queries (the
    profile, the payments and what they paid)."""
    owed = [invoice for invoice in invoices if is_open_invoice(invoice)]
    ways = ways_to_pay(client_ref=client.pk, invoices=owed_from_invoices(owed))
    received = tuple(
        client_payments(client)
        .filter(received_on__gte=today - dt.timedelta(days=RECENT_PAYMENT_DAYS))
        .order_by("-received_on", "-id")[:5]
    )
    return PortalPayment(ways=ways, received=received)
