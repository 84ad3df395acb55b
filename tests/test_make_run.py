"""Smoke test of `make run`: its foreground command (honcho with Procfile.dev) brings up the web
server, a Celery worker and Celery beat on the embedded defaults (SQLite + file transport), and
Ctrl-C (SIGINT to the foreground process group) stops every one of them.

Runs in CI like any other test; it needs no PostgreSQL or Redis. Every wait is bounded and the
processes are killed whatever happens.
"""

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.processes import ROOT, clean_env, free_port

START_TIMEOUT = 90  # seconds for web, worker and beat to be up
STOP_TIMEOUT = 30  # seconds for everything to exit after Ctrl-C


def _run_command() -> list[str]:
    """The command `make run` starts after its setup steps, read from the Makefile itself."""
    match = re.search(r"^RUN_CMD\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile has no RUN_CMD"
    return shlex.split(match.group(1))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _sessions_alive(sids: set[int]) -> list[str]:
    """Processes still running in the given sessions (honcho starts each process in its own)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) in sids:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    alive.append(f"{entry.name}: {(entry / 'cmdline').read_text().replace(chr(0), ' ')}")
        except (OSError, IndexError):
            continue
    return alive


class _Output:
    """Collects a process's merged stdout/stderr in a background thread."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in iter(stream.readline, ""):
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def join(self, timeout: float):
        self._thread.join(timeout)


def _wait_until(predicate, deadline: float, step: float = 0.5) -> bool:
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_make_run_serves_the_app_with_worker_and_beat_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The environment `make run` gives its command: DEBUG on, PORT, the virtualenv first on PATH,
    # no DATABASE_URL / CELERY_BROKER_URL (embedded defaults), runtime state in a temp folder.
    env = clean_env(tmp_path / "var", DJANGO_DEBUG="1", PORT=str(port))
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr

    proc = subprocess.Popen(
        _run_command(),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    output = _Output(proc.stdout)
    sessions: set[int] = set()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        healthy = _wait_until(lambda: _get(f"{base}/healthz")[0] == 200 or proc.poll() is not None, deadline)
        assert healthy and proc.poll() is None, f"web never answered /healthz:\n{output.text}"
        status, body = _get(f"{base}/healthz")
        assert status == 200, body
        assert '"database": {"ok": true, "detail": "sqlite"}' in body
        assert '"broker": {"ok": true, "detail": "filesystem"}' in body

        status, page = _get(f"{base}/cuenta/entrar/")
        assert status == 200
        assert 'name="username"' in page and 'name="password"' in page
        assert "csrfmiddlewaretoken" in page

        worker_ready = re.compile(r"worker\.1\s*\|.*celery@\S+ ready\.")
        assert _wait_until(lambda: worker_ready.search(output.text), deadline), (
            f"the Celery worker never reported ready:\n{output.text}"
        )
        assert _wait_until(lambda: re.search(r"beat\.1\s*\|.*beat: Starting\.\.\.", output.text), deadline), (
            f"Celery beat never started:\n{output.text}"
        )
        sessions = {int(pid) for pid in re.findall(r"\b(?:web|worker|beat)\.1 started \(pid=(\d+)\)", output.text)}
        assert len(sessions) == 3, output.text
        # "Starting..." is printed before beat opens its schedule file; make sure it got that far.
        assert _wait_until(lambda: any((tmp_path / "var").glob("celerybeat-schedule*")), deadline), output.text
        assert "stopped (rc=" not in output.text, f"a process died before Ctrl-C:\n{output.text}"

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(timeout=STOP_TIMEOUT)
        output.join(5)

        assert "SIGINT received" in output.text
        for name in ("web", "worker", "beat"):
            assert re.search(rf"{name}\.1 stopped \(rc=", output.text), f"{name} did not stop:\n{output.text}"
        assert _wait_until(lambda: not _sessions_alive(sessions), time.monotonic() + 10), _sessions_alive(sessions)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for sid in sessions:
            with contextlib.suppress(OSError):
                os.killpg(sid, signal.SIGKILL)
