"""Early warnings (included from ``cobranza.urls`` under /cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.alerts import views

urlpatterns = [
    path("alertas/", views.alert_list, name="alert_list"),
    path("alertas/<int:pk>/", views.alert_update, name="alert_update"),
]
