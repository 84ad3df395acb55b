"""Every URL of the project, as every kind of visitor.

The walk reads the real URL configuration, so a new page that is not listed in ``CASES``
fails the suite: whoever adds a URL has to say who may open it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts import services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "owner", "other_collector", "manager", "admin", "no_role")
LOGIN_REDIRECT = "login"  # expectation: a redirect to the login page
ADMIN_LOGIN = "admin:login"  # expectation: a redirect to the admin's own login page


@dataclass(frozen=True)
class Case:
    """Who gets what. ``obj`` says which object fills the ``pk`` of the route."""

    expect: dict[str, int | str | frozenset]
    method: str = "get"
    obj: str | None = None
    data: dict = field(default_factory=dict)


def _staff_page(obj=None, *, method="get", other=None, data=None):
    """A page any staff member may open (object-scoped when ``obj`` is given)."""
    ok = 200 if method == "get" else 302
    return Case(
        expect={
            "anonymous": LOGIN_REDIRECT,
            "owner": ok,
            "other_collector": other if other is not None else (404 if obj else ok),
            "manager": ok,
            "admin": ok,
            "no_role": 403,
        },
        method=method,
        obj=obj,
        data=data or {},
    )


def _manager_page(obj=None, *, method="get", data=None):
    ok = 200 if method == "get" else 302
    return Case(
        expect={
            "anonymous": LOGIN_REDIRECT,
            "owner": 403,
            "other_collector": 403,
            "manager": ok,
            "admin": ok,
            "no_role": 403,
        },
        method=method,
        obj=obj,
        data=data or {},
    )


def _account_page(*, method="get"):
    """Login-only pages (password change): open to every logged-in user, roles or not."""
    ok = 200 if method == "get" else 302
    return Case(expect={role: (LOGIN_REDIRECT if role == "anonymous" else ok) for role in ROLES}, method=method)


HEALTH = frozenset({200, 503})  # 503 only if the broker is unreachable from the test machine

CASES: dict[str, Case] = {
    "healthz": Case(expect={role: HEALTH for role in ROLES}),
    "login": Case(expect={role: (200 if role == "anonymous" else 302) for role in ROLES}),
    "logout": _account_page(method="post"),
    "password_change": _account_page(),
    "password_change_done": _account_page(),
    # The Django admin is for administrators (is_staff); everyone else is sent to its login.
    "admin:index": Case(expect={role: (200 if role == "admin" else ADMIN_LOGIN) for role in ROLES}),
    "home": _staff_page(),
    "client_list": _staff_page(),
    "client_bulk_assign": _manager_page(method="post", data={"clients": "{client}", "collector": "{other}"}),
    "client_create": _manager_page(),
    "client_detail": _staff_page("client"),
    "client_edit": _manager_page("client"),
    "client_apply_credit": _staff_page("client", method="post"),
    "payment_create": _staff_page("client"),
    "interaction_create": _staff_page("client"),
    "contact_create": _staff_page("client"),
    "invoice_create": _manager_page("client"),
    "contact_edit": _staff_page("contact"),
    "invoice_status": _manager_page("invoice"),
}


def _is_skipped(resolver: URLResolver) -> bool:
    module = getattr(resolver.urlconf_module, "__name__", str(resolver.urlconf_name))
    return module == "django.conf.urls.i18n"


def project_routes():
    """(name, route kwargs) of every URL a person can open. The admin counts as one page,
    its internals are Django's; i18n (set_language) and static files are not pages."""
    found = {}

    def walk(patterns, namespace=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if _is_skipped(entry):
                    continue
                if entry.namespace == "admin":
                    found["admin:index"] = ()
                    continue
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, ns)
            elif isinstance(entry, URLPattern):
                if getattr(entry.callback, "__module__", "").startswith(
                    ("django.views.static", "django.contrib.staticfiles")
                ):
                    continue
                assert entry.name, f"URL pattern {entry.pattern} has no name: name it and add it to CASES"
                found[f"{namespace}{entry.name}"] = tuple(entry.pattern.converters)

    walk(get_resolver().url_patterns)
    return found


@pytest.fixture
def world(admin_user, gerente, gestora, gestor, nobody):
    """One client of each collector, with an invoice, a contact and client credit."""
    today = dt.date.today()
    mine = make_client(by=gerente, collector=gestora)
    make_client(by=gerente, collector=gestor)
    invoice = make_invoice(by=gerente, client=mine, amount="500.00", due_date=today - dt.timedelta(days=10))
    contact = services.contact_create(by=gerente, client=mine, name="María López", email="maria@example.com")
    # A payment larger than the debt leaves credit for the "apply credit" action.
    services.payment_record(by=gerente, client=mine, amount=Decimal("800.00"), received_on=today)
    make_invoice(by=gerente, client=mine, amount="100.00", due_date=today + dt.timedelta(days=10))
    users = {
        "anonymous": None,
        "owner": gestora,
        "other_collector": gestor,
        "manager": gerente,
        "admin": admin_user,
        "no_role": nobody,
    }
    return {"client": mine, "invoice": invoice, "contact": contact, "other": gestor, "users": users}


def _request(http: HttpClient, name: str, case: Case, world) -> tuple[str, object]:
    kwargs = {}
    for kwarg in project_routes()[name]:
        assert kwarg == "pk" and case.obj, f"{name}: fill the '{kwarg}' URL argument in CASES"
        kwargs[kwarg] = world[case.obj].pk
    url = reverse(name, kwargs=kwargs)
    if case.method == "post":
        data = {k: str(world[v[1:-1]].pk) if v.startswith("{") else v for k, v in case.data.items()}
        return url, http.post(url, data)
    return url, http.get(url)


def test_every_url_is_listed():
    routes = set(project_routes())
    assert routes - set(CASES) == set(), "new URLs without access expectations: add them to CASES"
    assert set(CASES) - routes == set(), "CASES lists URLs that no longer exist"


@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_each_role_as_expected(role, world):
    visited = set()
    failures = []
    for name in sorted(project_routes()):
        case = CASES[name]
        http = HttpClient()
        user = world["users"][role]
        if user is not None:
            http.force_login(user)
        url, response = _request(http, name, case, world)
        visited.add(name)
        expected = case.expect[role]
        if expected in (LOGIN_REDIRECT, ADMIN_LOGIN):
            ok = response.status_code == 302 and urlparse(response.url).path == reverse(expected)
        elif isinstance(expected, frozenset):
            ok = response.status_code in expected
        else:
            ok = response.status_code == expected
        if not ok:
            failures.append(f"{case.method.upper()} {url} as {role}: got {response.status_code}, expected {expected}")
    assert visited == set(CASES)
    assert not failures, "\n".join(failures)


def test_state_changes_refuse_get(gerente, world):
    http = HttpClient()
    http.force_login(gerente)
    for name, case in CASES.items():
        if case.method != "post" or name == "logout":
            continue
        kwargs = {"pk": world[case.obj].pk} if case.obj else {}
        assert http.get(reverse(name, kwargs=kwargs)).status_code == 405, name


def test_csrf_is_enforced_on_posts(gestora, world):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(gestora)
    response = http.post(reverse("client_apply_credit", args=[world["client"].pk]))
    assert response.status_code == 403
