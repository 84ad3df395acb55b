"""`make run` as a newcomer runs it: no DATABASE_URL, no CELERY_BROKER_URL. It starts the
embedded PostgreSQL (a server from a pip package, data and Unix socket under the var folder),
migrates, loads the demo, then web + Celery worker + Celery beat; Ctrl-C (SIGINT to the
foreground process group) stops every one of them and then the database server. A second
`make run` starts again on the same data.

Every wait is bounded and the processes are killed whatever happens.
"""

import contextlib
import http.cookiejar
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import psycopg2

from tests.processes import ROOT, clean_env, free_port

START_TIMEOUT = 300  # seconds for setup (collectstatic, migrations, the demo) and web, worker and beat
STOP_TIMEOUT = 60  # seconds for everything to exit after Ctrl-C


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


def _log_in(base: str, username: str, password: str) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/cuenta/entrar/", timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
    request = urllib.request.Request(f"{base}/cuenta/entrar/", data=form.encode(), headers={"Referer": base})
    with opener.open(request, timeout=10) as response:
        assert response.status == 200 and "/cuenta/entrar/" not in response.url, response.url


def _postgres_serving(pgdata: Path) -> list[int]:
    """PIDs of PostgreSQL server processes on this data directory."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc.pid)
    return found


def _tcp_peers_on_5432(sessions: set[int]) -> list[str]:
    """TCP connections to a PostgreSQL port held by the app's processes (there must be none)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(proc.pid) in sessions:
                found += [
                    f"{proc.pid}: {c.raddr}"
                    for c in proc.net_connections(kind="inet")
                    if c.raddr and c.raddr.port == 5432
                ]
    return found


class _MakeRun:
    """One `make run` in its own process group, as a terminal runs a foreground job."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output = _Output(self.proc.stdout)
        self.sessions: set[int] = set()

    def wait_serving(self, base: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        proc, output = self.proc, self.output
        healthy = _wait_until(lambda: _get(f"{base}/healthz")[0] == 200 or proc.poll() is not None, deadline)
        assert healthy and proc.poll() is None, f"web never answered /healthz:\n{output.text}"
        status, body = _get(f"{base}/healthz")
        assert status == 200, body
        assert '"database": {"ok": true, "detail": "postgresql"}' in body
        assert '"broker": {"ok": true, "detail": "filesystem"}' in body
        worker_ready = re.compile(r"worker\.1\s*\|.*celery@\S+ ready\.")
        assert _wait_until(lambda: worker_ready.search(output.text), deadline), output.text
        assert _wait_until(lambda: re.search(r"beat\.1\s*\|.*beat: Starting\.\.\.", output.text), deadline), output.text
        self.sessions = {int(pid) for pid in re.findall(r"\b(?:web|worker|beat)\.1 started \(pid=(\d+)\)", output.text)}
        assert len(self.sessions) == 3, output.text

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        self.proc.wait(timeout=STOP_TIMEOUT)
        self.output.join(5)
        assert "SIGINT received" in self.output.text
        for name in ("web", "worker", "beat"):
            assert re.search(rf"{name}\.1 stopped \(rc=", self.output.text), f"{name} did not stop:\n{self.output.text}"
        assert _wait_until(lambda: not _sessions_alive(self.sessions), time.monotonic() + 10), _sessions_alive(
            self.sessions
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for sid in self.sessions:
            with contextlib.suppress(OSError):
                os.killpg(sid, signal.SIGKILL)


def test_make_run_serves_the_demo_on_the_embedded_postgresql_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    var = tmp_path / "var"
    pgdata = var / "pgdata"
    # What a newcomer's shell gives `make run`: no DATABASE_URL / CELERY_BROKER_URL (the
    # suite's own are dropped by clean_env), runtime state in a temp folder.
    env = clean_env(var, PORT=str(port))
    first = _MakeRun(env)
    try:
        first.wait_serving(base)
        status, page = _get(f"{base}/cuenta/entrar/")
        assert status == 200 and 'name="username"' in page

        # The app's processes talk to the embedded server through its socket in var/pgdata,
        # and to no PostgreSQL over TCP (the system server listens on 127.0.0.1:5432).
        assert _postgres_serving(pgdata), "no embedded PostgreSQL on var/pgdata"
        conn = psycopg2.connect(dbname="morosos", user="postgres", host=str(pgdata))
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW listen_addresses")
                assert cur.fetchone()[0] == "", "the embedded server must not listen on TCP"
                cur.execute("SELECT count(*) FROM accounts_client")
                assert cur.fetchone()[0] > 0, "the demo was not loaded into the embedded server"
                # A login through the web server is written to the embedded server.
                _log_in(base, "gerente", "morosos-demo")
                cur.execute("SELECT last_login IS NOT NULL FROM auth_user WHERE username = 'gerente'")
                assert cur.fetchone() == (True,), "the web server's login did not reach the embedded server"
        finally:
            conn.close()
        assert _tcp_peers_on_5432(first.sessions) == []

        first.ctrl_c()
        assert _wait_until(lambda: not _postgres_serving(pgdata), time.monotonic() + 15), (
            f"the embedded PostgreSQL outlived Ctrl-C:\n{first.output.text}"
        )
    finally:
        first.kill()

    # A second `make run` starts the server again on the same data: the demo is not loaded twice.
    second = _MakeRun(env)
    try:
        second.wait_serving(base)
        assert re.search(r"seed_demo: \d+ clients already exist; nothing to do", second.output.text), second.output.text
        second.ctrl_c()
        assert _wait_until(lambda: not _postgres_serving(pgdata), time.monotonic() + 15), second.output.text
    finally:
        second.kill()
        for pid in _postgres_serving(pgdata):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
