"""Messages about the self-service page — the link sent by staff, the confirmations of a
promise or plan — sent the way notices are (``cobranza.engine.dispatch``): claim, re-check,
send, record, at most once.

1. **Claim** with one conditional UPDATE (``planned`` and due, or ``sending`` with an expired
   lease).
2. **Re-check** now: the client is not written off, with an agency or in legal (then our
   messages would be a second voice); a contact that automated messages may reach on the
   channel, not opted out (``choose_contact``, the reminders' own rule); the contact rules of
   the debtor's country (hours, holidays, caps: ``contact_rules.decide``) — a send outside them
   is deferred to the next allowed moment and the timeline says so, never dropped.
3. **Render and store** the message, committed before any network I/O.
4. **Send** outside any transaction; then mark it sent and write it to the timeline.

A worker that died between 3 and 4 leaves a message that may have gone out: it is marked
failed, never sent twice. Transient provider errors are retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction
from accounts.utils import money_str
from cobranza.business import selectors as business
from cobranza.engine import channels, contact_rules, messaging
from cobranza.engine.contacts import ADDRESS_FIELD, choose_contact
from cobranza.models import PortalMessage, PortalMessageKind, PortalMessageStatus
from cobranza.replies import tokens as reply_tokens

log = logging.getLogger(__name__)

# cobranza.tasks.send_portal_message, enqueued by its stable name: the tasks module imports
# this one, so this one cannot import it back.
SEND_TASK = "cobranza.send_portal_message"
MAX_ATTEMPTS = 6
KIND_OF_CHANNEL = {"email": Interaction.Kind.EMAIL, "sms": Interaction.Kind.SMS, "whatsapp": Interaction.Kind.WHATSAPP}
STOP_STATUSES = (Client.Status.WRITTEN_OFF, Client.Status.AGENCY, Client.Status.LEGAL)

Status = PortalMessageStatus


def enqueue_after_commit(message_id: int) -> None:
    transaction.on_commit(lambda: enqueue([message_id]), robust=True)


def enqueue(ids) -> None:
    """Hand messages to the workers. A broker outage loses nothing: the minute sweep
    (``due_message_ids``) finds the rows in the database."""
    for message_id in ids:
        try:
            current_app.signature(SEND_TASK, args=(message_id,)).delay()
        except Exception:  # noqa: BLE001 - the broker is down: the sweep sends it later
            log.warning("portal message %s not enqueued; the sweep will send it", message_id, exc_info=True)
            return


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.DUNNING_LEASE_SECONDS)


def _due_q(now: dt.datetime) -> Q:
    return Q(status=Status.PLANNED, scheduled_at__lte=now) | Q(status=Status.SENDING, lease_until__lt=now)


def due_message_ids(*, now: dt.datetime, limit: int = 500) -> list[int]:
    return list(
        PortalMessage.objects.filter(_due_q(now)).order_by("scheduled_at", "id").values_list("id", flat=True)[:limit]
    )


def _mine(message: PortalMessage):
    """The row, only while this worker still holds its lease (a stalled worker writes nothing)."""
    return PortalMessage.objects.filter(pk=message.pk, status=Status.SENDING, lease_until=message.claimed_lease)


def _timeline(message: PortalMessage, *, summary: str, kind=Interaction.Kind.SYSTEM, body: str = "", **fields):
    ledger.interaction_log(
        by=None,
        client=message.client,
        kind=kind,
        direction=fields.pop("direction", Interaction.Direction.INTERNAL),
        summary=summary[:255],
        body=body,
        **fields,
    )


def _label(message: PortalMessage) -> str:
    return _("%(what)s (%(channel)s)") % {"what": message.get_kind_display(), "channel": message.get_channel_display()}


def _end(message: PortalMessage, status: str, reason: str, *, now: dt.datetime, **fields) -> str:
    _mine(message).update(status=status, reason=reason[:255], lease_until=None, **fields)
    _timeline(
        message,
        summary=f"{_label(message)} — {reason}",
        outcome=Interaction.Outcome.FAILED if status == Status.FAILED else "",
    )
    return status


def send(message_id: int, *, now: dt.datetime | None = None) -> str:
    """Claim, re-check, send and record one message. Safe to call any number of times."""
    now = now or clock.now()
    until = now + _lease()
    won = PortalMessage.objects.filter(_due_q(now), pk=message_id).update(
        status=Status.SENDING, lease_until=until, attempts=F("attempts") + 1
    )
    if not won:
        return "not_claimed"
    message = PortalMessage.objects.select_related("client", "client__collector", "proposal", "commitment").get(
        pk=message_id
    )
    message.claimed_lease = until
    client = message.client

    if message.message_id:
        return _end(
            message, Status.FAILED, _("Envío interrumpido: no se sabe si salió. Verifique antes de reenviar."), now=now
        )
    if client.status in STOP_STATUSES:
        return _end(
            message,
            Status.SKIPPED,
            _("El cliente está %(status)s: no se le envían mensajes.")
            % {"status": client.get_status_display().lower()},
            now=now,
        )
    contact = choose_contact(client, message.channel)
    if contact is None:
        return _end(
            message,
            Status.SKIPPED,
            _("Sin contacto que acepte %(channel)s.") % {"channel": message.get_channel_display()},
            now=now,
        )
    # Never under an empty name (docs/domain.md, "Who the debtor hears from"), as dispatch.
    profile = business.current()
    if profile.setup_completed_at is None:
        decision = contact_rules.Decision(
            allowed=False, send_at=now + dt.timedelta(days=1), reason=business.not_set_up_reason()
        )
    else:
        decision = contact_rules.decide(client=client, channel=message.channel, at=now)
    if not decision.allowed:
        _mine(message).update(
            status=Status.PLANNED,
            scheduled_at=decision.send_at,
            attempts=F("attempts") - 1,
            reason=decision.reason[:255],
            lease_until=None,
        )
        when = timezone.localtime(decision.send_at, contact_rules.client_time_zone(client)).strftime("%Y-%m-%d %H:%M")
        _timeline(
            message,
            summary=_("%(what)s aplazado hasta %(when)s: %(reason)s")
            % {"what": _label(message), "when": when, "reason": decision.reason},
        )
        return "deferred"

    link = messaging.payment_link(client=client, channel=message.channel, business=profile)
    if message.kind == PortalMessageKind.LINK and not link:
        return _end(
            message,
            Status.FAILED,
            _("No hay una dirección pública del portal configurada: el enlace no se puede enviar."),
            now=now,
        )
    subject, body = render(message, contact=contact, link=link, company=profile.trade_name)
    recipient = getattr(contact, ADDRESS_FIELD[message.channel])
    message_id_header = f"<portal-{message.pk}.{message.attempts}@{business.message_id_domain(profile)}>"
    stored = _mine(message).update(
        contact=contact, recipient=recipient[:254], subject=subject[:255], body=body, message_id=message_id_header
    )
    if not stored:
        return "not_claimed"

    try:
        result = channels.send(
            channels.OutgoingMessage(
                notice_id=0,
                channel=message.channel,
                recipient=recipient,
                subject=subject,
                body=body,
                message_id=message_id_header,
                **(
                    {
                        "from_email": business.sender(profile),
                        "reply_to": business.reply_to(profile),
                        # A reply finds its client again (docs/domain.md#replies).
                        "headers": {"Reply-To": reply_tokens.reply_address(message.client_id)},
                    }
                    if message.channel == "email"
                    else {}
                ),
            )
        )
    except channels.TransientSendError as exc:
        if message.attempts >= MAX_ATTEMPTS:
            return _end(
                message,
                Status.FAILED,
                _("Fallo tras %(n)s intentos: %(error)s") % {"n": message.attempts, "error": exc},
                now=now,
                message_id="",
            )
        _mine(message).update(
            status=Status.PLANNED,
            scheduled_at=now + dt.timedelta(minutes=2**message.attempts),
            lease_until=None,
            message_id="",
            reason=(_("Reintento programado: %(error)s") % {"error": exc})[:255],
        )
        return "retry"
    except channels.PermanentSendError as exc:
        return _end(message, Status.FAILED, _("Envío rechazado: %(error)s") % {"error": exc}, now=now, message_id="")

    sent_at = clock.now()
    with transaction.atomic():
        _mine(message).update(
            status=Status.SENT, sent_at=sent_at, lease_until=None, reason="", provider_ref=result.provider_ref[:255]
        )
        _timeline(
            message,
            kind=KIND_OF_CHANNEL[message.channel],
            direction=Interaction.Direction.OUTBOUND,
            outcome=Interaction.Outcome.SENT,
            contact=contact,
            summary=f"{_label(message)} → {recipient}",
            body=(f"{subject}\n\n" if subject else "") + body,
        )
    return Status.SENT


def render(message: PortalMessage, *, contact, link: str, company: str | None = None) -> tuple[str, str]:
    """Subject and body in the client's language: short for SMS and WhatsApp (the link and an
    opt-out), a letter-like email otherwise."""
    client = message.client
    proposal, commitment = message.proposal, message.commitment
    agreed = commitment or proposal
    with translation.override(client.language):
        context = {
            "kind": message.kind,
            "channel": message.channel,
            "client": client,
            "contact": contact,
            "company": company if company is not None else business.current().trade_name,
            "link": link,
            "collector": client.collector,
            "what": agreed.get_kind_display().lower() if agreed is not None else "",
            "total": money_str(agreed.total, agreed.currency) if agreed is not None else "",
            "rows": [
                {"date": when, "amount": money_str(amount, agreed.currency)}
                for when, amount in (
                    [(i.due_on, i.amount) for i in commitment.installments.order_by("number")]
                    if commitment is not None
                    else proposal.rows()
                    if proposal is not None
                    else []
                )
            ],
            "note": proposal.decision_note if proposal is not None else "",
        }
        subjects = {
            PortalMessageKind.LINK: _("Su estado de cuenta con %(company)s"),
            PortalMessageKind.ACCEPTED: _("Confirmamos su %(what)s"),
            PortalMessageKind.REQUESTED: _("Recibimos su propuesta de %(what)s"),
            PortalMessageKind.APPROVED: _("Aprobamos su %(what)s"),
            PortalMessageKind.REJECTED: _("Sobre su propuesta de %(what)s"),
        }
        subject = subjects[message.kind] % {"company": context["company"], "what": context["what"]}
        template = "cobranza/email/portal_short.txt" if message.channel != "email" else "cobranza/email/portal_body.txt"
        body = render_to_string(template, context).strip() + "\n"
    return ("" if message.channel != "email" else " ".join(subject.split())), body
