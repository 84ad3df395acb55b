"""With nothing configured the project runs on embedded defaults (the embedded PostgreSQL's Unix
socket and a file-based Celery transport under MOROSOS_VAR_DIR); DATABASE_URL and
CELERY_BROKER_URL switch it to another PostgreSQL server and Redis. PostgreSQL is the only
SQL dialect: any other DATABASE_URL is refused at start-up."""

import json
import subprocess
import sys

import pytest

from tests.processes import ROOT, clean_env, dotenv_defines

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from morosos.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "name": str(db["NAME"]),
    "host": db.get("HOST", ""),
    "port": str(db.get("PORT", "")),
    "broker": settings.CELERY_BROKER_URL,
    "celery_broker": app.conf.broker_url,
    "transport_options": getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
    "beat_schedule": settings.CELERY_BEAT_SCHEDULE_FILENAME,
    "static_root": str(settings.STATIC_ROOT),
}))
"""


def _settings(env) -> dict:
    env = {**env, "DJANGO_SETTINGS_MODULE": "morosos.settings", "DJANGO_DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_configuration_it_uses_the_embedded_postgresql_socket_and_the_file_transport(tmp_path):
    if dotenv_defines("DATABASE_URL", "CELERY_BROKER_URL", "STATIC_ROOT"):
        pytest.skip("this checkout's .env overrides the defaults")
    var = tmp_path / "var"

    found = _settings(clean_env(var))

    assert found["engine"] == "django.db.backends.postgresql"
    # A Unix socket folder as HOST and no port: never a TCP connection to whatever listens on 5432.
    assert (found["name"], found["host"], found["port"]) == ("morosos", str(var.resolve() / "pgdata"), "")
    assert found["broker"] == found["celery_broker"] == "filesystem://"
    assert found["transport_options"]["data_folder_in"] == str(var / "celery" / "queue")
    assert (var / "celery" / "queue").is_dir() and (var / "celery" / "processed").is_dir()
    assert found["beat_schedule"] == str(var / "celerybeat-schedule")
    assert found["static_root"] == str(var / "staticfiles")


def test_database_url_and_broker_url_switch_to_postgresql_and_redis(tmp_path):
    var = tmp_path / "var"

    found = _settings(
        clean_env(
            var,
            DATABASE_URL="postgres://morosos:secret@db.internal:5433/morosos",
            CELERY_BROKER_URL="redis://cache.internal:6379/3",
        )
    )

    assert found["engine"] == "django.db.backends.postgresql"
    assert (found["name"], found["host"]) == ("morosos", "db.internal")
    assert found["broker"] == found["celery_broker"] == "redis://cache.internal:6379/3"
    assert found["transport_options"] == {}
    assert not (var / "celery").exists(), "the file transport's folders are only made when it is used"


def test_a_database_url_that_is_not_postgresql_is_refused_with_a_clear_error(tmp_path):
    env = {
        **clean_env(tmp_path / "var", DATABASE_URL="sqlite:///db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "morosos.settings",
        "DJANGO_DEBUG": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
