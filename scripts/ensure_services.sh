#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis that the test suite uses answer: check DATABASE_URL's and
# CELERY_BROKER_URL's host and port (defaults: 127.0.0.1:5432 and 127.0.0.1:6379); when one is
# local and stopped but installed, start it; otherwise fail with a clear message.
# Idempotent; takes a few milliseconds when both already answer.
set -euo pipefail

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/morosos}"
CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
WAIT_SECONDS="${ENSURE_SERVICES_WAIT:-30}"

# host_port URL DEFAULT_PORT -> "host port"  (scheme://[user[:password]@]host[:port][/...])
host_port() {
    local rest="${1#*://}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    rest="${rest##*@}"
    local host="${rest%:*}" port="${rest##*:}"
    if [[ "$rest" != *:* ]]; then host="$rest"; port="$2"; fi
    echo "${host:-127.0.0.1} ${port:-$2}"
}

is_local() { [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" || "$1" == "[::1]" ]]; }

tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

pg_up() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$1" -p "$2" -t 2
    else
        tcp_open "$1" "$2"
    fi
}

redis_up() {
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(redis-cli -h "$1" -p "$2" ping 2>/dev/null)" == "PONG" ]]
    else
        tcp_open "$1" "$2"
    fi
}

wait_for() {  # wait_for CHECK HOST PORT
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$1" "$2" "$3"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

fail() { echo "ensure_services: $*" >&2; exit 1; }

# --- PostgreSQL -------------------------------------------------------------------------
case "$DATABASE_URL" in
postgres://* | postgresql://* | pgsql://* | postgis://*)
    read -r pg_host pg_port < <(host_port "$DATABASE_URL" 5432)
    if ! pg_up "$pg_host" "$pg_port"; then
        if is_local "$pg_host" && command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
            version="$(ls /etc/postgresql | sort -V | tail -n 1)"
            echo "ensure_services: starting PostgreSQL $version..."
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
            wait_for pg_up "$pg_host" "$pg_port" \
                || fail "PostgreSQL $version did not answer on $pg_host:$pg_port within ${WAIT_SECONDS}s"
        else
            fail "PostgreSQL is not reachable at $pg_host:$pg_port (DATABASE_URL). Start it, or point DATABASE_URL at a running server."
        fi
    fi
    ;;
*)
    fail "DATABASE_URL must point at PostgreSQL for the test suite (got scheme '${DATABASE_URL%%://*}')"
    ;;
esac

# --- Redis ------------------------------------------------------------------------------
case "$CELERY_BROKER_URL" in
redis://* | rediss://*)
    read -r redis_host redis_port < <(host_port "$CELERY_BROKER_URL" 6379)
    if ! redis_up "$redis_host" "$redis_port"; then
        if is_local "$redis_host" && command -v redis-server >/dev/null 2>&1; then
            echo "ensure_services: starting Redis on port $redis_port..."
            mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
            redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" --appendonly no \
                --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
            wait_for redis_up "$redis_host" "$redis_port" \
                || fail "Redis did not answer on $redis_host:$redis_port within ${WAIT_SECONDS}s (log: /var/log/redis/ci.log)"
        else
            fail "Redis is not reachable at $redis_host:$redis_port (CELERY_BROKER_URL). Start it, or point CELERY_BROKER_URL at a running server."
        fi
    fi
    ;;
*)
    # Another broker (amqp://, filesystem://...) was chosen on purpose: nothing to start here.
    ;;
esac
