"""Forms of the policy, ladder and template editors. They parse input; the checks that
matter (uniqueness, constraints, template validation) live in ``services_policies`` and
come back through ``add_service_errors`` next to the right field."""

from __future__ import annotations

from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Fieldset, Layout, Row
from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts.forms import add_service_errors as _add_errors
from accounts.models import MONEY, Language, Segment
from cobranza.ladders.services import MAX_POSITION, TextDraft
from cobranza.models import (
    MESSAGE_CHANNELS,
    PORTAL_PLAN_MAX_INSTALLMENTS,
    PORTAL_PROMISE_MAX_DAYS,
    PORTAL_PROMISE_MIN_SHARE,
    MessageTemplate,
    Policy,
    PolicyStep,
    Profile,
    StepChannel,
    Tone,
)


def _label(model, field: str) -> str:
    return capfirst(model._meta.get_field(field).verbose_name)


def _helper(*layout) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True  # the page's <form> carries the token
    helper.layout = Layout(*layout)
    return helper


def add_service_errors(form: forms.Form, exc: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """A service's field errors on the form's fields; ``aliases`` renames service fields
    (``offset_days`` → ``days``) and ``"es.body"`` becomes ``body_es``."""
    if not hasattr(exc, "error_dict"):
        _add_errors(form, exc)
        return
    renamed: dict[str, list] = {}
    for key, errors in exc.error_dict.items():
        name = (aliases or {}).get(key, key)
        if "." in name:
            language, field = name.split(".", 1)
            name = f"{field}_{language}"
        renamed.setdefault(name, []).extend(errors)
    _add_errors(form, ValidationError(renamed))


# --- policies ------------------------------------------------------------------------------


class SegmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        policy = getattr(obj, "policy", None)  # reverse one-to-one, loaded with select_related
        if policy is not None and policy.pk != getattr(self, "current_policy_id", None):
            return _("%(segment)s (ya sigue «%(policy)s»)") % {"segment": obj.name, "policy": policy.name}
        return obj.name


class PolicyForm(forms.Form):
    name = forms.CharField(label=_label(Policy, "name"), max_length=120)
    description = forms.CharField(
        label=_label(Policy, "description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    segment = SegmentChoiceField(
        label=_label(Policy, "segment"),
        queryset=Segment.objects.none(),
        required=False,
        empty_label=_("Sin segmento: política propia de algunos clientes"),
        help_text=_(
            "Los clientes del segmento siguen esta política, salvo los que tengan una propia. "
            "Sin segmento, la política se asigna cliente por cliente."
        ),
    )
    profile = forms.ChoiceField(
        label=_label(Policy, "profile"),
        required=False,
        choices=[("", _("Ninguno: la siguen su segmento o clientes elegidos"))]
        + [(value, label) for value, label in Profile.choices if value != Profile.NEW],
        help_text=_(
            "Opcional: los clientes con este perfil de morosidad siguen esta escalera en lugar de la de su "
            "segmento (una política propia del cliente gana sobre ambas)."
        ),
    )
    tolerance = forms.DecimalField(
        label=_label(Policy, "tolerance"),
        min_value=Decimal("0"),
        initial=Decimal("1.00"),
        help_text=_("Las facturas con un saldo menor no reciben avisos (restos de redondeo, diferencias pequeñas)."),
        **MONEY,
    )
    is_active = forms.BooleanField(
        label=_("Política activa"),
        required=False,
        initial=True,
        help_text=_("Una política inactiva no programa avisos para nadie."),
    )
    # What a debtor may agree to alone on the self-service page (docs/domain.md#portal-limits).
    portal_promise_max_days = forms.IntegerField(
        label=_label(Policy, "portal_promise_max_days"),
        required=False,
        min_value=0,
        max_value=3660,
        initial=PORTAL_PROMISE_MAX_DAYS,
        help_text=_(
            "Una promesa o el primer pago de un plan más lejanos esperan la aprobación del gestor. Vacío: sin límite."
        ),
    )
    portal_promise_min_share = forms.DecimalField(
        label=_label(Policy, "portal_promise_min_share"),
        required=False,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        max_digits=5,
        decimal_places=2,
        initial=PORTAL_PROMISE_MIN_SHARE,
        help_text=_(
            "Una promesa por menos de esta parte de lo vencido espera la aprobación del gestor. Vacío: sin límite."
        ),
    )
    portal_plan_max_installments = forms.IntegerField(
        label=_label(Policy, "portal_plan_max_installments"),
        required=False,
        min_value=2,
        max_value=120,
        initial=PORTAL_PLAN_MAX_INSTALLMENTS,
        help_text=_("Un plan pedido con más cuotas espera la aprobación del gestor. Vacío: sin límite."),
    )
    min_days_between_contacts = forms.IntegerField(
        label=_label(Policy, "min_days_between_contacts"),
        min_value=1,
        max_value=60,
        initial=1,
        required=False,
        help_text=_(
            "Entre dos avisos a un mismo cliente, por cualquier canal, contados en días del cliente. "
            "1: como máximo uno por día."
        ),
    )
    min_days_between_escalations = forms.IntegerField(
        label=_label(Policy, "min_days_between_escalations"),
        min_value=1,
        max_value=90,
        initial=7,
        required=False,
        help_text=_("Entre carta, envío a agencia y envío a vía judicial a un mismo cliente."),
    )
    # docs/domain.md#replies
    reply_pause_days = forms.IntegerField(
        label=_label(Policy, "reply_pause_days"),
        required=False,
        min_value=0,
        max_value=90,
        help_text=_("Vacío: el valor general. 0: una respuesta no pausa los recordatorios."),
    )

    def __init__(self, *args, instance: Policy | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "description": instance.description,
                    "segment": instance.segment_id,
                    "profile": instance.profile,
                    "tolerance": instance.tolerance,
                    "is_active": instance.is_active,
                    "portal_promise_max_days": instance.portal_promise_max_days,
                    "portal_promise_min_share": instance.portal_promise_min_share,
                    "portal_plan_max_installments": instance.portal_plan_max_installments,
                    "min_days_between_contacts": instance.min_days_between_contacts,
                    "min_days_between_escalations": instance.min_days_between_escalations,
                    "reply_pause_days": instance.reply_pause_days,
                },
            )
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields["segment"].queryset = Segment.objects.select_related("policy").order_by("position", "name")
        self.fields["segment"].current_policy_id = instance.pk if instance else None
        self.fields["tolerance"].widget.attrs.update({"step": "0.01", "min": "0"})
        self.helper = _helper(
            Row(Column("name", css_class="col-md-7"), Column("segment", css_class="col-md-5")),
            "description",
            "profile",
            Row(
                Column("tolerance", css_class="col-md-5"),
                Column(Field("is_active", wrapper_class="mt-md-4 pt-md-2"), css_class="col-md-7"),
            ),
            Fieldset(
                _("Límites del portal de autoservicio"),
                Row(
                    Column("portal_promise_max_days", css_class="col-md-4"),
                    Column("portal_promise_min_share", css_class="col-md-4"),
                    Column("portal_plan_max_installments", css_class="col-md-4"),
                ),
            ),
            Row(
                Column("min_days_between_contacts", css_class="col-md-6"),
                Column("min_days_between_escalations", css_class="col-md-6"),
            ),
            Row(Column("reply_pause_days", css_class="col-md-4")),
        )
        for name in ("min_days_between_contacts", "min_days_between_escalations"):
            self.fields[name].widget.attrs.update({"min": "1", "class": "text-end"})

    def changes(self) -> dict:
        fields = (
            "name",
            "description",
            "segment",
            "profile",
            "tolerance",
            "is_active",
            "portal_promise_max_days",
            "portal_promise_min_share",
            "portal_plan_max_installments",
            "reply_pause_days",
        )
        changes = {name: self.cleaned_data[name] for name in fields}
        # Left empty: the policy keeps its spacing (a new one gets the defaults).
        for name in ("min_days_between_contacts", "min_days_between_escalations"):
            if self.cleaned_data.get(name) is not None:
                changes[name] = self.cleaned_data[name]
        return changes


# --- steps ---------------------------------------------------------------------------------

BEFORE, ON, AFTER = "before", "on", "after"
TIMING_CHOICES = [
    (BEFORE, _("días antes del vencimiento")),
    (ON, _("el día del vencimiento")),
    (AFTER, _("días después del vencimiento")),
]


class TemplateSelect(forms.Select):
    """Each option says its channel (``data-channel``): the page shows only the templates
    of the step's channel."""

    def __init__(self, *args, channels=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.channels = channels or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        channel = self.channels.get(str(value))
        if channel:
            option["attrs"]["data-channel"] = channel
        return option


class StepForm(forms.Form):
    position = forms.IntegerField(
        label=_label(PolicyStep, "position"),
        min_value=1,
        max_value=MAX_POSITION,
        help_text=_("Los pasos se aplican en este orden."),
    )
    name = forms.CharField(
        label=_label(PolicyStep, "name"),
        max_length=120,
        widget=forms.TextInput(attrs={"placeholder": _("Ej.: Recordatorio previo al vencimiento")}),
    )
    days = forms.IntegerField(label=_("Días"), min_value=0, max_value=3650, required=False)
    timing = forms.ChoiceField(label=_("Cuándo"), choices=TIMING_CHOICES, initial=AFTER)
    channel = forms.ChoiceField(label=_label(PolicyStep, "channel"), choices=StepChannel.choices)
    template = forms.ChoiceField(
        label=_label(PolicyStep, "template"),
        required=False,
        help_text=_("Obligatoria para correo, SMS, WhatsApp y carta. Las llamadas y revisiones no envían mensaje."),
    )
    tone = forms.ChoiceField(label=_label(PolicyStep, "tone"), choices=Tone.choices, initial=Tone.COURTEOUS)
    min_overdue_amount = forms.DecimalField(
        label=_label(PolicyStep, "min_overdue_amount"),
        min_value=Decimal("0"),
        initial=Decimal("0.00"),
        help_text=_("El paso solo se aplica si el saldo vencido del cliente llega a este importe."),
        **MONEY,
    )
    requires_approval = forms.BooleanField(
        label=_label(PolicyStep, "requires_approval"),
        required=False,
        help_text=_("Un gerente aprueba cada aviso antes de enviarlo."),
    )
    is_active = forms.BooleanField(label=_("Paso activo"), required=False, initial=True)

    def __init__(self, *args, templates, instance: PolicyStep | None = None, **kwargs):
        if instance is not None:
            offset = instance.offset_days
            kwargs.setdefault(
                "initial",
                {
                    "position": instance.position,
                    "name": instance.name,
                    "days": abs(offset),
                    "timing": BEFORE if offset < 0 else ON if offset == 0 else AFTER,
                    "channel": instance.channel,
                    "template": instance.template_id or "",
                    "tone": instance.tone,
                    "min_overdue_amount": instance.min_overdue_amount,
                    "requires_approval": instance.requires_approval,
                    "is_active": instance.is_active,
                },
            )
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.templates = {str(t.pk): t for t in templates}
        groups: dict[str, list] = {}
        for t in templates:
            groups.setdefault(str(StepChannel(t.channel).label), []).append(
                (str(t.pk), t.name if t.is_active else _("%(name)s (inactiva)") % {"name": t.name})
            )
        field = self.fields["template"]
        field.choices = [("", _("— Sin plantilla —")), *groups.items()]
        field.widget = TemplateSelect(channels={pk: t.channel for pk, t in self.templates.items()})
        field.widget.choices = field.choices
        self.fields["days"].widget.attrs.update({"min": "0", "class": "text-end"})
        self.fields["min_overdue_amount"].widget.attrs.update({"step": "0.01", "min": "0"})
        self.helper = _helper(
            Row(Column("position", css_class="col-sm-3"), Column("name", css_class="col-sm-9")),
            Row(Column("days", css_class="col-4 col-sm-3"), Column("timing", css_class="col-8 col-sm-9")),
            Row(Column("channel", css_class="col-sm-6"), Column("tone", css_class="col-sm-6")),
            "template",
            Row(Column("min_overdue_amount", css_class="col-sm-6")),
            "requires_approval",
            "is_active",
        )

    def clean_template(self):
        value = self.cleaned_data.get("template")
        return self.templates.get(value) if value else None

    def clean(self):
        data = super().clean()
        timing, days = data.get("timing"), data.get("days")
        if timing == ON:
            data["offset_days"] = 0
        elif timing in (BEFORE, AFTER):
            if days is None:
                if "days" not in self.errors:
                    self.add_error("days", _("Indique cuántos días."))
            else:
                data["offset_days"] = -days if timing == BEFORE else days
        if data.get("channel") not in MESSAGE_CHANNELS:
            data["template"] = None
        return data

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            "position": data["position"],
            "name": data["name"],
            "offset_days": data["offset_days"],
            "channel": data["channel"],
            "template": data["template"],
            "tone": data["tone"],
            "min_overdue_amount": data["min_overdue_amount"],
            "requires_approval": data["requires_approval"],
            "is_active": data["is_active"],
        }

    def add_service_errors(self, exc: ValidationError) -> None:
        # The offset is typed as days + "before/on/after": its errors go where it was typed.
        offset_field = "timing" if self.cleaned_data.get("timing") == ON else "days"
        add_service_errors(self, exc, {"offset_days": offset_field})


class CatchUpForm(forms.Form):
    """The figures the confirmation page stated, sent back with the confirmation."""

    notices = forms.IntegerField(widget=forms.HiddenInput)
    invoices = forms.IntegerField(widget=forms.HiddenInput)
    superseded = forms.IntegerField(widget=forms.HiddenInput)


# --- message templates ---------------------------------------------------------------------

LANGUAGES = tuple(Language.values)  # Spanish first: it is the fallback text


def text_field(language: str, kind: str) -> str:
    return f"{kind}_{language}"


class TemplateTextsMixin:
    """``subject_<language>`` and ``body_<language>`` for every language."""

    def add_text_fields(self, *, required_body: bool = True) -> None:
        for language in LANGUAGES:
            self.fields[text_field(language, "subject")] = forms.CharField(
                label=_("Asunto"),
                max_length=200,
                required=False,
                widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off", "spellcheck": "true"}),
            )
            self.fields[text_field(language, "body")] = forms.CharField(
                label=_("Texto"),
                required=False,
                widget=forms.Textarea(
                    attrs={"rows": 16, "class": "form-control font-monospace template-body", "spellcheck": "true"}
                ),
            )

    def drafts(self) -> dict[str, TextDraft]:
        data = self.cleaned_data
        return {
            language: TextDraft(
                subject=data.get(text_field(language, "subject"), "") or "",
                body=data.get(text_field(language, "body"), "") or "",
            )
            for language in LANGUAGES
        }


class TemplateForm(TemplateTextsMixin, forms.Form):
    name = forms.CharField(label=_label(MessageTemplate, "name"), max_length=120)
    channel = forms.ChoiceField(
        label=_label(MessageTemplate, "channel"), choices=[(c.value, c.label) for c in MESSAGE_CHANNELS]
    )
    tone = forms.ChoiceField(label=_label(MessageTemplate, "tone"), choices=Tone.choices, initial=Tone.COURTEOUS)
    is_active = forms.BooleanField(
        label=_("Plantilla activa"),
        required=False,
        initial=True,
        help_text=_("Las inactivas no se ofrecen al crear pasos; los pasos que ya la usan la siguen enviando."),
    )

    def __init__(self, *args, instance: MessageTemplate | None = None, **kwargs):
        if instance is not None:
            initial = {
                "name": instance.name,
                "channel": instance.channel,
                "tone": instance.tone,
                "is_active": instance.is_active,
            }
            for text in instance.texts.all():
                initial[text_field(text.language, "subject")] = text.subject
                initial[text_field(text.language, "body")] = text.body
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.add_text_fields()
        self.helper = _helper(
            Row(Column("name", css_class="col-md-12")),
            Row(Column("channel", css_class="col-sm-6"), Column("tone", css_class="col-sm-6")),
            "is_active",
        )

    def text_fields(self):
        """(language code, language name, subject field, body field) for the page."""
        names = dict(Language.choices)
        for name in self.errors:
            if name in self.fields:
                css = self.fields[name].widget.attrs.get("class", "")
                if "is-invalid" not in css.split():
                    self.fields[name].widget.attrs["class"] = f"{css} is-invalid".strip()
        return [
            (language, names[language], self[text_field(language, "subject")], self[text_field(language, "body")])
            for language in LANGUAGES
        ]

    def add_service_errors(self, exc: ValidationError) -> None:
        add_service_errors(self, exc)


class PreviewForm(TemplateTextsMixin, forms.Form):
    """What the live preview posts: the editor's fields plus the client and language to
    render for. Never invalid in a way that matters: bad values fall back to defaults."""

    channel = forms.ChoiceField(choices=[(c.value, c.label) for c in MESSAGE_CHANNELS], required=False)
    preview_language = forms.ChoiceField(choices=Language.choices, required=False)
    preview_client = forms.CharField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_text_fields()
