# Production image for web, worker and beat (docker-compose.yml runs all three from it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    MOROSOS_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=3

WORKDIR /app

# WeasyPrint (dunning letters as PDF) needs Pango and a font; nothing else is native.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies in their own layer, so a code change does not reinstall them. The direct ones
# come from pyproject.toml; requirements/constraints.txt pins the whole tree (same as `make run`).
# The project itself is not pip-installed: it runs from /app (PYTHONPATH).
COPY pyproject.toml requirements/constraints.txt /tmp/build/
RUN python -c "import tomllib; d = tomllib.load(open('/tmp/build/pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" \
        > /tmp/build/requirements.txt \
    && pip install -c /tmp/build/constraints.txt pip \
    && pip install -c /tmp/build/constraints.txt -r /tmp/build/requirements.txt \
    && rm -rf /tmp/build

RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home morosos

COPY . .

# Hashed, compressed static files are baked into the image (whitenoise serves them). The key
# below exists only for this build step; settings refuse to start without a real one at run time.
# collectstatic never connects: the database URL only has to name PostgreSQL, the one dialect.
RUN SECRET_KEY=build-only-dummy-key-not-used-at-runtime-0000000000000000 \
    DJANGO_DEBUG=0 \
    DATABASE_URL=postgres://build@localhost/unused \
    CELERY_BROKER_URL=memory:// \
    python manage.py collectstatic --noinput --verbosity 1 \
    && mkdir -p /app/var \
    && chown morosos:morosos /app/var

USER morosos
EXPOSE 8000

# Same command as the `web` line of the Procfile. `exec` so gunicorn is PID 1's direct
# replacement and receives SIGTERM from `docker stop`.
CMD ["sh", "-c", "exec gunicorn morosos.wsgi:application --config python:morosos.gunicorn_conf --bind 0.0.0.0:8000 --no-control-socket --workers ${WEB_CONCURRENCY:-3} --timeout 60 --graceful-timeout 30 --max-requests 1000 --max-requests-jitter 100 --access-logfile - --error-logfile -"]
