"""Machine-to-machine endpoints, authenticated by an HMAC signature of the body."""

from django.urls import path

from . import views_webhooks as views

app_name = "webhooks"
urlpatterns = [
    path("pagos/", views.payments, name="payments"),
]
