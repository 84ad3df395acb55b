"""The identity crawl: everything a debtor can see speaks as the business that is owed, never
as our product, and has no hole where a value should be (docs/domain.md, "Who the debtor hears
from").

With a business set up (logo, signatures, legal footers, bank details), it renders every
debtor-facing output for a Spanish and an English client: each default ladder template on its
channel (email text part, SMS, WhatsApp, letter) through the preview that shares sending's code
path; the messages really sent by dispatch (the email through a real SMTP server with its
headers, the SMS and WhatsApp as the file backend wrote them, the letter PDF's text); every
portal page (statement, promise, plan, problem, an invalid link) and the statement PDF; the
hand-off case file (PDF and CSV); an instalment reminder. Each must contain the trade name and
must not contain "Morosos" (any case) nor an empty placeholder.

The HTML part of emails is rendered by the ``email`` branch, which this branch does not have:
``email_html_parts`` renders each default email's HTML part through the editor's preview, which
shares sending's code path; the emails really sent are checked in both parts.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse
from django.utils.html import strip_tags
from pypdf import PdfReader

from accounts import services as ledger
from cobranza.engine import dispatch, html_email, letters, messaging
from cobranza.engine.messaging import pick_text
from cobranza.engine.planner import plan
from cobranza.handoffs import selectors as handoff_selectors
from cobranza.handoffs import services as handoffs
from cobranza.models import MessageTemplate, Notice, Policy, PolicyStep
from cobranza.portal import links
from cobranza.workspace import jobs as commitments
from cobranza.workspace import services as workspace_services
from tests.factories import make_business, make_client, make_invoice, png_bytes, segment

pytestmark = pytest.mark.django_db

TRADE_NAME = "Ferretería La Esperanza"
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday; the steps go out Tuesday to Friday, no holiday
STEPS = [(1, "email", "aviso-vencimiento"), (2, "sms", "seguimiento-sms"), (3, "whatsapp", "seguimiento-whatsapp")]
LETTER = (4, "letter", "carta-ultimo-aviso")


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=MX)


# --- what "a hole" looks like ---------------------------------------------------------------------

HOLES = [
    (re.compile(r"\bNone\b"), "None"),
    (re.compile(r"\{\{|\}\}|\{%|%\}"), "template syntax"),
    (re.compile(r" {2,},| ,"), "a space before a comma (an empty value)"),
    (re.compile(r"\(\s*\)"), "empty parentheses"),
    (re.compile(r":[ \t]*[,;.]"), "a colon followed by nothing"),
    (re.compile(r"https?://(?:\s|$)"), "a link without an address"),
    (re.compile(r"https?://[^\s]*/(?:portal|p)/?(?=\s|$|[\"'<])"), "a portal link without its token"),
    (re.compile(r"\b(?:Correo|Email|Teléfono|Phone|Tel\.|RFC|CLABE|IBAN)[ \t]*:[ \t]*$", re.M), "an empty label"),
    (re.compile(r"[^\s(](?:Correo|Email|Teléfono|Phone):"), "a label glued to the text before it"),
]


def email_html_parts(template: MessageTemplate, client, language: str) -> list[str]:
    """The HTML part of ``template`` rendered for ``client`` as sending would: the editor's
    live preview, which shares sending's code path (``html_email.preview_html``)."""
    text = pick_text(template, language)
    preview = messaging.preview_draft(
        channel=template.channel, subject=text.subject, body=text.body, language=language, client=client
    )
    html = html_email.preview_html(preview)
    assert html, (template, language, preview.errors)
    return [html]


def check(text: str, where: str, *, html: bool = False) -> None:
    """``text`` names the business and neither our product nor an empty placeholder."""
    assert "morosos" not in text.lower(), f"{where}: says Morosos"
    # Line breaks and block ends read as new lines, as a mail client shows them.
    readable = strip_tags(re.sub(r"(?i)<br\s*/?>|</(p|div|td|th|tr|li|h\d)>", "\n", text)) if html else text
    readable = re.sub(r"[ \t]+", " ", readable.replace("\xa0", " "))
    assert TRADE_NAME in readable, f"{where}: does not name the business\n{readable[:3000]}"
    for pattern, what in HOLES:
        match = pattern.search(readable)
        assert match is None, f"{where}: {what}: {readable[max(0, match.start() - 80) : match.end() + 80]!r}"


