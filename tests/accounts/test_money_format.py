"""money_str's fast path (symbol, separators and decimals read once per locale and currency)
writes exactly what Babel writes, for every currency the app formats in both languages."""

from __future__ import annotations

import random
from decimal import Decimal

from babel.numbers import format_currency

from accounts import utils


def test_the_fast_money_format_is_babels_to_the_character():
    rng = random.Random(5)
    currencies = [*utils.SPANISH_LOCALE_BY_CURRENCY, "USD", "JPY", "GBP", "BRL"]
    amounts = [Decimal(rng.randint(0, 10**12)) / 100 for _ in range(400)]
    amounts += [Decimal("0"), Decimal("0.005"), Decimal("0.015"), Decimal("999.995"), Decimal("1000000000.00")]
    amounts += [Decimal("-1234.5"), Decimal("12.3456")]
    for language in ("es", "en"):
        for currency in currencies:
            locale = utils.money_locale(currency, language)
            assert utils._money_format(locale, currency) is not None, (locale, currency)
            for amount in amounts:
                assert utils.money_str(amount, currency, language) == format_currency(amount, currency, locale=locale)
    assert utils.money_str(None, "MXN") == ""
