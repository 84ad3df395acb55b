"""Machine-to-machine endpoints, authenticated by an HMAC signature of the body."""

from django.urls import path

from accounts import payment_webhook as views

app_name = "webhooks"
urlpatterns = [
    path("pagos/", views.payments, name="payments"),
]
