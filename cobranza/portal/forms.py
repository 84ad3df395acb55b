"""Forms of the debtor's self-service page and of the payment webhook."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import DateInput
from accounts.models import Client, Invoice
from accounts.rules import open_invoice_q
from cobranza.models import DisputeReason
from cobranza.portal.selectors import client_today, open_currencies

MAX_PLAN_INSTALLMENTS = 24


class PortalForm(forms.Form):
    """Bootstrap classes on every visible widget (the portal has no staff form helpers)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            css = "form-select" if isinstance(f.widget, forms.Select) else "form-control"
            f.widget.attrs.setdefault("class", css)


class PromiseForm(PortalForm):
    pay_on = forms.DateField(label=_("Fecha en que pagará"), widget=DateInput())
    amount = forms.DecimalField(label=_("Importe"), max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    currency = forms.ChoiceField(label=_("Moneda"), required=False)

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client
        _currency_field(self, client)

    def clean_currency(self):
        # Blank (a single currency, or a hand-made POST): the client's usual one.
        return self.cleaned_data["currency"] or self.fields["currency"].initial

    def clean_pay_on(self):
        day = self.cleaned_data["pay_on"]
        if day < client_today(self.client):
            raise forms.ValidationError(_("La fecha no puede estar en el pasado."))
        return day


class PlanRequestForm(PortalForm):
    installments = forms.IntegerField(
        label=_("Número de pagos que propone"), min_value=2, max_value=MAX_PLAN_INSTALLMENTS, initial=3
    )
    first_on = forms.DateField(label=_("Fecha del primer pago"), widget=DateInput())
    spacing = forms.ChoiceField(
        label=_("Cada cuánto pagaría"),
        choices=[("monthly", _("Cada mes")), ("biweekly", _("Cada 14 días")), ("weekly", _("Cada semana"))],
        initial="monthly",
    )
    currency = forms.ChoiceField(label=_("Moneda"), required=False)
    comment = forms.CharField(
        label=_("Comentario"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Por ejemplo: por qué necesita el plan o cuándo podría pagar más."),
    )

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client
        _currency_field(self, client)

    def clean_currency(self):
        return self.cleaned_data["currency"] or self.fields["currency"].initial

    def clean_first_on(self):
        day = self.cleaned_data["first_on"]
        if day < client_today(self.client):
            raise forms.ValidationError(_("La fecha no puede estar en el pasado."))
        return day


def _currency_field(form: forms.Form, client: Client) -> None:
    """The currencies the client owes in; hidden when there is only one."""
    currencies = open_currencies(client) or [client.currency]
    field = form.fields["currency"]
    field.choices = [(c, c) for c in currencies]
    field.initial = client.currency if client.currency in currencies else currencies[0]
    if len(currencies) == 1:
        field.widget = forms.HiddenInput()


class ProblemForm(PortalForm):
    invoice = forms.ModelChoiceField(label=_("Factura"), queryset=Invoice.objects.none())
    reason = forms.ChoiceField(label=_("Motivo"), choices=DisputeReason.choices)
    description = forms.CharField(
        label=_("Descripción del problema"), max_length=4000, widget=forms.Textarea(attrs={"rows": 5})
    )

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this client's invoices are choices: another client's id is an invalid choice.
        self.fields["invoice"].queryset = client.invoices.filter(open_invoice_q()).order_by("due_date", "number")
        self.fields["invoice"].label_from_instance = lambda inv: inv.number


# --- staff ---------------------------------------------------------------------------------


class ProposalRejectForm(forms.Form):
    note = forms.CharField(
        label=_("Mensaje para el cliente (opcional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control form-control-sm"}),
    )


class LinkSendForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("Enviar por"),
        choices=[("email", _("Correo electrónico")), ("sms", _("SMS")), ("whatsapp", _("WhatsApp"))],
    )
    # The form's own token: a second submission of the same form is the same send.
    key = forms.CharField(max_length=60, widget=forms.HiddenInput())
    reissue = forms.BooleanField(required=False, widget=forms.HiddenInput())
