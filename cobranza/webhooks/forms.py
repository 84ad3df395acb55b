"""Form of the outgoing webhook pages: an endpoint's name, URL, events and whether it is active.
The checks are the service's (``webhooks_out.validate_url`` / ``validate_events``), so the form
and any other caller refuse the same things, each next to its field."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from cobranza.models import SUBSCRIBABLE_EVENTS
from cobranza.webhooks import outgoing as webhooks_out


class EndpointForm(forms.Form):
    name = forms.CharField(label=_("Nombre"), max_length=120, help_text=_("Por ejemplo, el sistema que lo recibe."))
    # A plain CharField: URLField would add http:// to "erp.example.com" and hide the error.
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://erp.ejemplo.com/webhooks/morosos"}),
        help_text=_("Debe empezar por https://. Cada envío va firmado con el secreto del webhook."),
    )
    events = forms.MultipleChoiceField(
        label=_("Eventos"),
        choices=[(e.value, e.label) for e in SUBSCRIBABLE_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        required=False,  # the service's message, not Django's generic one
    )
    is_active = forms.BooleanField(label=_("Activo"), required=False, initial=True)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Ponga un nombre al webhook (por ejemplo, el sistema que lo recibe)."))
        return name

    def clean_url(self):
        return webhooks_out.validate_url(self.cleaned_data["url"])

    def clean_events(self):
        return webhooks_out.validate_events(self.cleaned_data["events"])
