"""Forms of the browser UI. They parse and validate input; writes go through ``services``.

Model-backed forms are plain ``forms.Form`` built with ``fields_for_model``: a ``ModelForm``
would copy the input onto the instance during validation, and ``client_update`` /
``contact_update`` compare the instance with the changes to decide what changed (and what
goes to the timeline).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Div, Fieldset, Layout, Row
from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.forms.models import fields_for_model, model_to_dict
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django_ratelimit.core import get_usage

from accounts import clock, numbers

from . import selectors
from .models import MONEY, Client, Contact, Interaction, Invoice, Payment, Segment
from .services import CLIENT_FIELDS, CONTACT_FIELDS, MANUAL_STATUSES, AllocationRequest
from .utils import money_str


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names (the rest on top)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class IsoDateField(forms.DateField):
    """A date typed in a query parameter or a filter: ISO 8601 only (morosos/formats), and an
    error that says so."""

    default_error_messages = {"invalid": _("Escriba la fecha como AAAA-MM-DD (por ejemplo, 2026-03-01).")}


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        # The browser's date picker needs ISO dates whatever the UI language.
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class DatalistInput(forms.TextInput):
    """A text input with suggestions; any valid value may still be typed."""

    def __init__(self, options, attrs=None):
        super().__init__(attrs=attrs)
        self.options = options

    def render(self, name, value, attrs=None, renderer=None):
        attrs = {**(attrs or {})}
        list_id = f"{attrs.get('id') or name}-options"
        attrs["list"] = list_id
        html = super().render(name, value, attrs, renderer)
        options = format_html_join("", '<option value="{}">', ((o,) for o in self.options))
        return format_html('{}<datalist id="{}">{}</datalist>', html, list_id, options)


class CollectorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.get_username()


# Time zones our users' debtors live in; anything in the IANA database is accepted.
COMMON_TIME_ZONES = [
    "America/Mexico_City",
    "America/Monterrey",
    "America/Cancun",
    "America/Chihuahua",
    "America/Hermosillo",
    "America/Mazatlan",
    "America/Tijuana",
    "America/Bogota",
    "America/Lima",
    "America/Santiago",
    "America/Argentina/Buenos_Aires",
    "America/Montevideo",
    "America/Caracas",
    "America/Guatemala",
    "America/Costa_Rica",
    "America/Panama",
    "America/Santo_Domingo",
    "America/La_Paz",
    "America/Asuncion",
    "America/Guayaquil",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/Madrid",
    "Atlantic/Canary",
]
COMMON_CURRENCIES = ["MXN", "USD", "EUR", "COP", "CLP", "PEN", "ARS", "UYU", "GTQ", "DOP", "CRC", "BOB", "PYG"]


def _helper(*layout) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True  # the template's <form> carries the token
    if layout:
        helper.layout = Layout(*layout)
    return helper


# --- client list ---------------------------------------------------------------------------


class ClientFilterForm(forms.Form):
    """The search and filters of the client list (GET). Invalid values are ignored."""

    q = forms.CharField(
        label=_("Buscar"),
        required=False,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": _("Nombre, RFC/NIF, factura, correo o teléfono"),
                "autocomplete": "off",
            }
        ),
    )
    # Plain choices read in one query: a ModelChoiceField's widget iterates its queryset with a
    # server-side cursor (DECLARE, FETCH, CLOSE: three round trips per page).
    segment = forms.TypedChoiceField(label=_("Segmento"), required=False, coerce=int, empty_value=None)
    collector = forms.ChoiceField(label=_("Gestor"), required=False)
    status = forms.ChoiceField(label=_("Estado"), required=False)
    bucket = forms.ChoiceField(label=_("Antigüedad"), required=False)
    sort = forms.ChoiceField(required=False, widget=forms.HiddenInput, choices=[(k, k) for k in selectors.SORTS])

    def __init__(self, *args, collector_options=None, **kwargs):
        """``collector_options`` (managers only): ``(id, name)`` pairs; None hides the filter."""
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = [("", _("Todos")), *Segment.objects.values_list("pk", "name")]
        self.fields["status"].choices = [("", _("Todos")), *Client.Status.choices]
        self.fields["bucket"].choices = [("", _("Toda"))] + [(b.code, b.label) for b in selectors.BUCKETS]
        if collector_options is not None:
            self.fields["collector"].choices = [
                ("", _("Todos")),
                ("none", _("Sin asignar")),
                *collector_options,
            ]
        else:
            del self.fields["collector"]
        for name, field in self.fields.items():
            if name != "sort":
                css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
                field.widget.attrs["class"] = css

    def filters(self) -> dict:
        """The valid filters as keyword arguments of ``selectors.client_list``."""
        # cleaned_data keeps the valid fields only: one bad parameter does not drop the others.
        self.is_valid()
        data = self.cleaned_data
        return {
            "q": data.get("q", ""),
            "segment": data.get("segment"),
            "collector": data.get("collector") or None,
            "status": data.get("status", ""),
            "bucket": data.get("bucket", ""),
            # A search lists the best matches first unless another order is chosen.
            "sort": data.get("sort") or (selectors.RELEVANCE if data.get("q", "").strip() else "name"),
        }


class BulkAssignForm(forms.Form):
    clients = forms.ModelMultipleChoiceField(
        queryset=Client.objects.none(),
        error_messages={"required": _("Seleccione al menos un cliente.")},
    )
    collector = forms.ChoiceField(label=_("Reasignar a"))

    def __init__(self, *args, clients_qs, collector_options, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clients"].queryset = clients_qs
        self.fields["collector"].choices = [("", _("Elija un gestor…")), ("none", _("Sin asignar")), *collector_options]

    def clean_collector(self):
        value = self.cleaned_data["collector"]
        if value == "none":
            return None
        return selectors.collectors().get(pk=value)


def collector_options() -> list[tuple[str, str]]:
    return [(str(u.pk), u.get_full_name() or u.get_username()) for u in selectors.collectors()]


# --- clients -------------------------------------------------------------------------------

CLIENT_FORM_FIELDS = list(CLIENT_FIELDS)


class ClientForm(forms.Form):
    """Client master data. ``initial`` comes from the instance when editing."""

    def __init__(self, *args, instance: Client | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault("initial", model_to_dict(instance, fields=CLIENT_FORM_FIELDS))
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields.update(
            fields_for_model(
                Client,
                fields=CLIENT_FORM_FIELDS,
                widgets={
                    "client_since": DateInput(),
                    "address": forms.Textarea(attrs={"rows": 2}),
                    "notes": forms.Textarea(attrs={"rows": 3}),
                    "time_zone": DatalistInput(COMMON_TIME_ZONES),
                    "currency": DatalistInput(COMMON_CURRENCIES, attrs={"maxlength": 3, "class": "text-uppercase"}),
                    "country": forms.TextInput(attrs={"maxlength": 2, "class": "text-uppercase"}),
                },
            )
        )
        self.fields["collector"] = CollectorChoiceField(
            label=_("Gestor asignado"),
            queryset=selectors.collectors(),
            required=False,
            empty_label=_("Sin asignar"),
        )
        self.fields["business_group"].empty_label = _("Ninguno")
        self.fields["segment"].empty_label = _("Elija un segmento…")
        self.fields["tax_id"].help_text = _("Se guarda en mayúsculas. Debe ser único.")
        self.fields["credit_limit"].help_text = _("En la moneda del cliente. 0 = sin crédito.")
        self.helper = _helper(
            Fieldset(
                _("Identificación"),
                Row(Column("legal_name", css_class="col-md-6"), Column("trade_name", css_class="col-md-6")),
                Row(
                    Column("tax_id", css_class="col-md-4"),
                    Column("kind", css_class="col-md-4"),
                    Column("client_since", css_class="col-md-4"),
                ),
                Row(Column("business_group", css_class="col-md-6"), Column("status", css_class="col-md-6")),
            ),
            Fieldset(
                _("Cobranza"),
                Row(Column("segment", css_class="col-md-6"), Column("collector", css_class="col-md-6")),
                Row(
                    Column("credit_limit", css_class="col-md-4"),
                    Column("currency", css_class="col-md-4"),
                    Column("payment_terms_days", css_class="col-md-4"),
                ),
            ),
            Fieldset(
                _("Ubicación e idioma"),
                Row(
                    Column("country", css_class="col-md-3"),
                    Column("time_zone", css_class="col-md-5"),
                    Column("language", css_class="col-md-4"),
                ),
                "address",
            ),
            "notes",
        )

    def clean_tax_id(self):
        tax_id = (self.cleaned_data.get("tax_id") or "").strip().upper()
        # The database constraint is the guarantee; this check only gives a clear message.
        if tax_id:
            others = Client.objects.filter(tax_id=tax_id)
            if self.instance is not None:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                raise ValidationError(_("Ya existe un cliente con este RFC / NIF."), code="unique")
        return tax_id

    def changes(self) -> dict:
        """The cleaned values, as keyword arguments of ``client_create`` / ``client_update``."""
        data = {name: self.cleaned_data[name] for name in CLIENT_FORM_FIELDS}
        for name in ("currency", "country", "tax_id"):
            data[name] = (data[name] or "").strip().upper()
        return data


# --- contacts ------------------------------------------------------------------------------


class ContactForm(forms.Form):
    def __init__(self, *args, instance: Contact | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault("initial", model_to_dict(instance, fields=CONTACT_FIELDS))
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields.update(
            fields_for_model(Contact, fields=CONTACT_FIELDS, widgets={"notes": forms.Textarea(attrs={"rows": 3})})
        )
        self.fields["role"].help_text = _("Los terceros que no son aval no se contactan para cobrar (CONDUSEF, RGPD).")
        self.helper = _helper(
            Row(Column("name", css_class="col-md-6"), Column("position", css_class="col-md-6")),
            Row(Column("role", css_class="col-md-6"), Column("preferred_channel", css_class="col-md-6")),
            Row(
                Column("email", css_class="col-md-4"),
                Column("phone", css_class="col-md-4"),
                Column("whatsapp", css_class="col-md-4"),
            ),
            Fieldset(
                _("Bajas por canal (el cliente pidió no ser contactado por…)"),
                Div(
                    "opt_out_email",
                    "opt_out_sms",
                    "opt_out_whatsapp",
                    "opt_out_phone",
                    "opt_out_letter",
                    css_class="opt-out-grid",
                ),
            ),
            "is_active",
            "notes",
        )

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in CONTACT_FIELDS}


# --- invoices ------------------------------------------------------------------------------


class InvoiceForm(forms.Form):
    number = forms.CharField(label=_("Folio"), max_length=40)
    issue_date = forms.DateField(label=_("Fecha de emisión"), widget=DateInput())
    due_date = forms.DateField(
        label=_("Fecha de vencimiento"),
        widget=DateInput(),
        required=False,
        help_text=_("Si la deja vacía: emisión + plazo de pago del cliente."),
    )
    amount = forms.DecimalField(label=_("Importe"), min_value=Decimal("0.01"), **MONEY)
    currency = forms.CharField(
        label=_("Moneda"),
        max_length=3,
        widget=DatalistInput(COMMON_CURRENCIES, attrs={"maxlength": 3, "class": "text-uppercase"}),
    )
    external_ref = forms.CharField(label=_("Referencia externa"), max_length=80, required=False)
    description = forms.CharField(label=_("Concepto"), max_length=255, required=False)

    def __init__(self, *args, client: Client, **kwargs):
        today = clock.localdate()
        kwargs.setdefault(
            "initial",
            {
                "issue_date": today,
                "due_date": today + dt.timedelta(days=client.payment_terms_days),
                "currency": client.currency,
            },
        )
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Row(Column("number", css_class="col-md-6"), Column("external_ref", css_class="col-md-6")),
            Row(Column("issue_date", css_class="col-md-6"), Column("due_date", css_class="col-md-6")),
            Row(Column("amount", css_class="col-md-8"), Column("currency", css_class="col-md-4")),
            "description",
        )

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()


ACTION_LABELS = {
    Invoice.Status.DISPUTED: _("Disputar (el cliente reclama; se suspende la cobranza)"),
    Invoice.Status.WRITTEN_OFF: _("Castigar (incobrable; sale de la cartera)"),
    Invoice.Status.CANCELLED: _("Cancelar (factura anulada)"),
}


class InvoiceStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Nuevo estado"), widget=forms.RadioSelect)
    reason = forms.CharField(
        label=_("Motivo"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Obligatorio: queda en el historial del cliente."),
        error_messages={"required": _("Indique el motivo.")},
    )

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(s.value, ACTION_LABELS[s]) for s in MANUAL_STATUSES if s != invoice.status]
        if invoice.status not in Invoice.PAYMENT_STATUSES:
            choices.append((Invoice.Status.OPEN.value, _("Reactivar (vuelve a su estado según los pagos)")))
        self.fields["status"].choices = choices
        self.helper = _helper("status", "reason")


# --- payments ------------------------------------------------------------------------------


class PaymentForm(forms.Form):
    AUTO = "auto"
    MANUAL = "manual"
    CREDIT = "credit"

    amount = forms.DecimalField(label=_("Importe recibido"), min_value=Decimal("0.01"), **MONEY)
    received_on = forms.DateField(label=_("Fecha de pago"), widget=DateInput())
    currency = forms.CharField(
        label=_("Moneda"),
        max_length=3,
        widget=DatalistInput(COMMON_CURRENCIES, attrs={"maxlength": 3, "class": "text-uppercase"}),
    )
    method = forms.ChoiceField(label=_("Forma de pago"), choices=Payment.Method.choices)
    reference = forms.CharField(
        label=_("Referencia"),
        max_length=80,
        required=False,
        help_text=_("Referencia bancaria o folio del comprobante. Evita registrar dos veces el mismo pago."),
    )
    notes = forms.CharField(label=_("Notas"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    mode = forms.ChoiceField(
        label=_("Aplicación del pago"),
        choices=[
            (AUTO, _("Automática (más antiguas primero)")),
            (MANUAL, _("Manual: indicar el importe por factura")),
            (CREDIT, _("No aplicar: dejar todo como saldo a favor")),
        ],
        initial=AUTO,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, client: Client, open_invoices, **kwargs):
        kwargs.setdefault("initial", {"received_on": clock.localdate(), "currency": client.currency, "mode": self.AUTO})
        super().__init__(*args, **kwargs)
        self.client = client
        self.open_invoices = list(open_invoices)
        for invoice in self.open_invoices:
            self.fields[self.allocation_field(invoice)] = forms.DecimalField(
                label=invoice.number,
                required=False,
                min_value=Decimal("0"),
                max_value=invoice.open_balance,
                widget=forms.NumberInput(
                    attrs={"step": "0.01", "min": "0", "max": str(invoice.open_balance), "placeholder": "0.00"}
                ),
                **MONEY,
            )

    @staticmethod
    def allocation_field(invoice) -> str:
        return f"alloc_{invoice.pk}"

    def allocation_rows(self):
        """(invoice, bound field) pairs for the manual allocation table."""
        return [(inv, self[self.allocation_field(inv)]) for inv in self.open_invoices]

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()

    def clean(self):
        data = super().clean()
        if data.get("mode") != self.MANUAL:
            return data
        requested = {
            inv.pk: data.get(self.allocation_field(inv)) or Decimal("0")
            for inv in self.open_invoices
            if self.allocation_field(inv) not in self.errors
        }
        total = sum(requested.values(), Decimal("0"))
        if total <= 0 and not any(self.allocation_field(inv) in self.errors for inv in self.open_invoices):
            raise ValidationError(
                _("Indique cuánto aplicar a al menos una factura, o elija la aplicación automática."),
                code="no_allocation",
            )
        amount = data.get("amount")
        if amount is not None and total > amount:
            raise ValidationError(
                _("Lo aplicado a facturas supera el importe del pago."),
                code="over_allocated",
            )
        return data

    def allocations(self):
        """``AllocationRequest``s for manual mode; ``None`` lets the service apply oldest first."""

        mode = self.cleaned_data.get("mode")
        if mode == self.CREDIT:
            return []
        if mode != self.MANUAL:
            return None
        return [
            AllocationRequest(invoice_id=inv.pk, amount=self.cleaned_data[self.allocation_field(inv)])
            for inv in self.open_invoices
            if self.cleaned_data.get(self.allocation_field(inv))
        ]


# --- interactions --------------------------------------------------------------------------


class InvoiceChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return _("%(number)s · vence el %(due)s · saldo %(balance)s") % {
            "number": obj.number,
            "due": date_format(obj.due_date, "SHORT_DATE_FORMAT"),
            "balance": money_str(obj.open_balance, obj.currency),
        }


class InteractionForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Tipo de gestión"),
        choices=[c for c in Interaction.Kind.choices if c[0] != Interaction.Kind.SYSTEM],
        initial=Interaction.Kind.CALL,
    )
    direction = forms.ChoiceField(
        label=_("Dirección"), choices=Interaction.Direction.choices, initial=Interaction.Direction.OUTBOUND
    )
    contact = forms.ModelChoiceField(
        label=_("Contacto"), queryset=Contact.objects.none(), required=False, empty_label=_("— Sin contacto —")
    )
    outcome = forms.ChoiceField(label=_("Resultado"), choices=Interaction.Outcome.choices, required=False)
    summary = forms.CharField(
        label=_("Resumen"),
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": _("Ej.: Promete pagar F-1024 el viernes por transferencia")}),
    )
    body = forms.CharField(label=_("Detalle"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    occurred_at = forms.DateTimeField(label=_("Fecha y hora"), widget=DateTimeInput())
    next_action_on = forms.DateField(
        label=_("Próxima acción"),
        required=False,
        widget=DateInput(),
        help_text=_("Fecha de seguimiento: aparecerá en Inicio cuando llegue."),
    )
    invoices = InvoiceChoiceField(
        label=_("Facturas relacionadas"),
        queryset=Invoice.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, client: Client, contacts, invoices, **kwargs):
        kwargs.setdefault("initial", {"occurred_at": timezone.localtime().replace(second=0, microsecond=0)})
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = contacts
        self.fields["invoices"].queryset = invoices
        self.helper = _helper(
            Row(
                Column("kind", css_class="col-md-4"),
                Column("direction", css_class="col-md-4"),
                Column("occurred_at", css_class="col-md-4"),
            ),
            Row(Column("contact", css_class="col-md-6"), Column("outcome", css_class="col-md-6")),
            "summary",
            "body",
            Row(Column("next_action_on", css_class="col-md-6")),
            "invoices",
        )


# --- payment webhook (accounts.payment_webhook) ---------------------------------------------


class PaymentWebhookForm(forms.Form):
    """The JSON body of a payment notification (``invoices`` is checked by the view: a form
    field cannot hold a list)."""

    reference = forms.CharField(max_length=80)
    client_id = forms.IntegerField(required=False, min_value=1)
    tax_id = forms.CharField(required=False, max_length=32)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    currency = forms.CharField(
        min_length=3,
        max_length=3,
        validators=[RegexValidator(r"^[A-Za-z]{3}$", _("Código ISO 4217 de tres letras."))],
    )
    received_on = forms.DateField(input_formats=["%Y-%m-%d"])
    method = forms.ChoiceField(required=False, choices=Payment.Method.choices)

    def clean_currency(self):
        return self.cleaned_data["currency"].upper()

    def clean(self):
        data = super().clean()
        if not data.get("client_id") and not (data.get("tax_id") or "").strip():
            self.add_error("client_id", _("Indique client_id o tax_id."))
        received = data.get("received_on")
        if received is not None and received > dt.date.today() + dt.timedelta(days=1):
            self.add_error("received_on", _("La fecha de pago no puede estar en el futuro."))
        return data


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change, with wrong old passwords limited per user
    (``PASSWORD_CHANGE_RATE``, counted by django-ratelimit in the shared cache): a borrowed or
    stolen session must not be a way to guess the password at full speed, out of the reach of
    the login lock-out."""

    def __init__(self, user, *args, request, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def _wrong_passwords(self, *, count: bool) -> dict:
        return get_usage(
            self.request, group="password-change", key="user", rate=settings.PASSWORD_CHANGE_RATE, increment=count
        )

    def clean_old_password(self):
        usage = self._wrong_passwords(count=False)
        if usage["count"] >= usage["limit"]:
            raise ValidationError(
                _("Demasiados intentos con una contraseña actual incorrecta. Espere unos minutos."),
                code="throttled",
            )
        try:
            return super().clean_old_password()
        except ValidationError:
            self._wrong_passwords(count=True)
            raise


# --- the user's own preferences ----------------------------------------------------------------


class PreferenceForm(forms.Form):
    """The number format a staff member reads (docs/domain.md#number-formats)."""

    number_format = forms.ChoiceField(label=_("Formato de números"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        business = numbers.business_code()
        self.fields["number_format"].choices = [
            ("", _("Como la empresa (%(rule)s)") % {"rule": business}),
            *numbers.CHOICES,
        ]
        self.fields["number_format"].help_text = _("Ejemplo con el formato elegido: %(example)s") % {
            "example": numbers.format_money(1234567.891, settings.DEFAULT_CURRENCY)
        }
        self.helper = _helper()
