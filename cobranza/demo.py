"""Demo state of the collections app, on top of ``seed_demo``'s ledger (registered in
``CobranzaConfig.ready`` through ``accounts.extensions.register_demo_step``).

Deterministic for a seed. It gives every demo page something true to show:
- a Dispute record (owner, reason, invoices) for each client the ledger seeded with
  disputed invoices, with its task;
- promises to pay — open ones whose date is coming, past ones the judge settles as kept or
  broken against the seeded payments — and a few payment plans with one installment due;
- the nightly jobs run once: commitments judged (broken ones resume their ladder with a task)
  and delinquency profiles computed;
- a few debtors' replies from yesterday, unread (on their collector's worklist), and one SMS
  from an unknown number (for the managers' *Mensajes sin asignar*);
- a fictional business that is owed (a Mexican SME with logo, bank details, signatures and
  legal footer), set up, so the demo's reminders go out under its name.
Only a sample of clients gets commitments (at most ``MAX_COMMITMENTS``), through the same
services the staff use, so a 100,000-client seed stays quick.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction, Invoice
from accounts.rules import open_invoice_q
from cobranza.alerts import jobs as alerts
from cobranza.business import services as business
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.models import CollectorTask, Commitment, Dispute, DisputeReason, InboundMessage, TaskKind
from cobranza.profiles import jobs as profiles
from cobranza.replies import services as replies
from cobranza.workspace import jobs as commitments
from cobranza.workspace import services as workspace_services

MAX_COMMITMENTS = 120
CENT = Decimal("0.01")
DEMO_REASONS = (
    (DisputeReason.PRODUCT, "Mercancía dañada en la entrega; el cliente envió fotos."),
    (DisputeReason.DELIVERY, "Faltan piezas del pedido según su recepción de almacén."),
    (DisputeReason.PRICE, "El precio facturado no coincide con la cotización aceptada."),
    (DisputeReason.SERVICE, "El servicio quedó incompleto: falta la segunda visita técnica."),
)


def demo_logo() -> bytes:
    """The fictional business's logo: a steel-blue mark with its initials (PNG)."""
    image = Image.new("RGB", (360, 96), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 92, 92), radius=14, fill="#1F5F8B")
    try:  # Pillow's built-in font has no accents; DejaVu comes with WeasyPrint's system fonts
        font = ImageFont.truetype("DejaVuSans.ttf", 24)
    except OSError:
        font = None
    draw.text((22, 32), "AHB", fill="white", font_size=26)
    draw.text((108, 20), "Aceros y Herrajes", fill="#1F5F8B", font=font, font_size=24)
    draw.text((108, 54), "del Bajío" if font else "del Bajio", fill="#555555", font=font, font_size=22)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def seed(*, today: dt.date, seed: int, stdout=None) -> str:
    rng = random.Random(seed * 7919 + 17)
    profile = business.business_demo(logo=demo_logo())
    with transaction.atomic():
        disputes = _disputes(rng, today)
        made = _commitments(rng, today)
    # Like the ledger's, the seeded history ends yesterday: last night's judgement.
    judged = commitments.judge(today=today - dt.timedelta(days=1))
    answered = _replies(rng, today)
    profiles = _profiles(today)
    # Month-end aging for the dashboard's trend and roll rates (13: the first month's CEI needs
    # the close of the month before).

    snapshots = dashboard_jobs.backfill_snapshots(months=13, today=today)
    raised = alerts.raise_alerts(today=today - dt.timedelta(days=1))
    return (
        f"cobranza: empresa «{profile.trade_name}» configurada; {disputes} disputas, "
        f"{made['promise']} promesas ({made['open']} vigentes), "
        f"{made['plan']} planes de pagos; juicio: {judged['kept'] + judged['paid_off']} cumplidas, "
        f"{judged['broken']} incumplidas; {answered} respuestas de clientes; {profiles} perfiles calculados; "
        f"{len(snapshots)} cierres de mes; "
        f"{raised.get('raised', 0) if isinstance(raised, dict) else 0} alertas tempranas"
    )


