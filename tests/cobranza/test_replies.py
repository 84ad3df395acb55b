"""Replies come back into the CRM (docs/domain.md#replies): the signed reply address."""

import datetime as dt
import json
import smtplib
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts import clock
from accounts import services as ledger
from accounts.models import Interaction
from accounts.utils import webhook_signature
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import (
    BusinessProfile,
    ClientDunning,
    InboundMessage,
    MessageTemplate,
    MessageTemplateText,
    Policy,
    PolicyStep,
)
from cobranza.replies import inbound, tokens
from cobranza.replies.selectors import unread_replies
from tests.factories import client_page_html, make_client, make_invoice, segment
from tests.smtp import SMTPServer

pytestmark = pytest.mark.django_db
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)
# Inside the window and after every client's slot (docs/domain.md#spread): messages are due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)


@pytest.fixture
def ladder(db):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Respuestas", segment=segment("regular"))
    tpl = MessageTemplate.objects.create(code="t-r", name="t-r", channel="email")
    MessageTemplateText.objects.create(template=tpl, language="es", subject="Saldo de {{ cliente }}", body="Saldo.")
    PolicyStep.objects.create(policy=policy, position=1, name="Correo", offset_days=1, channel="email", template=tpl)
    return policy


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo")
    ledger.contact_create(
        by=gerente, client=client, name="Rosa Pagos", email="rosa@clavo.example", phone="+52 55 1000 2000"
    )
    make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_date=DUE)
    return client


def test_a_token_names_its_client_and_a_forged_one_names_nobody():
    token = tokens.token(42)
    assert tokens.client_id_from(token) == 42
    assert tokens.client_id_from(token.upper()) == 42  # a mail system may fold the case
    forged = token.replace("r42-", "r43-")
    assert tokens.client_id_from(forged) is None
    assert tokens.client_id_from("r42-" + "0" * tokens.SIGNATURE_CHARS) is None
    assert tokens.client_id_from("") is None


def test_every_reminder_email_carries_a_reply_address_naming_its_client(ladder, debtor, smtp, outbox):
    BusinessProfile.objects.filter(pk=1).update(
        reply_to="respuestas@clavos.example", sender_email="avisos@clavos.example"
    )
    plan(today=AT_21.date(), now=AT_21)
    [notice_id] = dispatch.due_notice_ids(now=AT_21)
    assert dispatch.dispatch(notice_id, now=AT_21).outcome == "sent"
    [msg] = smtp.messages
    reply_to = parseaddr(msg["Reply-To"])[1]
    assert reply_to == f"respuestas+{tokens.token(debtor.pk)}@clavos.example"
    assert tokens.client_id_in_addresses(msg["Reply-To"]) == debtor.pk


def test_without_a_reply_to_the_sender_takes_the_replies(ladder, debtor, smtp, outbox):
    BusinessProfile.objects.filter(pk=1).update(reply_to="", sender_email="cobranza@morosos.example")
    plan(today=AT_21.date(), now=AT_21)
    [notice_id] = dispatch.due_notice_ids(now=AT_21)
    dispatch.dispatch(notice_id, now=AT_21)
    [msg] = smtp.messages
    assert parseaddr(msg["Reply-To"])[1] == f"cobranza+{tokens.token(debtor.pk)}@morosos.example"


# --- inbound email ---------------------------------------------------------------------------

SECRET = "s3cr3t-respuestas"
EMAIL_URL = "/webhooks/respuestas/correo/"
SMS_URL = "/webhooks/respuestas/sms/"
WHATSAPP_URL = "/webhooks/respuestas/whatsapp/"


@pytest.fixture
def inbound_secret(settings):
    settings.INBOUND_WEBHOOK_SECRET = SECRET
    settings.REPLY_PAUSE_DAYS = 3


def _signed_headers(body: bytes, *, timestamp: int | None = None, secret: str = SECRET) -> dict:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return {"X-Signature-Timestamp": stamp, "X-Signature": webhook_signature(secret, stamp, body)}


