"""Debtors' replies, staff pages (included from ``cobranza.urls``, namespace ``cobranza``)."""

from django.urls import path

from cobranza.replies import views

urlpatterns = [
    path("respuestas/sin-asignar/", views.unmatched_list, name="replies_unmatched"),
    path("respuestas/<int:pk>/leida/", views.reply_mark_read, name="reply_mark_read"),
]
