"""Managers edit dunning policies, their ladders and message templates in the product,
through the real stack (URL → view → form → service → PostgreSQL → template): who may,
what a mistake looks like (a sentence next to the field, never a 500, nothing saved),
reordering and deleting steps, the live preview, and the cost of the list pages."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Interaction, Segment
from cobranza.ladders import services
from cobranza.models import MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from cobranza.ops import services as collections
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
LOGIN = reverse("login")


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _regular() -> Policy:
    return Policy.objects.get(segment__code="regular")


def _template(code: str) -> MessageTemplate:
    return MessageTemplate.objects.get(code=code)


def _ladder(policy: Policy) -> list[tuple[int, str]]:
    return list(PolicyStep.objects.filter(policy=policy).order_by("position").values_list("position", "name"))


def _step_data(**overrides) -> dict:
    data = {
        "position": "",
        "name": "Recordatorio por WhatsApp",
        "days": "2",
        "timing": "after",
        "channel": "whatsapp",
        "template": str(_template("seguimiento-whatsapp").pk),
        "tone": "courteous",
        "min_overdue_amount": "0.00",
        "is_active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _template_data(template: MessageTemplate | None = None, **overrides) -> dict:
    data = {"name": "Recordatorio breve", "channel": "email", "tone": "courteous", "is_active": "on"}
    if template is not None:
        data.update(name=template.name, channel=template.channel, tone=template.tone)
        for text in template.texts.all():
            data[f"subject_{text.language}"] = text.subject
            data[f"body_{text.language}"] = text.body
    data.update(overrides)
    return data


# --- access -------------------------------------------------------------------------------


def _routes():
    """Every view of cobranza/ladders/urls.py: (name, method, object kind)."""
    return [
        ("policy_list", "get", None),
        ("policy_create", "get", None),
        ("policy_edit", "get", "policy"),
        ("step_create", "get", "policy"),
        ("step_edit", "get", "step"),
        ("step_delete", "post", "step"),
        ("step_move", "post", "step"),
        ("template_list", "get", None),
        ("template_create", "get", None),
        ("template_edit", "get", "template"),
        ("template_preview", "post", None),
    ]


def _url(name, kind):
    objects = {
        "policy": lambda: _regular().pk,
        "step": lambda: PolicyStep.objects.filter(policy=_regular()).order_by("position").last().pk,
        "template": lambda: _template("aviso-vencimiento").pk,
    }
    return reverse(f"cobranza:{name}", args=[objects[kind]()] if kind else [])


def test_the_access_tests_cover_every_view_of_the_module():
    from cobranza.ladders import urls as urls_policies

    # The catch-up confirmation is for administrators only: its access is tested in test_pacing.py.
    assert {p.name for p in urls_policies.urlpatterns} == {name for name, _m, _k in _routes()} | {"step_catch_up"}


@pytest.mark.parametrize(("name", "method", "kind"), _routes())
def test_anonymous_visitors_are_sent_to_the_login_page(client, name, method, kind):
    response = getattr(client, method)(_url(name, kind))
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


@pytest.mark.parametrize(("name", "method", "kind"), _routes())
@pytest.mark.parametrize("role", ["gestora", "nobody"])
def test_collectors_and_users_without_a_role_get_403(client, request, role, name, method, kind):
    client.force_login(request.getfixturevalue(role))
    steps_before = PolicyStep.objects.count()
    response = getattr(client, method)(_url(name, kind), {"direction": "up"} if method == "post" else {})
    assert response.status_code == 403
    assert PolicyStep.objects.count() == steps_before


@pytest.mark.parametrize(("name", "method", "kind"), _routes())
@pytest.mark.parametrize("role", ["gerente", "admin_user"])
def test_managers_and_administrators_may_open_every_view(client, request, role, name, method, kind):
    client.force_login(request.getfixturevalue(role))
    if method == "get":
        assert client.get(_url(name, kind)).status_code == 200
    else:
        assert client.get(_url(name, kind)).status_code == 405  # state changes refuse GET
        data = {"direction": "up"} if name == "step_move" else {"body_es": "Hola {{ cliente }}"}
        assert client.post(_url(name, kind), data).status_code in (200, 302)


def test_services_refuse_collectors(gestora):
    with pytest.raises(PermissionDenied):
        services.policy_create(by=gestora, name="Mía")
    step = PolicyStep.objects.filter(policy=_regular()).first()
    with pytest.raises(PermissionDenied):
        services.step_move(by=gestora, step=step, direction="down")
    with pytest.raises(PermissionDenied):
        services.step_delete(by=gestora, step=step)
    with pytest.raises(PermissionDenied):
        services.template_save(by=gestora, name="x", channel="sms", texts={})


# --- policy list --------------------------------------------------------------------------


def test_policy_list_shows_segment_steps_clients_and_state(client, gerente):
    a = make_client(by=gerente, legal_name="Aceros del Norte")
    make_client(by=gerente, legal_name="Bodegas del Sur")
    own = services.policy_create(by=gerente, name="Escalera a la medida", tolerance=Decimal("0.00"))
    collections.client_set_policy(by=gerente, client=a, policy=own)
    services.step_create(by=gerente, policy=own, name="Llamada", offset_days=5, channel="call")
    services.step_update(by=gerente, step=PolicyStep.objects.get(policy=_regular(), position=7), is_active=False)
    Policy.objects.filter(segment__code="alto-riesgo").update(is_active=False)

    client.force_login(gerente)
    response = client.get(reverse("cobranza:policy_list"))
    assert response.status_code == 200
    html = response.content.decode()
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-policy="(\d+)">.*?</tr>', html, flags=re.S)}
    regular = rows[str(_regular().pk)]
    assert "Escalera regular" in regular and "Regular" in regular
    assert re.search(r"6 <span[^>]*>de 7</span>", regular)  # active steps of all steps
    assert '<td class="text-end num" data-testid="clients-total">1</td>' in regular  # one left to the segment
    assert "con política propia" not in regular  # nobody has the segment's policy as their own
    mine = rows[str(own.pk)]
    assert "política propia de 1 cliente" in mine
    assert '<td class="text-end num" data-testid="clients-total">1</td>' in mine
    assert "Inactiva" in rows[str(Policy.objects.get(segment__code="alto-riesgo").pk)]
    assert "Inactiva" not in regular


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _fresh_start():
    PolicyStep.objects.all().delete()
    Policy.objects.all().delete()
    MessageTemplate.objects.all().delete()


def _add_policies(n, *, by, start):
    for i in range(start, start + n):
        template = services.template_save(
            by=by,
            name=f"Plantilla {i}",
            channel="email",
            texts={
                "es": services.TextDraft(subject="Aviso {{ cliente }}", body="Hola {{ cliente }}"),
                "en": services.TextDraft(subject="Notice {{ cliente }}", body="Hello {{ cliente }}"),
            },
        )
        policy = services.policy_create(by=by, name=f"Política {i}", segment=None)
        services.step_create(by=by, policy=policy, name="Correo", offset_days=1, channel="email", template=template)
        services.step_create(by=by, policy=policy, name="Llamada", offset_days=9, channel="call", is_active=False)
        debtor = make_client(by=by)
        collections.client_set_policy(by=by, client=debtor, policy=policy)


def test_policy_list_costs_the_same_queries_for_one_or_many_policies(client, gerente):
    _fresh_start()
    client.force_login(gerente)
    _add_policies(1, by=gerente, start=0)
    one = _count(client, reverse("cobranza:policy_list"))
    _add_policies(12, by=gerente, start=1)
    many = _count(client, reverse("cobranza:policy_list"))
    assert many == one <= 5  # session, user, roles, then one query for the policies


def test_template_list_costs_the_same_queries_for_one_or_many_templates(client, gerente):
    _fresh_start()
    client.force_login(gerente)
    _add_policies(1, by=gerente, start=0)
    one = _count(client, reverse("cobranza:template_list"))
    _add_policies(12, by=gerente, start=1)
    many = _count(client, reverse("cobranza:template_list"))
    assert many == one <= 6  # session, user, roles, templates, their texts


def test_template_list_shows_channel_languages_and_use(client, gerente):
    sms = _template("seguimiento-sms")
    MessageTemplateText.objects.filter(template=sms, language="en").delete()
    client.force_login(gerente)
    html = client.get(reverse("cobranza:template_list")).content.decode()
    row = re.search(rf'<tr data-template="{sms.pk}">.*?</tr>', html, flags=re.S).group(0)
    assert "SMS de seguimiento" in row
    assert "<s>EN</s>" in row  # no English text: the Spanish one is sent
    assert "2 pasos" in row and "2 políticas" in row  # regular and esporádicos


# --- policy create / edit -----------------------------------------------------------------


def test_manager_creates_a_policy_and_lands_on_its_ladder(client, gerente):
    nuevo = Segment.objects.create(code="mayoristas", name="Mayoristas", position=9)
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:policy_create"),
        {"name": "Escalera de mayoristas", "description": "Más tolerante", "segment": nuevo.pk, "tolerance": "50"},
    )
    policy = Policy.objects.get(name="Escalera de mayoristas")
    assert response.status_code == 302
    assert response.url == reverse("cobranza:policy_edit", args=[policy.pk]) + "#escalera"
    assert (policy.segment, policy.tolerance, policy.is_active) == (nuevo, Decimal("50.00"), False)
    page = client.get(response.url)
    assert "La escalera no tiene pasos todavía" in page.content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "Escalera regular"}, "name", "Ya existe una política con este nombre."),
        ({"name": "Otra", "segment": "regular"}, "segment", "ya sigue la política «Escalera regular»"),
        ({"name": "Otra", "tolerance": "-1"}, "tolerance", ""),
        ({"name": ""}, "name", ""),
    ],
)
def test_policy_form_errors_are_shown_on_their_field_and_nothing_is_saved(client, gerente, data, field, message):
    if data.get("segment"):
        data["segment"] = segment(data["segment"]).pk
    client.force_login(gerente)
    before = Policy.objects.count()
    response = client.post(reverse("cobranza:policy_create"), {"tolerance": "1.00", **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert Policy.objects.count() == before


def test_policy_edit_saves_and_moves_updated_at(client, gerente):
    policy = _regular()
    before = policy.updated_at
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:policy_edit", args=[policy.pk]),
        {
            "name": policy.name,
            "description": "Nueva descripción",
            "segment": policy.segment_id,
            "tolerance": "25.50",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.description == "Nueva descripción"
    assert policy.tolerance == Decimal("25.50")
    assert policy.updated_at > before


def test_policy_page_shows_the_ladder_in_words(client, gerente):
    client.force_login(gerente)
    html = client.get(reverse("cobranza:policy_edit", args=[_regular().pk])).content.decode()
    assert "3 días antes del vencimiento" in html
    assert "1 día después del vencimiento" in html
    assert "15 días después" in html
    assert "Recordatorio previo al vencimiento" in html
    assert "Revisión del gerente" in html
    services.step_create(by=None, policy=_regular(), name="Hoy", offset_days=0, channel="call")
    html = client.get(reverse("cobranza:policy_edit", args=[_regular().pk])).content.decode()
    assert "el día del vencimiento" in html
    # a later step with fewer days than an earlier one is flagged: the planner goes by position
    assert "Hay pasos activos con menos días que un paso anterior" in html


# --- steps --------------------------------------------------------------------------------


def test_manager_adds_a_step_at_the_end_of_the_ladder(client, gerente):
    policy = _regular()
    before = policy.updated_at
    client.force_login(gerente)
    assert client.get(reverse("cobranza:step_create", args=[policy.pk])).context["form"]["position"].value() == 8
    response = client.post(reverse("cobranza:step_create", args=[policy.pk]), _step_data(position="8"))
    assert response.status_code == 302
    assert response.url.endswith("#escalera")
    step = PolicyStep.objects.get(policy=policy, name="Recordatorio por WhatsApp")
    assert (step.position, step.offset_days, step.channel) == (8, 2, "whatsapp")
    policy.refresh_from_db()
    assert policy.updated_at > before


def test_days_before_the_due_date_are_a_negative_offset(client, gerente):
    client.force_login(gerente)
    client.post(
        reverse("cobranza:step_create", args=[_regular().pk]),
        _step_data(
            position="8", timing="before", days="10", channel="email", template=_template("recordatorio-previo").pk
        ),
    )
    assert PolicyStep.objects.get(policy=_regular(), position=8).offset_days == -10


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"position": "3"}, "position", "La posición 3 ya la ocupa el paso «SMS de seguimiento»"),
        (
            {"days": "7", "channel": "sms", "template": "seguimiento-sms"},
            "days",
            "El paso «SMS de seguimiento» ya envía por SMS ese mismo día",
        ),
        ({"template": ""}, "template", "elija su plantilla"),
        ({"template": "aviso-firme"}, "template", "es para Correo electrónico; este paso envía por WhatsApp"),
        ({"min_overdue_amount": "-5"}, "min_overdue_amount", ""),
        ({"days": ""}, "days", "Indique cuántos días."),
        ({"days": "-3"}, "days", ""),
        ({"name": "  "}, "name", ""),
    ],
)
def test_step_errors_are_shown_on_their_field_and_nothing_is_saved(client, gerente, overrides, field, message):
    if overrides.get("template"):
        overrides["template"] = str(_template(overrides["template"]).pk)
    policy = _regular()
    ladder, updated_at = _ladder(policy), policy.updated_at
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:step_create", args=[policy.pk]), _step_data(**{"position": "8", **overrides})
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert _ladder(policy) == ladder
    policy.refresh_from_db()
    assert policy.updated_at == updated_at


def test_the_same_day_on_the_due_date_reports_on_the_timing(client, gerente):
    policy = _regular()
    services.step_create(by=gerente, policy=policy, name="Hoy", offset_days=0, channel="call")
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:step_edit", args=[PolicyStep.objects.get(policy=policy, position=4).pk]),
        _step_data(position="4", timing="on", days=None, channel="call", template="", name="Llamada"),
    )
    assert "ya envía por Llamada del gestor ese mismo día" in " ".join(response.context["form"].errors["timing"])


def test_services_raise_field_errors_for_the_database_constraints(gerente):
    policy = _regular()
    with pytest.raises(ValidationError) as exc:
        services.step_create(by=gerente, policy=policy, name="x", offset_days=99, channel="email", position=1)
    assert set(exc.value.message_dict) == {"position", "template"}
    with pytest.raises(ValidationError) as exc:
        services.step_create(
            by=gerente,
            policy=policy,
            name="x",
            offset_days=-3,
            channel="email",
            template=_template("recordatorio-previo"),
        )
    assert list(exc.value.message_dict) == ["offset_days"]
    with pytest.raises(ValidationError) as exc:
        services.step_create(
            by=gerente, policy=policy, name="x", offset_days=90, channel="call", min_overdue_amount=Decimal("-1")
        )
    assert list(exc.value.message_dict) == ["min_overdue_amount"]
    with pytest.raises(ValidationError) as exc:
        services.policy_update(by=gerente, policy=policy, tolerance=Decimal("-0.01"))
    assert list(exc.value.message_dict) == ["tolerance"]
    assert len(_ladder(policy)) == 7


def test_editing_a_step_into_a_call_drops_its_template(client, gerente):
    step = PolicyStep.objects.get(policy=_regular(), position=2)
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:step_edit", args=[step.pk]),
        _step_data(
            position="2",
            name="Llamada al vencer",
            days="1",
            channel="call",
            tone="firm",
            template=str(_template("aviso-vencimiento").pk),
            requires_approval="on",
        ),
    )
    assert response.status_code == 302
    step.refresh_from_db()
    assert (step.name, step.channel, step.template, step.tone, step.requires_approval) == (
        "Llamada al vencer",
        "call",
        None,
        "firm",
        True,
    )


def test_step_edit_page_shows_the_current_values(client, gerente):
    step = PolicyStep.objects.get(policy=_regular(), position=1)
    client.force_login(gerente)
    form = client.get(reverse("cobranza:step_edit", args=[step.pk])).context["form"]
    assert (form["days"].value(), form["timing"].value(), form["template"].value()) == (3, "before", step.template_id)


# --- reorder and delete -------------------------------------------------------------------


def test_moving_a_step_swaps_it_with_its_neighbour(client, gerente):
    policy = _regular()
    sms = PolicyStep.objects.get(policy=policy, position=3)
    before = policy.updated_at
    client.force_login(gerente)
    response = client.post(reverse("cobranza:step_move", args=[sms.pk]), {"direction": "up"})
    assert response.status_code == 302
    assert response.url.endswith(f"#paso-{sms.pk}")
    names = [name for _position, name in _ladder(policy)]
    assert names[1:3] == ["SMS de seguimiento", "Aviso de vencimiento"]
    assert [position for position, _name in _ladder(policy)] == list(range(1, 8))
    client.post(reverse("cobranza:step_move", args=[sms.pk]), {"direction": "down"})
    client.post(reverse("cobranza:step_move", args=[sms.pk]), {"direction": "down"})
    assert [name for _p, name in _ladder(policy)][2:4] == [
        "Llamada de seguimiento: acordar fecha de pago",
        "SMS de seguimiento",
    ]
    policy.refresh_from_db()
    assert policy.updated_at > before


def test_the_first_step_cannot_move_up_nor_the_last_down(client, gerente):
    policy = _regular()
    ladder = _ladder(policy)
    first, last = PolicyStep.objects.get(policy=policy, position=1), PolicyStep.objects.get(policy=policy, position=7)
    client.force_login(gerente)
    client.post(reverse("cobranza:step_move", args=[first.pk]), {"direction": "up"})
    client.post(reverse("cobranza:step_move", args=[last.pk]), {"direction": "down"})
    client.post(reverse("cobranza:step_move", args=[last.pk]), {"direction": "sideways"})
    assert _ladder(policy) == ladder


def test_moves_work_across_gaps_in_the_positions(gerente):
    policy = services.policy_create(by=gerente, name="Con huecos")
    a = services.step_create(by=gerente, policy=policy, name="A", offset_days=1, channel="call", position=5)
    b = services.step_create(by=gerente, policy=policy, name="B", offset_days=2, channel="call", position=10)
    assert services.step_move(by=gerente, step=b, direction="up") is True
    assert _ladder(policy) == [(5, "B"), (10, "A")]
    assert services.step_move(by=gerente, step=a, direction="down") is False


def _notice_for(step: PolicyStep, *, by) -> Notice:
    debtor = make_client(by=by)
    make_invoice(by=by, client=debtor, due_date=TODAY - dt.timedelta(days=20))
    return Notice.objects.create(
        client=debtor, step=step, channel=step.channel, planned_for=TODAY, scheduled_at=timezone.now()
    )


def test_deleting_an_unused_step_removes_it_and_renumbers_the_ladder(client, gerente):
    policy = _regular()
    step = PolicyStep.objects.get(policy=policy, position=3)
    client.force_login(gerente)
    response = client.post(reverse("cobranza:step_delete", args=[step.pk]))
    assert response.status_code == 302
    assert not PolicyStep.objects.filter(pk=step.pk).exists()
    assert [p for p, _n in _ladder(policy)] == [1, 2, 3, 4, 5, 6]
    assert "Paso «SMS de seguimiento» eliminado." in _messages(response)


def test_deleting_a_step_that_already_sent_notices_deactivates_it(client, gerente):
    policy = _regular()
    step = PolicyStep.objects.get(policy=policy, position=3)
    _notice_for(step, by=gerente)
    interactions = Interaction.objects.count()
    client.force_login(gerente)
    html = client.get(reverse("cobranza:policy_edit", args=[policy.pk])).content.decode()
    assert "se desactivará" in html  # the page says so before the click

    response = client.post(reverse("cobranza:step_delete", args=[step.pk]))
    assert response.status_code == 302
    step.refresh_from_db()
    assert step.is_active is False
    assert "no se eliminó, se desactivó" in _messages(response)[0]
    assert len(_ladder(policy)) == 7

    response = client.post(reverse("cobranza:step_delete", args=[step.pk]))
    assert response.status_code == 302
    assert "ya estaba desactivado" in _messages(response)[-1]
    assert PolicyStep.objects.filter(pk=step.pk).exists()
    assert Interaction.objects.count() == interactions  # configuration never writes to a timeline


# --- message templates --------------------------------------------------------------------


def test_template_page_shows_both_languages_the_help_and_a_preview(client, gerente):
    template = _template("aviso-vencimiento")
    client.force_login(gerente)
    response = client.get(reverse("cobranza:template_edit", args=[template.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="body_es"' in html and 'name="body_en"' in html
    assert "{{ cliente.razon_social }}" in html  # the placeholder panel
    assert "razón social" in html
    assert "Con datos de ejemplo" in html
    assert "Aviso de vencimiento – Comercializadora del Bajío" in html  # the sample subject, rendered
    assert "Escalera regular · 2. Aviso de vencimiento" in html  # who sends it


def test_saving_a_template_updates_its_texts(client, gerente):
    template = _template("aviso-vencimiento")
    before = template.updated_at
    client.force_login(gerente)
    data = _template_data(template, body_es="Hola {{ cliente }}, debe {{ total_texto }}.", subject_en="", body_en="")
    response = client.post(reverse("cobranza:template_edit", args=[template.pk]), data)
    assert response.status_code == 302
    template.refresh_from_db()
    texts = {t.language: t for t in template.texts.all()}
    assert texts["es"].body == "Hola {{ cliente }}, debe {{ total_texto }}."
    assert "en" not in texts  # English left blank: its clients get the Spanish text
    assert template.updated_at > before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("body_es", "Hola {{ cliente.nada }}", "no tiene el dato «nada»"),
        ("body_en", "Hi {{ clientx }}", "Variable desconocida"),
        ("subject_es", "{% cargar algo %}Aviso", "Etiqueta desconocida {% cargar %}"),
        ("body_es", "{% load static %}Hola", "no está permitida"),
        ("body_es", "Hola {% if cliente %}", "Error de sintaxis"),
        ("subject_es", "", "Un correo necesita un asunto."),
        ("body_es", "", "Escriba el texto del mensaje."),
    ],
)
def test_template_errors_are_shown_on_their_field_and_nothing_is_saved(client, gerente, field, value, message):
    template = _template("aviso-vencimiento")
    saved = {(t.language, t.subject, t.body) for t in template.texts.all()}
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_edit", args=[template.pk]), _template_data(template, **{field: value})
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert message.replace("«", "&laquo;").replace("»", "&raquo;") in response.content.decode() or message in (
        response.content.decode()
    )
    assert {(t.language, t.subject, t.body) for t in template.texts.all()} == saved


def test_a_new_template_gets_a_code_and_its_texts(client, gerente):
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_create"),
        _template_data(name="Recordatorio breve", channel="sms", subject_es="ignorado", body_es="{{ cliente }}: pague"),
    )
    template = MessageTemplate.objects.get(name="Recordatorio breve")
    assert response.status_code == 302
    assert response.url == reverse("cobranza:template_edit", args=[template.pk])
    assert template.code == "recordatorio-breve"
    assert [(t.language, t.subject, t.body) for t in template.texts.all()] == [("es", "", "{{ cliente }}: pague")]


def test_a_template_cannot_change_channel_under_the_steps_that_send_it(client, gerente):
    template = _template("seguimiento-sms")
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_edit", args=[template.pk]), _template_data(template, channel="whatsapp")
    )
    assert response.status_code == 200
    assert "cambie primero esos pasos" in " ".join(response.context["form"].errors["channel"])
    template.refresh_from_db()
    assert template.channel == "sms"


# --- live preview -------------------------------------------------------------------------


@pytest.fixture
def martillo(gerente, gestora):
    debtor = make_client(
        by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.", trade_name="El Martillo"
    )
    make_invoice(by=gerente, client=debtor, amount="1000.00", due_date=TODAY - dt.timedelta(days=12), number="FM-0101")
    make_invoice(by=gerente, client=debtor, amount="250.50", due_date=TODAY + dt.timedelta(days=3), number="FM-0102")
    return debtor


def _preview(client, **data):
    payload = {"channel": "email", "preview_language": "es", **data}
    return client.post(reverse("cobranza:template_preview"), payload, headers={"HX-Request": "true"})


def test_preview_renders_the_draft_for_a_real_client(client, gerente, martillo):
    client.force_login(gerente)
    response = _preview(
        client,
        preview_client=martillo.pk,
        subject_es="Saldo de {{ cliente }}",
        body_es="{% for f in facturas %}{{ f.numero }}: {{ f.saldo }}\n{% endfor %}Total: {{ total_texto }}",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Saldo de El Martillo" in html
    assert "FM-0101: $1,000.00" in html and "FM-0102: $250.50" in html
    assert "Total: $1,250.50" in html
    assert "Para El Martillo" in html


def test_preview_without_a_client_uses_the_sample_data(client, gerente):
    client.force_login(gerente)
    html = _preview(client, subject_es="Hola", body_es="{{ cliente.razon_social }}").content.decode()
    assert "Comercializadora del Bajío, S.A. de C.V." in html
    assert "Con datos de ejemplo" in html


def test_preview_shows_a_broken_template_inline(client, gerente, martillo):
    client.force_login(gerente)
    response = _preview(client, preview_client=martillo.pk, subject_es="Hola", body_es="Hola {{ cliente.nada }}")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="preview-errors"' in html
    assert "no tiene el dato" in html
    # the message also lands under the field being edited (htmx out-of-band swap)
    assert re.search(r'id="live-error-body_es" hx-swap-oob="true"[^>]*>\s*<div>[^<]*no tiene el dato', html)
    assert re.search(r'id="live-error-subject_es" hx-swap-oob="true"[^>]*>\s*</div>', html)


@pytest.mark.parametrize("body", ["{% endif %}", "{{ 'x'|money:1 }}", "{% for %}", "{{", "\x00"])
def test_preview_never_fails_on_garbage(client, gerente, body):
    client.force_login(gerente)
    assert (
        _preview(client, body_es=body, channel="bogus", preview_language="xx", preview_client="abc").status_code == 200
    )


def test_preview_in_english_falls_back_to_spanish_when_there_is_no_english_text(client, gerente, martillo):
    client.force_login(gerente)
    html = _preview(
        client, preview_client=martillo.pk, preview_language="en", subject_es="Hola", body_es="Factura {{ facturas.0 }}"
    ).content.decode()
    assert "Factura FM-0101" in html
    assert "recibiría el texto en español" in html
    html = _preview(
        client, preview_language="en", subject_en="Hi", body_en="Due {{ facturas.0.vencimiento }}", body_es="x"
    ).content.decode()
    assert re.search(r"Due [A-Z][a-z]+\.? \d{1,2}, \d{4}", html)  # dates in the message's language


def test_client_picker_searches_the_clients_the_user_may_see(client, gerente, martillo):
    make_client(by=gerente, legal_name="Abarrotes Doña Lupe")
    client.force_login(gerente)
    url = reverse("cobranza:template_edit", args=[_template("aviso-vencimiento").pk])
    response = client.get(
        url, {"cliente_q": "martillo"}, headers={"HX-Request": "true", "HX-Target": "preview-client-picker"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<select" in html and "<form" not in html
    assert "El Martillo" in html and "Doña Lupe" not in html
    assert response["HX-Trigger-After-Settle"] == "preview-refresh"

    page = client.get(url, {"cliente": martillo.pk}).content.decode()
    assert f'<option value="{martillo.pk}" selected>' in page
    assert "Para El Martillo" in page


def test_after_saving_the_editor_keeps_the_preview_client(client, gerente, martillo):
    template = _template("aviso-vencimiento")
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_edit", args=[template.pk]),
        {**_template_data(template), "preview_client": martillo.pk, "preview_language": "en"},
    )
    assert response.status_code == 302
    assert response.url == reverse("cobranza:template_edit", args=[template.pk]) + f"?cliente={martillo.pk}&idioma=en"


def test_a_manager_gives_a_delinquency_profile_its_own_ladder(client, gerente):
    from django.urls import reverse

    from cobranza.models import Policy

    client.force_login(gerente)
    data = {
        "name": "Escalera de negligentes",
        "description": "",
        "segment": "",
        "profile": "negligent",
        "tolerance": "1.00",
        "is_active": "on",
    }
    response = client.post(reverse("cobranza:policy_create"), data)
    assert response.status_code == 302
    assert Policy.objects.get(name="Escalera de negligentes").profile == "negligent"
    # A second ladder for the same profile is a field error, nothing saved.
    response = client.post(reverse("cobranza:policy_create"), {**data, "name": "Otra"})
    assert response.status_code == 200
    assert "profile" in response.context["form"].errors
    assert not Policy.objects.filter(name="Otra").exists()
    assert "Perfil" in client.get(reverse("cobranza:policy_list")).content.decode()
