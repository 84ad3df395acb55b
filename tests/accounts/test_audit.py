"""Audit history: who changed what and when, shown per client and for the whole system."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import audit, services
from accounts.models import Client, Contact, Invoice, PaymentAllocation
from cobranza.ladders import services as services_policies
from cobranza.models import MessageTemplate, Policy, PolicyStep
from tests.factories import client_page_html, make_client, make_invoice, segment

pytestmark = pytest.mark.django_db


def _entries(obj, action=None):
    qs = LogEntry.objects.get_for_object(obj).order_by("timestamp", "id")
    return list(qs if action is None else qs.filter(action=action))


def _http(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def _client_form(client: Client, **overrides) -> dict:
    data = {
        "legal_name": client.legal_name,
        "trade_name": client.trade_name,
        "tax_id": client.tax_id,
        "kind": client.kind,
        "segment": client.segment_id,
        "collector": client.collector_id or "",
        "credit_limit": str(client.credit_limit),
        "payment_terms_days": str(client.payment_terms_days),
        "currency": client.currency,
        "language": client.language,
        "time_zone": client.time_zone,
        "country": client.country,
        "business_group": "",
        "client_since": "",
        "status": client.status,
        "address": client.address,
        "notes": client.notes,
    }
    data.update(overrides)
    return data


@pytest.fixture
def hers(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Papelería La Pluma S.A.", trade_name="La Pluma")
    make_invoice(by=gerente, client=client, number="LP-001", amount="1200.00", due_in_days=-20)
    return client


# --- what is recorded ----------------------------------------------------------------------


def test_a_change_made_in_the_browser_is_credited_to_the_user_with_before_and_after(gerente, hers):
    response = _http(gerente).post(
        reverse("client_edit", args=[hers.pk]), _client_form(hers, credit_limit="75000.00", status="legal")
    )

    assert response.status_code == 302
    [entry] = _entries(hers, LogEntry.Action.UPDATE)
    assert entry.actor == gerente
    assert entry.changes == {"credit_limit": ["0.00", "75000.00"], "status": ["active", "legal"]}


def test_a_change_made_through_the_api_with_a_token_is_credited_to_the_token_user(gerente, hers):
    """DRF authenticates the token inside the view, after every middleware: the actor is read
    when the entry is written, not when the request starts."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=gerente).key}")

    response = api.patch(reverse("api:client-detail", args=[hers.pk]), {"payment_terms_days": 60}, format="json")

    assert response.status_code == 200, response.content
    [entry] = _entries(hers, LogEntry.Action.UPDATE)
    assert entry.actor == gerente
    assert entry.changes == {"payment_terms_days": ["30", "60"]}


def test_background_work_is_credited_to_the_system_and_acting_as_names_a_person(gerente, hers):
    services.client_update(by=None, client=hers, status="in_collection")  # as the escalation worker does
    with audit.acting_as(gerente):  # as an import a manager started
        services.client_update(by=gerente, client=hers, notes="Importado")

    system, person = _entries(hers, LogEntry.Action.UPDATE)
    assert system.actor is None and system.changes == {"status": ["active", "in_collection"]}
    assert person.actor == gerente and person.changes == {"notes": ["", "Importado"]}


def test_contacts_invoices_payments_and_allocations_are_recorded_when_saved(gerente, gestora, hers):
    http = _http(gestora)
    contact = services.contact_create(by=gerente, client=hers, name="Rosa Pagos", email="rosa@pluma.example")
    http.post(
        reverse("contact_edit", args=[contact.pk]),
        {"role": "billing", "name": "Rosa Pagos", "email": "cobros@pluma.example", "preferred_channel": "email"},
    )
    payment = services.payment_record(by=gerente, client=hers, amount=Decimal("200.00"), received_on=dt.date.today())

    [contact_change] = _entries(contact, LogEntry.Action.UPDATE)
    assert contact_change.actor == gestora
    assert contact_change.changes["email"] == ["rosa@pluma.example", "cobros@pluma.example"]
    assert [e.action for e in _entries(payment)] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert _entries(Invoice.objects.get(number="LP-001"), LogEntry.Action.CREATE)


