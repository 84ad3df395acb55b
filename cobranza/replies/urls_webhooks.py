"""Inbound reply webhooks, under /webhooks/respuestas/ (signed; see ``cobranza.replies.views``)."""

from django.urls import path

from cobranza.replies import views

app_name = "replies_webhooks"
urlpatterns = [
    path("correo/", views.email_reply, name="email"),
    path("sms/", views.sms_reply, name="sms"),
    path("whatsapp/", views.whatsapp_reply, name="whatsapp"),
]
