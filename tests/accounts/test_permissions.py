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
from django.utils import timezone

from accounts import services
from accounts.models import Interaction, Segment
from cobranza.engine import letters
from cobranza.handoffs import services as handoffs
from cobranza.imports import services as imports
from cobranza.ladders import services as services_policies
from cobranza.models import (
    Alert,
    CollectorTask,
    Discount,
    LateFee,
    MessageTemplate,
    Notice,
    Policy,
    PolicyStep,
    WebhookDelivery,
)
from cobranza.portal import links
from cobranza.portal import services as portal_services
from cobranza.replies import services as replies_services
from cobranza.webhooks import outgoing as webhooks_out
from cobranza.webhooks import services as webhooks_services
from cobranza.workspace import services as workspace_services
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


def _admin_page(obj=None, *, method="get", data=None):
    """Administrators only (outgoing webhooks): collectors and managers get a 403."""
    ok = 200 if method == "get" else 302
    return Case(
        expect={
            "anonymous": LOGIN_REDIRECT,
            "owner": 403,
            "other_collector": 403,
            "manager": 403,
            "admin": ok,
            "no_role": 403,
        },
        method=method,
        obj=obj,
        data=data or {},
    )


def _api(obj=None, *, method="get", manager=False, other=None):
    """The REST API: 401 for anonymous (token auth, no login redirect), 403 without a role;
    an empty POST is a structured 400 for an allowed user."""
    ok = 200 if method == "get" else 400
    staff = 403 if manager else ok
    return Case(
        expect={
            "anonymous": 401,
            "owner": staff,
            "other_collector": (403 if manager else (other if other is not None else (404 if obj else ok))),
            "manager": ok,
            "admin": ok,
            "no_role": 403,
        },
        method=method,
        obj=obj,
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
    # Each user's own number format (docs/domain.md#number-formats).
    "preferences": _account_page(),
    # The Django admin is for administrators (is_staff); everyone else is sent to its login.
    "admin:index": Case(expect={role: (200 if role == "admin" else ADMIN_LOGIN) for role in ROLES}),
    "home": _staff_page(),
    "client_list": _staff_page(),
    # The header box's suggestions (an HTML fragment): what the client list's search shows.
    "client_suggest": _staff_page(),
    "client_bulk_assign": _manager_page(method="post", data={"clients": "{client}", "collector": "{other}"}),
    "client_create": _manager_page(),
    "client_detail": _staff_page("client"),
    # The client page's sections (HTML fragments): exactly the page's access.
    "client_section_facturas": _staff_page("client"),
    "client_section_pagos": _staff_page("client"),
    "client_section_historial": _staff_page("client"),
    "client_section_contactos": _staff_page("client"),
    "client_section_cobranza": _staff_page("client"),
    "client_section_cambios": _staff_page("client"),
    "client_edit": _manager_page("client"),
    "client_apply_credit": _staff_page("client", method="post"),
    "payment_create": _staff_page("client"),
    "interaction_create": _staff_page("client"),
    "contact_create": _staff_page("client"),
    "invoice_create": _manager_page("client"),
    "contact_edit": _staff_page("contact"),
    "invoice_status": _manager_page("invoice"),
    # Audit history (accounts/views_audit.py): a client's history follows the client page
    # (another collector's client is a 404); the system-wide audit is for managers and admins.
    "client_history": _staff_page("client"),
    "audit_log": _manager_page(),
    # Login lock-outs (django-axes): administrators see and release them.
    "lockout_list": _admin_page(),
    "lockout_reset": _admin_page(method="post"),
    # Dunning operations (cobranza/ops/urls.py).
    "cobranza:outbox": _manager_page(),
    "cobranza:notice_list": _staff_page(),
    "cobranza:notice_detail": _staff_page("notice"),
    "cobranza:notice_retry": _manager_page("notice", method="post"),
    "cobranza:approvals": _manager_page(),
    "cobranza:approval_decide": _manager_page(method="post"),
    "cobranza:letters": _staff_page(),
    "cobranza:letter_pdf": _staff_page("letter"),
    # Selecting another collector's letters is a form error (redirect with a message), not a 404.
    "cobranza:letters_mark_printed": _staff_page(method="post", data={"notices": "{letter}"}),
    "cobranza:client_pause": _staff_page("client", method="post"),
    "cobranza:client_policy": _manager_page("client", method="post"),
    "cobranza:invoice_hold": _staff_page("invoice", method="post"),
    "cobranza:invoice_release": _staff_page("invoice", method="post"),
    # The collector's day (cobranza/worklist/urls.py): worklist and calendar for any staff
    # member (a collector sees only their own); reassigning is for managers; a task of
    # another collector's client is a 404.
    "cobranza:worklist": _staff_page(),
    "cobranza:calendar": _staff_page(),
    "cobranza:worklist_reassign": _manager_page(method="post", data={"clients": "{client}", "collector": "{other}"}),
    "cobranza:task_done": _staff_page("task", method="post"),
    # Delinquency profiles, late fees and discounts (cobranza/profiles/urls.py).
    "cobranza:profile_list": _manager_page(),
    # Empty posts are form errors: a redirect with a message (302), never a 500.
    "cobranza:profile_override": _staff_page("client", method="post"),
    "cobranza:fee_rules": _manager_page(),
    "cobranza:fee_waive": _staff_page("late_fee", method="post"),
    "cobranza:discount_request": _staff_page("invoice", method="post"),
    "cobranza:discounts": _manager_page(),
    "cobranza:discount_decide": _manager_page("discount", method="post"),
    # The collector's workspace (cobranza/workspace/urls.py): log an outcome, promises, plans,
    # extensions and disputes. Own clients only; a dispute is resolved by its owner or a manager.
    "cobranza:log_outcome": _staff_page("client"),
    "cobranza:commitment_create": _staff_page("client"),
    # POST (the form it previews carries notes); it answers with an HTML fragment (200).
    "cobranza:plan_preview": Case(
        expect={**_staff_page("client", method="post").expect, "owner": 200, "manager": 200, "admin": 200},
        method="post",
        obj="client",
    ),
    "cobranza:dispute_open": _staff_page("client"),
    "cobranza:commitment_cancel": _staff_page("commitment"),
    "cobranza:dispute_resolve": _staff_page("dispute"),
    # REST API (cobranza/api/urls.py). Lists are scoped (a collector sees their own rows: 200).
    "api:client-list": _api(),
    "api:client-detail": _api("client"),
    "api:contact-list": _api(),
    "api:contact-detail": _api("contact"),
    "api:segment-list": _api(),
    "api:segment-detail": _api("segment", other=200),  # reference data, not client data
    "api:invoice-list": _api(),
    "api:invoice-detail": _api("invoice"),
    "api:invoice-set-status": _api("invoice", method="post", manager=True),
    "api:payment-list": _api(),
    "api:payment-detail": _api("payment"),
    "api:interaction-list": _api(),
    "api:interaction-detail": _api("interaction"),
    "api:policy-list": _api(manager=True),
    "api:policy-detail": _api("policy", manager=True),
    "api:notice-list": _api(),
    "api:notice-detail": _api("notice"),
    "api:promise-list": _api(),
    "api:promise-detail": _api("commitment"),
    "api:payment-plan-list": _api(),
    "api:payment-plan-detail": _api("plan"),
    "api:dispute-list": _api(),
    "api:dispute-detail": _api("dispute"),
    "api:task-list": _api(),
    "api:task-detail": _api("task"),
    # An empty note is valid: the owner completes her own task; another collector gets a 404.
    "api:task-complete": Case(
        expect={"anonymous": 401, "owner": 200, "other_collector": 404, "manager": 200, "admin": 200, "no_role": 403},
        method="post",
        obj="task",
    ),
    # Schema and docs: staff only; no client data in them.
    "api:metrics-portfolio": _api(manager=True),
    "api:metrics-trend": _api(manager=True),
    "api:metrics-forecast": _api(manager=True),
    # Any other /api/ path: the API's JSON 404 for everyone (reveals nothing).
    "api:not-found": Case(expect={role: 404 for role in ROLES}),
    "api:schema": _api(),
    "api:swagger-ui": _api(),
    "api:redoc": _api(),
    # Debtor self-service page (cobranza/portal/urls.py). Public: the signed token is the
    # credential, so every visitor gets the same answer with a valid token (never a login
    # redirect); tampered, expired and revoked links are covered in tests/cobranza/test_portal.py.
    "selfservice:statement": Case(expect={role: 200 for role in ROLES}),
    "selfservice:statement_pdf": Case(expect={role: 200 for role in ROLES}),
    "selfservice:promise": Case(expect={role: 200 for role in ROLES}),
    "selfservice:plan_request": Case(expect={role: 200 for role in ROLES}),
    "selfservice:report_problem": Case(expect={role: 200 for role in ROLES}),
    # Staff: revoke a client's self-service links (POST-only).
    # (its own client: revoking the walk's client would turn the portal pages into 404s)
    "selfservice:revoke": _staff_page("revocable", method="post"),
    # Staff: send the portal link (an empty form is a message on the client page: 302) and
    # decide a debtor's proposal (the first decision wins; later ones redirect with a message).
    "selfservice:link_send": _staff_page("client", method="post"),
    "selfservice:proposal_approve": _staff_page("proposal", method="post"),
    "selfservice:proposal_reject": _staff_page("proposal", method="post"),
    # Payment webhook: no login, authenticated by its HMAC signature; off (503) without a secret.
    "webhooks:payments": Case(expect={role: frozenset({401, 503}) for role in ROLES}, method="post"),
    # Debtors' replies (cobranza/replies): signed webhooks, no login; the managers' unmatched
    # list; mark-as-read on one's own clients' replies.
    "replies_webhooks:email": Case(expect={role: frozenset({401, 503}) for role in ROLES}, method="post"),
    "replies_webhooks:sms": Case(expect={role: frozenset({401, 503}) for role in ROLES}, method="post"),
    "replies_webhooks:whatsapp": Case(expect={role: frozenset({401, 503}) for role in ROLES}, method="post"),
    "cobranza:replies_unmatched": _manager_page(),
    "cobranza:reply_mark_read": _staff_page("reply", method="post"),
    # Imports from accounting exports (cobranza/imports/urls.py): managers only. Committing a
    # job that is not a finished dry run redirects back with a message.
    "cobranza:import_list": _manager_page(),
    "cobranza:import_create": _manager_page(),
    "cobranza:import_detail": _manager_page("import_job"),
    "cobranza:import_progress": _manager_page("import_job"),
    "cobranza:import_commit": _manager_page("import_job", method="post"),
    "cobranza:import_errors_csv": _manager_page("rejected_import"),
    "cobranza:import_clients": _manager_page("rejected_import", method="post"),
    # Early warnings (cobranza/alerts/urls.py). A collector's list shows only their clients'
    # alerts (200 for everyone with a role); another collector's alert is a 404.
    "cobranza:alert_list": _staff_page(),
    # An empty post is a form error: a redirect with a message (302), never a 500.
    "cobranza:alert_update": _staff_page("alert", method="post"),
    # Manager dashboards: the portfolio (page, PDF report, month-end snapshots), who performs
    # and what works; collectors get a 403.
    "cobranza:dashboard": _manager_page(),
    "cobranza:dashboard_report": _manager_page(),
    "cobranza:dashboard_snapshots": _manager_page(method="post"),
    "cobranza:dashboard_refresh": _manager_page(method="post"),
    # Outgoing webhooks (cobranza/webhooks/urls.py): administrators only. The walk's
    # endpoint is inactive, so the test event is refused with a message (302) and nothing
    # goes out on the network; its failed delivery can be retried (302).
    "cobranza:webhook_list": _admin_page(),
    # The business's identity (cobranza/business/urls.py): administrators only. The setup form
    # sends an administrator on once the business is set up (as it is in the walk).
    "cobranza:business_settings": _admin_page(),
    "cobranza:business_setup": Case(
        expect={
            "anonymous": LOGIN_REDIRECT,
            "owner": 403,
            "other_collector": 403,
            "manager": 403,
            "admin": 302,
            "no_role": 403,
        }
    ),
    # Public, for debtors: the logo (none uploaded in the walk: 404 for everyone) and the short
    # portal link of SMS and WhatsApp (a valid one redirects to the signed link; tampered,
    # revoked and expired ones in tests/cobranza/test_portal_short_links.py).
    "business_logo": Case(expect={role: 404 for role in ROLES}),
    "portal_short_link": Case(expect={role: 302 for role in ROLES}),
    "cobranza:webhook_create": _admin_page(),
    "cobranza:webhook_detail": _admin_page("webhook"),
    "cobranza:webhook_edit": _admin_page("webhook"),
    "cobranza:webhook_delete": _admin_page("webhook"),  # GET: the confirmation page
    "cobranza:webhook_toggle": _admin_page("webhook", method="post"),
    "cobranza:webhook_rotate_secret": _admin_page("webhook", method="post"),
    "cobranza:webhook_ping": _admin_page("webhook", method="post"),
    "cobranza:webhook_delivery_retry": _admin_page("webhook_delivery", method="post"),
    "cobranza:collector_performance": _manager_page(),
    "cobranza:dunning_effectiveness": _manager_page(),
    # Hand-offs to a collection agency or to legal (cobranza/handoffs/urls.py).
    "cobranza:handoff_list": _staff_page(),
    "cobranza:handoff_detail": _staff_page("handoff"),
    "cobranza:handoff_create": _manager_page("client"),
    "cobranza:handoff_update": _staff_page("handoff"),
    "cobranza:handoff_close": _manager_page("handoff"),
    "cobranza:handoff_file": _staff_page("handoff"),
    # Dunning policies, ladders and message templates (cobranza/ladders/urls.py): managers only.
    "cobranza:policy_list": _manager_page(),
    "cobranza:policy_create": _manager_page(),
    "cobranza:policy_edit": _manager_page("policy"),
    "cobranza:step_create": _manager_page("policy"),
    "cobranza:step_edit": _manager_page("step"),
    "cobranza:step_delete": _manager_page("spare_step", method="post"),
    "cobranza:step_move": _manager_page("step", method="post", data={"direction": "up"}),
    # Confirming a step's catch-up is for administrators (docs/domain.md#pacing).
    "cobranza:step_catch_up": _admin_page("step"),
    "cobranza:template_list": _manager_page(),
    "cobranza:template_create": _manager_page(),
    "cobranza:template_edit": _manager_page("template"),
    # The live preview answers with an HTML fragment (200), not a redirect.
    "cobranza:template_preview": Case(
        expect={**_manager_page(method="post").expect, "manager": 200, "admin": 200},
        method="post",
        data={"body_es": "Hola {{ cliente }}"},
    ),
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
                # path() patterns name their converters; re_path() ones their regex groups.
                found[f"{namespace}{entry.name}"] = tuple(entry.pattern.converters) or tuple(
                    entry.pattern.regex.groupindex
                )

    walk(get_resolver().url_patterns)
    return found


@pytest.fixture(autouse=True)
def _no_portal_rate_limit(settings):
    """The walk opens the portal many times with one token from one address: not an attack."""
    settings.SELF_SERVICE_RATE_LIMIT = 10_000


def _proposal(gerente, gestora, today):
    """A portal promise outside the limits, waiting for the collector (its own client)."""
    debtor = make_client(by=gerente, collector=gestora)
    make_invoice(by=gerente, client=debtor, amount="900.00", due_date=today - dt.timedelta(days=20))
    return portal_services.promise_create(
        client=debtor, pay_on=today + dt.timedelta(days=200), amount=Decimal("1.00"), currency=debtor.currency
    )


@pytest.fixture
def world(admin_user, gerente, gestora, gestor, nobody, settings, tmp_path, monkeypatch):
    """One client of each collector, with an invoice, a contact and client credit."""
    today = dt.date.today()
    mine = make_client(by=gerente, collector=gestora)
    make_client(by=gerente, collector=gestor)
    invoice = make_invoice(by=gerente, client=mine, amount="500.00", due_date=today - dt.timedelta(days=10))
    contact = services.contact_create(by=gerente, client=mine, name="María López", email="maria@example.com")
    # A payment larger than the debt leaves credit for the "apply credit" action.
    payment = services.payment_record(by=gerente, client=mine, amount=Decimal("800.00"), received_on=today)
    make_invoice(by=gerente, client=mine, amount="100.00", due_date=today + dt.timedelta(days=10))
    users = {
        "anonymous": None,
        "owner": gestora,
        "other_collector": gestor,
        "manager": gerente,
        "admin": admin_user,
        "no_role": nobody,
    }
    policy = Policy.objects.get(segment__code="regular")  # reference data (cobranza 0003)
    spare_step = services_policies.step_create(
        by=gerente, policy=policy, name="Sobrante", offset_days=90, channel="call"
    )
    # A notice and a letter (with its PDF on disk) on the owner's client.
    settings.MEDIA_ROOT = tmp_path
    notice = Notice.objects.create(
        client=mine, step=policy.steps.get(position=1), channel="email", planned_for=today, scheduled_at=timezone.now()
    )
    letter_step = PolicyStep.objects.filter(channel="letter").first()
    letter = Notice.objects.create(
        client=mine,
        step=letter_step,
        channel="letter",
        planned_for=today,
        scheduled_at=timezone.now(),
        status="sent",
        sent_at=timezone.now(),
    )
    letters.letter_path(letter).parent.mkdir(parents=True, exist_ok=True)
    letters.letter_path(letter).write_bytes(b"%PDF-1.7 test")
    # A promise and a dispute on the owner's client (the workspace's commitment and dispute pages).
    promised = make_invoice(by=gerente, client=mine, amount="300.00", due_date=today - dt.timedelta(days=5))
    disputed = make_invoice(by=gerente, client=mine, amount="200.00", due_date=today - dt.timedelta(days=5))
    commitment = workspace_services.commitment_create(
        by=gerente,
        client=mine,
        kind="promise",
        installments=[(today + dt.timedelta(days=3), Decimal("300.00"))],
        invoices=[promised],
    )
    # The owner of the dispute is the client's collector (gestora): she and managers may resolve it.
    dispute = workspace_services.dispute_open(
        by=gerente, client=mine, invoices=[disputed], reason="price", description="Precio incorrecto"
    )
    # An open call task on the owner's client, assigned to her (the ladder's call step).
    task = CollectorTask.objects.create(client=mine, kind="call", title="Llamar", assigned_to=gestora, due_on=today)
    # A client of the owner sent to an agency (case file on disk, under MEDIA_ROOT).
    handed = make_client(by=gerente, collector=gestora)
    make_invoice(by=gerente, client=handed, amount="700.00", due_date=today - dt.timedelta(days=120))
    handoff = handoffs.handoff_open(by=gerente, client=handed, kind="agency", agency="Agencia de prueba")
    late_fee = LateFee.objects.create(invoice=invoice, kind="fixed", amount=Decimal("10.00"), computed_on=today)
    discount = Discount.objects.create(
        invoice=invoice, amount=Decimal("5.00"), reason="Pronto pago", status="requested", requested_by=gestora
    )
    alert = Alert.objects.create(
        client=mine,
        kind="credit_limit",
        period_key=f"{today:%Y-%m}",
        raised_on=today,
        title="Línea de crédito excedida",
    )
    plan_invoice = make_invoice(by=gerente, client=mine, amount="100.00", due_date=today - dt.timedelta(days=3))
    plan = workspace_services.commitment_create(
        by=gerente,
        client=mine,
        kind="plan",
        installments=[
            (today + dt.timedelta(days=10), Decimal("50.00")),
            (today + dt.timedelta(days=40), Decimal("50.00")),
        ],
        invoices=[plan_invoice],
    )
    # An inactive outgoing webhook (never contacted) with one failed delivery. Its host is
    # resolved when saved: DNS (the outside world) answers a public address.
    monkeypatch.setattr(webhooks_out, "getaddrinfo", lambda host, port, **kw: [(2, 1, 6, "", ("93.184.215.14", port))])
    webhook = webhooks_services.endpoint_create(
        by=admin_user, name="ERP", url="https://erp.example.com/hooks", events=["payment.received"], is_active=False
    )
    webhook_delivery = WebhookDelivery.objects.create(
        endpoint=webhook,
        event="payment.received",
        event_key="payment.received:walk",
        event_id="00000000-0000-4000-8000-000000000001",
        status="failed",
        attempts=6,
        last_error="HTTP 503",
    )
    return {
        "webhook": webhook,
        "webhook_delivery": webhook_delivery,
        "import_job": imports.job_create(by=gerente, kind="invoices", file_name="f.csv", data=b"Folio\n1\n"),
        "rejected_import": imports.run_job(
            imports.job_create(by=gerente, kind="invoices", file_name="r.csv", data=b"Folio\n1\n", dry_run=False)
        ),
        "selfservice_token": links.token_for(mine),
        "short_code": links.short_code_for(mine),
        "revocable": make_client(by=gerente, collector=gestora),
        "proposal": _proposal(gerente, gestora, today),
        "payment": payment,
        "interaction": Interaction.objects.filter(client=mine).first(),
        "segment": Segment.objects.get(code="regular"),
        "plan": plan,
        "alert": alert,
        "reply": replies_services.inbound_record(
            channel="sms", provider_id="walk-1", sender="+000", body="Hola", token_client_id=mine.pk
        )[0],
        "commitment": commitment,
        "dispute": dispute,
        "late_fee": late_fee,
        "discount": discount,
        "task": task,
        "handoff": handoff,
        "client": mine,
        "invoice": invoice,
        "notice": notice,
        "letter": letter,
        "contact": contact,
        "other": gestor,
        "users": users,
        "policy": policy,
        "step": policy.steps.get(position=2),
        "spare_step": spare_step,
        "template": MessageTemplate.objects.get(code="aviso-vencimiento"),
    }


def _request(http: HttpClient, name: str, case: Case, world) -> tuple[str, object]:
    kwargs = {}
    for kwarg in project_routes()[name]:
        if kwarg == "token":  # the debtor's self-service link: a valid one of the owner's client
            kwargs["token"] = world["selfservice_token"]
            continue
        if kwarg == "code":  # its short form (SMS, WhatsApp)
            kwargs["code"] = world["short_code"]
            continue
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
