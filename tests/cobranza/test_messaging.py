"""Message templates: a broken template is refused when saved and never crashes a send; one
message lists every invoice of the notice, with money and dates in the client's language."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from accounts import services as ledger
from accounts.models import Invoice
from accounts.utils import money_str
from cobranza.engine import messaging
from cobranza.engine.messaging import TemplateRenderError, validate_template_text
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from tests.factories import make_business, make_client, make_invoice

DUE = dt.date(2026, 3, 2)
STEP_DAY = DUE + dt.timedelta(days=1)
SEND_DAY = DUE + dt.timedelta(days=5)
DEFAULTS = importlib.import_module("cobranza.migrations.0003_default_ladders")

LIST_BODY = (
    "Cliente: {{ cliente }} / Contacto: {{ contacto|default:'-' }}\n"
    "{% for f in facturas %}\n"
    "{{ f.numero }} | {{ f.saldo }} | {{ f.vencimiento }} | {{ f.dias_vencida }} días\n"
    "{% endfor %}\n"
    "{% for t in total %}\n"
    "Total {{ t.moneda }}: {{ t }}\n"
    "{% endfor %}\n"
    "Total: {{ total_texto }} · máx. {{ dias_max_vencida }} días · {{ gestor.nombre }} <{{ gestor.correo }}>\n"
    "{{ enlace_pago }}"
)


def _errors(**kwargs):
    kwargs.setdefault("channel", "email")
    kwargs.setdefault("subject", "Saldo de {{ cliente }}")
    with pytest.raises(ValidationError) as exc:
        validate_template_text(**kwargs)
    return exc.value.message_dict


# --- validation: refused when saved ----------------------------------------------------------


def test_a_valid_template_passes_validation():
    validate_template_text(channel="email", subject="Saldo de {{ cliente }}", body=LIST_BODY)
    validate_template_text(channel="sms", subject="", body="{{ empresa }}: saldo {{ total_texto }}. Responda BAJA.")


@pytest.mark.parametrize(
    "body",
    ["{% if cliente %}sin cerrar", "{{ cliente|filtro_inexistente }}", "{% for f in facturas %}", "{{ }}"],
)
def test_syntax_errors_are_validation_errors(body):
    messages = _errors(body=body)["body"]
    assert messages and "sintaxis" in messages[0].lower()


def test_a_syntax_error_names_its_line():
    messages = _errors(body="Hola {{ cliente }}\n\n{% if cliente %}\nsin cerrar")["body"]
    assert "línea 3" in messages[0]


@pytest.mark.parametrize(
    "body",
    [
        "Hola {{ clienteX }}",
        "{% if clienteX %}hola{% endif %}",
        "{% for f in facturaz %}{{ f.numero }}{% endfor %}",
        "{{ cliente|default:contactoX }}",
        "{{ settings.SECRET_KEY }}",
    ],
)
def test_unknown_placeholders_are_validation_errors(body):
    messages = _errors(body=body)["body"]
    assert "Variable desconocida" in messages[0]


@pytest.mark.parametrize(
    "body",
    [
        "{{ cliente.nombrex }}",
        "{% for f in facturas %}{{ f.folio }}{% endfor %}",
        "{{ facturas.0.saldo.importe }}",
        "{{ cliente.nombre.upper }}",
    ],
)
def test_unknown_fields_are_validation_errors(body):
    assert "no tiene el dato" in _errors(body=body)["body"][0]


def test_loop_variables_do_not_leak_out_of_their_loop():
    body = "{% for f in facturas %}{{ f.numero }}{% endfor %}{{ f.numero }}"
    assert "Variable desconocida" in _errors(body=body)["body"][0]


def test_private_attributes_are_out_of_reach():
    assert _errors(body="{{ cliente.__class__ }}")["body"]


@pytest.mark.parametrize(
    "tag",
    [
        "{% load i18n %}",
        "{% include 'x.txt' %}",
        "{% extends 'base.html' %}",
        "{% debug %}",
        "{% ssi '/etc/passwd' %}",
        "{% url 'login' %}",
    ],
)
def test_forbidden_tags_are_validation_errors(tag):
    messages = _errors(body=f"Hola\n{tag}\n{{{{ cliente }}}}")["body"]
    name = tag.split()[1]
    assert f"{{% {name} %}}" in messages[0]
    assert "línea 2" in messages[0]


def test_an_email_needs_a_subject():
    assert _errors(subject="  ", body="Hola {{ cliente }}")["subject"]


def test_an_sms_longer_than_the_limit_is_refused():
    body = "{{ cliente }}: " + "saldo vencido, " * 40
    messages = _errors(channel="sms", subject="", body=body)["body"]
    assert str(messages_limit := messaging.SMS_MAX_CHARS) in messages[0], messages_limit


def test_an_sms_listing_invoices_is_measured_with_the_sample_data():
    line = "{% for f in facturas %}{{ f.numero }} {{ f.saldo }} {{ f.vencimiento }} {{ f.concepto }}; {% endfor %}"
    validate_template_text(channel="sms", subject="", body=line)
    with pytest.raises(ValidationError):
        validate_template_text(channel="sms", subject="", body=line * 3)


def test_an_empty_body_is_refused():
    assert _errors(body="   ")["body"]


def test_subject_and_body_errors_are_reported_separately():
    errors = _errors(subject="{{ asunto }}", body="{% load x %}")
    assert set(errors) == {"subject", "body"}


@pytest.mark.django_db  # the preview shows the real business (its name, its link)
def test_preview_of_a_draft_reports_errors_without_raising():
    preview = messaging.preview_draft(channel="email", subject="", body="{{ clienteX }}", language="es")
    assert not preview.ok and preview.rendered is None and set(preview.errors) == {"subject", "body"}
    preview = messaging.preview_draft(channel="email", subject="Hola", body=LIST_BODY, language="en")
    assert preview.ok and "F-2026-00871" in preview.rendered.body


# --- the context ---------------------------------------------------------------------------


def test_the_documented_placeholders_are_exactly_the_context():
    assert set(messaging.sample_context("es")) == set(messaging.PLACEHOLDERS)
    help_names = [p["name"] for p in messaging.placeholder_help()]
    assert help_names == list(messaging.PLACEHOLDERS)
    assert {"numero", "saldo", "vencimiento", "dias_vencida"} <= set(messaging.PLACEHOLDERS["facturas"].fields)


@pytest.mark.django_db
def test_build_context_matches_the_placeholders(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Acme")
    invoice = make_invoice(by=gerente, client=client, number="A1", due_date=DUE)
    context = messaging.build_context(
        client=client, contact=None, items=[invoice], language="es", collector=gestora, today=SEND_DAY
    )
    assert set(context) == set(messaging.PLACEHOLDERS)
    assert context["facturas"][0]["dias_vencida"] == 5


# --- rendering -----------------------------------------------------------------------------


def _template(body, *, subject="Saldo de {{ cliente }}", channel="email", languages=("es",), code="prueba"):
    template = MessageTemplate.objects.create(code=code, name=code, channel=channel)
    for language in languages:
        validate_template_text(channel=channel, subject=subject, body=body, language=language)
        MessageTemplateText.objects.create(
            template=template, language=language, subject=f"[{language}] {subject}", body=f"[{language}]\n{body}"
        )
    return template


@pytest.fixture
def own_ladder(db):
    """A one-step policy (day +1, email) assigned per client, so tests do not depend on
    whichever ladder the client's segment has."""
    policy = Policy.objects.create(name="Prueba de mensajes")

    def assign(client, template):
        PolicyStep.objects.update_or_create(
            policy=policy,
            position=1,
            defaults={"name": "Aviso", "offset_days": 1, "channel": template.channel, "template": template},
        )
        ClientDunning.objects.create(client=client, policy=policy)

    return assign


