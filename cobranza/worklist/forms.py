"""Forms of the worklist and the calendar: whose day to show, which week, a task's note."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts import clock
from cobranza.worklist.selectors import ALL, MANAGERS, UNASSIGNED, Scope
from cobranza.worklist.services import NOTE_MAX_LENGTH

# URL values of the manager's choice (``?collector=``, named and valued like the dashboard's and
# the client list's filter: a collector's id, "none" for the clients without one).
SCOPE_VALUES = {"todos": ALL, "none": UNASSIGNED, "gerencia": MANAGERS}
DEFAULT_SCOPE = "todos"
# The calendar moves by weeks and months: keep far from the ends of Python's dates.
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


class ScopeForm(forms.Form):
    """Whose day to see. A manager chooses everybody's, one collector's, the clients without
    a collector, or the managers' own queue; a collector (``collectors=None``) always sees
    their own and gets no choice. Always bound to the query string: a bad value is a field
    error shown on the page, and the valid fields still apply."""

    collector = forms.ChoiceField(label=_("Cartera de"), required=False)

    def __init__(self, data, *, user, collectors=None):
        super().__init__(data)
        self.user = user
        self.collectors = {str(u.pk): u for u in collectors or []}
        if collectors is None:
            del self.fields["collector"]
        else:
            self.fields["collector"].choices = [
                (DEFAULT_SCOPE, _("Todos los gestores")),
                ("gerencia", _("Cola de los gerentes")),
                ("none", _("Clientes sin gestor")),
                *((pk, u.get_full_name() or u.get_username()) for pk, u in self.collectors.items()),
            ]
            self.fields["collector"].widget.attrs.update({"class": "form-select"})
        self.is_valid()

    @property
    def value(self) -> str:
        if "collector" not in self.fields:
            return ""
        return self.cleaned_data.get("collector") or DEFAULT_SCOPE

    def scope(self) -> Scope:
        if "collector" not in self.fields:
            return Scope.of_collector(self.user)
        value = self.value
        if value in SCOPE_VALUES:
            return Scope(SCOPE_VALUES[value])
        return Scope.of_collector(self.collectors[value])

    @property
    def chosen_label(self) -> str:
        if "collector" not in self.fields:
            return ""
        return dict(self.fields["collector"].choices).get(self.value, "")


class CalendarForm(ScopeForm):
    semana = forms.DateField(
        label=_("Semana del"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}, format="%Y-%m-%d"),
    )

    def clean_semana(self):
        value = self.cleaned_data.get("semana")
        if value and not (FIRST_DAY <= value <= LAST_DAY):
            raise forms.ValidationError(
                _("Elija una fecha entre %(first)s y %(last)s."),
                params={"first": FIRST_DAY.year, "last": LAST_DAY.year},
            )
        return value

    def day(self) -> dt.date:
        return self.cleaned_data.get("semana") or clock.localdate()


class TaskDoneForm(forms.Form):
    note = forms.CharField(
        label=_("Nota (opcional)"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )
