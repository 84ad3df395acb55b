"""seed_demo's collections state (cobranza.demo): disputes, promises, plans, profiles."""

import datetime as dt
import io

import pytest
from django.core.management import call_command

from accounts.models import Client, Interaction, Invoice
from cobranza.dashboard import metrics
from cobranza.models import ClientProfile, CollectorTask, Commitment, Dispute, InboundMessage, TaskKind
from cobranza.replies.selectors import unread_replies
from cobranza.worklist import selectors as wl

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 3, 15)


def seed(clients: int = 40, seed: int = 42) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--clients", str(clients), "--today", TODAY.isoformat(), "--seed", str(seed), stdout=out)
    return out.getvalue()


def test_the_demo_gives_every_collections_page_something_true_to_show():
    out = seed()
    assert "cobranza:" in out
    # Every disputed invoice belongs to a Dispute with an owner and a task.
    disputed = set(Invoice.objects.filter(status="disputed").values_list("pk", flat=True))
    assert disputed and disputed == set(Dispute.objects.values_list("invoices", flat=True))
    assert CollectorTask.objects.filter(kind=TaskKind.DISPUTE).count() == Dispute.objects.count()
    # Promises and plans exist, open ones (reminders paused) and judged ones.
    kinds = set(Commitment.objects.values_list("kind", flat=True))
    assert kinds == {"promise", "plan"}
    assert Commitment.objects.filter(status="open").exists()
    assert Commitment.objects.exclude(status="open").exists()
    for c in Commitment.objects.exclude(status="open"):
        assert c.resolved_on <= TODAY
    # Timeline entries about the seeded past are dated in it, never after --today.
    latest = Interaction.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    assert latest.date() <= TODAY
    # Profiles for every client.
    assert ClientProfile.objects.count() == Client.objects.count()
    # Debtors wrote back yesterday: unread, in their timeline, on their collector's worklist.
    unread = list(unread_replies().select_related("client__collector"))
    assert len(unread) == 3 and "3 respuestas de clientes" in out
    for message in unread:
        assert message.received_at.date() == TODAY - dt.timedelta(days=1)
        assert message.interaction.direction == "inbound" and message.client.collector is not None
        queue = wl.worklist(user=message.client.collector, scope=wl.Scope.of_collector(message.client.collector))
        row = next(c for c in queue if c.pk == message.client_id)
        assert row.reply_count == 1
    assert InboundMessage.objects.filter(client__isnull=True, channel="sms").count() == 1
    # The demo's eleven months of roll rates follow the invoices: none over 100 %.
    trend = metrics.trend(metrics.Filters.default(today=TODAY))
    rates = [rate for row in trend.roll for rate in row.rates if rate is not None]
    assert len(trend.roll) == 11 and rates and max(rates) <= 100


def test_the_demo_state_is_deterministic_for_a_seed():
    def snapshot():
        return (
            sorted(
                Commitment.objects.values_list("client__tax_id", "kind", "status", "total", "made_on", "resolved_on")
            ),
            sorted(Dispute.objects.values_list("client__tax_id", "reason", "owner__username")),
            sorted(ClientProfile.objects.values_list("client__tax_id", "computed")),
        )

    seed(seed=5)
    first = snapshot()
    out = io.StringIO()
    call_command("seed_demo", "--clients", "40", "--today", TODAY.isoformat(), "--seed", "5", "--reset", stdout=out)
    assert snapshot() == first
