"""No debtor's personal data in the logs.

A realistic day — reminders by e-mail (through a real SMTP server) and SMS, a send the mail
server refuses, a payment webhook, an import with errors, a debtor opening the self-service
page — run with every logger at DEBUG. No record (message, arguments, traceback) may carry a
debtor's e-mail address, phone number, name or tax id, once it has passed the logging
configuration's filter (``morosos.logging.RedactPersonalData``, the safety net for addresses
and numbers). Names and tax ids cannot be recognised by a pattern: no code may log them at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client as HttpClient
from django.urls import reverse

from accounts import services as ledger
from cobranza.engine import dispatch
from cobranza.engine.channels import ConsoleBackend, OutgoingMessage
from cobranza.engine.planner import plan
from cobranza.imports import services as imports
from cobranza.imports.services import Options
from cobranza.models import MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from cobranza.portal import links
from morosos.logging import RedactPersonalData, redact
from tests.cobranza.conftest import outbox, smtp  # noqa: F401 - fixtures
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday, no holiday
# Inside the window and after every client's slot (docs/domain.md#spread): messages are due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)
SECRET = "secreto-del-webhook"

CLAVO = {
    "legal_name": "Ferretería El Clavo Dorado S.A. de C.V.",
    "trade_name": "El Clavo Dorado",
    "tax_id": "FCD920101AB1",
}
ROSA = {"name": "Rosa Pagos Villanueva", "email": "rosa.pagos@clavodorado.example", "phone": "+52 55 1234 5678"}
TUERCA = {"legal_name": "Tornillería La Tuerca Floja S.A.", "tax_id": "TTF850505CD2"}
BETO = {"name": "Alberto Cuentas Rivas", "email": "beto@tuercafloja.example", "phone": "+52 33 8765 4321"}
PERSONAL = [
    *CLAVO.values(),
    *ROSA.values(),
    *TUERCA.values(),
    *BETO.values(),
    "+525512345678",
    "5512345678",
    "rosa.pagos",
]

# The fake mail server runs in the test process: its own log is the outside world's, not ours.
OUTSIDE = ("mail.log", "aiosmtpd")


@pytest.fixture
def ladder(db):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba de registros", segment=segment("regular"))
    email = MessageTemplate.objects.create(code="pii-email", name="pii-email", channel="email")
    MessageTemplateText.objects.create(
        template=email,
        language="es",
        subject="Saldo pendiente de {{ cliente }}",
        body="Estimado(a) {{ contacto }}: le recordamos el saldo de {{ cliente }}.",
    )
    sms = MessageTemplate.objects.create(code="pii-sms", name="pii-sms", channel="sms")
    MessageTemplateText.objects.create(
        template=sms, language="es", body="{{ cliente }}: saldo vencido. BAJA para salir."
    )
    PolicyStep.objects.create(policy=policy, position=1, name="Correo", offset_days=1, channel="email", template=email)
    PolicyStep.objects.create(policy=policy, position=2, name="SMS", offset_days=2, channel="sms", template=sms)
    return policy


@pytest.fixture
def debtors(gerente, gestora, ladder):
    clavo = make_client(by=gerente, collector=gestora, **CLAVO)
    ledger.contact_create(by=gerente, client=clavo, **ROSA)
    make_invoice(by=gerente, client=clavo, number="CD-1", amount="1500.00", due_date=DUE)
    tuerca = make_client(by=gerente, collector=gestora, **TUERCA)
    ledger.contact_create(by=gerente, client=tuerca, **BETO)
    make_invoice(by=gerente, client=tuerca, number="TF-1", amount="800.00", due_date=DUE)
    return clavo, tuerca


def _text(record: logging.LogRecord) -> str:
    parts = [str(record.msg), repr(record.args)]
    with contextlib.suppress(Exception):  # a broken format string is still searched raw
        parts.append(record.getMessage())
    if record.exc_text:
        parts.append(record.exc_text)
    elif record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def _leaks(records) -> list[str]:
    found = []
    for record in records:
        if record.name.startswith(OUTSIDE):
            continue
        text = _text(record)
        for value in PERSONAL:
            if value in text:
                found.append(f"{record.name} {record.pathname}:{record.lineno}: {value!r} in {text[:300]!r}")
    return found


def _as_logged(records):
    """The records as the configured handlers see them (through the redacting filter)."""
    configured = RedactPersonalData()
    for record in records:
        configured.filter(record)
    return records


def _day_of_collections(client, debtors, smtp, gerente):  # noqa: F811 - fixture
    clavo, tuerca = debtors
    # 1. Reminders: an e-mail to each debtor; the mail server refuses the second one.
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    ids = list(dispatch.due_notice_ids(now=AT_21))
    first = Notice.objects.filter(pk__in=ids, client=clavo).values_list("pk", flat=True)
    outcomes = [dispatch.dispatch(i, now=AT_21).outcome for i in first]
    smtp.recorder.refuse_with = "550 5.1.1 <beto@tuercafloja.example>: no such user"
    outcomes += [dispatch.dispatch(i, now=AT_21).outcome for i in ids if i not in set(first)]
    smtp.recorder.refuse_with = None
    # 2. The next day, the SMS step (file backend).
    later = AT_21 + dt.timedelta(days=1)
    plan(today=DUE + dt.timedelta(days=2), now=later)
    outcomes += [dispatch.dispatch(i, now=later).outcome for i in dispatch.due_notice_ids(now=later)]
    # 3. A payment webhook from the bank.
    body = json.dumps(
        {
            "reference": "SPEI-PII-1",
            "tax_id": CLAVO["tax_id"],
            "amount": "1500.00",
            "currency": "MXN",
            "received_on": DUE.isoformat(),
        }
    ).encode()
    timestamp = str(int(dt.datetime.now(tz=dt.UTC).timestamp()))
    signature = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    webhook = client.post(
        reverse("webhooks:payments"),
        data=body,
        content_type="application/json",
        headers={"X-Signature": signature, "X-Signature-Timestamp": timestamp},
    )
    # 4. An import of clients with errors (an existing tax id under another name, a bad segment).
    rows = (
        "RFC,Razón social,Segmento,Gestor,Moneda\n"
        f"{TUERCA['tax_id']},{TUERCA['legal_name']} Duplicada,no-existe,,MXN\n"
        f"XXX{BETO['phone'][-6:]}AA,{BETO['name']},regular,,MXN\n"
    )
    job = imports.job_create(
        by=gerente,
        kind="clients",
        file_name="clientes.csv",
        data=rows.encode(),
        options=Options(
            kind="clients",
            columns={
                "tax_id": "RFC",
                "legal_name": "Razón social",
                "segment": "Segmento",
                "collector": "Gestor",
                "currency": "Moneda",
            },
        ),
        dry_run=False,
    )
    imports.run_job(job)
    job.refresh_from_db()
    # 5. The debtor opens the self-service page from the link.
    cache.clear()
    portal = HttpClient().get(reverse("selfservice:statement", args=[links.token_for(tuerca)]))
    # 6. A mangled link (404, logged by Django) and someone trying a debtor's address as a
    #    staff login until locked out (logged by django-axes).
    HttpClient().get(reverse("selfservice:statement", args=[links.token_for(tuerca)[:-4] + "xxxx"]))
    for _ in range(settings.AXES_FAILURE_LIMIT):
        HttpClient().post(reverse("login"), {"username": ROSA["email"], "password": ROSA["phone"]})
    return outcomes, webhook, job, portal


def test_a_day_of_collections_logs_no_personal_data(
    client,
    debtors,
    smtp,  # noqa: F811
    outbox,  # noqa: F811
    gerente,
    caplog,
):
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    caplog.set_level(logging.DEBUG)
    for name in ("django", "cobranza", "accounts", "celery", "axes", "auditlog", "smtplib"):
        caplog.set_level(logging.DEBUG, logger=name)

    outcomes, webhook, job, portal = _day_of_collections(client, debtors, smtp, gerente)

    # The flow really ran: sends, a refused send, a payment, a rejected import, the portal.
    assert outcomes.count("sent") >= 2 and "failed" in outcomes, outcomes
    assert len(smtp.messages) == 1 and smtp.messages[0]["To"] == ROSA["email"]
    assert webhook.status_code == 201, webhook.content
    assert job.status == "rejected" and job.errors
    assert portal.status_code == 200 and TUERCA["legal_name"] in portal.content.decode()
    ours = [r for r in caplog.records if not r.name.startswith(OUTSIDE)]
    assert {"django.request", "axes.handlers.database"} <= {r.name for r in ours}, "the flow logged nothing"

    leaks = _leaks(_as_logged(list(caplog.records)))
    assert not leaks, "\n".join(leaks)


def test_the_filter_masks_addresses_and_numbers_in_messages_arguments_and_tracebacks():
    record = logging.LogRecord(
        "cobranza.engine.channels", logging.INFO, __file__, 1, "sms to %s: %s", (ROSA["phone"], "hola"), None
    )
    try:
        raise ValueError(f"refused {ROSA['email']}")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 2, "send failed", (), sys.exc_info())

    RedactPersonalData().filter(record)
    RedactPersonalData().filter(failed)

    assert record.getMessage() == "sms to [teléfono]: hola"
    assert ROSA["email"] not in failed.exc_text and "[correo]" in failed.exc_text
    assert redact("notice 42 planned for 2026-03-03 10:00:00, 1,500.00 MXN") == (
        "notice 42 planned for 2026-03-03 10:00:00, 1,500.00 MXN"
    )


def test_the_console_sms_backend_logs_no_personal_data(caplog, debtors):
    caplog.set_level(logging.DEBUG)
    clavo, _tuerca = debtors
    message = OutgoingMessage(
        notice_id=1,
        channel="sms",
        recipient=ROSA["phone"],
        subject="",
        body=f"{clavo.display_name}: saldo vencido. BAJA para salir.",
    )

    ConsoleBackend().send(message)

    assert not _leaks(_as_logged(list(caplog.records)))
    assert "written to the console" in caplog.text  # still logged, without the person
