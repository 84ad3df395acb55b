"""Dunning policies, their ladders and message templates (managers only), under /cobranza/."""

from django.urls import path

from cobranza.ladders import views

urlpatterns = [
    path("politicas/", views.policy_list, name="policy_list"),
    path("politicas/nueva/", views.policy_create, name="policy_create"),
    path("politicas/<int:pk>/", views.policy_edit, name="policy_edit"),
    path("politicas/<int:pk>/pasos/nuevo/", views.step_create, name="step_create"),
    path("pasos/<int:pk>/", views.step_edit, name="step_edit"),
    path("pasos/<int:pk>/eliminar/", views.step_delete, name="step_delete"),
    path("pasos/<int:pk>/mover/", views.step_move, name="step_move"),
    path("pasos/<int:pk>/puesta-al-dia/", views.step_catch_up, name="step_catch_up"),
    path("plantillas/", views.template_list, name="template_list"),
    path("plantillas/nueva/", views.template_create, name="template_create"),
    path("plantillas/<int:pk>/", views.template_edit, name="template_edit"),
    path("plantillas/vista-previa/", views.template_preview, name="template_preview"),
]
