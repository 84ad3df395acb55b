"""Reads of debtors' replies (docs/domain.md#replies)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import Client, Interaction
from cobranza.models import InboundMessage


def _answered_after() -> QuerySet[Interaction]:
    """A timeline entry a staff member wrote after the (outer) reply: it was attended."""
    return Interaction.objects.filter(
        client=OuterRef("client_id"), author__isnull=False, occurred_at__gt=OuterRef("received_at")
    ).exclude(kind=Interaction.Kind.SYSTEM)


def unread_replies() -> QuerySet[InboundMessage]:
    """Replies of known clients that nobody has marked read or answered with a logged contact."""
    return InboundMessage.objects.filter(client__isnull=False, read_at__isnull=True).filter(~Exists(_answered_after()))


def client_replies(client: Client, *, limit: int = 10) -> list[InboundMessage]:
    """The client's latest replies, each with ``unread`` (one query)."""
    unread_ids = unread_replies().filter(client=client).values("pk")
    rows = (
        InboundMessage.objects.filter(client=client)
        .annotate(unread=Exists(unread_ids.filter(pk=OuterRef("pk"))))
        .select_related("contact")
        .order_by("-received_at", "-id")[:limit]
    )
    return list(rows)


def unmatched(*, limit: int = 200) -> list[InboundMessage]:
    return list(InboundMessage.objects.filter(client__isnull=True).order_by("-received_at", "-id")[:limit])