def _notice_for(client):
    plan(today=STEP_DAY)
    return Notice.objects.get(client=client)


@pytest.mark.django_db
def test_a_notice_lists_all_its_invoices_with_money_in_the_clients_locale(own_ladder, gerente, gestora):
    template = _template(LIST_BODY, languages=("es", "en"))
    cases = [
        ("Mexicana", "MXN", "es", "$1,234.50", "5 días", "2 de marzo de 2026"),
        # The business's number format (es-MX) whatever the client's language or currency.
        ("Española", "EUR", "es", "EUR\xa01,234.50", "5 días", "2 de marzo de 2026"),
        ("Texana", "MXN", "en", "$1,234.50", "5 días", "March 2, 2026"),
    ]
    for name, currency, language, money, days, due in cases:
        client = make_client(by=gerente, collector=gestora, legal_name=name, currency=currency, language=language)
        numbers = [f"{name[:3]}-{i}" for i in range(1, 4)]
        for number in numbers:
            make_invoice(by=gerente, client=client, number=number, amount="1234.50", due_date=DUE)
        own_ladder(client, template)
        notice = _notice_for(client)
        rendered = messaging.render_notice(notice, today=SEND_DAY)

        assert rendered.language == language
        assert rendered.body.startswith(f"[{language}]")
        for number in numbers:
            assert f"{number} | {money} | {due} | {days}" in rendered.body, rendered.body
        total = money_str(Decimal("3703.50"), currency, language)
        assert f"Total {currency}: {total}" in rendered.body
        assert "máx. 5 días" in rendered.body and "Lucía Gestora <gestora@example.com>" in rendered.body
        assert rendered.subject == f"[{language}] Saldo de {name}"
        ClientDunning.objects.filter(client=client).delete()
        Notice.objects.all().delete()


