"""Forms of the profile panel and pages: they parse input; writes go through ``services``,
whose errors come back next to the right field."""

from __future__ import annotations

from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Layout, Row
from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts.models import MONEY, Segment
from cobranza.models import LateFeeRule, Profile

REASON_MAX = 255


def _style(form: forms.Form) -> None:
    for field in form.fields.values():
        if isinstance(field.widget, forms.CheckboxInput | forms.HiddenInput):
            continue
        css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
        field.widget.attrs.setdefault("class", css)


class ProfileOverrideForm(forms.Form):
    profile = forms.ChoiceField(
        label=_("Perfil asignado"),
        required=False,
        choices=[("", _("El calculado (sin asignar)")), *Profile.choices],
    )
    reason = forms.CharField(label=_("Motivo"), required=False, max_length=REASON_MAX)

    def clean(self):
        data = super().clean()
        if data.get("profile") and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Indique el motivo del cambio de perfil."))
        return data


class FeeWaiveForm(forms.Form):
    reason = forms.CharField(label=_("Motivo de la condonación"), max_length=REASON_MAX)


class DiscountRequestForm(forms.Form):
    amount = forms.DecimalField(label=_("Descuento"), min_value=Decimal("0.01"), **MONEY)
    reason = forms.CharField(label=_("Motivo"), max_length=REASON_MAX)


class DiscountDecisionForm(forms.Form):
    APPROVE, REJECT = "approve", "reject"

    action = forms.ChoiceField(choices=[(APPROVE, _("Aprobar")), (REJECT, _("Rechazar"))])
    notes = forms.CharField(label=_("Notas"), required=False, max_length=REASON_MAX)

    def clean(self):
        data = super().clean()
        if data.get("action") == self.REJECT and not (data.get("notes") or "").strip():
            self.add_error("notes", _("Indique el motivo del rechazo."))
        return data


class ProfileFilterForm(forms.Form):
    profile = forms.ChoiceField(label=_("Perfil"), required=False, choices=[("", _("Todos")), *Profile.choices])

    def chosen(self) -> str:
        return self.cleaned_data.get("profile", "") if self.is_valid() else ""


def _label(field: str) -> str:
    return capfirst(LateFeeRule._meta.get_field(field).verbose_name)


class LateFeeRuleForm(forms.Form):
    """One segment's surcharges and discount threshold."""

    is_active = forms.BooleanField(
        label=_("Cobrar recargos en este segmento"),
        required=False,
        help_text=_("Apagado, no se generan recargos nuevos; los ya calculados se conservan."),
    )
    grace_days = forms.IntegerField(
        label=_label("grace_days"),
        min_value=0,
        max_value=365,
        initial=0,
        help_text=_("Días después del vencimiento sin recargo."),
    )
    fixed_fee = forms.DecimalField(
        label=_label("fixed_fee"),
        min_value=Decimal("0"),
        initial=Decimal("0.00"),
        help_text=_("Una sola vez por factura, al pasar los días de gracia. En la moneda de la factura."),
        **MONEY,
    )
    monthly_rate = forms.DecimalField(
        label=_label("monthly_rate"),
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        max_digits=6,
        decimal_places=3,
        initial=Decimal("0.000"),
        help_text=_(
            "Interés simple sobre el saldo: saldo × tasa ÷ 100 × (días de atraso − días de gracia) ÷ 30. "
            "Nunca sobre recargos, nunca compuesto."
        ),
    )
    max_percent = forms.DecimalField(
        label=_label("max_percent"),
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        max_digits=6,
        decimal_places=2,
        initial=Decimal("0.00"),
        help_text=_("Cargo fijo + interés no pasan de este porcentaje del importe de la factura (0: sin tope)."),
    )
    discount_approval_over = forms.DecimalField(
        label=_label("discount_approval_over"),
        min_value=Decimal("0"),
        initial=Decimal("0.00"),
        help_text=_(
            "Un gestor aplica al instante descuentos hasta este importe; los mayores esperan la aprobación "
            "de un gerente (0: todos la necesitan)."
        ),
        **MONEY,
    )

    FIELDS = ("is_active", "grace_days", "fixed_fee", "monthly_rate", "max_percent", "discount_approval_over")

    def __init__(self, *args, segment: Segment, rule: LateFeeRule | None, **kwargs):
        if rule is not None:
            kwargs.setdefault("initial", {name: getattr(rule, name) for name in self.FIELDS})
        super().__init__(*args, **kwargs)
        self.segment = segment
        for name in ("fixed_fee", "discount_approval_over", "max_percent"):
            self.fields[name].widget.attrs.update({"step": "0.01", "min": "0"})
        self.fields["monthly_rate"].widget.attrs.update({"step": "0.001", "min": "0", "max": "100"})
        self.fields["max_percent"].widget.attrs["max"] = "100"
        self.fields["grace_days"].widget.attrs.update({"min": "0", "max": "365"})
        helper = FormHelper()
        helper.form_tag = False
        helper.disable_csrf = True
        helper.layout = Layout(
            Field("is_active"),
            Row(Column("grace_days", css_class="col-md-4"), Column("fixed_fee", css_class="col-md-8")),
            Row(Column("monthly_rate", css_class="col-md-6"), Column("max_percent", css_class="col-md-6")),
            "discount_approval_over",
        )
        self.helper = helper

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.FIELDS}


def style(form: forms.Form) -> forms.Form:
    _style(form)
    return form
