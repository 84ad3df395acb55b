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


# --- docker-compose.scale.yml: N web and M worker containers (docs/scaling.md) ----------------


class _Reset:
    """``!reset``: the override removes the base file's value."""


class _Override:
    def __init__(self, value):
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus compose's merge tags."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())
_ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: _Override(
        loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)
    ),
)

# Compose replaces these sequences; it concatenates (and deduplicates) the others.
_REPLACED = {"command", "entrypoint", "test"}


def _merge(base, override, key=""):
    """``docker compose -f base -f override``'s merge (compose-spec, "merge" section): mappings
    merged key by key, ``command``/``entrypoint``/healthcheck ``test`` replaced, other
    sequences appended (volumes and ports unique), ``!reset`` removes, ``!override`` replaces."""
    if isinstance(override, _Reset):
        return None
    if isinstance(override, _Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            value = _merge(base.get(k), v, k)
            if value is None and isinstance(v, _Reset):
                merged.pop(k, None)
            else:
                merged[k] = value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        return base + [item for item in override if item not in base]
    return override


@pytest.fixture(scope="module")
def scaled():
    base = yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=_ComposeLoader)
    override = yaml.load((ROOT / "docker-compose.scale.yml").read_text(), Loader=_ComposeLoader)
    return _merge(base, override)


def test_the_merge_follows_compose_rules():
    base = {"a": [1, 2], "command": ["x"], "env": {"A": "1", "B": "2"}, "ports": ["8000:8000"]}
    override = {"a": [2, 3], "command": ["y"], "env": {"B": "3"}, "ports": _Reset()}
    assert _merge(base, override) == {"a": [1, 2, 3], "command": ["y"], "env": {"A": "1", "B": "3"}}


def _replicas(service: dict, default_env: dict) -> int:
    value = str(service.get("deploy", {}).get("replicas", 1))
    match = re.fullmatch(r"\$\{([A-Z_]+):-(\d+)\}", value)
    return int(default_env.get(match.group(1), match.group(2))) if match else int(value)


def test_the_scale_override_runs_several_web_and_worker_containers_and_one_beat(scaled):
    services = scaled["services"]
    assert _replicas(services["web"], {}) >= 2
    assert _replicas(services["worker"], {}) >= 2
    assert _replicas(services["worker"], {"WORKER_REPLICAS": "8"}) == 8
    assert _replicas(services["beat"], {"WORKER_REPLICAS": "8", "WEB_REPLICAS": "8"}) == 1
    # Nothing else may start a scheduler: beat is the one service running `celery beat`.
    assert [name for name, s in services.items() if "celery -A morosos beat" in str(s.get("command", ""))] == ["beat"]


def test_web_replicas_sit_behind_the_proxy_on_the_published_port(scaled):
    services = scaled["services"]
    assert "ports" not in services["web"], "replicas cannot share one host port"
    proxy = services["proxy"]
    assert proxy["ports"] == ["${MOROSOS_HTTP_PORT:-8000}:8080"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    conf_mount = next(v for v in proxy["volumes"] if v.endswith(":/etc/nginx/conf.d/default.conf:ro"))
    conf = (ROOT / conf_mount.split(":", 1)[0]).read_text()
    assert "listen 8080;" in conf and "set $web http://web:8000;" in conf
    assert "resolver 127.0.0.11" in conf, "re-resolve web: replicas come and go"
    # The proxy overwrites X-Forwarded-For and the app trusts exactly one proxy.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert _environment(services["web"])["AXES_PROXY_COUNT"] == "1"
    # The base file's web settings survive the merge.
    assert services["web"]["command"] == procfile("Procfile")["web"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_every_app_container_shares_the_var_volume_and_the_same_backends(scaled):
    services = scaled["services"]
    envs = {name: _environment(services[name]) for name in APP_SERVICES}
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY", "MOROSOS_VAR_DIR"):
        assert len({env[key] for env in envs.values()}) == 1, key
    assert envs["web"]["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert envs["web"]["CACHE_URL"].startswith("redis://redis:6379/"), "rate limits shared by every replica"
    var_dir = envs["web"]["MOROSOS_VAR_DIR"]
    for name in APP_SERVICES:
        assert f"app-var:{var_dir}" in services[name]["volumes"], name
    assert "app-var" in scaled["volumes"]


def test_every_variable_the_scale_override_uses_is_documented_in_env_example(scaled):
    raw = (ROOT / "docker-compose.scale.yml").read_text()
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", raw))
    added = {k for name in ("web", "worker", "beat", "proxy") for k in _environment(scaled["services"][name])}
    missing = sorted((interpolated | added) - _documented())
    assert not missing, f"not documented in .env.example: {missing}"