def test_timestamps_that_move_on_every_save_are_not_recorded_as_changes(gerente, hers):
    services.client_update(by=gerente, client=hers, notes="Cliente desde 2019")
    invoice = Invoice.objects.get(number="LP-001")
    services.invoice_set_status(by=gerente, invoice=invoice, status="disputed", reason="Reclamación de precio")

    [client_change] = _entries(hers, LogEntry.Action.UPDATE)
    [invoice_change] = _entries(invoice, LogEntry.Action.UPDATE)
    assert set(client_change.changes) == {"notes"}
    assert invoice_change.changes == {"status": ["open", "disputed"]}
    [created] = _entries(invoice, LogEntry.Action.CREATE)
    assert not {"created_at", "updated_at", "open_balance"} & set(created.changes)


def test_policies_steps_templates_and_segments_are_recorded(gerente):
    policy = Policy.objects.get(segment__code="regular")
    step = policy.steps.order_by("position").first()
    template = MessageTemplate.objects.get(code="aviso-vencimiento")
    old_tolerance = str(policy.tolerance)

    with audit.acting_as(gerente):
        services_policies.policy_update(by=gerente, policy=policy, tolerance=Decimal("50.00"))
        services_policies.step_update(by=gerente, step=step, name="Primer aviso cordial")
        services_policies.template_save(
            by=gerente,
            template=template,
            name="Aviso de vencimiento (nuevo)",
            channel=template.channel,
            tone=template.tone,
            texts={
                t.language: services_policies.TextDraft(subject=t.subject, body=t.body) for t in template.texts.all()
            },
        )
        seg = segment("regular")
        seg.priority_weight = 3
        seg.save(update_fields=["priority_weight"])

    assert _entries(policy, LogEntry.Action.UPDATE)[0].changes == {"tolerance": [old_tolerance, "50.00"]}
    assert _entries(PolicyStep.objects.get(pk=step.pk), LogEntry.Action.UPDATE)[0].changes["name"][1] == (
        "Primer aviso cordial"
    )
    assert _entries(template, LogEntry.Action.UPDATE)[0].changes["name"][1] == "Aviso de vencimiento (nuevo)"
    assert _entries(seg, LogEntry.Action.UPDATE)[0].actor == gerente


# --- set-based writes: explicit entries ----------------------------------------------------


def test_set_based_updates_are_recorded_from_a_snapshot_in_one_insert(gerente, gestor, hers):
    other = make_client(by=gerente, collector=gestor)
    before = audit.snapshot(Client.objects.filter(pk__in=[hers.pk, other.pk]))
    Client.objects.filter(pk=hers.pk).update(collector=gestor, updated_at=timezone.now())

    with CaptureQueriesContext(connection) as ctx:
        written = audit.log_updates(by=gerente, before=before, after=Client.objects.filter(pk__in=[hers.pk, other.pk]))

    assert written == 1  # the other client did not change
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "auditlog_logentry"')]
    assert len(inserts) == 1
    [entry] = _entries(hers, LogEntry.Action.UPDATE)
    assert entry.actor == gerente
    assert entry.changes == {"collector": [str(hers.collector_id), str(gestor.pk)]}


def test_bulk_created_rows_are_recorded_as_created(gerente, hers):
    payment = services.payment_record(
        by=gerente, client=hers, amount=Decimal("50.00"), received_on=dt.date.today(), allocations=[]
    )
    invoice = Invoice.objects.get(number="LP-001")
    [allocation] = PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=payment, invoice=invoice, amount=Decimal("50.00"))]
    )

    assert audit.log_creations(by=gerente, objects=[allocation]) == 1
    [entry] = _entries(allocation, LogEntry.Action.CREATE)
    assert entry.actor == gerente and entry.changes["amount"] == ["None", "50.00"]


# --- the client's history page -------------------------------------------------------------


