"""The collections app's pages, under /cobranza/ (URL names in the ``cobranza`` namespace).
Each area has its own URL module."""

from django.urls import include, path

app_name = "cobranza"

urlpatterns = [
    path("", include("cobranza.urls_policies")),
    path("", include("cobranza.urls_ops")),
    path("", include("cobranza.urls_worklist")),
    path("", include("cobranza.urls_workspace")),
    path("", include("cobranza.urls_profiles")),
    path("", include("cobranza.urls_handoffs")),
    path("", include("cobranza.urls_dashboard")),
    path("", include("cobranza.urls_performance")),
    path("", include("cobranza.urls_alerts")),
    path("", include("cobranza.urls_imports")),
    path("", include("cobranza.urls_integrations")),
]
