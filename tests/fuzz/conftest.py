"""Fixtures for the fuzzing tests: a small realistic portfolio and the Django WSGI app
driven in-process (the same code path as gunicorn, without a socket)."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from accounts import services
from tests.cobranza.test_api import build_client_data
from tests.factories import make_client, make_invoice

TODAY = dt.date.today()


@pytest.fixture
def portfolio(gerente, gestora, gestor) -> dict:
    """Two collectors' clients, each with invoices, a payment, a promise, a plan, a dispute,
    a task and a notice (``build_client_data``), plus clients in other segments, a second
    currency, a paid invoice and a client with credit (an overpayment) — what a fuzzer
    should be able to reach through the ids it is given."""
    mine = [build_client_data(by=gerente, collector=gestora, suffix=f"-m{i}") for i in range(2)]
    theirs = build_client_data(by=gerente, collector=gestor, suffix="-t")
    euro = make_client(by=gerente, collector=gestora, segment_code="esporadico", currency="EUR", country="ES")
    paid = make_invoice(by=gerente, client=euro, amount="250.00", due_in_days=-20)
    services.payment_record(by=gerente, client=euro, amount=Decimal("400.00"), received_on=TODAY, reference="EUR-1")
    make_invoice(by=gerente, client=euro, amount="80.00", due_in_days=15)
    unassigned = make_client(by=gerente, collector=None, segment_code="cuenta-clave")
    make_invoice(by=gerente, client=unassigned, amount="12345.67", due_in_days=-95)
    paid.refresh_from_db()
    return {"mine": mine, "theirs": theirs, "euro": euro, "unassigned": unassigned}


class _InProcessWSGI(WSGIHandler):
    """Django's WSGI handler inside a test transaction. Like Django's test client, it does not
    close the database connection at the end of each request (that would end the test's
    transaction); a request that fails in the database is rolled back by the caller."""


@contextlib.contextmanager
def _keep_connection():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def wsgi_app(settings):
    # Errors must come back as 500 responses (as in production), not as exceptions.
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    with _keep_connection():
        yield _InProcessWSGI()