def _edit_client(gerente, client, **changes):
    _http(gerente).post(reverse("client_edit", args=[client.pk]), _client_form(client, **changes))
    client.refresh_from_db()


def test_the_client_history_shows_who_changed_what_newest_first(gerente, gestora, hers):
    contact = services.contact_create(by=gerente, client=hers, name="Rosa Pagos", phone="555-0101")
    _edit_client(gerente, hers, credit_limit="30000.00")
    _http(gestora).post(
        reverse("contact_edit", args=[contact.pk]),
        {"role": "billing", "name": "Rosa Pagos", "phone": "555-0199", "preferred_channel": "phone"},
    )

    response = _http(gestora).get(reverse("client_history", args=[hers.pk]))

    assert response.status_code == 200
    rows = response.context["rows"]
    assert rows[0].actor_label == "Lucía Gestora" and rows[0].model_label == "contacto"
    changes = {c.label: (c.before, c.after) for c in rows[0].changes}
    assert changes["teléfono"] == ("555-0101", "555-0199")
    assert changes["canal preferido"] == ("Correo electrónico", "Teléfono")
    assert rows[1].actor_label == "Gabriela Gerente"
    assert {c.label: (c.before, c.after) for c in rows[1].changes} == {"límite de crédito": ("0.00", "30000.00")}
    html = response.content.decode()
    assert "555-0101" in html and "555-0199" in html and "Historial de cambios" in html


def test_related_objects_and_choices_are_shown_by_name(gerente, gestor, hers):
    _edit_client(gerente, hers, collector=gestor.pk, status="agency")

    rows = _http(gerente).get(reverse("client_history", args=[hers.pk])).context["rows"]

    changes = {c.label: (c.before, c.after) for c in rows[0].changes}
    assert changes["gestor asignado"] == ("Lucía Gestora", "Mario Gestor")
    assert changes["estado"] == ("Activo", "En agencia de cobranza")


def test_changes_by_the_system_are_shown_as_sistema(gerente, hers):
    services.client_update(by=None, client=hers, status="in_collection")

    rows = _http(gerente).get(reverse("client_history", args=[hers.pk])).context["rows"]

    assert rows[0].actor_label == "Sistema"


def test_the_history_holds_only_this_clients_objects(gerente, gestora, hers):
    other = make_client(by=gerente, collector=gestora, legal_name="Otra Empresa S.A.")
    make_invoice(by=gerente, client=other, number="OT-9")

    rows = _http(gerente).get(reverse("client_history", args=[hers.pk])).context["rows"]

    labels = {r.object_label for r in rows}
    assert "LP-001" in labels and "OT-9" not in labels and "Otra Empresa S.A." not in labels


def test_a_collector_sees_only_the_history_of_clients_she_works(gestora, gestor, hers, nobody):
    assert _http(gestora).get(reverse("client_history", args=[hers.pk])).status_code == 200
    assert _http(gestor).get(reverse("client_history", args=[hers.pk])).status_code == 404
    assert _http(nobody).get(reverse("client_history", args=[hers.pk])).status_code == 403


def test_the_client_page_links_to_its_history(gestora, hers):
    html = client_page_html(_http(gestora), hers.pk)
    assert reverse("client_history", args=[hers.pk]) in html


def test_the_client_history_is_paginated(gerente, hers):
    for n in range(55):
        services.client_update(by=gerente, client=hers, notes=f"Nota {n}")

    first = _http(gerente).get(reverse("client_history", args=[hers.pk]))
    second = _http(gerente).get(reverse("client_history", args=[hers.pk]), {"page": 2})

    assert len(first.context["rows"]) == 50
    assert first.context["rows"][0].changes[0].after == "Nota 54"
    assert second.context["page_obj"].number == 2 and len(second.context["rows"]) >= 5


def _queries(http, url, params=None) -> int:
    """The queries of a page in steady state: the first request of a process also fills
    per-process caches (content types), which a test run alone would count and a test run after
    others would not."""
    assert http.get(url, params or {}).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert http.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


