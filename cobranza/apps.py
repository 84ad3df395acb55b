from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CobranzaConfig(AppConfig):
    name = "cobranza"
    verbose_name = _("Cobranza")

    def ready(self):
        # accounts never imports cobranza: the client page gets cobranza's panels, and
        # seed_demo its demo state, through hooks (accounts.extensions). Imported here, not at
        # the top: these modules import models, which Django loads only after every app config
        # (ready() is the hook for that).
        from django.urls import reverse

        from accounts.extensions import register_client_panel, register_demo_step, register_outcome_form
        from cobranza.alerts.views import alerts_panel
        from cobranza.handoffs.views import client_panel as handoff_panel
        from cobranza.ops.views import client_panel as dunning_panel
        from cobranza.portal.views import client_panel as portal_panel
        from cobranza.profiles.views import profile_panel, summary_panel
        from cobranza.replies.views import replies_panel
        from cobranza.workspace.views import workspace_panel

        from . import demo, texts  # noqa: F401  (texts: its codes render on every page)

        # The client page (docs/domain.md#the-client-page). Its summary, always visible:
        # early warnings, what the client wrote to us, who the client is as a payer and the next
        # reminder. Its "Cobranza" section, loaded when opened: the profile in full (protocol,
        # fees, discounts), what was agreed (promises, plans, disputes), the self-service portal
        # (its link, the debtor's proposals to decide), the ladder, hand-offs.
        for panel in (alerts_panel, replies_panel, summary_panel):
            register_client_panel(panel)
        for panel in (profile_panel, workspace_panel, portal_panel, dunning_panel, handoff_panel):
            register_client_panel(panel, section="cobranza")
        register_demo_step(demo.seed)
        register_outcome_form(lambda client: reverse("cobranza:log_outcome", args=[client.pk]))

        # Payments are recorded in accounts; their webhook is queued in the same transaction.
        from accounts.signals import payment_recorded
        from cobranza.webhooks.outgoing import on_payment_recorded

        payment_recorded.connect(on_payment_recorded, dispatch_uid="cobranza.webhooks.outgoing.payment_received")

        # The first-login setup: whether the business is set up is read once, at login.
        from django.contrib.auth.signals import user_logged_in

        from cobranza.business.middleware import on_login

        user_logged_in.connect(on_login, dispatch_uid="cobranza.business.middleware.on_login")

        # The business's number format is cached per process: a change is read again at once.
        from django.db.models.signals import post_save

        from accounts import numbers, preferences
        from cobranza.business.selectors import number_format

        numbers.register_business_reader(number_format)
        post_save.connect(
            numbers.forget_business, sender="cobranza.BusinessProfile", dispatch_uid="accounts.numbers.business"
        )
        user_logged_in.connect(preferences.on_login, dispatch_uid="accounts.preferences.on_login")
