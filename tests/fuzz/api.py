"""Drive schemathesis over the REST API in-process, one operation at a time, and collect every
failure instead of stopping at the first, so one run reports them all.

Used by tests/fuzz/test_api_schemathesis.py (short, in CI) and by ``make fuzz`` (the same
test with FUZZ_EXAMPLES raised, thousands of requests).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import zlib

import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

SCHEMA_PATH = "/api/schema/?format=json"

# Checked on every response. Left out on purpose:
# - positive_data_acceptance: "valid per the schema" is not "acceptable": a generated id that
#   does not exist, another collector's client, a due date before the issue date or a payment
#   in another currency are schema-valid and rightly 400/404.
# - response_headers_conformance: no operation documents response headers.
# - use_after_free / ensure_resource_availability / ignored_auth: they need links between
#   operations (stateful runs), see test_stateful_*; ignored_auth is covered by
#   tests/accounts/test_permissions.py for every route.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Negative (schema-invalid) requests must also be rejected with a 4xx.
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]

_DETAIL_PATH = re.compile(r"^/api/v1/(?P<resource>[a-z-]+)/\{id\}/")


@dataclasses.dataclass
class Identity:
    """Who makes the requests: an ``Authorization: Token`` header or a session cookie, and
    the ids they may name. ``schema_headers`` fetch the schema (a token of the same user)."""

    name: str
    headers: dict = dataclasses.field(default_factory=dict)
    cookies: dict = dataclasses.field(default_factory=dict)
    schema_headers: dict = dataclasses.field(default_factory=dict)
    # Clients this identity must never get back (another collector's).
    foreign_clients: frozenset = frozenset()
    # resource (URL segment) → ids; "users" and "segment-codes" for body fields.
    ids: dict[str, list] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Report:
    requests: int = 0
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    # (operation, mode, check title) → first reproduction seen
    failures: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{self.requests} requests; statuses {dict(sorted(self.statuses.items()))}"]
        for (label, mode, title), detail in sorted(self.failures.items()):
            lines.append(f"--- {label} [{mode}] {title}\n{detail}")
        return "\n".join(lines)


def load_schema(app, identity: Identity):
    return schemathesis.openapi.from_wsgi(SCHEMA_PATH, app, headers=identity.schema_headers or identity.headers)


def _pool(identity: Identity, resource: str) -> list:
    return identity.ids.get(resource) or []


# Body fields that name objects, and the pool each draws real ids from.
BODY_REFERENCES = {
    "client": "clients",
    "contact": "contacts",
    "invoice": "invoices",
    "invoices": "invoices",
    "collector": "users",
    "segment": "segment-codes",
}


# Plain fields that random text almost never gets right, and values that pass their validators.
PLAUSIBLE = {
    "currency": ["MXN", "EUR", "USD"],
    "country": ["MX", "ES", "US"],
    "time_zone": ["America/Mexico_City", "Europe/Madrid", "America/New_York"],
    "language": ["es", "en"],
    "email": ["cobranza@example.com", "pagos@example.mx"],
}


def _realistic(case, identity: Identity, data) -> None:
    """Point a generated case at objects that exist (half of the time), so the writes get past
    "no such client" into the services. Drawn through Hypothesis: reproducible."""
    match = _DETAIL_PATH.match(case.operation.path)
    if match and case.path_parameters and data.draw(st.booleans(), label="real id"):
        ids = _pool(identity, match["resource"])
        if ids:
            case.path_parameters = {**case.path_parameters, "id": data.draw(st.sampled_from(ids), label="id")}
    body = case.body
    if isinstance(body, dict) and data.draw(st.booleans(), label="real references"):
        body = dict(body)
        for field, resource in BODY_REFERENCES.items():
            ids = _pool(identity, resource)
            if field not in body or not ids:
                continue
            if field == "invoices":
                body[field] = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
            else:
                body[field] = data.draw(st.sampled_from(ids))
        for field, values in PLAUSIBLE.items():
            if field in body:
                body[field] = data.draw(st.sampled_from(values))
        for allocation in body.get("allocations") or []:
            if isinstance(allocation, dict) and _pool(identity, "invoices"):
                allocation["invoice"] = data.draw(st.sampled_from(_pool(identity, "invoices")))
        case.body = body


def fuzz_operation(operation, *, app, identity: Identity, report: Report, max_examples: int, mode) -> None:
    checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else CHECKS

    @settings(
        max_examples=max_examples,
        derandomize=True,  # the same requests on every run: a CI failure reproduces locally
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected, not raised: no shrinking
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case, data):
        if mode == GenerationMode.POSITIVE:
            _realistic(case, identity, data)
        # Each request in its own savepoint, rolled back: examples do not see each other's
        # writes (reproducible), and a request that fails in the database cannot poison the
        # test's transaction for the next one.
        with transaction.atomic():
            response = case.call(app=app, headers=identity.headers, cookies=identity.cookies)
            transaction.set_rollback(True)
        report.requests += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=_checks_for(case, response, checks), headers=identity.headers)
        except (Exception, BaseExceptionGroup) as exc:  # a FailureGroup, or a single check failure
            key = (operation.label, mode.value, _title(exc))
            if key not in report.failures:
                report.failures[key] = f"{exc}\n{case.as_curl_command(headers=identity.headers)}"[:3000]
        leaked = foreign_clients_in(response, identity)
        if leaked:
            key = (operation.label, mode.value, "Another collector's client in the answer")
            report.failures.setdefault(key, f"clients {sorted(leaked)}\n{case.as_curl_command()}")

    run()


def _client_ids(data) -> set:
    found = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "client" and isinstance(value, int):
                found.add(value)
            else:
                found |= _client_ids(value)
    elif isinstance(data, list):
        for item in data:
            found |= _client_ids(item)
    return found


def foreign_clients_in(response, identity: Identity) -> set:
    """Scoping: a collector's successful answers name only their own clients."""
    if not identity.foreign_clients or not 200 <= response.status_code < 300:
        return set()
    try:
        body = response.json()
    except ValueError:
        return set()
    return _client_ids(body) & identity.foreign_clients


