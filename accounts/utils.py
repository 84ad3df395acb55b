"""Locale-aware money formatting, one definition for templates, timeline texts and mail."""

from decimal import Decimal

from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation


def money_locale(language: str | None = None) -> str:
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    return settings.MONEY_LOCALES.get(language, settings.MONEY_LOCALES.get("es", "es_MX"))


def money_str(amount, currency: str, language: str | None = None) -> str:
    """`1234.5, "MXN"` → `$1,234.50` (es-MX), `MX$1,234.50` (en-US), `1234,50 €` (es-ES)."""
    if amount is None:
        return ""
    return format_currency(Decimal(amount), currency, locale=money_locale(language))
