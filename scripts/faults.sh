#!/usr/bin/env bash
# Long fault-injection rounds -> docs/reliability.md (make faults).
#
# Runs tests/faults/test_faults.py with more rounds and notices than `make test` does: Celery
# workers killed with SIGKILL or stopped past their lease, two beat schedulers, Redis (a private
# redis-server) killed and restarted, the workers' PostgreSQL sessions terminated, the SMTP
# server refusing then accepting. Each scenario leaves its figures as JSON;
# tests/faults/report.py turns them into the report, also when a scenario fails (the report
# says so, and this script exits non-zero). Extra arguments go to pytest (e.g. -k redis).
#
# Database: DATABASE_URL's name with "_faults" appended (pytest-django tests on
# test_<name>_faults), so a run never touches the database of `make test`. The shared Redis of
# CELERY_BROKER_URL only carries queues with unique names; the Redis scenario starts its own
# redis-server on a free port. Defaults below; every FAULT_* knob may be overridden.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/morosos}"
: "${CELERY_BROKER_URL:=redis://127.0.0.1:6379/15}"
base="${DATABASE_URL%%\?*}"
name="${base##*/}"
case "$name" in
  *faults*) ;;
  *) DATABASE_URL="${base%/*}/${name}_faults" ;;
esac
export DATABASE_URL CELERY_BROKER_URL

# 10 rounds × 1,000 notices of worker kills; the other faults 3 to 6 rounds; one round waits
# the real SMTP retry backoff (2 minutes). A 1,000-notice round takes ~45 s on 2 shared cores.
export FAULT_ROUNDS="${FAULT_ROUNDS:-10}"
export FAULT_NOTICES="${FAULT_NOTICES:-1000}"
export FAULT_STALL_ROUNDS="${FAULT_STALL_ROUNDS:-5}"
export FAULT_BEAT_ROUNDS="${FAULT_BEAT_ROUNDS:-3}"
export FAULT_REDIS_ROUNDS="${FAULT_REDIS_ROUNDS:-5}"
export FAULT_POSTGRES_ROUNDS="${FAULT_POSTGRES_ROUNDS:-5}"
export FAULT_SMTP_ROUNDS="${FAULT_SMTP_ROUNDS:-6}"
export FAULT_SMTP_BACKOFF_ROUNDS="${FAULT_SMTP_BACKOFF_ROUNDS:-1}"
# A tick shorter than a round's backlog takes to drain only piles up duplicate tasks.
export FAULT_TICK="${FAULT_TICK:-10}"
export FAULT_LEASE="${FAULT_LEASE:-10}"
export FAULT_ROUND_TIMEOUT="${FAULT_ROUND_TIMEOUT:-300}"
export FAULT_REDIS_DOWN="${FAULT_REDIS_DOWN:-10}"
export FAULT_SMTP_DOWN="${FAULT_SMTP_DOWN:-10}"
export FAULT_PG_KILLS="${FAULT_PG_KILLS:-3}"

# The figures stay in var/faults/ (one JSON per scenario) so the report can be re-rendered:
#   .venv/bin/python -m tests.faults.report var/faults docs/reliability.md
results="${FAULT_RESULTS_DIR:-${MOROSOS_VAR_DIR:-var}/faults}"
mkdir -p "$results"
rm -f "$results"/*.json
export FAULT_RESULTS_DIR="$results"
output="${FAULT_REPORT:-docs/reliability.md}"
knobs="$(env | grep -E '^FAULT_' | grep -v -e FAULT_RESULTS_DIR= -e FAULT_REPORT= | sort | tr '\n' ' ')"
command="${FAULT_COMMAND:-bash scripts/faults.sh${*:+ $*}} (the recipe of make faults) with ${knobs% }"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

echo "faults: database ${DATABASE_URL##*/} (tests on test_${DATABASE_URL##*/}), broker $CELERY_BROKER_URL"
echo "faults: $knobs"
status=0
"$PY" -m pytest -p no:cacheprovider --reuse-db -q -s -ra tests/faults/test_faults.py "$@" \
  2>&1 | grep -v -e ' mail.log ' -e ' axes.apps ' || status=${PIPESTATUS[0]}

"$PY" -m tests.faults.report "$results" "$output" --command "$command" --started "$started" --status "$status"
exit "$status"
