"""Delinquency profiles, late fees and negotiated discounts (included from ``cobranza.urls``
under /cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.profiles import views

urlpatterns = [
    path("perfiles/", views.profile_list, name="profile_list"),
    path("clientes/<int:pk>/perfil/", views.profile_override, name="profile_override"),
    path("recargos/", views.fee_rules, name="fee_rules"),
    path("recargos/<int:pk>/condonar/", views.fee_waive, name="fee_waive"),
    path("facturas/<int:pk>/descuento/", views.discount_request, name="discount_request"),
    path("descuentos/", views.discounts, name="discounts"),
    path("descuentos/<int:pk>/decidir/", views.discount_decide, name="discount_decide"),
]
