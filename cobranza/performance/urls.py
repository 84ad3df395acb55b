"""Manager dashboards of who performs and what works (included from ``cobranza.urls`` under
/cobranza/, namespace ``cobranza``)."""

from django.urls import path

from . import views_performance as views

urlpatterns: list = [
    path("desempeno/", views.collector_performance, name="collector_performance"),
    path("efectividad/", views.dunning_effectiveness, name="dunning_effectiveness"),
]
