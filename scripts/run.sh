#!/usr/bin/env bash
# `make run` after its installs: migrations, the demo data, then web + worker + beat in the
# foreground (honcho, Procfile.dev); Ctrl-C stops all three. With no DATABASE_URL the Makefile
# runs this script inside `python -m morosos.embedded_db run --`, which starts the embedded
# PostgreSQL first and stops it after this script ends (morosos/embedded_db.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${VAR_DIR:=${MOROSOS_VAR_DIR:-var}}"
: "${PORT:=8000}"
: "${DEMO_PASSWORD:=morosos-demo}"

python manage.py migrate --noinput
# The shared cache of the rate limits when no CACHE_URL names a Redis (morosos/settings.py).
python manage.py createcachetable
# Reminders link to the portal at the business's public address: this server's own, unless an
# administrator already set one (Cobranza → Datos de la empresa).
python manage.py set_public_address --if-empty "http://127.0.0.1:$PORT"
python manage.py seed_demo --if-empty

if [[ -n "${DATABASE_URL:-}" ]]; then database="DATABASE_URL"; else database="embedded PostgreSQL in $VAR_DIR/pgdata/"; fi
if [[ -n "${CELERY_BROKER_URL:-}" ]]; then broker="CELERY_BROKER_URL"; else broker="files in $VAR_DIR/celery/"; fi
cat <<BANNER

  Morosos: http://127.0.0.1:$PORT/   (login: http://127.0.0.1:$PORT/cuenta/entrar/)
  Database: $database   Broker: $broker

  Demo logins (password: $DEMO_PASSWORD)
    admin     Administrador
    gerente   Gerente
    gestor1   Gestor de cobranza
    gestor2   Gestor de cobranza
    gestor3   Gestor de cobranza

  Reminders: the worker plans today's notices when it starts, then beat every hour.
    emails -> $VAR_DIR/mail/   SMS and WhatsApp -> $VAR_DIR/outbox/   letters (PDF) -> $VAR_DIR/media/cartas/
    (or: python manage.py run_dunning --dry-run  to see what goes out today without sending)

  Starting web, worker and beat; Ctrl-C stops all three.

BANNER

# `--env /dev/null`: honcho would otherwise load .env *over* the environment, so
# `DATABASE_URL=... make run` would lose to .env; settings.py reads .env itself, below the environment.
exec honcho --procfile Procfile.dev --env /dev/null start
