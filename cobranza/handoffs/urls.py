"""Hand-offs to a collection agency or to legal (included from ``cobranza.urls`` under
/cobranza/, namespace ``cobranza``)."""

from django.urls import path

from cobranza.handoffs import views

urlpatterns = [
    path("envios/", views.handoff_list, name="handoff_list"),
    path("envios/<int:pk>/", views.handoff_detail, name="handoff_detail"),
    path("envios/<int:pk>/avance/", views.handoff_update, name="handoff_update"),
    path("envios/<int:pk>/cerrar/", views.handoff_close, name="handoff_close"),
    path("envios/<int:pk>/expediente/", views.handoff_file, name="handoff_file"),
    path("clientes/<int:pk>/enviar/", views.handoff_create, name="handoff_create"),
]
