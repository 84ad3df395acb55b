"""The one number format (docs/domain.md#number-formats): how every number, percentage, count of
days and amount of money reads on the pages, in the exports, the PDF report, the charts and the
debtor's messages.

A *rule* is a convention of separators and currency placement (es-MX 1,234.56; es-ES 1.234,56;
en-US 1,234.56...). The business chooses one (``BusinessProfile.number_format``; by default the
one of its country); each user may choose their own (``accounts.UserPreference``). The active
rule of a request is the user's, else the business's; what a debtor reads uses the business's
(``for_debtor``). The language still decides the words ("días"/"days"); the rule decides only
the digits, separators and the currency's place.

Every formatter of the project goes through here: the ``money`` template filters, the
timeline texts, the message templates, the dashboard tables and charts (``js_config``), the
XLSX number formats (``excel_format``) and the SVG charts of the PDF (``abbreviate``).
"""

from __future__ import annotations

import contextlib
import functools
import time
import unicodedata
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, get_currency_symbol
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

NBSP = "\xa0"


@dataclass(frozen=True)
class Rule:
    code: str
    label: str
    decimal: str
    group: str
    locale: str  # the CLDR locale whose currency symbols this rule uses
    symbol_first: bool = True  # "$1,234.56" or "1.234,56 €"
    percent: str = " %"  # what follows a percentage
    billions: str = "MM"  # the abbreviation of 10⁹ on chart axes (k, M, then this)


# The rules offered, each its country's usual convention (Unicode CLDR, grouping always on).
RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("es-MX", _("México: 1,234.56 — $1,234.56"), ".", ",", "es_MX"),
        Rule("es-ES", _("España: 1.234,56 — 1.234,56 €"), ",", ".", "es_ES", symbol_first=False),
        Rule("en-US", _("Estados Unidos: 1,234.56 — $1,234.56"), ".", ",", "en_US", percent="%", billions="B"),
        Rule("es-CO", _("Colombia: 1.234,56 — $1.234,56"), ",", ".", "es_CO"),
        Rule("es-CL", _("Chile: 1.234,56 — $1.234,56"), ",", ".", "es_CL"),
        Rule("es-PE", _("Perú: 1,234.56 — S/ 1,234.56"), ".", ",", "es_PE"),
        Rule("es-AR", _("Argentina: 1.234,56 — $1.234,56"), ",", ".", "es_AR"),
    )
}
DEFAULT_RULE = "es-MX"
# A business's default rule, by its country (docs/domain.md#number-formats).
COUNTRY_RULES = {
    "MX": "es-MX",
    "ES": "es-ES",
    "US": "en-US",
    "CO": "es-CO",
    "CL": "es-CL",
    "PE": "es-PE",
    "AR": "es-AR",
}
CHOICES = [(code, rule.label) for code, rule in RULES.items()]


# --- which rule is active -----------------------------------------------------------------------

_request_rule: ContextVar[str] = ContextVar("number_format", default="")
_business: tuple[str, float] | None = None  # (code, read at): a cache per process
BUSINESS_TTL = 60.0  # seconds another process may show the business's previous rule


def country_rule(country: str) -> str:
    return COUNTRY_RULES.get((country or "").upper(), DEFAULT_RULE)


# ``accounts`` never imports ``cobranza``: the app that keeps the business's identity registers
# how to read its rule (cobranza/apps.py); without one, the default rule.
_business_reader: Callable[[], str] | None = None


def register_business_reader(reader: Callable[[], str]) -> None:
    global _business_reader
    _business_reader = reader
    forget_business()


def business_code() -> str:
    """The business's rule (its setting, else its country's), cached per process."""
    global _business
    if _business is not None and time.monotonic() - _business[1] < BUSINESS_TTL:
        return _business[0]
    code = _business_reader() if _business_reader is not None else DEFAULT_RULE
    code = code if code in RULES else DEFAULT_RULE
    _business = (code, time.monotonic())
    return code


def forget_business(*args, **kwargs) -> None:
    """The business's rule changed (``post_save`` of the profile): read it again."""
    global _business
    _business = None


def active() -> Rule:
    code = _request_rule.get()
    return RULES[code if code in RULES else business_code()]


@contextlib.contextmanager
def override(code: str):
    """Format with ``code`` ("" = the business's rule) inside the block."""
    token = _request_rule.set(code if code in RULES else "")
    try:
        yield
    finally:
        _request_rule.reset(token)


_debtor_rule: ContextVar[str] = ContextVar("debtor_number_format", default="")


def debtor_code() -> str:
    """The rule of what a debtor reads: the business's, whoever is looking."""
    return _debtor_rule.get() or business_code()


@contextlib.contextmanager
def for_business(code: str | None):
    """Inside the block a debtor's text uses the rule ``code`` (the business's, already read;
    None: read it when needed)."""
    token = _debtor_rule.set(code if code in RULES else "")
    try:
        yield
    finally:
        _debtor_rule.reset(token)


# --- the formatters ----------------------------------------------------------------------------


def _decimal(value) -> Decimal | None:
    if type(value) is Decimal:  # most amounts: no round trip through text
        return value if value.is_finite() else None
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


def _rule(rule: Rule | str | None) -> Rule:
    if isinstance(rule, Rule):
        return rule
    return RULES[rule] if rule in RULES else active()


