"""Whom an automated message goes to: the client's reachable contact for a channel.

Shared by dispatch (reminders) and commitments (installment reminders), so both pick the same
person by the same rule.
"""

from __future__ import annotations

from accounts.models import Client, Contact
from cobranza.models import StepChannel

# Contacts that automated reminders may reach, in order of preference. Guarantors are
# contacted by a person, never by the robot (and never revealed the debt by mistake).
AUTOMATED_ROLES = (Contact.Role.BILLING, Contact.Role.PRIMARY, Contact.Role.BACKUP)
ADDRESS_FIELD = {"email": "email", "sms": "phone", "whatsapp": "whatsapp"}


def choose_contact(client: Client, channel: str) -> Contact | None:
    """The best reachable contact for an automated message on ``channel``."""
    field = ADDRESS_FIELD.get(channel)
    candidates = [
        c
        for c in client.contacts.all()
        if c.is_active
        and c.role in AUTOMATED_ROLES
        and not c.opted_out(channel)
        and (field is None or getattr(c, field))
    ]
    if channel == StepChannel.LETTER:
        candidates = [c for c in candidates if not c.opted_out("letter")]
    rank = {role: i for i, role in enumerate(AUTOMATED_ROLES)}
    candidates.sort(key=lambda c: (c.preferred_channel != channel, rank[c.role], c.pk))
    return candidates[0] if candidates else None
