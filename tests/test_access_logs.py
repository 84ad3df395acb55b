"""The debtor's portal link never reaches a log (security finding 5, docs/security.md).

The link ``/portal/<signed token>`` is the debtor's credential. The real servers run here, in
subprocesses, on the test database: gunicorn started with the Procfile's own ``web`` line,
and Django's development server. Each serves a debtor's statement, a follow-up page with the
link in its Referer and a mangled link (a 4xx that Django's request logging reports); then
every byte they logged — access log, error log, the process's output — is read.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from cobranza.portal import links
from tests.factories import make_client
from tests.processes import clean_env, free_port, procfile, spawn, stop_group, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)
VENV_BIN = Path(sys.executable).parent


def _client(gerente):
    return make_client(by=gerente)


def _env(tmp_path) -> dict[str, str]:
    db = connection.settings_dict
    return clean_env(
        tmp_path,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL="memory://",
        # The same key as this process: the server accepts the link signed here.
        SECRET_KEY=settings.SECRET_KEY,
        # DEBUG serves the pages without a collectstatic build; logging is configured the same.
        DJANGO_DEBUG="1",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="INFO",
    )


def _visit(port: int, token: str) -> list[int]:
    base = f"http://127.0.0.1:{port}"
    statuses = []
    for path, headers in [
        (f"/portal/{token}", {}),
        (f"/portal/{token}/promesa/?correo=rosa.pagos@clavo.example", {"Referer": f"{base}/portal/{token}"}),
        (f"/portal/{token[:-6]}xxxxxx", {}),
    ]:
        request = urllib.request.Request(base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    return statuses


def _assert_masked(text: str, token: str) -> None:
    signature = token.rsplit(":", 1)[-1]
    assert token not in text
    assert signature not in text and signature[:12] not in text
    assert token.split(":", 1)[0] + ":" not in text  # not even the signed value's prefix
    assert "rosa.pagos@clavo.example" not in text


def test_gunicorn_access_and_error_logs_mask_portal_links(tmp_path, gerente):
    token = links.token_for(_client(gerente))
    port = free_port()
    access, errors, output = tmp_path / "access.log", tmp_path / "error.log", tmp_path / "output.log"
    web = procfile("Procfile")["web"]
    assert "--config python:morosos.gunicorn_conf" in web
    web = (
        web.replace("0.0.0.0:8000", f"127.0.0.1:{port}")
        .replace("${WEB_CONCURRENCY:-3}", "1")
        .replace("--access-logfile -", f"--access-logfile {access}")
        .replace("--error-logfile -", f"--error-logfile {errors}")
    )
    argv = shlex.split(web)
    proc = spawn([str(VENV_BIN / argv[0]), *argv[1:]], env=_env(tmp_path), log=output)
    try:
        wait_for_port(port, timeout=60)
        statuses = _visit(port, token)
    finally:
        stop_group(proc)
    assert statuses[0] == 200 and statuses[2] >= 400, statuses
    logged = access.read_text()
    assert len(re.findall(r'"GET /portal/\[enlace\]', logged)) == 3, logged
    assert f'"http://127.0.0.1:{port}/portal/[enlace]"' in logged  # the Referer
    everything = logged + errors.read_text() + output.read_text()
    assert "/portal/[enlace]" in output.read_text() + errors.read_text()  # Django's own "Not Found"-style record
    _assert_masked(everything, token)


def test_the_development_server_request_log_masks_portal_links(tmp_path, gerente):
    token = links.token_for(_client(gerente))
    port = free_port()
    output = tmp_path / "output.log"
    proc = spawn(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        env=_env(tmp_path),
        log=output,
    )
    try:
        wait_for_port(port, timeout=60)
        statuses = _visit(port, token)
        # The server writes a request's log line after sending the response: on a loaded
        # machine the last one can still be on its way when the client has its answer.
        deadline = time.monotonic() + 15
        while output.read_text().count('"GET /portal/') < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_group(proc)
    assert statuses[0] == 200, statuses
    logged = output.read_text()
    assert len(re.findall(r'"GET /portal/\[enlace\]', logged)) == 3, logged
    _assert_masked(logged, token)
