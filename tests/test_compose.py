"""docker-compose.yml, the Procfiles, the Dockerfile and .env.example agree with each other.

No Docker engine runs on these machines, so the compose file is parsed (PyYAML), never started
and not passed to `docker compose config`.
"""

import json
import re

import pytest
import yaml

from tests.processes import ROOT, procfile

APP_SERVICES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return env


def _documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def test_it_declares_the_whole_stack(compose):
    assert {"postgres", "redis", "web", "worker", "beat", "mailpit"} <= set(compose["services"])


@pytest.mark.parametrize("name", ["postgres", "redis", "web"])
def test_it_healthchecks_the_database_the_broker_and_the_web_app(compose, name):
    check = compose["services"][name].get("healthcheck")
    assert check and check.get("test"), f"{name} has no healthcheck"
    assert not check.get("disable")


def test_postgres_is_15_and_probed_with_pg_isready(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_the_web_healthcheck_calls_healthz(compose):
    assert "/healthz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_a_healthy_database_and_broker(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_migrations_run_before_the_app_starts(compose, name):
    services = compose["services"]
    migrate = services["migrate"]
    assert "manage.py migrate" in migrate["command"]
    assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_commands_are_the_procfile_lines(compose, name):
    assert compose["services"][name]["command"] == procfile("Procfile")[name]


def test_the_image_default_command_is_the_procfile_web_line():
    cmd_line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    argv = json.loads(cmd_line.removeprefix("CMD "))
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == "exec " + procfile("Procfile")["web"]


def test_production_web_is_gunicorn_without_control_socket():
    web = procfile("Procfile")["web"]
    assert web.startswith("gunicorn morosos.wsgi")
    assert "--no-control-socket" in web
    assert "--bind 0.0.0.0:8000" in web


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_talk_to_the_compose_backends(compose, name):
    env = _environment(compose["services"][name])
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert env["EMAIL_URL"] == "smtp://mailpit:1025"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_read_dot_env(compose, name):
    paths = [e["path"] if isinstance(e, dict) else e for e in compose["services"][name]["env_file"]]
    assert ".env" in paths


def test_mailpit_serves_smtp_and_its_web_ui(compose):
    mailpit = compose["services"]["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert any(str(port).endswith(":8025") for port in mailpit["ports"])
    assert "1025" in [str(port) for port in mailpit["expose"]], "SMTP inside the stack"
    assert not any(str(port).endswith(":1025") for port in mailpit.get("ports", [])), "SMTP is not published"
    assert "readyz" in " ".join(mailpit["healthcheck"]["test"])


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_every_app_service_sends_its_mail_to_mailpit(compose, name):
    service = compose["services"][name]
    assert _environment(service)["EMAIL_URL"] == "smtp://mailpit:1025"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_the_senders_wait_for_a_healthy_mailpit(compose, name):
    assert compose["services"][name]["depends_on"]["mailpit"]["condition"] == "service_healthy"


def test_volumes_are_named_and_declared(compose):
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                used.add(source)
    assert used, "no named volumes"
    assert used <= declared
    postgres_volumes = compose["services"]["postgres"]["volumes"]
    assert any(v.split(":", 1)[0] in declared and "/var/lib/postgresql/data" in v for v in postgres_volumes)


def test_every_variable_compose_uses_is_documented_in_env_example(compose):
    raw = (ROOT / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", raw))
    interpolated |= set(re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", raw))
    app_env = set()
    for name in (*APP_SERVICES, "migrate"):
        app_env |= set(_environment(compose["services"][name]))
    missing = sorted((interpolated | app_env) - _documented())
    assert not missing, f"not documented in .env.example: {missing}"


def test_dev_procfile_runs_the_dev_server_worker_and_beat():
    dev = procfile("Procfile.dev")
    assert set(dev) == {"web", "worker", "beat"}
    assert dev["web"] == "DJANGO_DEBUG=1 python manage.py runserver 0.0.0.0:${PORT:-8000}"
    assert dev["worker"].startswith("celery -A morosos worker -l info --concurrency 2")
    assert dev["beat"] == "celery -A morosos beat -l info"
