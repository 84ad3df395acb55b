import os

import pytest
from django.db import connection

from tests.factories import make_user


@pytest.fixture(autouse=True, scope="session")
def _real_postgresql(django_db_setup, django_db_blocker):
    """The suite runs on real PostgreSQL (constraints, triggers, locking behave as in
    production). `make test` sets DATABASE_URL; a bare `pytest` on SQLite is refused."""
    if os.environ.get("MOROSOS_ALLOW_SQLITE_TESTS") == "1":
        return
    with django_db_blocker.unblock():
        assert connection.vendor == "postgresql", (
            "Tests need PostgreSQL: run `make test`, or set DATABASE_URL=postgres://postgres@127.0.0.1:5432/morosos"
        )


@pytest.fixture(autouse=True)
def _web_settings(settings):
    # The suite runs with production settings (DEBUG off). Those redirect http to https
    # and serve hashed static files from a manifest built by collectstatic; the test
    # client and the live server speak plain http, without a build.
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def admin_user(db):
    return make_user("admin", "admin", first_name="Ana", last_name="Administradora")


@pytest.fixture
def gerente(db):
    return make_user("gerente", "manager", first_name="Gabriela", last_name="Gerente")


@pytest.fixture
def gestora(db):
    """A collector with her own clients."""
    return make_user("gestora", "collector", first_name="Lucía", last_name="Gestora")


@pytest.fixture
def gestor(db):
    """A second collector: must never see the first one's clients."""
    return make_user("gestor", "collector", first_name="Mario", last_name="Gestor")


@pytest.fixture
def nobody(db):
    """A logged-in user with no role."""
    return make_user("sinrol", None)
