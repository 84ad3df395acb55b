"""Every rate limit and throttle counts in a cache shared by all web processes: with three
gunicorn workers the portal's first 429 came at request 89 instead of 31, and a restart reset
it. Two real processes now share one limit, on Redis and on the database cache; a per-process
cache is refused by the system checks."""

import ipaddress
import shutil
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from tests.processes import ROOT, RedisServer, clean_env

# One process: count ``hits`` portal requests for one token from one address, all at once
# with the other process, and print how many were let through. It says "ready" once set up
# and starts when told "go" on its standard input, sent to both processes at the same time.
WORKER = """
import sys
import django
django.setup()
from django.test import RequestFactory
from cobranza.portal import links
token, address, hits = sys.argv[1], sys.argv[2], int(sys.argv[3])
request = RequestFactory().get("/portal/x", REMOTE_ADDR=address)
links.rate_limited(RequestFactory().get("/portal/x", REMOTE_ADDR="::1"), token="warm-up")  # connect first
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
print(sum(not links.rate_limited(request, token=token) for _ in range(hits)))
"""
LIMIT = 30


def _shared(allowed: int) -> bool:
    """Together the processes got the limit, never more. A request counts on two counters (the
    address's, then the token's): when the two processes' requests interleave between them, a
    request let through by one counter and refused by the other still spends both, so now and
    then one or two allowed requests are lost under load. What must never happen is more than
    LIMIT (each process counting alone would give 2 × LIMIT)."""
    return LIMIT - 2 <= allowed <= LIMIT


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _allowed_by_two_processes(tmp_path, **env) -> int:
    env = clean_env(
        tmp_path,
        DJANGO_DEBUG="1",
        DJANGO_SETTINGS_MODULE="morosos.settings",
        DATABASE_URL=_test_database_url(),
        SELF_SERVICE_RATE_LIMIT=str(LIMIT),
        # A day-long window: the fixed window cannot roll over during the test.
        SELF_SERVICE_RATE_WINDOW="86400",
        **env,
    )
    # A token and an address of their own: a Redis keeps its counters from earlier runs.
    token, address = uuid.uuid4().hex, str(ipaddress.IPv6Address(uuid.uuid4().int))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, token, address, str(LIMIT)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.communicate(timeout=120)
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert all(p.returncode == 0 for p in procs), outputs
    allowed = [int(out.strip().splitlines()[-1]) for out, _err in outputs]
    print("allowed per process:", allowed)
    return sum(allowed)


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_portal_limit_in_the_database_cache(tmp_path):
    # Both send LIMIT requests at the same moment: together they get LIMIT, not 2 x LIMIT
    # (and not more through lost updates: the counter's increment is atomic).
    assert _shared(_allowed_by_two_processes(tmp_path))


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_portal_limit_in_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    # A private server: the shared one is the suite's broker, which other tests purge.
    redis = RedisServer(tmp_path / "redis").start()
    try:
        assert _shared(_allowed_by_two_processes(tmp_path, CACHE_URL=redis.url(1)))
    finally:
        redis.stop()


def _check(tmp_path, **env):
    env = clean_env(tmp_path, DJANGO_DEBUG="1", DATABASE_URL=_test_database_url(), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_default_cache_is_shared():
    assert settings.CACHES["default"]["BACKEND"] == "morosos.cache.DatabaseCache"


@pytest.mark.django_db
def test_a_per_process_cache_is_refused_by_the_system_checks(tmp_path):
    result = _check(tmp_path, CACHE_URL="locmemcache://")
    assert result.returncode != 0
    assert "django_ratelimit.E003" in result.stderr and "is not a shared cache" in result.stderr
