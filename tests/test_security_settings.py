"""Production settings (DEBUG off) keep sessions, cookies, framing, transport and passwords
tight, and the login throttle follows its environment variables."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest

from tests.processes import ROOT, clean_env, dotenv_defines

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib.auth.password_validation import get_default_password_validators
names = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE", "SESSION_EXPIRE_AT_BROWSER_CLOSE", "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY", "CSRF_COOKIE_SAMESITE", "X_FRAME_OPTIONS", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_REFERRER_POLICY", "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "AXES_ENABLED", "AXES_FAILURE_LIMIT", "AXES_LOCKOUT_PARAMETERS", "AXES_RESET_ON_SUCCESS",
    "AUTHENTICATION_BACKENDS", "MIDDLEWARE",
]
found = {name: getattr(settings, name) for name in names}
found["AXES_COOLOFF_MINUTES"] = settings.AXES_COOLOFF_TIME.total_seconds() / 60
found["validators"] = {type(v).__name__: getattr(v, "min_length", None) for v in get_default_password_validators()}
found["redacting_handlers"] = [
    name for name, h in settings.LOGGING["handlers"].items() if "redact_pii" in h.get("filters", [])
]
print(json.dumps(found))
"""


def _production(tmp_path, **env) -> dict:
    if dotenv_defines("DJANGO_DEBUG", "SESSION_COOKIE_AGE", "AXES_FAILURE_LIMIT", "AXES_COOLOFF_MINUTES"):
        pytest.skip("this checkout's .env overrides security settings")
    environ = clean_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="morosos.settings",
        DJANGO_DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="morosos.example.com",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_http_only_and_same_site(tmp_path):
    found = _production(tmp_path)

    assert found["DEBUG"] is False
    assert found["SESSION_COOKIE_SECURE"] and found["SESSION_COOKIE_HTTPONLY"]
    assert found["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert found["CSRF_COOKIE_SECURE"] and found["CSRF_COOKIE_HTTPONLY"]
    assert found["CSRF_COOKIE_SAMESITE"] == "Lax"


def test_production_sessions_last_a_working_day_and_end_with_the_browser(tmp_path):
    found = _production(tmp_path)

    assert found["SESSION_COOKIE_AGE"] == 10 * 60 * 60
    assert found["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True


def test_production_forces_https_forbids_framing_and_keeps_referrers_on_site(tmp_path):
    found = _production(tmp_path)

    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_HSTS_SECONDS"] >= 365 * 24 * 60 * 60
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and found["SECURE_HSTS_PRELOAD"]
    assert found["X_FRAME_OPTIONS"] == "DENY"
    assert found["SECURE_REFERRER_POLICY"] == "same-origin"
    assert found["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert found["SECURE_CROSS_ORIGIN_OPENER_POLICY"] == "same-origin"


def test_passwords_are_checked_for_length_similarity_commonness_and_digits_only(tmp_path):
    found = _production(tmp_path)

    assert found["validators"] == {
        "UserAttributeSimilarityValidator": None,
        "MinimumLengthValidator": 10,
        "CommonPasswordValidator": None,
        "NumericPasswordValidator": None,
    }


def test_logins_are_throttled_and_audited_in_production(tmp_path):
    found = _production(tmp_path)

    assert found["AXES_ENABLED"] is True
    assert (found["AXES_FAILURE_LIMIT"], found["AXES_COOLOFF_MINUTES"]) == (5, 15)
    assert found["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]
    assert found["AXES_RESET_ON_SUCCESS"] is True
    assert found["AUTHENTICATION_BACKENDS"][0] == "accounts.audit.LoginThrottleBackend"
    middleware = found["MIDDLEWARE"]
    assert middleware[-1] == "axes.middleware.AxesMiddleware"
    assert middleware.index("accounts.audit.AuditActorMiddleware") > middleware.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    )
    # Every handler: the console and runserver's request log (portal links are in request lines).
    assert found["redacting_handlers"] == ["console", "django.server"]


def test_the_throttle_and_session_follow_their_environment_variables(tmp_path):
    found = _production(
        tmp_path,
        AXES_FAILURE_LIMIT="3",
        AXES_COOLOFF_MINUTES="30",
        SESSION_COOKIE_AGE="3600",
        SESSION_EXPIRE_AT_BROWSER_CLOSE="0",
        PASSWORD_MIN_LENGTH="12",
    )

    assert (found["AXES_FAILURE_LIMIT"], found["AXES_COOLOFF_MINUTES"]) == (3, 30)
    assert (found["SESSION_COOKIE_AGE"], found["SESSION_EXPIRE_AT_BROWSER_CLOSE"]) == (3600, False)
    assert found["validators"]["MinimumLengthValidator"] == 12