def _disputes(rng: random.Random, today: dt.date) -> int:
    """One Dispute per client with disputed invoices (the ledger seeded the status only)."""
    by_client: dict[int, list[Invoice]] = {}
    for inv in Invoice.objects.filter(status=Invoice.Status.DISPUTED, disputes__isnull=True).order_by(
        "client_id", "pk"
    ):
        by_client.setdefault(inv.client_id, []).append(inv)
    collectors = dict(Client.objects.filter(pk__in=by_client).values_list("pk", "collector_id"))
    rows = []
    for client_id, invoices in by_client.items():
        reason, text = rng.choice(DEMO_REASONS)
        opened = max(inv.updated_at.date() for inv in invoices)
        rows.append(
            (
                Dispute(
                    client_id=client_id,
                    reason=reason,
                    description=text,
                    owner_id=collectors.get(client_id),
                    opened_on=min(opened, today),
                ),
                invoices,
            )
        )
    Dispute.objects.bulk_create([d for d, _ in rows])
    through = Dispute.invoices.through
    through.objects.bulk_create(
        [through(dispute_id=d.pk, invoice_id=inv.pk) for d, invoices in rows for inv in invoices]
    )
    CollectorTask.objects.bulk_create(
        [
            CollectorTask(
                client_id=d.client_id,
                kind=TaskKind.DISPUTE,
                dispute=d,
                title=f"Resolver la disputa: {d.get_reason_display()} ({', '.join(i.number for i in invoices)})"[:255],
                assigned_to_id=d.owner_id,
                due_on=today,
            )
            for d, invoices in rows
        ]
    )
    return len(rows)


