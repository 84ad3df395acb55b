from django.urls import path

from . import views, views_audit

urlpatterns = [
    path("", views.home, name="home"),
    path("clientes/", views.client_list, name="client_list"),
    path("clientes/sugerencias/", views.client_suggest, name="client_suggest"),
    path("clientes/reasignar/", views.client_bulk_assign, name="client_bulk_assign"),
    path("clientes/nuevo/", views.client_create, name="client_create"),
    path("clientes/<int:pk>/", views.client_detail, name="client_detail"),
    # The client page's sections (tabs), one URL each: an HTML fragment loaded on demand.
    *(
        path(f"clientes/<int:pk>/secciones/{tab}/", views.client_section, {"tab": tab}, name=f"client_section_{tab}")
        for tab in views.SECTIONS
    ),
    path("clientes/<int:pk>/editar/", views.client_edit, name="client_edit"),
    path("clientes/<int:pk>/aplicar-saldo-a-favor/", views.client_apply_credit, name="client_apply_credit"),
    path("clientes/<int:pk>/pagos/nuevo/", views.payment_create, name="payment_create"),
    path("clientes/<int:pk>/gestiones/nueva/", views.interaction_create, name="interaction_create"),
    path("clientes/<int:pk>/contactos/nuevo/", views.contact_create, name="contact_create"),
    path("clientes/<int:pk>/facturas/nueva/", views.invoice_create, name="invoice_create"),
    path("contactos/<int:pk>/editar/", views.contact_edit, name="contact_edit"),
    path("facturas/<int:pk>/estado/", views.invoice_status, name="invoice_status"),
    # Audit history and login lock-outs (accounts/views_audit.py).
    path("clientes/<int:pk>/historial-de-cambios/", views_audit.client_history, name="client_history"),
    path("auditoria/", views_audit.audit_log, name="audit_log"),
    path("preferencias/", views.my_preferences, name="preferences"),
    path("seguridad/bloqueos/", views_audit.lockout_list, name="lockout_list"),
    path("seguridad/bloqueos/desbloquear/", views_audit.lockout_reset, name="lockout_reset"),
]
