"""Writes for debtors' replies (docs/domain.md#replies): record what came in, once; put it in
the client's timeline; pause the ladder; mark it read."""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import formats
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Contact, Interaction
from accounts.services import ensure_can_work
from accounts.utils import actor
from cobranza import texts
from cobranza.engine.planner import effective_policy_of
from cobranza.models import ClientDunning, InboundMessage, Policy
from cobranza.ops import services as ops

# A phone matches on its last 10 digits (the national number: "+52 1 55…" and "55…" are the
# same line), and a number shorter than 7 digits matches nothing.
PHONE_MATCH_DIGITS = 10
PHONE_MIN_DIGITS = 7
SUMMARY_CHARS = 120


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def _contacts_by_sender(channel: str, sender: str) -> list[Contact]:
    """Active contacts whose address (email) or phone/WhatsApp digits are the sender's."""
    if channel == InboundMessage.Channel.EMAIL:
        return list(Contact.objects.filter(is_active=True, email__iexact=sender.strip()).order_by("id"))
    digits = _digits(sender)
    if len(digits) < PHONE_MIN_DIGITS:
        return []
    tail = digits[-PHONE_MATCH_DIGITS:]
    table = Contact._meta.db_table
    # The right-most digits of each number as written (spaces, dashes, "+" and all).
    expr = f"right(regexp_replace({table}.%s, '[^0-9]', '', 'g'), {PHONE_MATCH_DIGITS})"
    contacts = Contact.objects.filter(is_active=True).alias(
        phone_tail=RawSQL(expr % "phone", []),  # noqa: S611 - constants only; the value is a parameter below
        whatsapp_tail=RawSQL(expr % "whatsapp", []),  # noqa: S611
    )
    return list(contacts.filter(Q(phone_tail=tail) | Q(whatsapp_tail=tail)).order_by("id"))


def match(*, channel: str, sender: str, token_client_id: int | None) -> tuple[Client | None, Contact | None, str]:
    """The client a message comes from: the reply token's, else the one client whose contact
    sent it (a sender shared by two clients matches neither)."""
    contacts = _contacts_by_sender(channel, sender)
    if token_client_id is not None:
        client = Client.objects.filter(pk=token_client_id).first()
        if client is not None:
            contact = next((c for c in contacts if c.client_id == client.pk), None)
            return client, contact, InboundMessage.Match.TOKEN
    clients = {c.client_id for c in contacts}
    if len(clients) == 1:
        contact = contacts[0]
        return Client.objects.get(pk=contact.client_id), contact, InboundMessage.Match.SENDER
    return None, None, InboundMessage.Match.NONE


def reply_pause_days(client: Client) -> int:
    """Days a reply pauses this client's reminders: their effective policy's, else the default."""
    policy_id = effective_policy_of([client.pk]).get(client.pk)
    days = Policy.objects.filter(pk=policy_id).values_list("reply_pause_days", flat=True).first() if policy_id else None
    return settings.REPLY_PAUSE_DAYS if days is None else days


def _pause_for_reply(message: InboundMessage) -> None:
    days = reply_pause_days(message.client)
    if days <= 0:
        return
    until = clock.localdate() + dt.timedelta(days=days)
    current = ClientDunning.objects.filter(client=message.client).values_list("paused_until", flat=True).first()
    if current is not None and current >= until:
        return  # already paused as long or longer: a reply never shortens a pause
    ops.client_pause(
        by=None,
        client=message.client,
        until=until,
        reason=_("El cliente respondió por %(channel)s el %(date)s: recordatorios en pausa %(days)s días.")
        % {
            "channel": message.get_channel_display(),
            "date": formats.date_format(clock.localdate(), "SHORT_DATE_FORMAT"),
            "days": days,
        },
    )


def _summary(message: InboundMessage) -> texts.Text:
    first = next((line.strip() for line in message.body.splitlines() if line.strip()), "")
    # The debtor's words are data, cut to fit the summary; the label is read in the reader's language.
    text = (message.subject or first)[: SUMMARY_CHARS - 25] or texts.REPLY_NO_TEXT()
    return texts.REPLY_RECEIVED(text=text)


def inbound_record(
    *,
    channel: str,
    provider_id: str,
    sender: str,
    body: str,
    recipient: str = "",
    subject: str = "",
    token_client_id: int | None = None,
    received_at: dt.datetime | None = None,
) -> tuple[InboundMessage, bool]:
    """Record a message from a debtor once per (channel, provider id); returns it and whether it
    is new. Matched to a client, it goes to their timeline (inbound) and pauses their ladder;
    unmatched, it is kept for a manager."""
    existing = InboundMessage.objects.filter(channel=channel, provider_id=provider_id).first()
    if existing is not None:
        return existing, False
    client, contact, matched_by = match(channel=channel, sender=sender, token_client_id=token_client_id)
    received_at = min(received_at or clock.now(), clock.now())
    message = InboundMessage(
        channel=channel,
        provider_id=provider_id[:255],
        client=client,
        contact=contact,
        matched_by=matched_by,
        sender=sender[:254],
        recipient=recipient[:254],
        subject=subject[:255],
        body=body,
        received_at=received_at,
    )
    try:
        with transaction.atomic():
            if client is not None:
                message.interaction = ledger.interaction_log(
                    by=None,
                    client=client,
                    kind=channel,
                    direction=Interaction.Direction.INBOUND,
                    summary=_summary(message),
                    body=(f"{subject}\n\n" if subject else "") + body,
                    contact=contact,
                    occurred_at=received_at,
                )
            message.save()
            if client is not None:
                _pause_for_reply(message)
    except IntegrityError:
        # The same message posted twice at once: the other request recorded it.
        return InboundMessage.objects.get(channel=channel, provider_id=provider_id[:255]), False
    return message, True


def reply_mark_read(*, by: AbstractBaseUser, message: InboundMessage) -> InboundMessage:
    ensure_can_work(by, message.client)
    if message.read_at is None:
        message.read_at = clock.now()
        message.read_by = actor(by)
        message.save(update_fields=["read_at", "read_by"])
    return message
