"""Filters of the manager performance pages: a date range, the currency to report money in,
and the segment or policy to look at. Invalid input falls back to the defaults (the last
30 days ending today, the company's main currency) with the errors shown."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts.forms import DateInput, IsoDateField
from accounts.models import Segment
from cobranza.models import Policy
from cobranza.performance.selectors import Period, currencies_in_use, default_period

MAX_PERIOD_DAYS = 731  # two years: longer ranges say little about who performs now


class PeriodForm(forms.Form):
    start = IsoDateField(label=_("Desde"), required=False, widget=DateInput())
    end = IsoDateField(label=_("Hasta"), required=False, widget=DateInput())
    currency = forms.ChoiceField(label=_("Moneda"), required=False)
    segment = forms.ModelChoiceField(
        label=_("Segmento"), queryset=Segment.objects.none(), required=False, empty_label=_("Todos")
    )

    def __init__(self, *args, today: dt.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today or clock.localdate()
        self.currencies = currencies_in_use() or ["MXN"]
        self.main_currency = self.currencies[0]
        self.fields["currency"].choices = [(c, c) for c in self.currencies]
        self.fields["segment"].queryset = Segment.objects.order_by("position", "name")
        default = default_period(self.today)
        self.fields["start"].initial = default.start
        self.fields["end"].initial = default.end
        self.fields["currency"].initial = self.main_currency
        for name, field in self.fields.items():
            css = (
                "form-select form-select-sm"
                if isinstance(field.widget, forms.Select)
                else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)
            field.widget.attrs.setdefault("data-filter", name)

    def clean(self):
        data = super().clean()
        default = default_period(self.today)
        start = data.get("start") or default.start
        end = data.get("end") or default.end
        if start > end:
            raise ValidationError(_("La fecha inicial es posterior a la final."), code="order")
        if (end - start).days + 1 > MAX_PERIOD_DAYS:
            raise ValidationError(_("Elija un periodo de hasta dos años."), code="too_long")
        data["start"], data["end"] = start, end
        data["currency"] = data.get("currency") or self.main_currency
        return data

    def filters(self) -> dict:
        """The valid filters, or the defaults for an invalid form."""
        if self.is_valid():
            data = self.cleaned_data
            segment = data.get("segment")
            return {
                "start": data["start"],
                "end": data["end"],
                "currency": data["currency"],
                "segment": segment.pk if segment else None,
                **self._extra(data),
            }
        default = default_period(self.today)
        return {"start": default.start, "end": default.end, "currency": self.main_currency, "segment": None}

    def _extra(self, data) -> dict:
        return {}

    def period(self) -> Period:
        f = self.filters()
        return Period(f["start"], f["end"])


class DunningFilterForm(PeriodForm):
    policy = forms.ModelChoiceField(
        label=_("Política"), queryset=Policy.objects.none(), required=False, empty_label=_("Todas")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = Policy.objects.order_by("name")
        self.fields["policy"].widget.attrs.setdefault("class", "form-select form-select-sm")
        self.fields["policy"].widget.attrs.setdefault("data-filter", "policy")

    def _extra(self, data) -> dict:
        policy = data.get("policy")
        return {"policy": policy.pk if policy else None}

    def filters(self) -> dict:
        result = super().filters()
        result.setdefault("policy", None)
        return result
