"""Forms of the collector's workspace: "Registrar gestión" (one quick form for a call, visit,
email or WhatsApp, with the promise, plan or dispute it produced), promises, plans,
extensions, disputes and their resolution.

They parse and validate input; writes go through ``cobranza.workspace.services`` and
``accounts.services``. A service's ``ValidationError`` is shown next to the field it names
(``add_service_errors``), or on top of the section it belongs to.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms import formset_factory
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from accounts.forms import DateInput
from accounts.models import Contact, ContactRole, Interaction, Invoice, NonPaymentReason
from accounts.utils import money_str
from cobranza.models import DisputeReason, DisputeResolution
from cobranza.profiles.jobs import months_ago

CENT = Decimal("0.01")
MAX_PLAN_INSTALLMENTS = 60
PROMISE_ROWS = 4  # rows the promise form offers (more than one date is the exception)


def _style(form: forms.Form) -> None:
    for bound in form.fields.values():
        widget = bound.widget
        if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.RadioSelect):
            continue
        css = "form-select" if isinstance(widget, forms.Select) else "form-control"
        widget.attrs.setdefault("class", css)


class StyledForm(forms.Form):
    """Bootstrap classes on the widgets, ``is-invalid`` on those with errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _style(self)

    def add_error(self, field, error):
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                if "is-invalid" not in attrs.get("class", ""):
                    attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()


def _not_past(value: dt.date | None, today: dt.date) -> None:
    if value is not None and value < today:
        raise ValidationError(_("La fecha no puede estar en el pasado."))


# --- the plan generator ----------------------------------------------------------------------


class Frequency(models.TextChoices):
    MONTHLY = "monthly", _("Mensual")
    DAYS = "days", _("Cada N días")


def plan_schedule(
    *, total: Decimal, count: int, first_on: dt.date, frequency: str, every_days: int = 30
) -> list[tuple[dt.date, Decimal]]:
    """Split ``total`` into ``count`` installments: equal amounts rounded down to the cent,
    the leftover cents on the last one; the first on ``first_on``, then every ``every_days``
    days or on the same day of each following month (the month's last day when it is shorter).

    E.g. 1,000 in 3 monthly installments from 31 January: 333.33 on 31 January, 333.33 on
    28 February, 333.34 on 31 March.
    """
    total = Decimal(total).quantize(CENT)
    base = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    amounts = [base] * (count - 1) + [total - base * (count - 1)]
    if frequency == Frequency.MONTHLY:
        dates = [months_ago(first_on, -n) for n in range(count)]
    else:
        dates = [first_on + dt.timedelta(days=every_days * n) for n in range(count)]
    return list(zip(dates, amounts, strict=True))


# --- fields ------------------------------------------------------------------------------------


class InvoicesField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        text = _("%(number)s · vence el %(due)s · saldo %(balance)s") % {
            "number": obj.number,
            "due": date_format(obj.due_date, "SHORT_DATE_FORMAT"),
            "balance": money_str(obj.open_balance, obj.currency),
        }
        if getattr(obj, "committed", False):
            text += " · " + str(_("ya tiene un compromiso vigente"))
        return text


class ContactField(forms.ModelChoiceField):
    """The client's contacts; a guarantor is marked "aval" (docs/domain.md#contacts-and-guarantors)."""

    def label_from_instance(self, obj):
        if obj.role == ContactRole.GUARANTOR:
            return _("%(name)s (aval)") % {"name": obj.name}
        detail = obj.position or obj.get_role_display()
        return f"{obj.name} · {detail}"


# --- sections: promise dates, plan, extension, dispute ------------------------------------------


