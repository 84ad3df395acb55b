"""Small helpers shared by accounts and cobranza: locale-aware money formatting (one definition
for templates, timeline texts and mail) and who to record as the author of a change."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

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


def actor(by: User | AnonymousUser | None) -> User | None:
    """The user to record as a change's author (``created_by``, ``author``...), or None.

    Services receive the acting user as ``by``: a logged-in person; ``None`` when no person
    acted (the planner, workers, nightly jobs, the debtor's portal, payment webhooks); or an
    ``AnonymousUser`` from a request without a login. A foreign key cannot point at an
    anonymous user, so everything but a person is stored as NULL, which the UI shows as
    «Sistema» (the ``user_label`` filter)."""
    return by if getattr(by, "is_authenticated", False) else None
