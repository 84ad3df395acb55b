"""Small helpers shared by accounts and cobranza: locale-aware money formatting (one definition
for templates, timeline texts and mail), who to record as the author of a change, and the
machine-to-machine rules: how a JSON request body is read and what a webhook signature covers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from decimal import ROUND_HALF_EVEN, Decimal
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
    value = Decimal(amount)
    locale = money_locale(currency, language)
    fast = _money_format(locale, currency)
    if fast is not None and value.is_finite() and value >= 0:
        return fast(value)
    return format_currency(value, currency, locale=locale)


_MONEY_FORMATS: dict[tuple[str, str], object] = {}
_SAMPLE = re.compile(r"1(?P<group>\D?)234(?P=group)567(?:(\D)(0+))?")
_CHECKED = ("0", "0.005", "0.01", "7.5", "999.995", "1000", "1234.5", "12345.678", "100000", "987654321.05")


def _money_format(locale: str, currency: str):
    """Babel's format of a positive amount in ``locale`` and ``currency``, without Babel's
    per-call parsing of the locale and pattern (a timeline entry of an import formats
    thousands of amounts): the symbol, separators and decimals are read once from Babel's own
    output, and the result is checked against Babel on sample amounts — any difference, and
    Babel formats every amount of that pair (None)."""
    key = (locale, currency)
    if key in _MONEY_FORMATS:
        return _MONEY_FORMATS[key]
    fast = None
    sample = format_currency(Decimal("1234567"), currency, locale=locale)
    match = _SAMPLE.search(sample)
    if match is not None:
        prefix, suffix = sample[: match.start()], sample[match.end() :]
        group, point, zeros = match.group("group"), match.group(2) or "", match.group(3) or ""
        exponent = Decimal(1).scaleb(-len(zeros))
        spec = f",.{len(zeros)}f"
        table = str.maketrans({",": group, ".": point})

        def fast(value: Decimal) -> str:
            return prefix + format(value.quantize(exponent, ROUND_HALF_EVEN), spec).translate(table) + suffix

        if any(fast(Decimal(v)) != format_currency(Decimal(v), currency, locale=locale) for v in _CHECKED):
            fast = None
    _MONEY_FORMATS[key] = fast
    return fast


def actor(by: User | AnonymousUser | None) -> User | None:
    """The user to record as a change's author (``created_by``, ``author``...), or None.

    Services receive the acting user as ``by``: a logged-in person; ``None`` when no person
    acted (the planner, workers, nightly jobs, the debtor's portal, payment webhooks); or an
    ``AnonymousUser`` from a request without a login. A foreign key cannot point at an
    anonymous user, so everything but a person is stored as NULL, which the UI shows as
    «Sistema» (the ``user_label`` filter)."""
    return by if getattr(by, "is_authenticated", False) else None


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, unless ``AXES_PROXY_COUNT`` trusted reverse proxies
    stand in front (docs/scaling.md). Then REMOTE_ADDR is the nearest proxy's, the same for
    everyone, and the client is the address the outermost trusted proxy wrote into
    X-Forwarded-For: the Nth entry from the right. Entries left of it come from the client
    and are ignored, so a forged header changes nothing. None when there is none (a
    Unix-socket proxy gives an empty REMOTE_ADDR; axes stores the address in an inet column)."""
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", None) or 0
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


# --- machine-to-machine ---------------------------------------------------------------------


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes | str):
    """The one reader of JSON request bodies (the payment webhook, the API's parser). Any
    malformed body — bad syntax, invalid UTF-8, NaN/Infinity, or nesting deep enough to exhaust
    the interpreter's recursion limit (``{"a":`` × 50,000) — raises ValueError, which callers
    answer with a 400; nothing else escapes as a 500."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<raw body>"``: what the payment webhook verifies and
    what outgoing webhooks send. Signing the timestamp lets the receiver refuse replays."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