class PromiseRowForm(StyledForm):
    due_on = forms.DateField(label=_("Fecha"), required=False, widget=DateInput())
    amount = forms.DecimalField(label=_("Importe"), required=False, max_digits=14, decimal_places=2, min_value=CENT)

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["due_on"].widget.attrs["min"] = today.isoformat()
        self.fields["amount"].widget.attrs.update({"step": "0.01", "inputmode": "decimal"})

    def clean(self):
        data = super().clean()
        due_on, amount = data.get("due_on"), data.get("amount")
        if due_on is not None:
            try:
                _not_past(due_on, self.today)
            except ValidationError as exc:
                self.add_error("due_on", exc)
        if due_on is None and amount is not None and "due_on" not in self.errors:
            self.add_error("due_on", _("Indique la fecha de este importe."))
        if amount is None and due_on is not None and "amount" not in self.errors:
            self.add_error("amount", _("Indique el importe de esta fecha."))
        return data


class BasePromiseRows(forms.BaseFormSet):
    """One or several dates with their amounts; empty rows are ignored."""

    def clean(self):
        if any(self.errors):
            return
        if not self.rows():
            raise ValidationError(_("Indique al menos una fecha con su importe."))

    def rows(self) -> list[tuple[dt.date, Decimal]]:
        found = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("due_on") and data.get("amount"):
                found.append((data["due_on"], data["amount"]))
        return sorted(found)

    def add_section_error(self, errors) -> None:
        self._non_form_errors = self.error_class(
            [*self.non_form_errors(), *errors], error_class="nonform", renderer=self.renderer
        )


PromiseRows = formset_factory(
    PromiseRowForm, formset=BasePromiseRows, extra=PROMISE_ROWS, max_num=PROMISE_ROWS, absolute_max=PROMISE_ROWS
)


def promise_rows(data=None, *, today: dt.date, amount: Decimal | None = None):
    initial = [{"amount": amount}] if amount else None
    return PromiseRows(data, prefix="promise", form_kwargs={"today": today}, initial=initial)


class SectionErrors:
    """Errors of a whole section (the schedule, the dates), shown on top of it."""

    section_errors: tuple = ()

    def add_section_error(self, errors) -> None:
        self.section_errors = [*getattr(self, "section_errors", []), *errors]


