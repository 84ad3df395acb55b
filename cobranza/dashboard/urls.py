"""The managers' portfolio dashboard (included from ``cobranza.urls`` under /cobranza/,
namespace ``cobranza``)."""

from django.urls import path

from cobranza.dashboard import views

urlpatterns: list = [
    path("tablero/", views.dashboard, name="dashboard"),
    path("tablero/informe.pdf", views.dashboard_report, name="dashboard_report"),
    path("tablero/fotos/", views.dashboard_snapshots, name="dashboard_snapshots"),
    path("tablero/recalcular/", views.dashboard_refresh, name="dashboard_refresh"),
]
