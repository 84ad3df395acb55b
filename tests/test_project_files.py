""".env.example documents the whole configuration, and installs are reproducible."""

import re
import tomllib

from tests.processes import ROOT

SETTINGS = ROOT / "morosos" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"

# env("X"), env.str("X", ...), env.db_url("X"), os.environ.get("X"), os.environ["X"], os.getenv("X")
_READS = re.compile(
    r"""(?:\benv(?:\.\w+)?\(\s*|os\.environ\.get\(\s*|os\.environ\[\s*|os\.getenv\(\s*)["']([A-Z][A-Z0-9_]*)["']"""
)


def _documented() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_every_variable_settings_reads_is_documented_in_env_example():
    read = set(_READS.findall(SETTINGS.read_text()))
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "MOROSOS_VAR_DIR"} <= read  # the regex works
    missing = sorted(read - _documented())
    assert not missing, f"settings.py reads these but .env.example does not document them: {missing}"


def test_env_example_sets_nothing_and_holds_no_secret():
    """Copying it to .env must not change `make run`, and it must never carry a real secret."""
    assignments = [
        line for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=", line)
    ]
    assert not assignments, f"uncommented assignments in .env.example: {assignments}"
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        values = re.findall(rf"^#\s*{name}=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
        assert values == [""], f"{name} should be listed with an empty value"


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            name = re.sub(r"\[.*\]", "", name)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def test_constraints_pin_every_direct_dependency_at_its_pyproject_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = _pins([*project["dependencies"], *project["optional-dependencies"]["dev"]])
    locked = _pins((ROOT / "requirements" / "constraints.txt").read_text().splitlines())
    mismatched = {name: (version, locked.get(name)) for name, version in direct.items() if locked.get(name) != version}
    assert not mismatched, f"run `make lock` (pyproject pin, constraints pin): {mismatched}"
    assert "morosos" not in locked
