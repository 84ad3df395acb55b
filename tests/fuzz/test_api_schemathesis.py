"""Schemathesis over the whole REST API, in-process through Django's WSGI handler, against a
small realistic portfolio: no 5xx, and every response (status code, content type, body)
matches the OpenAPI schema served at /api/schema/. Schema-invalid requests must be 4xx, and
a collector's successful answers never name another collector's client.

Short in CI (FUZZ_EXAMPLES examples per operation and generation mode, derandomized: the
same requests on every run). ``make fuzz`` runs the same tests with thousands of requests.
Every failure is collected and reported with a curl line that reproduces it.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.test import Client as DjangoClient
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from accounts.models import Client, Interaction, Invoice, Payment, Segment
from accounts.selectors import clients_visible_to, contacts_visible_to, invoices_visible_to
from cobranza.models import CollectorTask, Commitment, Dispute, Notice, Policy
from tests.fuzz.api import Identity, Report, foreign_clients_in, fuzz_schema, load_schema, stateful_machine

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))


def _ids(queryset, limit: int = 6) -> list[int]:
    return list(queryset.order_by("pk").values_list("pk", flat=True)[:limit])


def identity_for(user, *, name: str, session: bool = False) -> Identity:
    """The user's credentials and the ids they can see (plus, for a collector, a few they
    cannot: those must be 404s or field errors, never another collector's data)."""
    token = {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}
    headers, cookies = token, {}
    if session:
        browser = DjangoClient()
        browser.force_login(user)
        assert browser.session[SESSION_KEY] == str(user.pk)
        headers, cookies = (
            {},
            {django_settings.SESSION_COOKIE_NAME: browser.cookies[django_settings.SESSION_COOKIE_NAME].value},
        )
    clients = clients_visible_to(user)
    hidden = Client.objects.exclude(pk__in=clients.values("pk"))
    commitments = Commitment.objects.filter(client__in=clients.values("pk"))
    ids = {
        "clients": _ids(clients) + _ids(hidden, 1),
        "contacts": _ids(contacts_visible_to(user)),
        "invoices": _ids(invoices_visible_to(user), 10) + _ids(Invoice.objects.exclude(client__in=clients), 1),
        "payments": _ids(Payment.objects.filter(client__in=clients.values("pk"))),
        "interactions": _ids(Interaction.objects.filter(client__in=clients.values("pk"))),
        "segments": _ids(Segment.objects.all()),
        "policies": _ids(Policy.objects.all()),
        "notices": _ids(Notice.objects.filter(client__in=clients.values("pk"))),
        "promises": _ids(commitments.filter(kind="promise")),
        "payment-plans": _ids(commitments.filter(kind="plan")),
        "disputes": _ids(Dispute.objects.filter(client__in=clients.values("pk"))),
        "tasks": _ids(CollectorTask.objects.filter(client__in=clients.values("pk"))),
        "users": _ids(User.objects.filter(is_active=True)),
        "segment-codes": list(Segment.objects.values_list("code", flat=True)),
    }
    foreign = frozenset(hidden.values_list("pk", flat=True))
    return Identity(name=name, headers=headers, cookies=cookies, schema_headers=token, ids=ids, foreign_clients=foreign)


def _fuzz(app, identity: Identity, **kwargs):
    schema = load_schema(app, identity)
    report = fuzz_schema(schema, app=app, identity=identity, max_examples=MAX_EXAMPLES, **kwargs)
    print(f"\n[{identity.name}] {report.summary()}")
    return report


def test_every_operation_as_an_administrator_with_a_token_conforms_to_the_schema(wsgi_app, portfolio, admin_user):
    report = _fuzz(wsgi_app, identity_for(admin_user, name="admin/token"))
    assert report.requests > 0
    assert not report.failures, report.summary()


def test_every_operation_as_a_collector_with_a_token_conforms_and_shows_only_hers(wsgi_app, portfolio, gestora):
    report = _fuzz(wsgi_app, identity_for(gestora, name="collector/token"))
    assert report.requests > 0
    assert not report.failures, report.summary()


def test_every_operation_as_a_collector_with_a_session_conforms_and_shows_only_hers(wsgi_app, portfolio, gestora):
    # Session writes without a CSRF token are refused (403, documented); the reads run as with
    # a token. Positive data only: the negative run above already covers the parsers.
    report = _fuzz(
        wsgi_app, identity_for(gestora, name="collector/session", session=True), modes=[GenerationMode.POSITIVE]
    )
    assert report.requests > 0
    assert not report.failures, report.summary()


def test_linked_operations_in_sequence_as_a_manager_conform_to_the_schema(wsgi_app, portfolio, gerente):
    """Stateful: sequences of calls where one response feeds the next request (create a
    client, then read, update, and file an invoice, a payment, a promise… against it)."""
    identity = identity_for(gerente, name="manager/stateful")
    schema = load_schema(wsgi_app, identity)
    report = Report()
    machine = stateful_machine(schema, app=wsgi_app, identity=identity, report=report)
    links = schema.statistic.transitions.total
    machine.run(
        settings=settings(
            max_examples=max(2, MAX_EXAMPLES),
            stateful_step_count=8,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"\n[{identity.name}] {links} links; {report.summary()}")
    assert links > 0 and report.requests > 0


def test_the_scoping_check_finds_a_foreign_client_anywhere_in_an_answer():
    class Answer:
        def __init__(self, status_code, body):
            self.status_code, self._body = status_code, body

        def json(self):
            return self._body

    identity = Identity(name="gestora", foreign_clients=frozenset({7}))
    page = {"count": 2, "results": [{"id": 1, "client": 3}, {"id": 2, "client": 7, "invoices": [7]}]}
    assert foreign_clients_in(Answer(200, page), identity) == {7}
    assert foreign_clients_in(Answer(200, {"id": 5, "client": 3, "contact": 7}), identity) == set()
    assert foreign_clients_in(Answer(400, {"client": 7}), identity) == set()  # an error echoes input