@pytest.mark.django_db
def test_totals_are_given_per_currency(own_ladder, gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Dos Monedas")
    make_invoice(by=gerente, client=client, number="M1", amount="1000.00", due_date=DUE)
    make_invoice(by=gerente, client=client, number="M2", amount="500.25", due_date=DUE)
    make_invoice(by=gerente, client=client, number="U1", amount="250.00", due_date=DUE, currency="USD")
    own_ladder(client, _template(LIST_BODY))
    body = messaging.render_notice(_notice_for(client), today=SEND_DAY).body
    assert "Total MXN: $1,500.25" in body
    assert "Total USD: USD" in body and "250.00" in body
    assert "Total: $1,500.25 y USD" in body


@pytest.mark.django_db
def test_balances_are_the_current_ones_at_send_time(own_ladder, gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Abonos")
    make_invoice(by=gerente, client=client, number="P1", amount="1000.00", due_date=DUE)
    own_ladder(client, _template("{% for f in facturas %}{{ f.saldo }} de {{ f.importe }}{% endfor %}"))
    notice = _notice_for(client)
    ledger.payment_record(by=gestora, client=client, amount=Decimal("400.00"), received_on=STEP_DAY)
    assert messaging.render_notice(notice, today=SEND_DAY).body.endswith("$600.00 de $1,000.00")


@pytest.mark.django_db
def test_the_contact_and_the_link_are_filled_in(own_ladder, gerente, gestora):
    make_business(trade_name="Distribuidora Pérez & Hijos", public_base_url="https://pagos.example.com/cuenta/")
    client = make_client(by=gerente, collector=gestora, legal_name="Con Contacto")
    contact = ledger.contact_create(by=gerente, client=client, name="Rosa Clavo", email="rosa@example.com")
    make_invoice(by=gerente, client=client, number="C1", due_date=DUE)
    own_ladder(client, _template("{{ contacto }} · {{ empresa }} · {{ enlace_pago }}"))
    notice = _notice_for(client)
    Notice.objects.filter(pk=notice.pk).update(contact=contact)
    body = messaging.render_notice(notice, today=SEND_DAY).body
    # Plain text: no HTML escaping of "&".
    assert body.startswith("[es]\nRosa Clavo · Distribuidora Pérez & Hijos · https://pagos.example.com/cuenta/portal/")
    assert body.rsplit("/", 1)[1]  # the client's token


@pytest.mark.django_db
def test_without_a_collector_the_collections_team_signs(own_ladder, gerente):
    client = make_client(by=gerente, collector=None, legal_name="Sin Gestor", language="en")
    make_invoice(by=gerente, client=client, number="S1", due_date=DUE)
    own_ladder(client, _template("{{ gestor }}", languages=("es", "en")))
    assert messaging.render_notice(_notice_for(client), today=SEND_DAY).body == "[en]\nCollections team"


@pytest.mark.django_db
def test_language_falls_back_to_spanish_then_to_any(gerente):
    client = make_client(by=gerente, legal_name="Idiomas", language="en")
    invoice = make_invoice(by=gerente, client=client, number="L1", amount="1234.50", due_date=DUE)
    context = messaging.build_context(
        client=client, contact=None, items=[invoice], language="en", collector=None, today=SEND_DAY
    )
    body = "{% for f in facturas %}{{ f.saldo }} {{ f.vencimiento }}{% endfor %}"

    only_es = _template(body, languages=("es",), code="solo-es")
    rendered = messaging.render(template=only_es, language="en", context=context)
    # The Spanish text is used, and reads as Spanish throughout.
    assert (rendered.language, rendered.body) == ("es", "[es]\n$1,234.50 2 de marzo de 2026")

    only_en = _template(body, languages=("en",), code="solo-en")
    rendered = messaging.render(template=only_en, language="es", context=context)
    assert (rendered.language, rendered.body) == ("en", "[en]\n$1,234.50 March 2, 2026")

    both = _template(body, languages=("es", "en"), code="ambos")
    assert messaging.render(template=both, language="en", context=context).language == "en"
    assert messaging.render(template=both, language="es", context=context).language == "es"

    empty = MessageTemplate.objects.create(code="vacia", name="Vacía", channel="email")
    with pytest.raises(TemplateRenderError):
        messaging.render(template=empty, language="es", context=context)


@pytest.mark.django_db
def test_render_notice_costs_the_same_queries_for_3_or_30_invoices(own_ladder, gerente, gestora):
    template = _template(LIST_BODY, languages=("es", "en"))
    counts = []
    for size in (3, 30):
        client = make_client(by=gerente, collector=gestora, legal_name=f"Cartera {size}")
        ledger.contact_create(by=gerente, client=client, name=f"Contacto {size}", email=f"c{size}@example.com")
        for i in range(size):
            make_invoice(by=gerente, client=client, number=f"Q{size}-{i:02d}", amount="100.00", due_date=DUE)
        own_ladder(client, template)
        notice = _notice_for(client)
        assert notice.items.count() == size
        fresh = Notice.objects.get(pk=notice.pk)
        with CaptureQueriesContext(connection) as queries:
            rendered = messaging.render_notice(fresh, today=SEND_DAY)
        assert rendered.body.count(f"Q{size}-") == size
        counts.append(len(queries))
        ClientDunning.objects.filter(client=client).delete()
    # The notice, its items and the texts; the business profile and the link's version.
    assert counts[0] == counts[1] <= 5, counts


@pytest.mark.django_db
def test_render_with_the_dispatchers_items_reads_only_the_texts_and_the_link(own_ladder, gerente, gestora, business):
    client = make_client(by=gerente, collector=gestora, legal_name="Despacho")
    for i in range(5):
        make_invoice(by=gerente, client=client, number=f"D-{i}", due_date=DUE)
    own_ladder(client, _template(LIST_BODY))
    notice = (
        Notice.objects.select_related("client", "client__collector", "contact", "step__template")
        .prefetch_related("items__invoice")
        .get(pk=_notice_for(client).pk)
    )
    items = list(notice.items.all())[:2]  # e.g. three were paid since planning
    with CaptureQueriesContext(connection) as queries:
        rendered = messaging.render_notice(notice, items=items, today=SEND_DAY, business=business)
    assert len(queries) == 2  # the template's texts and the link's version (revocation)
    assert rendered.body.count("D-") == 2


@pytest.mark.django_db
def test_a_broken_saved_template_raises_a_render_error_not_a_crash(own_ladder, gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Rota")
    make_invoice(by=gerente, client=client, number="R1", due_date=DUE)
    template = MessageTemplate.objects.create(code="rota", name="Rota", channel="email")
    # Saved around the validation (an import, the admin shell): the send must fail cleanly.
    MessageTemplateText.objects.create(template=template, language="es", subject="x", body="{% if %}")
    own_ladder(client, template)
    notice = _notice_for(client)
    with pytest.raises(TemplateRenderError):
        messaging.render_notice(notice, today=SEND_DAY)
    MessageTemplateText.objects.filter(template=template).update(body="{% for a, b in facturas %}{% endfor %}")
    with pytest.raises(TemplateRenderError):
        messaging.render_notice(notice, today=SEND_DAY)


@pytest.mark.django_db
def test_a_step_without_template_cannot_render(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Llamada")
    make_invoice(by=gerente, client=client, number="K1", due_date=DUE)
    policy = Policy.objects.create(name="Solo llamada")
    PolicyStep.objects.create(policy=policy, position=1, name="Llamar", offset_days=1, channel="call")
    ClientDunning.objects.create(client=client, policy=policy)
    with pytest.raises(TemplateRenderError):
        messaging.render_notice(_notice_for(client), today=SEND_DAY)


def test_layout_lines_with_only_tags_leave_no_blank_lines():
    body = (
        "Hola\n{% if cliente %}\nCliente: {{ cliente }}\n{% endif %}\n"
        "{% for f in facturas %}\n- {{ f.numero }}\n{% endfor %}\nAdiós   \n\n\n\nFin"
    )
    rendered = messaging.render_text(
        channel="email", subject="A\nB", body=body, language="es", context=messaging.sample_context("es")
    )
    assert rendered.body == (
        "Hola\nCliente: Comercializadora del Bajío\n- F-2026-00871\n- F-2026-00912\n- F-2026-00955\nAdiós\n\nFin"
    )
    assert rendered.subject == "A B"  # one line: no header injection


def test_money_and_date_filters_follow_the_language():
    context = messaging.sample_context("es", today=dt.date(2026, 3, 20), offset_days=14)  # oldest: 18 days
    body = '{{ facturas.0.saldo.cantidad|money:"EUR" }} {{ facturas.0.vencimiento|date:"SHORT_DATE_FORMAT" }}'
    assert messaging.render_text(channel="sms", subject="", body=body, language="es", context=context).body == (
        "EUR\xa012,500.00 02/03/2026"
    )
    # The language decides the date; the business's number format (es-MX) the amount.
    assert messaging.render_text(channel="sms", subject="", body=body, language="en", context=context).body == (
        "EUR\xa012,500.00 03/02/2026"
    )


# --- live preview against a real client ----------------------------------------------------


@pytest.mark.django_db
def test_preview_for_a_client_uses_its_open_invoices_and_billing_contact(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Vista Previa")
    ledger.contact_create(by=gerente, client=client, name="Aval", role="guarantor")
    ledger.contact_create(by=gerente, client=client, name="Facturación", role="billing")
    make_invoice(by=gerente, client=client, number="V-open", amount="100.00", due_date=DUE)
    disputed = make_invoice(by=gerente, client=client, number="V-disputed", due_date=DUE)
    ledger.invoice_set_status(by=gerente, invoice=disputed, status=Invoice.Status.DISPUTED, reason="Revisión")
    paid_client_invoice = make_invoice(by=gerente, client=client, number="V-paid", amount="50.00", due_date=DUE)
    ledger.payment_record(
        by=gestora,
        client=client,
        amount=Decimal("50.00"),
        received_on=DUE,
        allocations=[ledger.AllocationRequest(invoice_id=paid_client_invoice.pk, amount=Decimal("50.00"))],
    )
    template = _template("{{ contacto }}:{% for f in facturas %} {{ f.numero }}{% endfor %}")
    rendered = messaging.preview_for_client(template, client, today=SEND_DAY)
    assert rendered.body == "[es]\nFacturación: V-open"
    preview = messaging.preview_draft(
        channel="sms", subject="", body="{{ facturas|length }} {{ total_texto }}", language="en", client=client
    )
    assert preview.ok and preview.rendered.body == "1 $100.00"


# --- the default templates of migration 0003 ------------------------------------------------

DEFAULT_TEXTS = [(spec, language) for spec in DEFAULTS.TEMPLATES for language in ("es", "en")]
OPT_OUT = {"es": "BAJA", "en": "STOP"}


@pytest.mark.parametrize(
    ("spec", "language"), DEFAULT_TEXTS, ids=[f"{spec['code']}-{language}" for spec, language in DEFAULT_TEXTS]
)
def test_every_default_template_validates_and_renders_the_sample(spec, language):
    subject, body = spec[language]
    validate_template_text(channel=spec["channel"], subject=subject, body=body, language=language)
    context = messaging.sample_context(language)
    rendered = messaging.render_text(
        channel=spec["channel"], subject=subject, body=body, language=language, context=context
    )
    assert "{{" not in rendered.body and "{%" not in rendered.body
    for invoice in context["facturas"]:
        assert invoice["numero"] in rendered.body, spec["code"]
    with translation.override(language):
        assert str(context["total_texto"]) in rendered.body
        assert str(context["facturas"][0]["saldo"]) in rendered.body
    assert context["gestor"]["nombre"] in rendered.body
    assert context["enlace_pago"] in rendered.body
    oldest = f"{context['dias_max_vencida']} {'día' if language == 'es' else 'day'}"
    assert oldest in rendered.body, "days overdue are shown"
    if spec["channel"] in ("email", "sms", "whatsapp"):
        assert OPT_OUT[language] in rendered.body, "every email and text offers an opt-out"
    if spec["channel"] in ("email", "letter"):
        assert rendered.subject
    if spec["tone"] == "final":
        words = ("agencia", "jurídico", "crédito") if language == "es" else ("agency", "legal", "credit")
        assert all(word in rendered.body for word in words), spec["code"]
    # No threats: a final notice states possible consequences, it never menaces.
    for word in ("amenaza", "embargo", "cárcel", "denuncia", "prison", "arrest"):
        assert word not in rendered.body.lower()


def test_default_templates_read_well_without_contact_link_or_collector_phone():
    for spec, language in DEFAULT_TEXTS:
        subject, body = spec[language]
        context = messaging.sample_context(language)
        context["contacto"] = messaging.Record("", nombre="", puesto="")
        context["enlace_pago"] = ""
        context["gestor"] = messaging.Record("Equipo", nombre="Equipo", correo="", telefono="")
        rendered = messaging.render_text(
            channel=spec["channel"], subject=subject, body=body, language=language, context=context
        )
        assert "\n\n\n" not in rendered.body and "  " not in rendered.body, (spec["code"], rendered.body)
        assert ": ." not in rendered.body and "()" not in rendered.body


def test_default_pre_due_and_due_date_texts_fit_their_moment():
    previo = next(s for s in DEFAULTS.TEMPLATES if s["code"] == "recordatorio-previo")
    context = messaging.sample_context("es", offset_days=-3)
    body = messaging.render_text(channel="email", subject="", body=previo["es"][1], language="es", context=context)
    assert "(en 3 días)" in body.body and "atraso" not in body.body
    whatsapp = next(s for s in DEFAULTS.TEMPLATES if s["code"] == "seguimiento-whatsapp")
    context = messaging.sample_context("es", offset_days=0)
    body = messaging.render_text(channel="whatsapp", subject="", body=whatsapp["es"][1], language="es", context=context)
    assert "vence hoy" in body.body


@pytest.mark.django_db
def test_the_migration_saved_the_default_templates_in_both_languages():
    codes = {spec["code"] for spec in DEFAULTS.TEMPLATES}
    saved = MessageTemplate.objects.filter(code__in=codes).prefetch_related("texts")
    if not saved:  # a transactional test flushed the migration data earlier in this session
        from tests.cobranza.test_default_ladders import run_default_ladders

        run_default_ladders()
    for template in MessageTemplate.objects.filter(code__in=codes).prefetch_related("texts"):
        assert {t.language for t in template.texts.all()} == {"es", "en"}
        messaging.validate_template(template)
    assert MessageTemplate.objects.filter(code__in=codes).count() == len(codes)
