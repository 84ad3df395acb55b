"""The collector's work on one client: log an outcome, promises, plans, extensions and
disputes (included from ``cobranza.urls`` under /cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.workspace import views

urlpatterns = [
    path("clientes/<int:pk>/gestion/", views.log_outcome, name="log_outcome"),
    path("clientes/<int:pk>/compromisos/nuevo/", views.commitment_create, name="commitment_create"),
    path("clientes/<int:pk>/compromisos/calendario/", views.plan_preview, name="plan_preview"),
    path("clientes/<int:pk>/disputas/nueva/", views.dispute_open, name="dispute_open"),
    path("compromisos/<int:pk>/cancelar/", views.commitment_cancel, name="commitment_cancel"),
    path("disputas/<int:pk>/resolver/", views.dispute_resolve, name="dispute_resolve"),
]
