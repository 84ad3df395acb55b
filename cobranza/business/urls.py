"""The business's identity (included from ``cobranza.urls`` under /cobranza/; administrators
only). The public logo is mounted at the site's top (``morosos.urls``: /marca/logo)."""

from django.urls import path

from cobranza.business import views

urlpatterns = [
    path("empresa/", views.settings_page, name="business_settings"),
    path("empresa/configuracion-inicial/", views.setup, name="business_setup"),
]
