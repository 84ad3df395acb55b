"""Manager dashboards of who performs and what works (included from ``cobranza.urls`` under
/cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.performance import views

urlpatterns: list = [
    path("desempeno/", views.collector_performance, name="collector_performance"),
    path("efectividad/", views.dunning_effectiveness, name="dunning_effectiveness"),
]
