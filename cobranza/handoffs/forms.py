"""Forms of the hand-off pages. They parse and validate input; writes go through
``cobranza.handoffs.services``."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts.forms import DatalistInput, DateInput
from cobranza.models import HandOffKind, HandOffStatus


def _style(form: forms.Form) -> None:
    for field in form.fields.values():
        if isinstance(field.widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.RadioSelect):
            continue
        css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
        field.widget.attrs.setdefault("class", css)


class HandOffFilterForm(forms.Form):
    """The filters of the hand-off list (GET). Invalid values are ignored, one by one."""

    kind = forms.ChoiceField(label=_("Tipo"), required=False)
    status = forms.ChoiceField(label=_("Estado"), required=False)
    agency = forms.CharField(label=_("Agencia o despacho"), required=False, max_length=160)
    client = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, agencies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("Todos")), *HandOffKind.choices]
        self.fields["status"].choices = [("", _("Todos")), *HandOffStatus.choices]
        self.fields["agency"].widget = DatalistInput(agencies, attrs={"type": "search", "autocomplete": "off"})
        _style(self)

    def filters(self) -> dict:
        """The valid filters as keyword arguments of ``handoffs.handoff_list``."""
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        return {
            "kind": data.get("kind") or "",
            "status": data.get("status") or "",
            "agency": data.get("agency") or "",
            "client": data.get("client"),
        }


class InvoiceCheckboxes(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.number


class HandOffOpenForm(forms.Form):
    kind = forms.ChoiceField(label=_("Enviar a"), choices=HandOffKind.choices, widget=forms.RadioSelect)
    agency = forms.CharField(
        label=_("Agencia o despacho"),
        max_length=160,
        required=False,
        help_text=_("Nombre de la agencia de cobranza o del despacho de abogados."),
    )
    invoices = InvoiceCheckboxes(
        label=_("Facturas que se envían"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Si no marca ninguna, se envían las facturas vencidas."),
    )
    notes = forms.CharField(
        label=_("Notas para el expediente"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, invoices, agencies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"].queryset = invoices
        self.fields["agency"].widget = DatalistInput(agencies, attrs={"autocomplete": "off"})
        _style(self)

    def chosen_invoices(self):
        """The invoices marked, or None for the service's default (the overdue ones)."""
        chosen = list(self.cleaned_data.get("invoices") or [])
        return chosen or None


class HandOffUpdateForm(forms.Form):
    on = forms.DateField(label=_("Fecha"), widget=DateInput())
    note = forms.CharField(
        label=_("Nota"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("Qué informó la agencia o el despacho")}),
    )
    recovered = forms.DecimalField(
        label=_("Importe recuperado"),
        required=False,
        min_value=Decimal("0"),
        max_digits=14,
        decimal_places=2,
        help_text=_("Se registra como pago del cliente, aplicado a las facturas enviadas, la más antigua primero."),
    )
    reference = forms.CharField(label=_("Referencia de la transferencia"), required=False, max_length=80)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"on": clock.localdate()})
        super().__init__(*args, **kwargs)
        self.fields["recovered"].widget.attrs.update({"step": "0.01", "min": "0", "inputmode": "decimal"})
        self.fields["on"].widget.attrs["max"] = clock.localdate().isoformat()
        _style(self)

    def clean(self):
        data = super().clean()
        if not data.get("recovered"):
            data["recovered"] = Decimal("0")
        return data


class HandOffCloseForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Resultado"),
        choices=[(s.value, s.label) for s in (HandOffStatus.RECOVERED, HandOffStatus.CLOSED, HandOffStatus.RETURNED)],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=_("Motivo o comentario"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Obligatorio si se cierra sin recuperar o se devuelve a cobranza interna."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _style(self)
