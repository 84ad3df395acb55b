"""Production configuration passes Django's deployment checklist, and refuses to start without a key."""

import os
import secrets
import subprocess
import sys

import pytest

from tests.processes import ROOT, clean_env, dotenv_defines

PG_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/morosos")


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    env = clean_env(
        tmp_path,
        DJANGO_DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="morosos.example.com",
        CSRF_TRUSTED_ORIGINS="https://morosos.example.com",
        DATABASE_URL=PG_URL,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        EMAIL_URL="smtp://127.0.0.1:1025",
    )

    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output
    assert "System check identified no issues" in output


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    if dotenv_defines("SECRET_KEY"):
        pytest.skip("this checkout's .env sets SECRET_KEY")
    env = clean_env(tmp_path, DJANGO_DEBUG="0", DATABASE_URL=PG_URL)

    result = _manage(env, "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_code_only_commands_run_without_a_secret_key(tmp_path):
    """`makemigrations --check` (and the catalog commands) need no secret: a bare checkout
    can tell whether models and migrations agree."""
    if dotenv_defines("SECRET_KEY"):
        pytest.skip("this checkout's .env sets SECRET_KEY")
    env = clean_env(tmp_path, DJANGO_DEBUG="0", DATABASE_URL=PG_URL)

    result = _manage(env, "makemigrations", "--check", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
