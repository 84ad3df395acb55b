"""Replies come back into the CRM (docs/domain.md#replies): the signed reply address."""

import datetime as dt
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest

from accounts import services as ledger
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import BusinessProfile, MessageTemplate, MessageTemplateText, Policy, PolicyStep
from cobranza.replies import tokens
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)
AT_10 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(10, 0), tzinfo=MX)


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
    BusinessProfile.objects.create(reply_to="respuestas@clavos.example", sender_email="avisos@clavos.example")
    plan(today=AT_10.date(), now=AT_10)
    [notice_id] = dispatch.due_notice_ids(now=AT_10)
    assert dispatch.dispatch(notice_id, now=AT_10).outcome == "sent"
    [msg] = smtp.messages
    reply_to = parseaddr(msg["Reply-To"])[1]
    assert reply_to == f"respuestas+{tokens.token(debtor.pk)}@clavos.example"
    assert tokens.client_id_in_addresses(msg["Reply-To"]) == debtor.pk


def test_without_a_reply_to_the_sender_takes_the_replies(ladder, debtor, smtp, outbox):
    plan(today=AT_10.date(), now=AT_10)
    [notice_id] = dispatch.due_notice_ids(now=AT_10)
    dispatch.dispatch(notice_id, now=AT_10)
    [msg] = smtp.messages
    assert parseaddr(msg["Reply-To"])[1] == f"cobranza+{tokens.token(debtor.pk)}@morosos.example"
