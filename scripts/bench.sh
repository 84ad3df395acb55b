#!/usr/bin/env bash
# Benchmarks at 100,000 clients / 1,000,000 invoices -> docs/benchmarks.md (make bench).
#
# Runs on its OWN database: the database of DATABASE_URL with "_bench" appended (morosos ->
# morosos_bench), created here when missing and migrated by the harness; never the dev or test
# database. The loaded portfolio is kept for reruns (BENCH_RELOAD=1 reloads, BENCH_DROP_DB=1
# drops it at the end). Scale: BENCH_CLIENTS, BENCH_INVOICES; BENCH_QUICK=1 for a 2,000-client
# development run. More knobs in scripts/bench/__main__.py.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/morosos}"
: "${CELERY_BROKER_URL:=redis://127.0.0.1:6379/15}"
base="${DATABASE_URL%%\?*}"
name="${base##*/}"
case "$name" in
  *bench*) bench_url="$base" ;;
  *) bench_url="${base%/*}/${name}_bench" ;;
esac
bench_name="${bench_url##*/}"
export DATABASE_URL="$bench_url" CELERY_BROKER_URL
export DJANGO_SETTINGS_MODULE=morosos.settings DJANGO_DEBUG=0
export SECRET_KEY="${SECRET_KEY:-bench-only-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0
export MOROSOS_VAR_DIR="${MOROSOS_VAR_DIR:-$PWD/var/bench}"
export BENCH_COMMAND="${BENCH_COMMAND:-make bench${BENCH_QUICK:+ (BENCH_QUICK=$BENCH_QUICK)}}"
mkdir -p "$MOROSOS_VAR_DIR"

echo "bench: database $bench_name, broker $CELERY_BROKER_URL, var $MOROSOS_VAR_DIR"
df -h "$MOROSOS_VAR_DIR" | tail -1 | awk '{print "bench: disk free " $4 " on " $6}'

# Create the database when missing (psycopg2 from the project's virtualenv; no psql needed).
"$PY" - "$bench_url" <<'PYEOF'
import sys
from urllib.parse import urlparse
import psycopg2
u = urlparse(sys.argv[1])
name = u.path.lstrip("/")
conn = psycopg2.connect(dbname="postgres", user=u.username, password=u.password, host=u.hostname or "127.0.0.1",
                        port=u.port or 5432)
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    if not cur.fetchone():
        cur.execute(f'CREATE DATABASE "{name}"')
        print(f"bench: created database {name}")
PYEOF

# Hashed static files, as production serves them (gunicorn + whitenoise, DEBUG off).
manifest="$MOROSOS_VAR_DIR/staticfiles/staticfiles.json"
if [[ ! -f "$manifest" ]] || [[ -n "$(find static templates accounts cobranza -newer "$manifest" -path '*static*' -type f -print -quit)" ]]; then
  echo "bench: collectstatic"
  "$PY" manage.py collectstatic --noinput --verbosity 0
fi

# locust in its own virtualenv (it conflicts with Django in one process).
if [[ ",${BENCH_STEPS:-http}," == *",http,"* ]] && [[ ! -x .venv-locust/bin/locust ]]; then
  echo "bench: creating .venv-locust (pip install locust)"
  python3.11 -m venv .venv-locust
  .venv-locust/bin/pip install --quiet --disable-pip-version-check locust
fi

start=$(date +%s)
"$PY" -m "scripts.bench${BENCH_ENTRY:+.$BENCH_ENTRY}"
echo "bench: finished in $(( ($(date +%s) - start) / 60 )) min; results in docs/benchmarks.md"