@functools.lru_cache(maxsize=16)
def _step(places: int) -> Decimal:
    """The quantum of ``places`` decimals: 0.01 for 2."""
    return Decimal(1).scaleb(-places)


def format_number(value, places: int = 2, rule: Rule | str | None = None) -> str:
    """``1234.5`` → "1,234.50" (es-MX, en-US) or "1.234,50" (es-ES): grouped, ``places``
    decimals rounded half up. "" for no value."""
    number = _decimal(value)
    if number is None:
        return ""
    r = _rule(rule)
    number = number.quantize(_step(places), rounding=ROUND_HALF_UP)
    text = f"{abs(number):,.{places}f}".replace(",", "\0").replace(".", r.decimal).replace("\0", r.group)
    return f"-{text}" if number < 0 else text


def format_percent(value, places: int = 1, rule: Rule | str | None = None) -> str:
    """``12.5`` (already a percentage) → "12.5 %" (es) / "12.5%" (en-US)."""
    text = format_number(value, places, rule)
    return f"{text}{_rule(rule).percent}" if text else ""


def format_days(value, places: int = 1, rule: Rule | str | None = None) -> str:
    """``26.3`` → "26.3 días" / "26.3 days" (the words in the active language)."""
    text = format_number(value, places, rule)
    return gettext("%(n)s días") % {"n": text} if text else ""


def _glued(symbol: str) -> bool:
    """A symbol that is a sign ($, US$, €) touches the digits; a code or letters (USD, S/) do not."""
    return bool(symbol) and unicodedata.category(symbol[-1]) == "Sc"


def money_parts(currency: str, rule: Rule | str | None = None) -> tuple[str, str, int]:
    """What surrounds an amount in ``currency``: (prefix, suffix, decimals)."""
    return _money_parts((currency or settings.DEFAULT_CURRENCY).upper(), _rule(rule).code)


@functools.lru_cache(maxsize=512)
def _money_parts(currency: str, code: str) -> tuple[str, str, int]:
    r = RULES[code]
    try:
        symbol = get_currency_symbol(currency, locale=r.locale)
        digits = get_currency_precision(currency)
    except (ValueError, KeyError):
        symbol, digits = currency, 2
    if r.symbol_first:
        return (symbol if _glued(symbol) else symbol + NBSP), "", digits
    return "", NBSP + symbol, digits


def format_money(amount, currency: str, rule: Rule | str | None = None, places: int | None = None) -> str:
    """``5119.85, "USD"`` → "USD 5,119.85" (es-MX), "$5,119.85" (en-US), "5.119,85 US$" (es-ES);
    ``"MXN"`` → "$5,119.85" (es-MX). A code never touches the digits. "" for no amount."""
    number = _decimal(amount)
    if number is None:
        return ""
    prefix, suffix, digits = money_parts(currency, rule)
    places = digits if places is None else places
    text = format_number(abs(number), places, rule)
    negative = number.quantize(_step(places), ROUND_HALF_UP) < 0
    return f"{'-' if negative else ''}{prefix}{text}{suffix}"


def abbreviate(value, rule: Rule | str | None = None) -> str:
    """A chart axis label, without cents: 999 → "999", 1,000 → "1 k", 350,000 → "350 k",
    1,200,000 → "1.2 M" ("1,2 M" in es-ES), 10⁹ → "1 MM" (es) / "1 B" (en-US)."""
    number = _decimal(value)
    if number is None:
        return ""
    r = _rule(rule)
    sign, magnitude = ("-" if number < 0 else ""), abs(number)
    if magnitude.quantize(Decimal(1), ROUND_HALF_UP) < 1000:
        whole = magnitude.quantize(Decimal(1), ROUND_HALF_UP)
        return f"{sign if whole else ''}{format_number(whole, 0, r)}"
    for scale, unit in ((Decimal(10) ** 3, "k"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 9, r.billions)):
        scaled = (magnitude / scale).quantize(Decimal("0.1"), ROUND_HALF_UP)
        if scaled < 1000 or unit == r.billions:
            places = 0 if scaled == scaled.to_integral_value() else 1
            return f"{sign}{format_number(scaled, places, r)} {unit}"
    raise AssertionError("unreachable")


def js_config(currency: str, rule: Rule | str | None = None) -> dict:
    """The rule for static/js/numbers.js (charts' axes and tooltips), with ``currency``'s parts."""
    r = _rule(rule)
    prefix, suffix, digits = money_parts(currency, r)
    return {
        "code": r.code,
        "decimal": r.decimal,
        "group": r.group,
        "percent": r.percent,
        "billions": r.billions,
        "days": gettext("%(n)s días"),
        "money": {"currency": currency, "prefix": prefix, "suffix": suffix, "digits": digits},
    }


def _excel_literal(text: str) -> str:
    return '"' + text.replace('"', "") + '"' if text else ""


def excel_format(kind: str, currency: str = "", rule: Rule | str | None = None) -> str:
    """The XLSX number format of a cell: the money with its currency placed as on the pages
    (the separators are the spreadsheet's own, Excel's format codes cannot fix them)."""
    if kind == "money":
        prefix, suffix, digits = money_parts(currency, rule)
        body = "#,##0" + ("." + "0" * digits if digits else "")
        return f"{_excel_literal(prefix)}{body}{_excel_literal(suffix)}"
    return {"decimal": "#,##0.00", "int": "#,##0", "percent": "0.0", "date": "yyyy-mm-dd"}[kind]