class PlanForm(SectionErrors, StyledForm):
    """A payment plan (*fraccionamiento*) built by a rule: how many installments, from when,
    how often; the amount split evenly with the cents on the last one."""

    count = forms.IntegerField(label=_("Número de cuotas"), min_value=2, max_value=MAX_PLAN_INSTALLMENTS, initial=3)
    first_on = forms.DateField(label=_("Primera cuota"), widget=DateInput())
    frequency = forms.ChoiceField(
        label=_("Periodicidad"), choices=Frequency.choices, initial=Frequency.MONTHLY, widget=forms.RadioSelect
    )
    every_days = forms.IntegerField(
        label=_("Cada cuántos días"), min_value=1, max_value=180, initial=15, required=False
    )
    total = forms.DecimalField(
        label=_("Importe a fraccionar"),
        required=False,
        max_digits=14,
        decimal_places=2,
        min_value=CENT,
        help_text=_("Vacío: todo lo que deben las facturas elegidas."),
    )

    def __init__(self, *args, today: dt.date, **kwargs):
        kwargs.setdefault("prefix", "plan")
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["first_on"].widget.attrs["min"] = today.isoformat()
        self.fields["total"].widget.attrs.update({"step": "0.01", "inputmode": "decimal"})

    def clean_first_on(self):
        value = self.cleaned_data["first_on"]
        _not_past(value, self.today)
        return value

    def clean(self):
        data = super().clean()
        if data.get("frequency") == Frequency.DAYS and not data.get("every_days") and "every_days" not in self.errors:
            self.add_error("every_days", _("Indique cada cuántos días."))
        return data

    def schedule(self, *, owed: Decimal) -> list[tuple[dt.date, Decimal]] | None:
        """The installments for the chosen invoices (``owed``: what they owe), or None with
        the errors on the form."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        total = data.get("total") or owed
        if total <= 0:
            self.add_section_error([_("Elija las facturas del plan: no hay importe que fraccionar.")])
            return None
        if total < data["count"] * CENT:
            self.add_error("count", _("Demasiadas cuotas para el importe: cada una debe ser de al menos 0.01."))
            return None
        return plan_schedule(
            total=total,
            count=data["count"],
            first_on=data["first_on"],
            frequency=data["frequency"],
            every_days=data.get("every_days") or 30,
        )


class ExtensionForm(SectionErrors, StyledForm):
    """A term extension (*prórroga*): one new date for the chosen invoices, for all they owe."""

    new_date = forms.DateField(label=_("Nueva fecha de pago"), widget=DateInput())

    def __init__(self, *args, today: dt.date, **kwargs):
        kwargs.setdefault("prefix", "ext")
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["new_date"].widget.attrs["min"] = today.isoformat()

    def clean_new_date(self):
        value = self.cleaned_data["new_date"]
        _not_past(value, self.today)
        return value


class DisputeForm(SectionErrors, StyledForm):
    reason = forms.ChoiceField(label=_("Motivo de la disputa"), choices=[("", "—"), *DisputeReason.choices])
    description = forms.CharField(
        label=_("Reclamación del cliente"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "dispute")
        super().__init__(*args, **kwargs)


# --- the quick outcome form ------------------------------------------------------------------


class Channel(models.TextChoices):
    CALL = Interaction.Kind.CALL.value, _("Llamada")
    VISIT = Interaction.Kind.VISIT.value, _("Visita")
    EMAIL = Interaction.Kind.EMAIL.value, _("Correo")
    WHATSAPP = Interaction.Kind.WHATSAPP.value, _("WhatsApp")


class Reached(models.TextChoices):
    REACHED = Interaction.Outcome.REACHED.value, _("Sí, hablamos")
    NO_ANSWER = Interaction.Outcome.NO_ANSWER.value, _("No contesta")
    LEFT_MESSAGE = Interaction.Outcome.LEFT_MESSAGE.value, _("Dejé recado")


class Result(models.TextChoices):
    NONE = "", _("Sin acuerdo")
    PROMISE = Interaction.Outcome.PROMISE.value, _("Promesa de pago")
    PLAN_REQUEST = Interaction.Outcome.PLAN_REQUEST.value, _("Plan de pagos")
    DISPUTE = Interaction.Outcome.DISPUTE.value, _("Reclamación / disputa")
    REFUSED = Interaction.Outcome.REFUSED.value, _("Se niega a pagar")
    WRONG_CONTACT = Interaction.Outcome.WRONG_CONTACT.value, _("Contacto equivocado")
    PAID = Interaction.Outcome.PAID.value, _("Dice que ya pagó")


# Results that record something besides the interaction: the section of the form they use.
RESULT_SECTIONS = {Result.PROMISE: "promise", Result.PLAN_REQUEST: "plan", Result.DISPUTE: "dispute"}


class OutcomeForm(StyledForm):
    channel = forms.ChoiceField(
        label=_("Canal"), choices=Channel.choices, initial=Channel.CALL, widget=forms.RadioSelect
    )
    direction = forms.ChoiceField(
        label=_("Quién inició"),
        choices=[
            (Interaction.Direction.OUTBOUND, _("Nosotros")),
            (Interaction.Direction.INBOUND, _("El cliente")),
        ],
        initial=Interaction.Direction.OUTBOUND,
        widget=forms.RadioSelect,
    )
    reached = forms.ChoiceField(
        label=_("¿Se logró el contacto?"), choices=Reached.choices, initial=Reached.REACHED, widget=forms.RadioSelect
    )
    contact = ContactField(
        label=_("Con quién"), queryset=Contact.objects.none(), required=False, empty_label=_("— Sin contacto —")
    )
    nonpayment_reason = forms.ChoiceField(
        label=_("Motivo del impago"), choices=NonPaymentReason.choices, required=False
    )
    result = forms.ChoiceField(label=_("Resultado"), choices=Result.choices, required=False, widget=forms.RadioSelect)
    invoices = InvoicesField(
        label=_("Facturas"),
        queryset=Invoice.objects.none(),
        required=False,
        help_text=_("Sin elegir ninguna, una promesa o un plan toman todas las pendientes en la moneda del cliente."),
    )
    summary = forms.CharField(
        label=_("Resumen"),
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Vacío: se resume con el canal y el resultado")}),
    )
    body = forms.CharField(label=_("Notas"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    next_action_on = forms.DateField(
        label=_("Próxima acción"),
        required=False,
        widget=DateInput(),
        help_text=_("Fecha de seguimiento: aparecerá en su cartera del día."),
    )
    outside_hours_reason = forms.CharField(
        label=_("Motivo para llamar fuera del horario permitido"),
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Por ejemplo: el cliente pidió que le llamara a esta hora")}),
    )

    def __init__(self, *args, contacts, invoices, today: dt.date, call_blocked: str = "", **kwargs):
        """``call_blocked``: why the contact rules would not allow a call to this client now
        (docs/domain.md#call-windows); an outbound call logged anyway needs a reason."""
        super().__init__(*args, **kwargs)
        self.today = today
        self.call_blocked = call_blocked
        if not call_blocked:
            del self.fields["outside_hours_reason"]
        self.fields["contact"].queryset = contacts
        self.fields["invoices"].queryset = invoices
        self.fields["next_action_on"].widget.attrs["min"] = today.isoformat()
        # "Sí, hablamos" means someone answered: the client's primary contact unless another is
        # chosen (the first of ``contacts``: active, then primary, billing…). workspace.js
        # selects it again when the collector switches back to "Sí, hablamos".
        primary = next(iter(contacts[:1]), None)
        if primary is not None:
            self.fields["contact"].widget.attrs["data-ws-primary"] = str(primary.pk)
            if not self.is_bound and self.initial.get("reached", Reached.REACHED) == Reached.REACHED:
                self.initial.setdefault("contact", primary.pk)

    def clean_next_action_on(self):
        value = self.cleaned_data.get("next_action_on")
        _not_past(value, self.today)
        return value

    def clean(self):
        data = super().clean()
        calling_out = data.get("channel") == Channel.CALL and data.get("direction") == Interaction.Direction.OUTBOUND
        if self.call_blocked and calling_out and not (data.get("outside_hours_reason") or "").strip():
            self.add_error(
                "outside_hours_reason",
                _("Ahora no se permite llamar a este cliente (%(why)s): indique por qué llamó.")
                % {"why": self.call_blocked},
            )
        # Without a conversation there is no agreement: the result part is ignored.
        if data.get("reached") and data["reached"] != Reached.REACHED:
            data["result"] = ""
        return data

    @property
    def section(self) -> str:
        """The section the chosen result uses ("" for none), read from the raw input so the
        right part of the form shows even when the rest is invalid."""
        if self.is_bound:
            if self.data.get(self.add_prefix("reached"), Reached.REACHED) != Reached.REACHED:
                return ""
            return RESULT_SECTIONS.get(self.data.get(self.add_prefix("result"), ""), "")
        return ""

    def body_text(self) -> str:
        """The notes, with the reason for a call outside the allowed hours when there is one."""
        body = self.cleaned_data.get("body", "")
        reason = (self.cleaned_data.get("outside_hours_reason") or "").strip()
        if not reason:
            return body
        note = _("Llamada fuera del horario permitido (%(why)s). Motivo: %(reason)s") % {
            "why": self.call_blocked,
            "reason": reason,
        }
        return f"{note}\n\n{body}".strip()

    def outcome(self) -> str:
        data = self.cleaned_data
        if data["reached"] != Reached.REACHED:
            return data["reached"]
        return data.get("result") or Interaction.Outcome.REACHED

    def summary_text(self) -> str:
        data = self.cleaned_data
        if data.get("summary", "").strip():
            return data["summary"].strip()
        result = data.get("result")
        outcome = Result(result).label if result else Interaction.Outcome(self.outcome()).label
        channel = Channel(data["channel"]).label
        if data.get("contact"):
            return str(_("%(channel)s con %(name)s: %(outcome)s")) % {
                "channel": channel,
                "name": data["contact"].name,
                "outcome": outcome,
            }
        return f"{channel}: {outcome}"


class OutcomeForms:
    """The quick form and the sections it discloses: promise dates, a plan, a dispute."""

    def __init__(
        self,
        data=None,
        *,
        contacts,
        invoices,
        today: dt.date,
        default_total: Decimal,
        initial_invoices,
        call_blocked: str = "",
    ):
        self.main = OutcomeForm(
            data,
            contacts=contacts,
            invoices=invoices,
            today=today,
            initial={"invoices": initial_invoices},
            call_blocked=call_blocked,
        )
        self.promise = promise_rows(data, today=today, amount=default_total)
        self.plan = PlanForm(data, today=today, initial={"total": None})
        self.dispute = DisputeForm(data)
        self.today = today

    @property
    def section(self) -> str:
        return self.main.section

    def is_valid(self) -> bool:
        # Every part the user sees is validated, so all its errors show at once.
        valid = self.main.is_valid()
        section = self.section
        if section == "promise":
            valid = self.promise.is_valid() and valid
        elif section == "plan":
            valid = self.plan.is_valid() and valid
        elif section == "dispute":
            valid = self.dispute.is_valid() and valid
        return valid

    def add_service_errors(self, exc: ValidationError, section: str) -> None:
        add_service_errors(
            exc,
            main=self.main,
            section={"promise": self.promise, "plan": self.plan, "dispute": self.dispute}.get(section),
        )


def add_service_errors(exc: ValidationError, *, main: forms.Form, section=None) -> None:
    """Put a service's errors next to the fields they name: the section's own fields first
    (a dispute's reason), then the main form's (invoices, contact); the rest (a schedule's
    dates and amounts, a commitment's kind) on top of the section, or of the form."""
    if not hasattr(exc, "error_dict"):
        main.add_error(None, exc.messages)
        return
    for name, errors in exc.message_dict.items():
        if section is not None and isinstance(section, forms.Form) and name in section.fields:
            section.add_error(name, errors)
        elif name in main.fields:
            main.add_error(name, errors)
        elif section is not None:
            section.add_section_error(errors)
        else:
            main.add_error(None, errors)


# --- the commitment, dispute and resolution pages -----------------------------------------------


class CommitmentForm(StyledForm):
    """The parts every commitment shares: its invoices, who agreed it, notes."""

    invoices = InvoicesField(
        label=_("Facturas"),
        queryset=Invoice.objects.none(),
        required=False,
        help_text=_("Sin elegir ninguna: todas las pendientes en la moneda del cliente."),
    )
    contact = ContactField(
        label=_("Acordado con"), queryset=Contact.objects.none(), required=False, empty_label=_("— Sin contacto —")
    )
    notes = forms.CharField(label=_("Notas"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, kind: str, contacts, invoices, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["contact"].queryset = contacts
        self.fields["invoices"].queryset = invoices

    def chosen_or_none(self):
        """The chosen invoices, or None: the service then takes every open one in the client's currency."""
        chosen = list(self.cleaned_data.get("invoices") or [])
        return chosen or None


class DisputeOpenForm(StyledForm):
    invoices = InvoicesField(label=_("Facturas en disputa"), queryset=Invoice.objects.none(), required=False)

    def __init__(self, *args, invoices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"].queryset = invoices


class DisputeResolveForm(StyledForm):
    resolution = forms.ChoiceField(
        label=_("Resolución"), choices=DisputeResolution.choices, widget=forms.RadioSelect, required=False
    )
    amount = forms.DecimalField(
        label=_("Importe acreditado"),
        required=False,
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text=_("Solo con nota de crédito o ajuste: salda esa parte de las facturas."),
    )
    notes = forms.CharField(label=_("Notas de la resolución"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].widget.attrs.update({"step": "0.01", "inputmode": "decimal"})


class CommitmentCancelForm(StyledForm):
    reason = forms.CharField(label=_("Motivo de la cancelación"), required=False, max_length=1000)
