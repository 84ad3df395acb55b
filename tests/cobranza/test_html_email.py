"""The HTML email (cobranza.engine.html_email): what a debtor's mail client shows, parsed —
the invoices as table rows, the totals, the pay button, the bank details, the portal link and
the opt-out line, every style inlined — and the sent message (real SMTP) as
multipart/alternative with both parts. The template editor previews the same HTML."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
import tinyhtml5
from django.urls import reverse

from accounts import services as ledger
from cobranza.engine import dispatch, html_email, messaging
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from cobranza.workspace import jobs as commitments
from cobranza.workspace import services as workspace_services
from tests.business import business_profile
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday
SEND_DAY = DUE + dt.timedelta(days=5)
# Inside the window and after every client's slot (docs/domain.md#spread): messages are due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)
XHTML = "{http://www.w3.org/1999/xhtml}"

BODY = {
    "es": "Estimado(a) {{ contacto|default:cliente }}:\n\nLe recordamos el saldo de {{ cliente }}: {{ total_texto }}."
    "\n\nAtentamente,\n{{ gestor }}",
    "en": "Dear {{ contacto|default:cliente }},\n\nThis is a reminder of {{ cliente }}'s balance: {{ total_texto }}."
    "\n\nKind regards,\n{{ gestor }}",
}


def _parse(html: str):
    return tinyhtml5.parse(html)


def _all(root, tag: str):
    return list(root.iter(XHTML + tag))


def _text(element) -> str:
    return " ".join(" ".join(element.itertext()).split())


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def email_ladder(db):
    template = MessageTemplate.objects.create(code="html-test", name="HTML", channel="email")
    for language, body in BODY.items():
        MessageTemplateText.objects.create(
            template=template, language=language, subject="Saldo de {{ cliente }}", body=body
        )
    policy = Policy.objects.create(name="Prueba HTML")
    PolicyStep.objects.create(
        policy=policy, position=1, name="Aviso", offset_days=1, channel="email", template=template
    )
    return policy


def _debtor(gerente, gestora, policy, *, name="Ferretería <El Clavo> & Hijos", currency="MXN", language="es"):
    client = make_client(by=gerente, collector=gestora, legal_name=name, currency=currency, language=language)
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@clavo.example")
    make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_date=DUE, currency=currency)
    make_invoice(by=gerente, client=client, number="FC-2", amount="520.25", due_date=DUE, currency=currency)
    make_invoice(by=gerente, client=client, number="FC-3", amount="80.00", due_date=DUE, currency="USD")
    ClientDunning.objects.create(client=client, policy=policy)
    return client


def _compose(client) -> html_email.EmailContent:
    plan(today=DUE + dt.timedelta(days=1))
    notice = Notice.objects.select_related("client", "client__collector", "step__template").get(client=client)
    notice.contact = client.contacts.get()
    items = list(notice.items.select_related("invoice").order_by("invoice__due_date", "invoice__number"))
    return html_email.compose_notice(notice, items=items, today=SEND_DAY)


def test_the_html_shows_the_invoices_totals_pay_buttons_bank_details_and_footer(email_ladder, gerente, gestora, media):
    business_profile()
    client = _debtor(gerente, gestora, email_ladder)
    email = _compose(client)
    root = _parse(email.html)

    rows = root.findall(f".//{XHTML}table[@data-role='invoices']/{XHTML}tbody/{XHTML}tr")
    assert [r.get("data-invoice") for r in rows] == ["FC-1", "FC-2", "FC-3"]
    assert [_text(td) for td in rows[0]] == ["FC-1", "02/03/2026", "5", "$1,500.00"]
    assert [_text(td) for td in rows[2]] == ["FC-3", "02/03/2026", "5", "USD 80.00"]
    totals = {tr.get("data-total"): _text(tr) for tr in root.iter(XHTML + "tr") if tr.get("data-total")}
    assert totals == {"MXN": "Total en MXN $2,020.25", "USD": "Total en USD USD 80.00"}

    buttons = [a for a in _all(root, "a") if a.get("data-role") == "pay"]
    queries = [{k: v[0] for k, v in parse_qs(urlsplit(a.get("href")).query).items()} for a in buttons]
    assert queries == [
        {"cliente": str(client.pk), "facturas": "FC-1,FC-2", "importe": "2020.25", "moneda": "MXN"},
        {"cliente": str(client.pk), "facturas": "FC-3", "importe": "80.00", "moneda": "USD"},
    ]
    assert [_text(a) for a in buttons] == ["Pagar $2,020.25", "Pagar USD 80.00"]
    assert all("background-color: #7a1f5c" in a.get("style") for a in buttons), "the brand colour"

    bank = _text(root.find(f".//{XHTML}table[@data-role='bank']"))
    assert "BBVA México" in bank and "CLABE 012180001234567891" in bank and f"Referencia C{client.pk} FC-1" in bank
    [opt_out] = [p for p in _all(root, "p") if p.get("data-role") == "opt-out"]
    assert "BAJA" in _text(opt_out)
    assert "Av. Reforma 100" in _text(root) and "Morosos" not in email.html

    # The template's text, escaped, in paragraphs; the logo by Content-ID.
    paragraphs = [_text(p) for p in _all(root, "p") if p.get("class") == "p"]
    assert paragraphs[0] == "Estimado(a) Rosa Pagos:"
    assert "Ferretería <El Clavo> & Hijos" in paragraphs[1]
    assert "&lt;El Clavo&gt; &amp; Hijos" in email.html and "<El Clavo>" not in email.html
    [img] = _all(root, "img")
    assert img.get("src") == "cid:logo" and img.get("alt") == "Distribuidora Aurora"
    assert [(i.cid, i.mimetype) for i in email.images] == [("logo", "image/png")]
    assert email.images[0].content.startswith(b"\x89PNG")


def test_every_style_is_inlined_and_nothing_depends_on_a_style_element(email_ladder, gerente, gestora, media):
    business_profile()
    email = _compose(_debtor(gerente, gestora, email_ladder))
    root = _parse(email.html)
    assert _all(root, "style") == [] and _all(root, "link") == []
    assert "class=" in email.html, "classes stay as hooks; they carry no style"
    for tag in ("td", "th", "a", "p", "table"):
        for element in _all(root, tag):
            assert element.get("style"), f"<{tag}> without inline style: {_text(element)[:40]}"
    assert "max-width: 600px" in root.find(f".//{XHTML}table[@class='container']").get("style")


def test_the_text_part_is_the_templates_text_plus_the_ways_to_pay(email_ladder, gerente, gestora, media):
    business_profile(logo=False)
    client = _debtor(gerente, gestora, email_ladder)
    email = _compose(client)
    assert email.text.startswith("Estimado(a) Rosa Pagos:\n\nLe recordamos el saldo de Ferretería <El Clavo> & Hijos")
    assert "Pagar $2,020.25 en línea: https://pagos.example.com/checkout?" in email.text
    assert "CLABE: 012180001234567891" in email.text and f"Referencia: C{client.pk} FC-1 FC-2 FC-3" in email.text
    assert email.images == () and "<img" not in email.html


def test_english_and_euros_use_the_messages_language_and_locale(email_ladder, gerente, gestora, media):
    business_profile(logo=False, payment_link_template="", iban="ES9121000418450200051332", clabe="")
    client = _debtor(gerente, gestora, email_ladder, name="Northwind", currency="EUR", language="en")
    email = _compose(client)
    root = _parse(email.html)
    assert root.get("lang") == "en"
    rows = root.findall(f".//{XHTML}table[@data-role='invoices']/{XHTML}tbody/{XHTML}tr")
    assert [_text(td) for td in rows[0]] == ["FC-1", "03/02/2026", "5", "EUR 1,500.00"]  # the business's format (es-MX)
    heads = [_text(th) for th in _all(root, "th")]
    assert heads == ["Invoice", "Due date", "Days overdue", "Balance"]
    assert [a for a in _all(root, "a") if a.get("data-role") == "pay"] == [], "no provider link: no button"
    bank = _text(root.find(f".//{XHTML}table[@data-role='bank']"))
    assert "Pay by bank transfer" in _text(root) and "IBAN ES9121000418450200051332" in bank
    assert "STOP" in _text(root) and "100 Reforma Ave." in _text(root)


def test_a_sent_reminder_is_multipart_alternative_with_both_parts_over_real_smtp(
    email_ladder, gerente, gestora, media, smtp, outbox
):
    business_profile()
    _debtor(gerente, gestora, email_ladder)
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    [result] = [dispatch.dispatch(i, now=AT_21) for i in dispatch.due_notice_ids(now=AT_21)]
    assert result.outcome == "sent", result.reason
    [msg] = smtp.messages
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert "Le recordamos el saldo de Ferretería <El Clavo> & Hijos" in plain.get_content()
    assert related.get_content_type() == "multipart/related", "the HTML and its logo travel together"
    html_part, logo = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    html = html_part.get_content()
    assert 'src="cid:logo"' in html and "FC-2" in html
    assert logo.get_content_type() == "image/png" and logo["Content-ID"] == "<logo>"
    assert logo.get_content_disposition() == "inline" and logo.get_content().startswith(b"\x89PNG")
    assert msg.get_body(("html",)).get_content() == html
    # What was stored is the text part, as sent.
    assert Notice.objects.get().body == plain.get_content().replace("\r\n", "\n").rstrip("\n")


def test_the_template_editor_previews_the_same_html_in_a_sandboxed_frame(client, gerente, media):
    business_profile()
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_preview"),
        {"channel": "email", "subject_es": "Saldo de {{ cliente }}", "body_es": BODY["es"], "preview_language": "es"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<iframe" in html and 'sandbox=""' in html and "srcdoc=" in html
    frame = response.context["preview_html"]
    assert "Comercializadora del Bajío" in frame, "the sample client, labelled as such"
    assert "Con datos de ejemplo" in html
    assert 'src="data:image/png;base64,' in frame, "the logo inline: a browser cannot resolve cid:"
    assert "https://pagos.example.com/checkout?cliente=1042" in frame
    # The same function as the send: only the logo's reference differs (data: here, cid: there).
    preview = messaging.preview_draft(channel="email", subject="Saldo de {{ cliente }}", body=BODY["es"], language="es")
    assert frame == html_email.preview_html(preview)
    sent = html_email.build(rendered=preview.rendered, context=preview.context, embed="cid").html
    start = frame.index("data:image/png")
    assert frame[:start] + "cid:logo" + frame[frame.index('"', start) :] == sent


def test_an_sms_preview_has_no_html_frame(client, gerente):
    client.force_login(gerente)
    response = client.post(
        reverse("cobranza:template_preview"),
        {
            "channel": "sms",
            "body_es": "{{ cliente }}: saldo {{ total_texto }}. Responda BAJA.",
            "preview_language": "es",
        },
    )
    assert response.status_code == 200 and "<iframe" not in response.content.decode()


def test_an_installment_reminder_is_html_too_and_its_button_asks_for_the_installment(gerente, gestora, smtp, media):
    business_profile(logo=False)
    now = dt.datetime.combine(DUE, dt.time(21, 0), tzinfo=MX)  # after the client's slot (docs/domain.md#spread)
    with time_machine.travel(now, tick=False):
        client = make_client(by=gerente, collector=gestora, legal_name="Plan en Cuotas")
        ledger.contact_create(by=gerente, client=client, name="Ana Pagos", email="ana@cuotas.example")
        make_invoice(by=gerente, client=client, number="P-1", amount="6000.00", due_date=DUE - dt.timedelta(days=9))
        make_invoice(by=gerente, client=client, number="P-2", amount="4000.00", due_date=DUE - dt.timedelta(days=9))
        workspace_services.commitment_create(
            by=gestora,
            client=client,
            kind="plan",
            installments=[
                (DUE + dt.timedelta(days=3), Decimal("5000")),
                (DUE + dt.timedelta(days=13), Decimal("5000")),
            ],
        )
        assert commitments.remind_installments(now=now)["sent"] == 1
    [msg] = smtp.messages
    assert msg.get_content_type() == "multipart/alternative"
    assert "$5,000.00" in msg.get_body(("plain",)).get_content()
    root = _parse(msg.get_body(("html",)).get_content())
    [button] = [a for a in _all(root, "a") if a.get("data-role") == "pay"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(button.get("href")).query).items()}
    assert query == {"cliente": str(client.pk), "facturas": "P-1,P-2", "importe": "5000.00", "moneda": "MXN"}
    rows = root.findall(f".//{XHTML}table[@data-role='invoices']/{XHTML}tbody/{XHTML}tr")
    assert [r.get("data-invoice") for r in rows] == ["P-1", "P-2"]


def test_a_long_statement_stays_under_gmails_clipping_size_with_every_invoice_in_the_totals(media):
    business_profile(logo=False)
    context = messaging.sample_context("es")
    context["facturas"] = [dict(f, numero=f"{f['numero']}-{i}") for i in range(100) for f in context["facturas"]]
    rendered = messaging.render_text(channel="email", subject="x", body="{{ cliente }}", language="es", context=context)
    email = html_email.build(rendered=rendered, context=context)
    root = _parse(email.html)
    rows = root.findall(f".//{XHTML}table[@data-role='invoices']/{XHTML}tbody/{XHTML}tr")
    assert len(rows) == html_email.MAX_TABLE_ROWS + 1
    assert _text(rows[-1]) == "y 240 facturas más: la lista completa está en su estado de cuenta en línea."
    assert len(email.html.encode()) < 102_000, "Gmail clips a message over 102 KB"
