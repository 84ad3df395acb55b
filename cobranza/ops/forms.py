"""Forms of the dunning operations pages. They parse and validate input; writes go through
``cobranza.ops.services``."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from accounts import clock
from accounts.forms import DateInput
from cobranza.models import Notice, NoticeStatus, Policy, StepChannel
from cobranza.ops import selectors


def _style(form: forms.Form) -> None:
    for field in form.fields.values():
        if isinstance(field.widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.MultipleHiddenInput):
            continue
        css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
        field.widget.attrs.setdefault("class", css)


def _not_past(value: dt.date | None) -> dt.date | None:
    if value is not None and value < clock.localdate():
        raise ValidationError(_("La fecha ya pasó: elija hoy o una fecha futura."), code="past")
    return value


# --- lo que sale -----------------------------------------------------------------------------


class OutboxForm(forms.Form):
    """The day to look at: today up to 60 days ahead (default tomorrow)."""

    day = forms.DateField(label=_("Día"), required=False, widget=DateInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = clock.localdate()
        self.first = self.today
        self.last = self.today + dt.timedelta(days=selectors.OUTBOX_MAX_DAYS_AHEAD)
        self.fields["day"].initial = self.default()
        widget = self.fields["day"].widget
        widget.attrs.update({"min": self.first.isoformat(), "max": self.last.isoformat(), "class": "form-control"})

    def clean_day(self):
        day = self.cleaned_data.get("day") or self.default()
        if not self.first <= day <= self.last:
            raise ValidationError(
                _("Elija un día entre hoy y el %(last)s.") % {"last": date_format(self.last, "SHORT_DATE_FORMAT")},
                code="range",
            )
        return day

    def default(self) -> dt.date:
        return self.today + dt.timedelta(days=1)

    def chosen_day(self) -> dt.date:
        """The valid day asked for, or tomorrow."""
        if self.is_valid():
            return self.cleaned_data["day"]
        return self.default()


# --- avisos ----------------------------------------------------------------------------------


def status_choices():
    return [
        ("", _("Todos")),
        *NoticeStatus.choices,
        (selectors.INTERRUPTED, _("Envío interrumpido")),
    ]


class NoticeFilterForm(forms.Form):
    """The filters of the notice list (GET). Invalid values are ignored, one by one."""

    q = forms.CharField(
        label=_("Cliente"),
        required=False,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Nombre, RFC/NIF o destinatario"), "autocomplete": "off"}
        ),
    )
    status = forms.ChoiceField(label=_("Estado"), required=False)
    channel = forms.ChoiceField(label=_("Canal"), required=False)
    policy = forms.ModelChoiceField(
        label=_("Política"), queryset=Policy.objects.order_by("name"), required=False, empty_label=_("Todas")
    )
    date_from = forms.DateField(label=_("Planeado desde"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("Planeado hasta"), required=False, widget=DateInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = status_choices()
        self.fields["channel"].choices = [("", _("Todos")), *StepChannel.choices]
        _style(self)

    def filters(self) -> dict:
        """The valid filters as keyword arguments of ``selectors.notice_list``."""
        self.is_valid()
        data = self.cleaned_data
        policy = data.get("policy")
        return {
            "q": data.get("q", ""),
            "status": data.get("status", ""),
            "channel": data.get("channel", ""),
            "policy": policy.pk if policy else None,
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }


# --- aprobaciones ----------------------------------------------------------------------------


class ApprovalDecisionForm(forms.Form):
    APPROVE = "approve"
    CANCEL = "cancel"

    action = forms.ChoiceField(choices=[(APPROVE, _("Aprobar")), (CANCEL, _("Cancelar"))])
    notices = forms.ModelMultipleChoiceField(
        queryset=Notice.objects.none(),
        error_messages={
            "required": _("Seleccione al menos un aviso."),
            "invalid_choice": _("Alguno de los avisos elegidos ya no está pendiente de aprobación."),
            "invalid_pk_value": _("Aviso no válido."),
        },
    )
    reason = forms.CharField(label=_("Motivo"), required=False, max_length=255)

    def __init__(self, *args, notices_qs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["notices"].queryset = notices_qs

    def clean(self):
        data = super().clean()
        if data.get("action") == self.CANCEL and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Indique el motivo de la cancelación."))
        return data


# --- cartas ----------------------------------------------------------------------------------


class LetterSelectionForm(forms.Form):
    notices = forms.ModelMultipleChoiceField(
        queryset=Notice.objects.none(),
        error_messages={
            "required": _("Seleccione al menos una carta."),
            "invalid_choice": _("Alguna de las cartas elegidas no existe o no es suya."),
            "invalid_pk_value": _("Carta no válida."),
        },
    )

    def __init__(self, *args, notices_qs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["notices"].queryset = notices_qs


# --- panel del cliente -----------------------------------------------------------------------


class ClientPauseForm(forms.Form):
    PAUSE = "pause"
    RESUME = "resume"

    action = forms.ChoiceField(choices=[(PAUSE, _("Pausar")), (RESUME, _("Reanudar"))], initial=PAUSE)
    until = forms.DateField(label=_("Sin recordatorios hasta"), required=False, widget=DateInput())
    reason = forms.CharField(label=_("Motivo de la pausa"), required=False, max_length=255)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["until"].widget.attrs["min"] = clock.localdate().isoformat()
        _style(self)

    def clean(self):
        data = super().clean()
        if data.get("action") == self.PAUSE:
            if not data.get("until") and "until" not in self.errors:
                self.add_error("until", _("Indique hasta qué fecha se pausan los recordatorios."))
            if not (data.get("reason") or "").strip():
                self.add_error("reason", _("Indique el motivo de la pausa."))
        return data


class ClientPolicyForm(forms.Form):
    policy = forms.ModelChoiceField(
        label=_("Política propia"),
        queryset=Policy.objects.order_by("name"),
        required=False,
        empty_label=_("La del segmento"),
        error_messages={"invalid_choice": _("Esa política ya no existe.")},
    )


class InvoiceHoldForm(forms.Form):
    reason = forms.CharField(
        label=_("Motivo"),
        max_length=255,
        error_messages={"required": _("Indique el motivo de la retención.")},
    )
    until = forms.DateField(
        label=_("Retenida hasta"),
        required=False,
        widget=DateInput(),
        help_text=_("Vacío: hasta que se libere."),
    )

    def clean_until(self):
        return _not_past(self.cleaned_data.get("until"))
