"""Message templates run on a budget: a 281-byte template looping over a
string literal seven deep cost 21 s of CPU and a 10 MB response per preview. Loops go only
over the documented lists, nesting and output are capped and rendering time is bounded — at
save (a field error), preview (shown inline) and send (a recorded failure)."""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.engine import dispatch, messaging
from cobranza.engine.messaging import TemplateBudgetExceeded, render_text, validate_template_text
from cobranza.engine.planner import plan
from cobranza.models import MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from tests.factories import make_client, make_invoice, segment

# The probe's template: 281 bytes, seven loops over a string literal, one inside the other.
BOMB = "".join(f'{{% for {v} in "0123456789" %}}' for v in "abcdefg") + "x" + "{% endfor %}" * 7
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)
# Inside the window and after every client's slot (docs/domain.md#spread): messages are due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)


def _body_errors(body, channel="email"):
    with pytest.raises(ValidationError) as exc:
        validate_template_text(channel=channel, subject="Aviso", body=body)
    return " ".join(exc.value.message_dict["body"])


def _context_with(invoices: int):
    context = messaging.sample_context("es")
    context["facturas"] = [context["facturas"][i % 3] for i in range(invoices)]
    return context


def test_the_probes_template_is_refused_at_save_quickly():
    assert len(BOMB.encode()) <= 281
    started = time.monotonic()
    errors = _body_errors(BOMB)
    assert time.monotonic() - started < 1
    assert "no es una lista" in errors and "facturas, total" in errors


def test_the_probes_template_saved_around_validation_fails_fast_at_render():
    started = time.monotonic()
    with pytest.raises(TemplateBudgetExceeded, match="no es una lista"):
        render_text(channel="email", subject="", body=BOMB, language="es", context=messaging.sample_context())
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "body",
    ['{% for c in "abc" %}x{% endfor %}', "{% for c in cliente %}x{% endfor %}", "{% for c in hoy %}{% endfor %}"],
)
def test_loops_go_only_over_the_documented_lists(body):
    assert "no es una lista" in _body_errors(body)


def test_two_loops_deep_is_allowed_three_are_not():
    two = (
        "{% for t in total %}{{ t }}:{% for f in facturas %}"
        "{% if f.moneda == t.moneda %}{{ f }}{% endif %}{% endfor %}{% endfor %}"
    )
    validate_template_text(channel="email", subject="Aviso", body=two)
    three = "{% for t in total %}{% for f in facturas %}{% for g in facturas %}x{% endfor %}{% endfor %}{% endfor %}"
    assert "Como máximo 2 {% for %}" in _body_errors(three)
    with pytest.raises(TemplateBudgetExceeded):
        render_text(channel="email", subject="", body=three, language="es", context=messaging.sample_context())


def test_deep_nesting_and_long_sources_are_refused_before_parsing():
    deep = "{% if cliente %}" * 5000 + "x" + "{% endif %}" * 5000
    assert "Como máximo 8 etiquetas" in _body_errors(deep[: messaging.TEMPLATE_MAX_CHARS])
    assert "el máximo es 10000" in _body_errors(deep)
    with pytest.raises(TemplateBudgetExceeded):
        render_text(channel="email", subject="", body=deep, language="es", context=messaging.sample_context())


def test_a_filter_that_multiplies_its_input_is_stopped_before_it_allocates():
    body = "{{{{ enlace_pago|join:'{}'|join:'{}' }}}}".format("y" * 4000, "z" * 4000)
    started = time.monotonic()
    assert "demasiado largo" in _body_errors(body)
    assert time.monotonic() - started < 1


def test_a_long_output_is_cut_off_by_the_output_limit():
    body = "{% for f in facturas %}{{ f.numero }} {{ f.saldo }} " + "." * 200 + "\n{% endfor %}"
    with pytest.raises(TemplateBudgetExceeded, match="demasiado largo"):
        render_text(channel="email", subject="", body=body, language="es", context=_context_with(2000))


def test_rendering_time_is_bounded(settings):
    settings.MESSAGE_RENDER_SECONDS = 0.3
    body = (
        "{% for f in facturas %}{% for g in facturas %}{% if f.numero == g.numero %}{% endif %}{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    with pytest.raises(TemplateBudgetExceeded, match="tarda demasiado"):
        render_text(channel="email", subject="", body=body, language="es", context=_context_with(5000))
    assert time.monotonic() - started < 1.5


# --- the same limits at save, preview and send, through the product -----------------------


@pytest.mark.django_db
def test_saving_the_probes_template_is_a_field_error(client, gerente):
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_create"),
        {
            "name": "Bomba",
            "channel": "email",
            "tone": "courteous",
            "is_active": "on",
            "subject_es": "Aviso",
            "body_es": BOMB,
            "subject_en": "",
            "body_en": "",
        },
    )
    assert response.status_code == 200
    assert "no es una lista" in " ".join(response.context["form"].errors["body_es"])
    assert not MessageTemplate.objects.filter(name="Bomba").exists()


@pytest.mark.django_db
def test_previewing_the_probes_template_shows_the_error_quickly(client, gerente):
    client.force_login(gerente)
    started = time.monotonic()
    response = client.post(
        reverse("cobranza:template_preview"),
        {"channel": "email", "preview_language": "es", "subject_es": "Aviso", "body_es": BOMB},
        headers={"HX-Request": "true"},
    )
    assert time.monotonic() - started < 2
    assert response.status_code == 200 and len(response.content) < 100_000
    assert "no es una lista" in response.content.decode()


@pytest.mark.django_db
def test_a_send_over_budget_is_recorded_as_failed_with_its_reason(gerente, gestora, smtp, outbox):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Bomba", segment=segment("regular"))
    template = MessageTemplate.objects.create(code="bomba", name="bomba", channel="email")
    # Saved around validation (the admin shell, an import): the send must fail cleanly.
    MessageTemplateText.objects.create(template=template, language="es", subject="Aviso", body=BOMB)
    PolicyStep.objects.create(
        policy=policy, position=1, name="Aviso", offset_days=1, channel="email", template=template
    )
    debtor = make_client(by=gerente, collector=gestora, legal_name="Bombas SA")
    ledger.contact_create(by=gerente, client=debtor, name="Ana", email="ana@bombas.example")
    make_invoice(by=gerente, client=debtor, number="B-1", amount="100.00", due_date=DUE)
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    [notice_id] = dispatch.due_notice_ids(now=AT_21)
    result = dispatch.dispatch(notice_id, now=AT_21)
    assert result.outcome == "failed"
    notice = Notice.objects.get(pk=notice_id)
    assert notice.status == "failed" and "no es una lista" in notice.reason
    assert not smtp.messages
    assert Interaction.objects.filter(client=debtor, body__contains="no es una lista").exists() or (
        Interaction.objects.filter(client=debtor, summary__contains="no es una lista").exists()
    )
