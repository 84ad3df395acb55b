"""Outgoing webhooks: endpoints that receive events, and their deliveries (included from
``cobranza.urls`` under /cobranza/). Administrators only."""

from django.urls import path

from cobranza.webhooks import views

urlpatterns = [
    path("integraciones/webhooks/", views.webhook_list, name="webhook_list"),
    path("integraciones/webhooks/nuevo/", views.webhook_create, name="webhook_create"),
    path("integraciones/webhooks/<int:pk>/", views.webhook_detail, name="webhook_detail"),
    path("integraciones/webhooks/<int:pk>/editar/", views.webhook_edit, name="webhook_edit"),
    path("integraciones/webhooks/<int:pk>/activar/", views.webhook_toggle, name="webhook_toggle"),
    path("integraciones/webhooks/<int:pk>/secreto/", views.webhook_rotate_secret, name="webhook_rotate_secret"),
    path("integraciones/webhooks/<int:pk>/prueba/", views.webhook_ping, name="webhook_ping"),
    path("integraciones/webhooks/<int:pk>/eliminar/", views.webhook_delete, name="webhook_delete"),
    path(
        "integraciones/webhooks/entregas/<int:pk>/reintentar/",
        views.webhook_delivery_retry,
        name="webhook_delivery_retry",
    ),
]
