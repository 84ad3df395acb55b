"""Helpers for tests that run the project's own commands in subprocesses (manage.py, honcho),
the way a developer or a deployment would: a clean environment, the project's virtualenv first
on PATH, runtime state in a temporary folder."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# What a subprocess may inherit from the test runner's environment; everything else (the
# DATABASE_URL/CELERY_BROKER_URL of `make test`, DJANGO_* flags, pytest's own variables) is
# dropped so that each test states the configuration it means.
_INHERITED = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SYSTEMROOT")


def clean_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["PYTHONUNBUFFERED"] = "1"
    env["MOROSOS_VAR_DIR"] = str(var_dir)
    env.update(overrides)
    return env


def dotenv_defines(*names: str) -> list[str]:
    """Names among `names` that the checkout's .env sets (settings.py reads it under the environment)."""
    path = ROOT / ".env"
    if not path.exists():
        return []
    text = path.read_text()
    return [n for n in names if re.search(rf"^\s*(export\s+)?{n}\s*=", text, re.MULTILINE)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A local TCP port with nothing listening on it (connections are refused)."""
    return free_port()


def procfile(name: str = "Procfile") -> dict[str, str]:
    """The process lines of a Procfile, as honcho and PaaS platforms read them."""
    lines = (ROOT / name).read_text().splitlines()
    return dict(m.groups() for line in lines if (m := re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)))