def _checks_for(case, response, checks):
    # Query strings follow django-filter's (HTML form) convention: an empty value, or a boolean
    # it cannot read ("null"), means "not filtered", so `?client=` lists everything. That is a
    # choice, not a bug: schema-invalid *query strings* are checked for everything but being
    # rejected; schema-invalid bodies, headers and paths must still be 4xx.
    if checks is NEGATIVE_CHECKS and case.method.upper() == "GET":
        checks = CHECKS
    # A non-numeric id matches no /api/ route: the API's JSON catch-all answers it
    # (views.api_not_found), so it is checked like any other answer.
    return checks


def _title(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)
    if inner:
        return "; ".join(sorted({getattr(e, "title", type(e).__name__) for e in inner}))
    return getattr(exc, "title", type(exc).__name__)


def fuzz_schema(schema, *, app, identity: Identity, max_examples: int, modes=None) -> Report:
    report = Report()
    modes = modes or [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            fuzz_operation(operation, app=app, identity=identity, report=report, max_examples=max_examples, mode=mode)
    return report


def _pick(pool: list, seed) -> object:
    return pool[zlib.crc32(repr(seed).encode()) % len(pool)]


def point_at_real_objects(case, identity: Identity) -> None:
    """Like ``_realistic`` for the stateful runs, which draw nothing themselves: the choice of
    object is derived from the generated value (a checksum), so runs stay reproducible. Path
    ids that came from a link (an earlier response) are kept."""
    body = case.body
    if not isinstance(body, dict):
        return
    body = dict(body)
    for field, resource in BODY_REFERENCES.items():
        pool = _pool(identity, resource)
        if field not in body or not pool:
            continue
        body[field] = [_pick(pool, body[field])] if field == "invoices" else _pick(pool, body[field])
    case.body = body


def stateful_machine(schema, *, app, identity: Identity, report: Report):
    """The schema's state machine (links inferred by schemathesis from matching names: a
    created client's ``id`` feeds ``/clients/{id}/`` and the ``client`` of other writes), with
    every scenario in a savepoint that is rolled back at its end."""
    base = schema.as_state_machine()

    class Machine(base):
        def setup(self):
            self._scenario = transaction.atomic()
            self._scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)

        def before_call(self, case):
            point_at_real_objects(case, identity)

        def call(self, case, **kwargs):
            point = transaction.savepoint()
            response = case.call(app=app, headers=identity.headers, cookies=identity.cookies)
            # A request that failed in the database leaves it aborted: undo just that request.
            if response.status_code >= 500:
                transaction.savepoint_rollback(point)
            else:
                transaction.savepoint_commit(point)
            report.requests += 1
            report.statuses[response.status_code] += 1
            return response

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=_checks_for(case, response, CHECKS), headers=identity.headers)

    return Machine
