"""Forms of the alerts pages. They parse input; writes go through ``cobranza.alerts.services``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import collector_options
from cobranza.alerts.selectors import PENDING
from cobranza.handoffs.forms import _style
from cobranza.models import AlertKind, AlertStatus


class AlertFilterForm(forms.Form):
    """The filters of the alerts list (GET). Invalid values are ignored, one by one."""

    kind = forms.ChoiceField(label=_("Tipo"), required=False)
    status = forms.ChoiceField(label=_("Estado"), required=False)
    collector = forms.ChoiceField(label=_("Gestor"), required=False)

    def __init__(self, *args, manager: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("Todos")), *AlertKind.choices]
        self.fields["status"].choices = [(PENDING, _("Sin cerrar")), *AlertStatus.choices, ("all", _("Todas"))]
        if manager:
            self.fields["collector"].choices = [("", _("Todos")), *collector_options()]
        else:
            del self.fields["collector"]
        _style(self)

    def filters(self) -> dict:
        """The valid filters as keyword arguments of ``selectors.alert_list``."""
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        collector = data.get("collector")
        return {
            "kind": data.get("kind") or "",
            "status": data.get("status") or PENDING,
            "collector": int(collector) if collector else None,
        }


class AlertUpdateForm(forms.Form):
    action = forms.ChoiceField(choices=[("acknowledge", _("Marcar como vista")), ("close", _("Cerrar"))])
    note = forms.CharField(label=_("Nota"), required=False, max_length=500)