def _reply(to: str, *, sender="rosa@clavo.example", message_id="<r1@clavo.example>", text=None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Rosa Pagos <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Re: Saldo de Ferretería El Clavo"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(
        text
        or (
            "Buenos días, ya pagamos la FC-1 el viernes; les mando el comprobante.\n\n"
            "Rosa\n\n"
            "El lun, 2 mar 2026 a las 10:00, Cobranza <cobranza@morosos.example> escribió:\n"
            "> Saldo.\n"
        )
    )
    return msg.as_bytes()


def _post_email(client, raw: bytes, **sign):
    return client.post(EMAIL_URL, data=raw, content_type="message/rfc822", headers=_signed_headers(raw, **sign))


def _post_text(client, url, payload, **sign):
    raw = json.dumps(payload).encode()
    return client.post(url, data=raw, content_type="application/json", headers=_signed_headers(raw, **sign))


def test_quoted_text_is_trimmed_from_a_reply():
    text = "Ya pagué.\n\nOn Mon, Mar 2, 2026 at 10:00 AM Cobranza <c@x.example> wrote:\n> Saldo pendiente\n"
    assert inbound.trim_quoted(text) == "Ya pagué."
    assert inbound.trim_quoted("Gracias\n-----Mensaje original-----\nDe: x\n") == "Gracias"
    assert inbound.trim_quoted("> solo cita\n") == "> solo cita"  # nothing else: keep it all


def test_a_reply_to_the_tagged_address_lands_in_the_clients_timeline(client, debtor, inbound_secret):
    to = tokens.reply_address(debtor.pk)
    response = _post_email(client, _reply(to, sender="otra.persona@elsewhere.example"))
    assert response.status_code == 201, response.content
    assert response.json()["client"] == debtor.pk and response.json()["matched"] is True
    message = InboundMessage.objects.get()
    assert (message.matched_by, message.channel) == ("token", "email")
    entry = message.interaction
    assert (entry.client_id, entry.kind, entry.direction) == (debtor.pk, "email", "inbound")
    assert "ya pagamos la FC-1" in entry.body and "escribió" not in entry.body and "> Saldo" not in entry.body


def test_the_same_message_twice_is_recorded_once(client, debtor, inbound_secret):
    raw = _reply(tokens.reply_address(debtor.pk))
    assert _post_email(client, raw).status_code == 201
    again = _post_email(client, raw)
    assert again.status_code == 200 and again.json()["created"] is False
    assert InboundMessage.objects.count() == 1
    assert Interaction.objects.filter(client=debtor, direction="inbound").count() == 1


def test_without_a_token_the_sender_of_exactly_one_client_is_matched(client, debtor, gerente, inbound_secret):
    response = _post_email(client, _reply("cobranza@morosos.example"))
    assert response.status_code == 201 and response.json()["client"] == debtor.pk
    assert InboundMessage.objects.get().matched_by == "sender"
    # The same address on a second client's contact: ambiguous, kept unmatched.
    other = make_client(by=gerente, legal_name="Otra Ferretería")
    ledger.contact_create(by=gerente, client=other, name="Rosa", email="ROSA@clavo.example")
    response = _post_email(client, _reply("cobranza@morosos.example", message_id="<r2@clavo.example>"))
    assert response.status_code == 201 and response.json()["matched"] is False


