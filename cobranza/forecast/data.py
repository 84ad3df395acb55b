"""The forecast's figures as plain data: what the dashboard (and a stored summary of it) holds.

Kept apart from the selectors, which build on ``cobranza.dashboard.metrics``, so that
``metrics.Dashboard`` can hold a ``Forecast`` without a circular import. A stored summary
pickles these classes: a change of shape bumps ``summaries.FORMAT_VERSION``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import ZERO


@dataclass
class Week:
    number: int  # 1 …
    start: dt.date
    end: dt.date
    committed: Decimal = ZERO
    behaviour: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.committed + self.behaviour


@dataclass
class Forecast:
    as_of: dt.date
    currency: str
    weeks: list[Week] = field(default_factory=list)

    @property
    def committed(self) -> Decimal:
        return sum((w.committed for w in self.weeks), ZERO)

    @property
    def behaviour(self) -> Decimal:
        return sum((w.behaviour for w in self.weeks), ZERO)

    @property
    def total(self) -> Decimal:
        return self.committed + self.behaviour

    @property
    def committed_pct(self) -> Decimal | None:
        if self.total <= 0:
            return None
        return (self.committed / self.total * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