def test_the_client_history_costs_the_same_queries_for_few_or_many_entries(gerente, gestor, gestora, hers):
    http = _http(gerente)
    url = reverse("client_history", args=[hers.pk])
    _edit_client(gerente, hers, collector=gestor.pk)
    few = _queries(http, url)
    for n in range(20):
        services.contact_create(by=gerente, client=hers, name=f"Contacto {n}")
        _edit_client(gerente, hers, collector=(gestora if n % 2 else gestor).pk, notes=f"n{n}")
    assert _queries(http, url) == few


# --- the system-wide audit page ------------------------------------------------------------


def test_the_audit_page_is_for_managers_and_admins(gerente, admin_user, gestora, hers):
    assert _http(gerente).get(reverse("audit_log")).status_code == 200
    assert _http(admin_user).get(reverse("audit_log")).status_code == 200
    assert _http(gestora).get(reverse("audit_log")).status_code == 403


def test_the_audit_page_filters_by_model_user_and_dates(gerente, admin_user, hers):
    _edit_client(gerente, hers, notes="por la gerente")
    _http(admin_user).post(
        reverse("contact_create", args=[hers.pk]), {"role": "billing", "name": "Nuevo", "preferred_channel": "email"}
    )
    services.client_update(by=None, client=hers, status="in_collection")
    http = _http(gerente)

    by_model = http.get(reverse("audit_log"), {"model": "accounts.client"}).context["rows"]
    by_admin = http.get(reverse("audit_log"), {"user": admin_user.pk}).context["rows"]
    by_system = http.get(reverse("audit_log"), {"user": "sistema"}).context["rows"]
    today = timezone.localdate()
    tomorrow = http.get(reverse("audit_log"), {"date_from": (today + dt.timedelta(days=1)).isoformat()})
    today_only = http.get(reverse("audit_log"), {"date_from": today.isoformat(), "date_to": today.isoformat()})

    assert by_model and {r.model_label for r in by_model} == {"cliente"}
    assert [(r.model_label, r.actor_label) for r in by_admin] == [("contacto", "Ana Administradora")]
    assert by_system and {r.actor_label for r in by_system} == {"Sistema"}
    assert tomorrow.context["rows"] == []
    assert len(today_only.context["rows"]) == LogEntry.objects.count()


def test_bad_filters_are_field_errors_not_a_500(gerente, hers):
    response = _http(gerente).get(
        reverse("audit_log"), {"date_from": "2026-02-30", "model": "auth.user", "date_to": "ayer", "user": "x"}
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"date_from", "date_to", "model", "user"} <= set(errors)


def test_a_reversed_date_range_is_an_error_on_the_end_date(gerente):
    response = _http(gerente).get(reverse("audit_log"), {"date_from": "2026-05-10", "date_to": "2026-05-01"})

    assert "date_to" in response.context["form"].errors


def test_the_audit_page_costs_the_same_queries_for_few_or_many_entries(gerente, gestor, gestora, hers):
    http = _http(gerente)
    _edit_client(gerente, hers, collector=gestor.pk)
    few = _queries(http, reverse("audit_log"))
    with audit.acting_as(gerente):
        for n in range(15):
            client = make_client(by=gerente, collector=gestora if n % 2 else gestor)
            make_invoice(by=gerente, client=client)
            services.contact_create(by=gerente, client=client, name=f"Contacto {n}")
    assert LogEntry.objects.count() > 45
    assert _queries(http, reverse("audit_log")) == few
    assert _queries(http, reverse("audit_log"), {"user": gerente.pk, "date_from": "2026-01-01"}) == few


def test_a_deleted_contact_stays_in_the_global_audit(gerente, hers):
    contact = services.contact_create(by=gerente, client=hers, name="Contacto Temporal")
    with audit.acting_as(gerente):
        Contact.objects.get(pk=contact.pk).delete()

    rows = _http(gerente).get(reverse("audit_log"), {"user": gerente.pk}).context["rows"]

    assert ("delete", "Contacto Temporal (Facturación / cuentas por pagar)") in [
        (r.action, r.object_label) for r in rows
    ]
