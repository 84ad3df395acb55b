"""Texts the system writes are stored as a code with parameters and read in the reader's
language (docs/domain.md#texts); the template editor's errors are in the editor's language."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts import texts
from accounts.models import Interaction
from cobranza import texts as cobranza_texts
from cobranza.alerts import jobs as alerts
from cobranza.engine import dispatch, messaging
from cobranza.engine.planner import plan
from cobranza.models import (
    Alert,
    CollectorTask,
    MessageTemplate,
    MessageTemplateText,
    Notice,
    Policy,
    PolicyStep,
    StepChannel,
    TaskKind,
)
from tests.factories import make_client, make_invoice, segment
from tests.test_i18n import visible_text

pytestmark = pytest.mark.django_db
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday, no holiday
# After every client's slot in the window (docs/domain.md#spread): what is due has come due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)


def _in(client, user, language):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return visible_text(response.content.decode())


# --- the registry --------------------------------------------------------------------------


def test_a_text_is_stored_in_spanish_and_read_in_the_active_language():
    with translation.override("en"):  # whoever writes it, the stored wording is Spanish
        text = cobranza_texts.FIND_CONTACT(channel=texts.choice(StepChannel, "email"))
    assert str.__str__(text) == "Conseguir un contacto para Correo electrónico"
    assert text.code == "task.find_contact"
    assert text.params == {
        "channel": {"code": "@choice", "params": {"choices": "cobranza.models.StepChannel", "value": "email"}}
    }
    with translation.override("en"):
        assert str(text) == "Find a contact for Email"
        assert texts.render(text.code, text.params, "fallback") == "Find a contact for Email"
    with translation.override("es"):
        assert str(text) == "Conseguir un contacto para Correo electrónico"


def test_dates_money_lists_and_plurals_follow_the_reader():
    text = texts.join(
        [
            texts.INVOICE_ISSUED(number="F-1", amount=texts.money(Decimal("1500"), "MXN"), due=texts.date(DUE)),
            cobranza_texts.CAP_EMAIL(cap=3),
        ]
    )
    with translation.override("es"):
        assert str(text) == (
            "Factura F-1 emitida por $1,500.00, vence el 02/03/2026; Límite de 3 correos en 7 días alcanzado"
        )
    with translation.override("en"):
        english = str(text)
    assert english.startswith("Invoice F-1 issued for $1,500.00, due ")
    assert english.endswith("; Limit of 3 emails in 7 days reached")
    with translation.override("en"):
        assert str(cobranza_texts.CAP_EMAIL(cap=1)) == "Limit of 1 email in 7 days reached"


def test_an_unknown_code_or_params_that_no_longer_fit_fall_back_to_the_stored_text():
    assert texts.render("gone.from.the.registry", {"x": 1}, "texto guardado") == "texto guardado"
    assert texts.render("ledger.invoice_issued", {"number": "F-1"}, "texto guardado") == "texto guardado"
    assert texts.render("@choice", {"choices": "os.system", "value": "x"}, "guardado") == "guardado"
    assert texts.render("", {}, "sin código") == "sin código"
    with pytest.raises(KeyError):
        texts.Text("gone.from.the.registry", {})  # a writer's typo fails its tests


def test_a_code_is_defined_once():
    with pytest.raises(ValueError, match="defined twice"):
        texts.define("ledger.client_created", "otra cosa")


def test_copies_and_pickles_keep_the_code():
    text = texts.CONTACT_UPDATED(name="Rosa")
    for other in (copy.deepcopy(text), pickle.loads(pickle.dumps(text))):
        assert (other.code, other.params, str.__str__(other)) == (text.code, text.params, str.__str__(text))


def test_an_old_row_without_a_code_shows_its_stored_text(gerente):
    client = make_client(by=gerente)
    entry = Interaction.objects.create(client=client, kind="system", summary="Texto de antes de los códigos")
    with translation.override("en"):
        assert Interaction.objects.get(pk=entry.pk).summary_text == "Texto de antes de los códigos"


# --- pages in the reader's language --------------------------------------------------------


def test_client_timeline_shows_system_entries_in_the_readers_language(client, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora, legal_name="Acme Hardware")
    make_invoice(by=gerente, client=acme, number="INV-7", amount="734.50", due_date=DUE)
    entry = Interaction.objects.get(client=acme, summary__startswith="Factura INV-7")
    assert entry.summary == "Factura INV-7 emitida por $734.50, vence el 02/03/2026"  # stored in Spanish
    assert entry.summary_code == "ledger.invoice_issued"

    url = reverse("client_section_historial", args=[acme.pk])  # the timeline tab
    english = _page(_in(client, gestora, "en"), url)
    assert "Invoice INV-7 issued for $734.50" in english
    assert "Factura INV-7 emitida" not in english and "Alta del cliente" not in english
    spanish = _page(_in(client, gestora, "es"), url)
    assert "Factura INV-7 emitida por $734.50, vence el 02/03/2026" in spanish and "Alta del cliente" in spanish


def test_api_returns_system_texts_in_the_requests_language_with_their_code(client, gerente, gestora):
    acme = make_client(by=gerente, collector=gestora)
    make_invoice(by=gerente, client=acme, number="INV-8", amount="10.00", due_date=DUE)
    client.force_login(gestora)
    url = reverse("api:interaction-list") + f"?client={acme.pk}"
    rows = client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["results"]
    issued = next(r for r in rows if r["summary_code"] == "ledger.invoice_issued")
    assert issued["summary"].startswith("Invoice INV-8 issued for")
    assert issued["summary_params"]["number"] == "INV-8"


def _template(code, channel, body, subject=""):
    tpl = MessageTemplate.objects.create(code=code, name=code, channel=channel)
    MessageTemplateText.objects.create(template=tpl, language="es", subject=subject, body=body)
    return tpl


@pytest.fixture
def skipped_for_no_contact(gerente, gestora):
    """A client without any contact whose email step came due: the notice is skipped and the
    collector gets a task to find a contact (both written by the system)."""
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba textos", segment=segment("regular"))
    email = _template("t-texts", "email", "Saldo de {{ cliente }}", subject="Saldo")
    PolicyStep.objects.create(policy=policy, position=1, name="Paso 1", offset_days=1, channel="email", template=email)
    debtor = make_client(by=gerente, collector=gestora, legal_name="Ferretería Sin Contacto")
    make_invoice(by=gerente, client=debtor, number="FC-9", amount="900.00", due_date=DUE)
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    [result] = [dispatch.dispatch(i, now=AT_21) for i in dispatch.due_notice_ids(now=AT_21)]
    assert result.outcome == "skipped"
    return debtor


def test_tasks_and_skip_reasons_are_stored_as_codes(skipped_for_no_contact):
    task = CollectorTask.objects.get(client=skipped_for_no_contact, kind=TaskKind.FIND_CONTACT)
    assert (task.title, task.title_code) == ("Conseguir un contacto para Correo electrónico", "task.find_contact")
    notice = Notice.objects.get(client=skipped_for_no_contact)
    assert notice.reason_code == "notice.no_contact" and notice.reason.startswith("Sin contacto que acepte")
    entry = Interaction.objects.filter(client=skipped_for_no_contact, summary__contains="Sin contacto").get()
    assert entry.summary_code == "@join"


def test_worklist_shows_task_titles_in_the_readers_language(client, gestora, skipped_for_no_contact):
    english = _page(_in(client, gestora, "en"), reverse("cobranza:worklist"))
    assert "Find a contact for Email" in english
    assert "Conseguir un contacto" not in english
    spanish = _page(_in(client, gestora, "es"), reverse("cobranza:worklist"))
    assert "Conseguir un contacto para Correo electrónico" in spanish


def test_ops_pages_show_skip_reasons_in_the_readers_language(client, gerente, skipped_for_no_contact):
    notice = Notice.objects.get(client=skipped_for_no_contact)
    for url in (
        reverse("cobranza:notice_list") + "?status=skipped",
        reverse("cobranza:notice_detail", args=[notice.pk]),
    ):
        english = _page(_in(client, gerente, "en"), url)
        assert "No contact accepts Email: the collector was asked to find one." in english, url
        assert "Sin contacto que acepte" not in english, url
        spanish = _page(_in(client, gerente, "es"), url)
        assert "Sin contacto que acepte Correo electrónico" in spanish, url
    timeline = _page(_in(client, gerente, "en"), reverse("client_section_historial", args=[skipped_for_no_contact.pk]))
    assert "Paso 1 (Email) — No contact accepts Email" in timeline


def test_alerts_read_in_the_readers_language(client, gerente, gestora):
    today = dt.date(2026, 12, 1)
    over = make_client(by=gerente, collector=gestora, credit_limit=Decimal("1000.00"))
    make_invoice(by=gerente, client=over, amount="1500.00", due_date=today - dt.timedelta(days=5))
    alerts.raise_alerts(today=today)
    alert = Alert.objects.get(client=over, kind="credit_limit")
    assert alert.title_code == "alert.credit_limit" and alert.title.startswith("Línea de crédito excedida")
    with translation.override("en"):
        assert alert.title_text == "Credit limit exceeded: balance $1,500.00 against a limit of $1,000.00"
    english = _page(_in(client, gerente, "en"), reverse("cobranza:alert_list"))
    assert "Credit limit exceeded" in english and "Línea de crédito excedida" not in english
    timeline = _page(_in(client, gerente, "en"), reverse("client_section_historial", args=[over.pk]))
    assert "Early warning: Credit limit exceeded" in timeline
    spanish = _page(_in(client, gerente, "es"), reverse("cobranza:alert_list"))
    assert "Línea de crédito excedida" in spanish


# --- the template editor -------------------------------------------------------------------


def _template_post(client, template, **overrides):
    data = {"name": template.name, "channel": template.channel, "tone": template.tone, "is_active": "on"}
    for text in template.texts.all():
        data[f"subject_{text.language}"] = text.subject
        data[f"body_{text.language}"] = text.body
    data.update(overrides)
    return client.post(reverse("cobranza:template_edit", args=[template.pk]), data)


@pytest.mark.parametrize(
    ("body", "english", "spanish"),
    [
        ("Hola {% if cliente %}", "{% if %} is not closed: expected", "Falta cerrar {% if %}: se esperaba"),
        ("Hola {{ cliente|upper:1 }}", "The filter “upper” takes", "El filtro «upper» recibe"),
        ("Hola {{ cliente nombre }}", "Could not understand", "No se entiende"),
    ],
)
def test_template_editor_errors_are_in_the_editors_language(client, gerente, body, english, spanish):
    template = MessageTemplate.objects.get(code="aviso-vencimiento")
    response = _template_post(_in(client, gerente, "en"), template, body_es=body)
    assert response.status_code == 200
    [message] = response.context["form"].errors["body_es"]
    assert english in message and "Syntax error" in message
    for django_english in ("Unclosed tag", "requires", "Could not parse"):
        assert django_english not in message
    response = _template_post(_in(client, gerente, "es"), template, body_es=body)
    [message] = response.context["form"].errors["body_es"]
    assert spanish in message and "Error de sintaxis" in message


def test_render_limits_are_worded_in_the_language_they_are_shown_in():
    """A text renders in its own language (an English text in the Spanish editor): its errors
    are worded where they are shown."""
    budget = messaging.Budget(max_chars=1)
    with translation.override("en"), pytest.raises(messaging.TemplateBudgetExceeded) as caught:
        budget.check_size(5)
    with translation.override("es"):
        assert str(caught.value) == "La plantilla genera un texto demasiado largo (más de 1 caracteres)."
    with translation.override("en"):
        assert str(caught.value) == "The template produces too long a text (more than 1 characters)."


def test_a_reason_a_person_types_replaces_the_systems_code(gestora, skipped_for_no_contact):
    from cobranza.ops import services as ops

    notice = Notice.objects.get(client=skipped_for_no_contact)
    Notice.objects.filter(pk=notice.pk).update(
        status=Notice.Status.PLANNED, **texts.columns("reason", cobranza_texts.RETRY(error="timeout"))
    )
    ops.notice_cancel(by=gestora, notice=notice, reason="  Pagó en caja  ")
    notice.refresh_from_db()
    assert (notice.reason, notice.reason_code, notice.reason_params) == ("Pagó en caja", "", {})
    with translation.override("en"):
        assert notice.reason_text == "Pagó en caja"
        entry = Interaction.objects.filter(client=notice.client, summary_code="ops.notice_cancelled").get()
        assert entry.summary_text == "Notice cancelled: Paso 1"


def test_the_planners_superseded_reason_reads_in_the_readers_language(gerente):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba saltos", segment=segment("regular"))
    for position, offset in ((1, 1), (2, 5)):
        PolicyStep.objects.create(
            policy=policy, position=position, name=f"Paso {position}", offset_days=offset, channel="call"
        )
    debtor = make_client(by=gerente, legal_name="Atrasado Viejo")
    make_invoice(by=gerente, client=debtor, number="FC-OLD", amount="900.00", due_date=DUE)
    plan(today=DUE + dt.timedelta(days=10), now=AT_21 + dt.timedelta(days=9))
    skipped = Notice.objects.get(client=debtor, status=Notice.Status.SUPERSEDED)
    assert skipped.reason == "Reemplazado por un paso más firme planeado el mismo día: «Paso 2»."
    assert (skipped.reason_code, skipped.reason_params) == ("notice.superseded_same_day", {"step": "Paso 2"})
    with translation.override("en"):
        assert skipped.reason_text == "Superseded by a firmer step planned the same day: “Paso 2”."


def test_a_broken_promise_reads_in_the_readers_language(gerente, gestora):
    from cobranza.workspace import jobs as workspace_jobs
    from cobranza.workspace import services as workspace

    debtor = make_client(by=gerente, collector=gestora, legal_name="Promete Mucho")
    invoice = make_invoice(by=gerente, client=debtor, number="FC-P", amount="900.00", due_date=DUE)
    with translation.override("en"):  # a collector working in English
        workspace.commitment_create(
            by=gestora,
            client=debtor,
            kind="promise",
            installments=[(DUE, Decimal("900.00"))],
            invoices=[invoice],
            made_on=DUE - dt.timedelta(days=1),
        )
    made = Interaction.objects.get(client=debtor, summary_code="commitment.made")
    assert made.summary.startswith("Promesa de pago: ")  # stored in Spanish whoever wrote it
    workspace_jobs.judge(today=DUE + dt.timedelta(days=3))
    broken = Interaction.objects.get(client=debtor, summary_code="commitment.broken")
    task = CollectorTask.objects.get(client=debtor, kind=TaskKind.BROKEN_PROMISE)
    with translation.override("en"):
        assert made.summary_text.startswith("Promise to pay: ")
        assert broken.summary_text.startswith("Promise to pay broken: paid")
        assert task.title_text.startswith("Promise to pay broken: paid")
    with translation.override("es"):
        assert broken.summary_text.startswith("Promesa de pago incumplida: pagó")
