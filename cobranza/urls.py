"""The collections app's pages, under /cobranza/ (URL names in the ``cobranza`` namespace).
Each area has its own URL module."""

from django.urls import include, path

app_name = "cobranza"

urlpatterns = [
    path("", include("cobranza.ladders.urls")),
    path("", include("cobranza.ops.urls")),
    path("", include("cobranza.worklist.urls")),
    path("", include("cobranza.workspace.urls")),
    path("", include("cobranza.profiles.urls")),
    path("", include("cobranza.handoffs.urls")),
    path("", include("cobranza.dashboard.urls")),
    path("", include("cobranza.performance.urls")),
    path("", include("cobranza.alerts.urls")),
    path("", include("cobranza.imports.urls")),
    path("", include("cobranza.webhooks.urls")),
    path("", include("cobranza.business.urls")),
    path("", include("cobranza.replies.urls")),
]
