"""Helpers for tests that run the project's own commands in subprocesses (manage.py, honcho),
the way a developer or a deployment would: a clean environment, the project's virtualenv first
on PATH, runtime state in a temporary folder."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
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


# --- Long-running services for fault-injection tests (tests/faults/) -----------------------


def wait_for_port(port: int, *, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def spawn(args: list[str], *, env: dict[str, str], log: Path):
    """Start a project command in its own process group (so the whole group can be killed,
    the way a machine or a container dies), output appended to ``log``."""
    handle = log.open("a")
    try:
        return subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        handle.close()


def celery_worker_args(queue: str, name: str, *options: str) -> list[str]:
    """The arguments after ``celery -A <app>`` of a test worker: on ``queue`` alone, named
    after it, with ``options`` (concurrency...), and without gossip, mingle or heartbeat, so
    the workers of a test neither wait for nor talk to any other."""
    return [
        "worker",
        "-l",
        "info",
        "-Q",
        queue,
        *options,
        "-n",
        f"{name}-{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def kill_group(proc, sig: int | None = None, *, timeout: float = 10.0) -> None:
    """Send ``sig`` (SIGKILL by default) to the process group of ``proc`` and reap it."""
    sig = signal.SIGKILL if sig is None else sig
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def stop_group(proc, *, timeout: float = 15.0) -> None:
    """SIGTERM (a warm shutdown for Celery), SIGKILL if it does not end in ``timeout``."""
    stop_groups([proc], timeout=timeout)


def stop_groups(procs, *, timeout: float = 15.0) -> None:
    """stop_group for several processes at once: all are asked first, then all awaited."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            os.killpg(proc.pid, signal.SIGCONT)  # a stopped process only gets SIGTERM once resumed
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(proc)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (a Celery worker's pool processes), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces or parentheses: the ppid follows the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


class RedisServer:
    """A private redis-server on a free port, without persistence (a restart loses every
    queued message, the worst case for the broker). Never the shared 6379."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = spawn(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            env=clean_env(self.workdir),
            log=self.workdir / "redis.log",
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        """Stop it the hard way: queued and unacknowledged messages are gone."""
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def stop(self) -> None:
        self.kill()
