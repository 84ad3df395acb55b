"""The old-password field of the password change is throttled per user, in the shared cache
(the same django-ratelimit counters as the portal, tests/test_rate_limits.py)."""

import pytest
from django.urls import reverse


def _change(client, old):
    return client.post(
        reverse("password_change"),
        {"old_password": old, "new_password1": "otra-clave-larga-9", "new_password2": "otra-clave-larga-9"},
    )


@pytest.mark.django_db
def test_wrong_old_passwords_are_throttled_per_user(client, gestora, settings):
    settings.PASSWORD_CHANGE_RATE = "3/15m"
    gestora.set_password("la-clave-buena-7")
    gestora.save(update_fields=["password"])
    client.force_login(gestora)
    for _ in range(3):
        errors = _change(client, "equivocada").context["form"].errors["old_password"]
        assert "Demasiados intentos" not in " ".join(errors)
    # Over the limit even the right password is not checked: no oracle for the guesser.
    errors = _change(client, "la-clave-buena-7").context["form"].errors["old_password"]
    assert "Demasiados intentos" in " ".join(errors)
    gestora.refresh_from_db()
    assert gestora.check_password("la-clave-buena-7")


@pytest.mark.django_db
def test_the_right_old_password_changes_it_below_the_limit(client, gestora):
    gestora.set_password("la-clave-buena-7")
    gestora.save(update_fields=["password"])
    client.force_login(gestora)
    _change(client, "equivocada")
    response = _change(client, "la-clave-buena-7")
    assert response.status_code == 302
    gestora.refresh_from_db()
    assert gestora.check_password("otra-clave-larga-9")
