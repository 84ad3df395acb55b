from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Cartera de clientes")

    def ready(self):
        # Imported here, not at the top: these modules import models, which Django loads only
        # after every app config (ready() is the hook for that).
        from auditlog.models import LogEntry
        from django.db.models.signals import pre_save

        from .audit import fill_actor

        # Every audit entry names who made the change (see accounts.audit).
        pre_save.connect(fill_actor, sender=LogEntry, dispatch_uid="morosos_audit_actor")
