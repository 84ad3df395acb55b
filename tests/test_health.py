"""GET /healthz: what compose healthchecks and load balancers probe. Real PostgreSQL and the real
Redis broker of CELERY_BROKER_URL (as `make test` sets them), no mocks."""

import pytest
from django.conf import settings as django_settings

from morosos.celery import app as celery_app
from tests.processes import closed_port

pytestmark = pytest.mark.django_db


def test_it_reports_database_and_broker_ok(client):
    assert django_settings.CELERY_BROKER_URL.startswith("redis://"), (
        "this test talks to the real Redis broker: run `make test`, or set CELERY_BROKER_URL=redis://..."
    )

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "database": {"ok": True, "detail": "postgresql"},
        "broker": {"ok": True, "detail": "redis"},
    }


def test_it_answers_503_when_the_broker_is_unreachable(client, settings, monkeypatch):
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration, so all
    # three places change; pytest's fixtures restore settings and environment, we restore the app.
    previous = celery_app.conf["broker_url"]
    settings.CELERY_BROKER_URL = dead
    monkeypatch.setenv("CELERY_BROKER_URL", dead)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    celery_app.conf["broker_url"] = dead
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf["broker_url"] = previous

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["broker"]["ok"] is False
    assert body["database"] == {"ok": True, "detail": "postgresql"}


def test_it_is_open_to_anonymous_callers_without_a_login_redirect(client):
    response = client.get("/healthz", follow=False)

    assert response.status_code in (200, 503)
    assert "Location" not in response
    assert "no-cache" in response["Cache-Control"]


def test_it_is_not_redirected_to_https_in_production(client, settings):
    """Probes speak plain HTTP inside the network; SECURE_SSL_REDIRECT must not bounce them."""
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/cuenta/entrar/").status_code == 301


def test_it_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


def test_the_broker_is_reported_ok_again_after_the_outage_test(client):
    """Guards the restore above: later tests must see the real broker."""
    assert client.get("/healthz").json()["broker"]["ok"] is True
