from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CobranzaConfig(AppConfig):
    name = "cobranza"
    verbose_name = _("Cobranza")

    def ready(self):
        # accounts never imports cobranza: the client page gets the dunning panel through
        # this hook (accounts.extensions).
        from accounts.extensions import register_client_panel

        from .views_ops import client_panel

        register_client_panel(client_panel)
