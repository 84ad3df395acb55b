"""The forecast's query: the stand date and the dashboard's filters (its period is not used)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts.forms import IsoDateField
from cobranza.dashboard.forms import DashboardFilterForm

# A forecast from the far past says nothing the backtest does not say better.
MAX_YEARS_BACK = 5


class ForecastForm(DashboardFilterForm):
    as_of = IsoDateField(label=_("Fecha de cálculo"), required=False)

    def clean_as_of(self) -> dt.date | None:
        value = self.cleaned_data.get("as_of")
        if value is None:
            return value
        if value > self.today:
            raise ValidationError(_("La fecha de cálculo no puede ser posterior a hoy."), code="future")
        if value < self.today - dt.timedelta(days=366 * MAX_YEARS_BACK):
            raise ValidationError(_("La fecha de cálculo no puede ser de hace más de cinco años."), code="too_old")
        return value

    def stand_date(self) -> dt.date:
        """The valid ``as_of``, else today."""
        return (self.cleaned_data.get("as_of") if "as_of" not in self.errors else None) or clock.localdate()
