"""Login throttling (django-axes): repeated wrong passwords lock a username out from one
address for a while; administrators see and release lock-outs; the API's tokens keep working."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
HOME = reverse("home")
OFFICE = "10.0.0.7"
ELSEWHERE = "10.0.0.99"


def _login(http, username, password, ip=OFFICE):
    return http.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _fail(http, username, times, ip=OFFICE):
    return [_login(http, username, "contraseña-equivocada", ip) for _ in range(times)]


def test_the_limit_and_cool_off_default_to_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_a_few_wrong_passwords_are_form_errors_and_the_right_one_still_works(gestora):
    http = HttpClient()
    responses = _fail(http, "gestora", settings.AXES_FAILURE_LIMIT - 1)

    assert {r.status_code for r in responses} == {200}
    assert responses[-1].context["form"].non_field_errors()  # "wrong username or password", on the form
    response = _login(http, "gestora", PASSWORD)
    assert response.status_code == 302 and response.url == HOME
    # A success starts the count again.
    assert not AccessAttempt.objects.filter(username="gestora").exists()


def test_the_fifth_wrong_password_locks_the_user_out_with_a_page_that_says_until_when(gestora):
    http = HttpClient()
    moment = dt.datetime(2026, 6, 1, 10, 0, tzinfo=timezone.get_current_timezone())
    with time_machine.travel(moment, tick=False):
        *_, locked = _fail(http, "gestora", settings.AXES_FAILURE_LIMIT)
        again = _login(http, "gestora", PASSWORD)

    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Acceso bloqueado temporalmente" in html
    assert "Podrá volver a intentarlo en 15 minutos, a partir de las 10:15." in html
    assert "administrador" in html
    assert 'name="password"' not in html  # the lock-out page offers no form to keep guessing
    # The right password does not get in while the lock-out lasts.
    assert again.status_code == 429
    assert "_auth_user_id" not in http.session


def test_the_lock_out_is_for_that_user_from_that_address_only(gestora, gestor):
    _fail(HttpClient(), "gestora", settings.AXES_FAILURE_LIMIT, ip=OFFICE)

    assert _login(HttpClient(), "gestora", PASSWORD, ip=ELSEWHERE).status_code == 302
    assert _login(HttpClient(), "gestor", PASSWORD, ip=OFFICE).status_code == 302
    assert _login(HttpClient(), "gestora", PASSWORD, ip=OFFICE).status_code == 429


def test_the_user_may_log_in_again_once_the_cool_off_has_passed(gestora):
    start = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        _fail(HttpClient(), "gestora", settings.AXES_FAILURE_LIMIT)
    with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
        assert _login(HttpClient(), "gestora", PASSWORD).status_code == 429
    # That attempt during the lock-out started the wait again.
    with time_machine.travel(start + dt.timedelta(minutes=14 + 16), tick=False):
        assert _login(HttpClient(), "gestora", PASSWORD).status_code == 302


def test_an_administrator_sees_the_lock_out_and_releases_it(gestora, admin_user):
    _fail(HttpClient(), "gestora", settings.AXES_FAILURE_LIMIT)
    _fail(HttpClient(), "gerente-olvidadizo", 2)
    admin = HttpClient()
    admin.force_login(admin_user)

    page = admin.get(reverse("lockout_list"))
    locks = {lock.username: lock for lock in page.context["lockouts"]}

    assert locks["gestora"].locked and locks["gestora"].failures == settings.AXES_FAILURE_LIMIT
    assert not locks["gerente-olvidadizo"].locked
    assert page.context["lockouts"][0].username == "gestora"  # locked ones first
    assert "Bloqueado hasta las" in page.content.decode()

    response = admin.post(reverse("lockout_reset"), {"username": "gestora", "ip_address": OFFICE})

    assert response.status_code == 302 and response.url == reverse("lockout_list")
    assert _login(HttpClient(), "gestora", PASSWORD).status_code == 302


def test_releasing_nothing_is_a_message_not_an_error(admin_user):
    admin = HttpClient()
    admin.force_login(admin_user)

    response = admin.post(reverse("lockout_reset"), {}, follow=True)

    assert response.status_code == 200
    assert "Indique qué bloqueo quiere levantar." in response.content.decode()


@pytest.mark.parametrize("who", ["gerente", "gestora", "nobody"])
def test_only_administrators_see_or_release_lock_outs(who, request):
    http = HttpClient()
    http.force_login(request.getfixturevalue(who))

    assert http.get(reverse("lockout_list")).status_code == 403
    assert http.post(reverse("lockout_reset"), {"username": "x"}).status_code == 403


def test_the_api_token_keeps_working_for_a_user_locked_out_of_the_login_page(gerente):
    """Tokens are not passwords: a guessed-at login page does not cut off an integration."""
    _fail(HttpClient(), "gerente", settings.AXES_FAILURE_LIMIT, ip="127.0.0.1")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=gerente).key}")

    assert api.get(reverse("api:client-list")).status_code == 200


def test_authenticate_without_a_request_checks_the_password_only(gestora):
    """Management commands and the shell have no client address to throttle."""
    assert authenticate(None, username="gestora", password=PASSWORD) == gestora
    assert authenticate(None, username="gestora", password="mala") is None


def test_failures_do_not_carry_over_between_tests_first(gestora):
    _fail(HttpClient(), "gestora", settings.AXES_FAILURE_LIMIT)
    assert AccessAttempt.objects.filter(username="gestora").exists()


def test_failures_do_not_carry_over_between_tests_second(gestora):
    """Attempts are stored in the database and rolled back with each test."""
    assert not AccessAttempt.objects.exists()
    assert _login(HttpClient(), "gestora", PASSWORD).status_code == 302
