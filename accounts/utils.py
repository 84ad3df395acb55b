"""Locale-aware money formatting, one definition for templates, timeline texts and mail."""

from decimal import Decimal

from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation

# In Spanish, a currency reads best in the format of the country that issues it
# (1.234,50 € in Spain, $1,234.50 in Mexico); other currencies use the language default.
SPANISH_LOCALE_BY_CURRENCY = {
    "EUR": "es_ES",
    "MXN": "es_MX",
    "COP": "es_CO",
    "ARS": "es_AR",
    "CLP": "es_CL",
    "PEN": "es_PE",
    "UYU": "es_UY",
    "GTQ": "es_GT",
    "DOP": "es_DO",
    "CRC": "es_CR",
    "BOB": "es_BO",
    "PYG": "es_PY",
}


def money_locale(currency: str = "", language: str | None = None) -> str:
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    if language == "es" and currency in SPANISH_LOCALE_BY_CURRENCY:
        return SPANISH_LOCALE_BY_CURRENCY[currency]
    return settings.MONEY_LOCALES.get(language, settings.MONEY_LOCALES.get("es", "es_MX"))


def money_str(amount, currency: str, language: str | None = None) -> str:
    """`1234.5, "MXN"` → `$1,234.50` (es), `MX$1,234.50` (en); `1234.5, "EUR"` → `1.234,50 €` (es)."""
    if amount is None:
        return ""
    return format_currency(Decimal(amount), currency, locale=money_locale(currency, language))
