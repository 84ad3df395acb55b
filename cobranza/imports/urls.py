"""Imports from accounting exports (included from ``cobranza.urls`` under /cobranza/)."""

from django.urls import path

from cobranza.imports import views

urlpatterns = [
    path("importar/", views.import_list, name="import_list"),
    path("importar/nueva/", views.import_create, name="import_create"),
    path("importar/<int:pk>/", views.import_detail, name="import_detail"),
    path("importar/<int:pk>/progreso/", views.import_progress, name="import_progress"),
    path("importar/<int:pk>/importar/", views.import_commit, name="import_commit"),
    path("importar/<int:pk>/clientes/", views.import_clients, name="import_clients"),
    path("importar/<int:pk>/errores.csv", views.import_errors_csv, name="import_errors_csv"),
]
