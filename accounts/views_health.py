"""GET /healthz: database and broker reachability, for compose healthchecks and load balancers."""

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from morosos.celery import app


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, "postgresql"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return False, type(exc).__name__


def _check_broker() -> tuple[bool, str]:

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type
    except Exception as exc:  # noqa: BLE001
        return False, type(exc).__name__


@login_not_required
@never_cache
@require_GET
def healthz(request):
    db_ok, db_info = _check_database()
    broker_ok, broker_info = _check_broker()
    ok = db_ok and broker_ok
    body = {
        "status": "ok" if ok else "error",
        "database": {"ok": db_ok, "detail": db_info},
        "broker": {"ok": broker_ok, "detail": broker_info},
    }
    return JsonResponse(body, status=200 if ok else 503)
