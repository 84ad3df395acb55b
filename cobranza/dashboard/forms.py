"""The managers' dashboard filters: segment, collector, profile, currency and period."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts.forms import IsoDateField
from accounts.models import Segment
from accounts.selectors import collectors
from cobranza.dashboard.metrics import Filters, currency_options, last_complete_month
from cobranza.models import Profile

UNASSIGNED = "none"
MAX_DAYS = 3 * 366  # a longer period says little about DSO or CEI, and costs more


def _user_label(user) -> str:
    return user.get_full_name() or user.get_username()


class DashboardFilterForm(forms.Form):
    """Always bound to the query string. A bad value is a field error shown on the page and
    that filter falls back to its default; the valid ones still apply."""

    currency = forms.ChoiceField(label=_("Moneda"), required=False)
    start = IsoDateField(label=_("Desde"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = IsoDateField(label=_("Hasta"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    segment = forms.ModelChoiceField(
        label=_("Segmento"), queryset=Segment.objects.all(), required=False, empty_label=_("Todos los segmentos")
    )
    collector = forms.ChoiceField(label=_("Gestor"), required=False)
    profile = forms.ChoiceField(label=_("Perfil de morosidad"), required=False)

    def __init__(self, data, *, today: dt.date | None = None):
        self.today = today or clock.localdate()
        self.currencies = currency_options()
        self.default_start, self.default_end = last_complete_month(self.today)
        # Empty fields show (and use) their defaults.
        data = data.copy()
        for name, default in (
            ("currency", self.currencies[0]),
            ("start", self.default_start.isoformat()),
            ("end", self.default_end.isoformat()),
        ):
            if not data.get(name):
                data[name] = default
        super().__init__(data)
        self.fields["currency"].choices = [(c, c) for c in self.currencies]
        self.fields["collector"].choices = [
            ("", _("Todos los gestores")),
            (UNASSIGNED, _("Sin gestor")),
            *((str(u.pk), _user_label(u)) for u in collectors()),
        ]
        self.fields["profile"].choices = [("", _("Todos los perfiles")), *Profile.choices]
        for name, field in self.fields.items():
            choice = isinstance(field, forms.ChoiceField)
            css = "form-select form-select-sm" if choice else "form-control form-control-sm"
            field.widget.attrs.setdefault("class", css)
            field.widget.attrs.setdefault("data-filter", name)
        self.fields["start"].widget.attrs["max"] = self.today.isoformat()
        self.fields["end"].widget.attrs["max"] = self.today.isoformat()
        self.is_valid()

    def clean(self):
        data = super().clean()
        start = data.get("start") or self.default_start
        end = data.get("end") or self.default_end
        if end > self.today:
            self.add_error("end", _("La fecha final no puede ser posterior a hoy."))
            end = self.default_end if self.default_end >= start else self.today
        if start > end:
            self.add_error("start", _("La fecha inicial debe ser anterior a la final."))
            start, end = self.default_start, self.default_end
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", _("Elija un periodo de tres años como máximo."))
            start, end = self.default_start, self.default_end
        data["start"], data["end"] = start, end
        return data

    def _value(self, name):
        return self.cleaned_data.get(name) if name not in self.errors else None

    def filters(self) -> Filters:
        segment = self._value("segment")
        collector = self._value("collector") or None
        if collector and collector != UNASSIGNED:
            collector = int(collector)
        return Filters(
            currency=self._value("currency") or self.currencies[0],
            start=self.cleaned_data["start"],
            end=self.cleaned_data["end"],
            segment=segment.pk if segment else None,
            collector=collector,
            profile=self._value("profile") or "",
        )