def test_an_unknown_sender_is_kept_for_the_managers(client, debtor, gerente, gestora, inbound_secret):
    raw = _reply("cobranza@morosos.example", sender="quien@nadie.example")
    response = _post_email(client, raw)
    assert response.status_code == 201 and response.json()["matched"] is False
    message = InboundMessage.objects.get()
    assert message.client is None and message.interaction is None
    client.force_login(gerente)
    page = client.get(reverse("cobranza:replies_unmatched"))
    assert page.status_code == 200 and "quien@nadie.example" in page.content.decode()
    client.force_login(gestora)
    assert client.get(reverse("cobranza:replies_unmatched")).status_code == 403


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("bad_signature", 401, "bad_signature"),
        ("stale", 401, "bad_signature"),
        ("no_sender", 400, "unreadable"),
        ("garbage", 400, "unreadable"),
        ("forged_token", 422, "unknown_token"),
        ("no_such_client", 422, "unknown_token"),
        ("too_large", 413, "too_large"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_is_logged(client, debtor, inbound_secret, settings, caplog, case, status, code):
    good = tokens.reply_address(debtor.pk)
    raw, sign = _reply(good), {}
    if case == "bad_signature":
        sign = {"secret": "otro"}
    elif case == "stale":
        sign = {"timestamp": int(time.time()) - 3600}
    elif case == "no_sender":
        raw = b"Subject: hola\r\n\r\nsin remitente\r\n"
    elif case == "garbage":
        raw = b"\x00\xff\xfe not a mail at all"
    elif case == "forged_token":
        raw = _reply(good.replace(f"r{debtor.pk}-", f"r{debtor.pk + 1}-"))
    elif case == "no_such_client":
        raw = _reply(f"cobranza+{tokens.token(999999)}@morosos.example")
    elif case == "too_large":
        settings.INBOUND_MAX_BYTES = 100
    response = _post_email(client, raw, **sign)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert InboundMessage.objects.count() == 0
    assert any(code in r.getMessage() for r in caplog.records)


def test_without_a_secret_the_webhooks_are_off(client, settings):
    settings.INBOUND_WEBHOOK_SECRET = ""
    assert _post_email(client, b"x").status_code == 503


# --- SMS / WhatsApp -----------------------------------------------------------------------


def test_an_sms_from_a_contacts_number_however_written_lands_in_the_timeline(client, debtor, inbound_secret):
    payload = {"from": "+5215510002000", "text": "Pago el jueves", "id": "SM123"}
    response = _post_text(client, SMS_URL, payload)
    assert response.status_code == 201 and response.json()["client"] == debtor.pk
    entry = Interaction.objects.get(client=debtor, direction="inbound")
    assert (entry.kind, entry.body) == ("sms", "Pago el jueves")
    assert _post_text(client, SMS_URL, payload).status_code == 200
    assert InboundMessage.objects.count() == 1


def test_a_whatsapp_message_is_matched_on_the_whatsapp_number(client, debtor, gerente, inbound_secret):
    other = make_client(by=gerente, legal_name="Abarrotes Luna")
    ledger.contact_create(by=gerente, client=other, name="Luna", whatsapp="+52 (33) 4000-5000")
    response = _post_text(client, WHATSAPP_URL, {"from": "whatsapp:+523340005000", "text": "Hola", "id": "wamid.1"})
    assert response.status_code == 201 and response.json()["client"] == other.pk


@pytest.mark.parametrize(
    "payload",
    [[], {"from": "+52", "text": "", "id": "x"}, {"from": 5, "text": "hola", "id": "x"}, {"text": "hola"}],
)
def test_a_bad_text_webhook_body_is_a_400_with_field_errors(client, inbound_secret, payload):
    response = _post_text(client, SMS_URL, payload)
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_an_unsigned_sms_is_refused(client, debtor, inbound_secret):
    raw = json.dumps({"from": "+5215510002000", "text": "x", "id": "1"}).encode()
    response = client.post(SMS_URL, data=raw, content_type="application/json")
    assert response.status_code == 401 and InboundMessage.objects.count() == 0


# --- end to end: a reply through a real SMTP server, relayed to the endpoint ------------------


class RelayToWebhook:
    """What a mail provider's inbound route does: accept the message over SMTP and POST the raw
    MIME, signed, to our endpoint; a refusal there is an SMTP refusal."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[int] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        raw = envelope.original_content or envelope.content
        request = urllib.request.Request(self.url, data=raw, headers=_signed_headers(raw), method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
                self.answers.append(response.status)
        except urllib.error.HTTPError as exc:
            self.answers.append(exc.code)
            return "550 5.7.1 refused by the inbound webhook"
        return "250 OK"


def test_a_reply_through_smtp_reaches_the_timeline_and_pauses_the_ladder(
    live_server, ladder, debtor, smtp, outbox, inbound_secret
):
    today = clock.localdate()
    plan(today=AT_21.date(), now=AT_21)
    [notice_id] = dispatch.due_notice_ids(now=AT_21)
    dispatch.dispatch(notice_id, now=AT_21)
    [reminder] = smtp.messages
    reply_to = parseaddr(reminder["Reply-To"])[1]

    relay = RelayToWebhook(live_server.url + EMAIL_URL)
    mx = SMTPServer(recorder=relay).start()
    try:
        raw = _reply(reply_to, message_id="<respuesta-1@clavo.example>")
        with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as conn:
            conn.sendmail("rosa@clavo.example", [reply_to], raw)
            conn.sendmail("rosa@clavo.example", [reply_to], raw)  # a provider's retry
            forged_to = reply_to.replace(tokens.token(debtor.pk), f"r{debtor.pk}-" + "0" * tokens.SIGNATURE_CHARS)
            forged = _reply(forged_to, message_id="<f@x.example>")
            with pytest.raises(smtplib.SMTPDataError):
                conn.sendmail("rosa@clavo.example", ["x@morosos.example"], forged)
    finally:
        mx.stop()

    assert relay.answers == [201, 200, 422]
    entry = Interaction.objects.get(client=debtor, direction="inbound")
    assert entry.kind == "email" and entry.body.startswith("Re: Saldo de Ferretería El Clavo")
    assert "ya pagamos la FC-1" in entry.body and "> Saldo" not in entry.body
    dunning = ClientDunning.objects.get(client=debtor)
    assert dunning.paused_until == today + dt.timedelta(days=3)
    assert Interaction.objects.filter(client=debtor, summary__contains="pausa").exists()


# --- unread on the client page ----------------------------------------------------------------


def test_a_reply_is_unread_until_marked_read_or_answered(client, debtor, gestora, inbound_secret):
    _post_text(client, SMS_URL, {"from": "+5215510002000", "text": "Pago el jueves", "id": "SM1"})
    _post_text(client, SMS_URL, {"from": "+5215510002000", "text": "¿Recibieron?", "id": "SM2"})
    first, second = InboundMessage.objects.order_by("id")
    assert set(unread_replies().values_list("pk", flat=True)) == {first.pk, second.pk}
    client.force_login(gestora)
    page = client_page_html(client, debtor.pk)
    assert page.count('data-testid="reply-unread"') == 2 and "Pago el jueves" in page
    response = client.post(reverse("cobranza:reply_mark_read", args=[first.pk]))
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.read_by == gestora and set(unread_replies().values_list("pk", flat=True)) == {second.pk}
    # A contact the collector logs after the reply answers it.
    ledger.interaction_log(by=gestora, client=debtor, kind="call", summary="Le llamé", occurred_at=clock.now())
    assert not unread_replies().exists()


def test_another_collectors_reply_cannot_be_marked_read(client, debtor, gestor, inbound_secret):
    _post_text(client, SMS_URL, {"from": "+5215510002000", "text": "Hola", "id": "SM9"})
    client.force_login(gestor)
    response = client.post(reverse("cobranza:reply_mark_read", args=[InboundMessage.objects.get().pk]))
    assert response.status_code == 404 and unread_replies().exists()


@pytest.mark.parametrize(("days", "paused_until"), [(7, 7), (0, None), (None, 3)])
def test_a_reply_pauses_the_ladder_for_the_policys_days(client, ladder, debtor, inbound_secret, days, paused_until):
    Policy.objects.filter(pk=ladder.pk).update(reply_pause_days=days)
    _post_text(client, SMS_URL, {"from": "+5215510002000", "text": "Pago el jueves", "id": "SM1"})
    dunning = ClientDunning.objects.filter(client=debtor).first()
    expected = clock.localdate() + dt.timedelta(days=paused_until) if paused_until is not None else None
    assert (dunning.paused_until if dunning else None) == expected