def pdf_text(data: bytes, *, logo: bool = True) -> str:
    """The PDF's text and metadata; with ``logo``, the business's logo must be embedded."""
    reader = PdfReader(io.BytesIO(data))
    if logo:
        assert reader.pages[0].images, "the logo is not embedded on the first page"
    metadata = " ".join(str(v) for v in (reader.metadata or {}).values())
    return "\n".join(page.extract_text() or "" for page in reader.pages) + "\n" + metadata


# --- the world ------------------------------------------------------------------------------------


@pytest.fixture
def identity(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DUNNING_OUTBOX_DIR = tmp_path / "outbox"
    return make_business(
        logo=png_bytes(),
        trade_name=TRADE_NAME,
        tax_id="FES150312AB1",
        reply_to="pagos@ferreteria-esperanza.example",
        website="https://ferreteria-esperanza.example",
        signature_es="Departamento de Crédito y Cobranza\nFerretería La Esperanza\nTel. +52 55 5555 0100",
        signature_en="Credit and Collections\nFerretería La Esperanza\nPhone +52 55 5555 0100",
        bank_name="Banco del Centro",
        bank_account_holder="Ferretería La Esperanza, S.A. de C.V.",
        clabe="002010077777777771",
        bank_account="0123456789",
        legal_footer_es="Ferretería La Esperanza, S.A. de C.V. · RFC FES150312AB1 · Aviso de privacidad en línea.",
        legal_footer_en="Ferretería La Esperanza, S.A. de C.V. · Tax ID FES150312AB1 · Privacy notice online.",
    )


@pytest.fixture
def debtors(identity, gerente, gestora):
    """A Spanish and an English client on a ladder of every message channel."""
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Todos los canales", segment=segment("regular"))
    for position, (offset, channel, code) in enumerate([*STEPS, LETTER], start=1):
        PolicyStep.objects.create(
            policy=policy,
            position=position,
            name=f"Paso {position}",
            offset_days=offset,
            channel=channel,
            template=MessageTemplate.objects.get(code=code),
        )
    clients = []
    for language, name in (("es", "Tornillos del Norte"), ("en", "Northwind Hardware")):
        client = make_client(
            by=gerente, collector=gestora, legal_name=f"{name} S.A. de C.V.", language=language, address="Calle 1"
        )
        ledger.contact_create(
            by=gerente,
            client=client,
            name=f"Contacto {name}",
            email=f"pagos@{language}.example",
            phone="+525512345678",
            whatsapp="+525512345678",
        )
        make_invoice(by=gerente, client=client, number=f"{language.upper()}-1", amount="1500.00", due_date=DUE)
        make_invoice(by=gerente, client=client, number=f"{language.upper()}-2", amount="800.00", due_date=DUE)
        clients.append(client)
    return clients


# --- the crawl ---------------------------------------------------------------------------------------


def test_every_default_template_speaks_as_the_business(debtors):
    """Each default template, on its channel, in each language: the preview for a real client
    (the same context and link as sending)."""
    codes = list(MessageTemplate.objects.filter(code__in=[t["code"] for t in _defaults()]).order_by("code"))
    assert len(codes) == len(_defaults())
    for template in codes:
        for client in debtors:
            rendered = messaging.preview_for_client(template, client)
            where = f"{template.code}/{client.language}"
            check(f"{rendered.subject}\n{rendered.body}", where)
            if template.channel == "sms":
                assert len(rendered.body) <= messaging.SMS_MAX_CHARS, where
            for html in email_html_parts(template, client, client.language) if template.channel == "email" else []:
                check(html, f"{where} (HTML)", html=True)


def _defaults():
    return importlib.import_module("cobranza.migrations.0003_default_ladders").TEMPLATES


def test_the_messages_sent_speak_as_the_business(debtors, smtp, settings):
    """Dispatch, as in production: the email through SMTP with its headers, the SMS and the
    WhatsApp message as the provider receives them, the letter's PDF."""
    for offset, _channel, _code in [*STEPS, LETTER]:
        day = DUE + dt.timedelta(days=offset)
        # at 21:00, after every client's slot (docs/domain.md#spread)
        with time_machine.travel(at(day, 21), tick=False):
            plan(today=day, now=at(day, 21))
            for notice_id in dispatch.due_notice_ids(now=at(day, 21)):
                result = dispatch.dispatch(notice_id, now=at(day, 21))
                assert result.outcome == "sent", (Notice.objects.get(pk=notice_id).channel, result)

    assert len(smtp.messages) == 2
    for message in smtp.messages:
        where = f"email to {message['To']}"
        headers = "\n".join(f"{k}: {v}" for k, v in message.items())
        assert "morosos" not in headers.lower(), headers
        assert message["From"] == f"Cobranza {TRADE_NAME} <cobranza@ferreteria-esperanza.example>"
        assert re.fullmatch(
            r"pagos\+r\d+-[0-9a-f]+@ferreteria-esperanza\.example", message["Reply-To"]
        )  # docs/domain.md#replies
        assert message["Message-ID"].endswith("@ferreteria-esperanza.example>")
        text = message.get_body(("plain",)).get_content()
        check(text, where)
        assert "/portal/" in text, where  # the client's link, by default
        check(message.get_body(("html",)).get_content(), f"{where} (HTML)", html=True)

    outbox = settings.DUNNING_OUTBOX_DIR
    for channel in ("sms", "whatsapp"):
        sent = [json.loads(line) for line in (outbox / f"{channel}.jsonl").read_text().splitlines()]
        assert len(sent) == 2, channel
        for record in sent:
            check(record["body"], f"{channel} to {record['recipient']}")
            assert "/p/" in record["body"], channel  # the short link

    letter_notices = Notice.objects.filter(channel="letter", status="sent")
    assert letter_notices.count() == 2
    for notice in letter_notices:
        check(pdf_text(letters.letter_path(notice).read_bytes()), f"letter {notice.language}")


def test_every_portal_page_speaks_as_the_business(client, debtors):
    cache.clear()
    for debtor in debtors:
        token = links.token_for(debtor)
        for name in ("statement", "promise", "plan_request", "report_problem"):
            response = client.get(reverse(f"selfservice:{name}", args=[token]))
            assert response.status_code == 200, name
            check(response.content.decode(), f"portal {name}/{debtor.language}", html=True)
            assert 'data-testid="business-logo"' in response.content.decode()
        pdf = client.get(reverse("selfservice:statement_pdf", args=[token]))
        assert pdf.status_code == 200
        check(pdf_text(pdf.content), f"statement PDF/{debtor.language}")
    invalid = client.get(reverse("selfservice:statement", args=["not-a-token"]))
    assert invalid.status_code == 404
    check(invalid.content.decode(), "portal invalid link", html=True)
    cache.clear()


def test_the_case_file_names_the_creditor(debtors, gerente):
    handoff = handoffs.handoff_open(by=gerente, client=debtors[0], kind="agency", agency="Despacho Pérez")
    check(pdf_text(handoff_selectors.case_file_path(handoff, "pdf").read_bytes()), "case file PDF")
    text = handoff_selectors.case_file_path(handoff, "csv").read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["registro"] == "acreedor" and rows[0]["resumen"] == TRADE_NAME
    assert "morosos" not in text.lower()


def test_an_instalment_reminder_speaks_as_the_business(debtors, gestora, smtp):
    english = debtors[1]
    with time_machine.travel(at(DUE + dt.timedelta(days=8)), tick=False):
        workspace_services.commitment_create(
            by=gestora,
            client=english,
            kind="plan",
            installments=[
                (DUE + dt.timedelta(days=10), Decimal("1000")),
                (DUE + dt.timedelta(days=20), Decimal("1300")),
            ],
        )
        # at 21:00, after the client's slot (docs/domain.md#spread)
        assert commitments.remind_installments(now=at(DUE + dt.timedelta(days=8), 21))["sent"] == 1
    [message] = smtp.messages
    assert message["From"] == f"Cobranza {TRADE_NAME} <cobranza@ferreteria-esperanza.example>"
    assert re.fullmatch(
        r"pagos\+r\d+-[0-9a-f]+@ferreteria-esperanza\.example", message["Reply-To"]
    )  # docs/domain.md#replies
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    check(headers + "\n" + message.get_body(("plain",)).get_content(), "instalment reminder")
    check(message.get_body(("html",)).get_content(), "instalment reminder (HTML)", html=True)


@pytest.mark.parametrize(
    "text",
    [
        f"Saludos de Morosos y {TRADE_NAME}",
        "Saludos de una empresa sin nombre",
        f"{TRADE_NAME}\nCorreo: \nGracias",
        f"{TRADE_NAME}: saldo de None",
        f"{TRADE_NAME}: pague en https://cobranza.example/portal/ hoy",
        f"{TRADE_NAME}, {{{{ empresa.rfc }}}}",
        f"{TRADE_NAME} (RFC ) , gracias",
        f"{TRADE_NAME}\nTel. +52 55 5555 0100Correo: cobranza@example.com",
    ],
)
def test_the_crawl_notices_a_hole(text):
    with pytest.raises(AssertionError):
        check(text, "sample")
