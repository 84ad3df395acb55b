"""Forms of the business settings page and of the first-login setup. Every check is the
service's (``cobranza.business.services``), so each field shows the same message wherever it
is entered."""

from __future__ import annotations

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts import numbers
from cobranza.business import selectors, services
from cobranza.models import BusinessProfile


def _field(name: str, **kwargs) -> forms.Field:
    model_field = BusinessProfile._meta.get_field(name)
    kwargs.setdefault("label", capfirst(model_field.verbose_name))
    if model_field.help_text:
        kwargs.setdefault("help_text", model_field.help_text)
    kwargs.setdefault("required", False)  # the service's message, not Django's generic one
    if isinstance(model_field, models.TextField):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
    return forms.CharField(**kwargs)


class _ServiceChecked(forms.Form):
    """Each field cleaned by the service's check for it."""

    def _post_clean(self):
        data = {name: self.cleaned_data[name] for name in self.fields if name in self.cleaned_data and name != "logo"}
        try:
            self.cleaned_data.update(services.clean(data))
        except forms.ValidationError as exc:
            for name, messages in exc.message_dict.items():
                self.add_error(name, messages)


ESSENTIAL_WIDGETS = {
    "sender_email": forms.EmailInput(attrs={"placeholder": "cobranza@suempresa.mx"}),
    "public_base_url": forms.URLInput(attrs={"placeholder": "https://cobranza.suempresa.mx"}),
}


class SetupForm(_ServiceChecked):
    """The essentials asked for at the first administrator's first login."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in services.ESSENTIAL_FIELDS:
            widget = ESSENTIAL_WIDGETS.get(name)
            self.fields[name] = _field(name, **({"widget": widget} if widget else {}))
        self.fields["sender_name"].help_text = _("Como lo verán sus clientes en el remitente de los correos.")


class BusinessSettingsForm(_ServiceChecked):
    """Every field of the business's identity, with the logo."""

    logo = forms.FileField(
        label=_("Logotipo"),
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
        help_text=_("PNG o JPEG, hasta 1 MB. Aparece en los correos, el portal y los PDF."),
    )
    remove_logo = forms.BooleanField(label=_("Quitar el logotipo"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logo, remove = self.fields.pop("logo"), self.fields.pop("remove_logo")
        for name in services.TEXT_FIELDS:
            widget = ESSENTIAL_WIDGETS.get(name)
            self.fields[name] = _field(name, **({"widget": widget} if widget else {}))
        self.fields["brand_color"].widget = forms.TextInput(attrs={"type": "color"})
        self.fields["reply_to"].widget = forms.EmailInput()
        self.fields["website"].widget = forms.URLInput()
        country_rule = numbers.country_rule(selectors.business_country())
        self.fields["number_format"] = forms.ChoiceField(
            label=capfirst(BusinessProfile._meta.get_field("number_format").verbose_name),
            help_text=BusinessProfile._meta.get_field("number_format").help_text,
            required=False,
            choices=[
                (
                    "",
                    _("Según el país de la empresa (%(rule)s)") % {"rule": country_rule},
                ),
                *numbers.CHOICES,
            ],
        )
        self.fields["logo"], self.fields["remove_logo"] = logo, remove

    def clean_logo(self):
        """An upload: checked by Pillow; otherwise None (keep the current one)."""
        value = self.cleaned_data.get("logo")
        if isinstance(value, UploadedFile):
            services.clean_logo(value)
            value.seek(0)
            return value
        return None