def _commitments(rng: random.Random, today: dt.date) -> dict[str, int]:
    """Promises and plans for a sample of clients with overdue invoices."""
    overdue = (
        Invoice.objects.filter(
            open_invoice_q(),
            due_date__lt=today - dt.timedelta(days=5),
            client__status__in=(Client.Status.ACTIVE, Client.Status.IN_COLLECTION),
        )
        .exclude(commitments__isnull=False)
        .values("client_id", "currency")
        .annotate(owed=Sum("open_balance"))
        .order_by("client_id", "currency")
    )
    candidates = {}
    for row in overdue:
        candidates.setdefault(row["client_id"], row)  # one currency per client
    chosen = sorted(candidates)
    rng.shuffle(chosen)
    chosen = chosen[: min(MAX_COMMITMENTS, max(5, len(chosen) // 2))]
    clients = Client.objects.in_bulk(chosen)
    made = {"promise": 0, "open": 0, "plan": 0}
    for n, client_id in enumerate(chosen):
        client, row = clients[client_id], candidates[client_id]
        invoices = list(
            client.invoices.filter(
                open_invoice_q(),
                currency=row["currency"],
                due_date__lt=today - dt.timedelta(days=5),
            )
        )
        owed = row["owed"]
        kind = n % 3
        if kind == 0:  # promised recently, date still to come
            made_on = today - dt.timedelta(days=rng.randint(1, 3))
            amount = (owed * Decimal(rng.choice(("1", "1", "0.5")))).quantize(CENT, ROUND_DOWN)
            plan = [(today + dt.timedelta(days=rng.randint(1, 10)), amount)]
            made["open"] += 1
        elif kind == 1:  # promised weeks ago: the judge says kept or broken
            made_on = today - dt.timedelta(days=rng.randint(15, 30))
            plan = [(made_on + dt.timedelta(days=rng.randint(5, 10)), owed.quantize(CENT, ROUND_DOWN))]
        else:  # a payment plan over four months, started a month ago
            made_on = today - dt.timedelta(days=35)
            share = (owed / 4).quantize(CENT, ROUND_DOWN)
            plan = [(made_on + dt.timedelta(days=5 + 30 * k), share) for k in range(3)]
            plan.append((made_on + dt.timedelta(days=95), owed - share * 3))
        if any(amount <= 0 for _d, amount in plan):
            continue
        try:
            workspace_services.commitment_create(
                by=None,
                client=client,
                kind="plan" if kind == 2 else "promise",
                installments=plan,
                invoices=invoices,
                contact=client.contacts.filter(is_active=True).order_by("pk").first(),
                made_on=made_on,
                notes="Acordado por teléfono con el área de pagos.",
            )
        except ValidationError:
            continue  # a client the sample cannot promise for (e.g. balances moved): skip it
        if kind == 1 and rng.random() < 0.5:
            # Half of the older promises were kept: the money came on the promised day.
            paid_on, amount = plan[0]
            ledger.payment_record(
                by=None,
                client=client,
                amount=amount,
                currency=row["currency"],
                received_on=paid_on,
                reference=f"DEMO-PROMESA-{client.pk}-{paid_on:%Y%m%d}",
                notes="Pago de la promesa acordada.",
                historical=True,
            )
        made["plan" if kind == 2 else "promise"] += 1
    return made


DEMO_REPLIES = (
    (
        "Re: Su saldo pendiente",
        "Buenos días. La factura ya se pagó el viernes por transferencia; les mando el comprobante.",
    ),
    ("Re: Recordatorio de pago", "¿Me pueden llamar? Queremos proponer un plan de pagos para lo vencido."),
    ("Re: Aviso de saldo vencido", "No reconocemos una de las facturas, el pedido llegó incompleto."),
)


def _replies(rng: random.Random, today: dt.date) -> int:
    """Three clients with a collector and overdue invoices wrote back yesterday morning (through
    the same service as the inbound webhook, so their ladder pauses as it would), and an unknown
    number sent an SMS. Returns the replies matched to a client."""
    yesterday = today - dt.timedelta(days=1)
    candidates = list(
        Client.objects.filter(
            collector__isnull=False,
            invoices__status=Invoice.Status.OPEN,
            invoices__due_date__lt=today - dt.timedelta(days=10),
        )
        .exclude(invoices__status=Invoice.Status.DISPUTED)
        # Nobody talked to them yesterday: the reply stays unread (docs/domain.md#replies).
        .exclude(
            Exists(
                Interaction.objects.filter(
                    client=OuterRef("pk"), author__isnull=False, occurred_at__date__gte=yesterday
                ).exclude(kind=Interaction.Kind.SYSTEM)
            )
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)[:60]
    )
    chosen = rng.sample(candidates, min(len(DEMO_REPLIES), len(candidates)))
    tz = timezone.get_current_timezone()
    for index, (client_id, (subject, body)) in enumerate(zip(chosen, DEMO_REPLIES, strict=False)):
        at = dt.datetime.combine(yesterday, dt.time(8, 20 + 7 * index), tzinfo=tz)
        with clock.running_at(at):
            replies.inbound_record(
                channel=InboundMessage.Channel.EMAIL,
                provider_id=f"<demo-reply-{client_id}@clientes.example>",
                sender=f"pagos+{client_id}@clientes.example",
                subject=subject,
                body=body,
                token_client_id=client_id,
            )
    with clock.running_at(dt.datetime.combine(yesterday, dt.time(7, 45), tzinfo=tz)):
        replies.inbound_record(
            channel=InboundMessage.Channel.SMS,
            provider_id="demo-sms-unknown",
            sender="+525500000000",
            body="Buenas tardes, ¿de parte de quién es el mensaje?",
        )
    return len(chosen)


def _profiles(today: dt.date) -> int:

    result = profiles.compute_profiles(today=today)
    return int(result.get("clients", 0)) if isinstance(result, dict) else 0


def counts() -> dict[str, int]:
    """For tests and the seed summary."""
    return {
        "disputes": Dispute.objects.count(),
        "commitments": Commitment.objects.count(),
        "replies": InboundMessage.objects.filter(client__isnull=False).count(),
    }
