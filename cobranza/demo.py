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
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from decimal import ROUND_DOWN, Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from accounts import clock
from accounts import services as ledger
from accounts.demo import Phases
from accounts.models import Client, Interaction, Invoice, Payment, PaymentAllocation
from accounts.rules import open_invoice_q
from cobranza.alerts import jobs as alerts
from cobranza.business import services as business
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.models import (
    MESSAGE_CHANNELS,
    AgingSnapshot,
    ClientProfile,
    CollectorTask,
    Commitment,
    Dispute,
    DisputeReason,
    InboundMessage,
    Installment,
    Notice,
    NoticeItem,
    PolicyStep,
    SettlementNorm,
    SettlementOffset,
    StepChannel,
    TaskKind,
    WorklistRankDirty,
)
from cobranza.profiles import jobs as profiles
from cobranza.replies import services as replies
from cobranza.rules import effective_policy_joins_sql, effective_policy_sql
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


def seed(*, today: dt.date, seed: int, stdout=None, phases: Phases | None = None) -> str:
    phase = phases or Phases()
    rng = random.Random(seed * 7919 + 17)
    with phase("cobranza: business"):
        profile = business.business_demo(logo=demo_logo())
    with transaction.atomic():
        with phase("cobranza: disputes"):
            disputes = _disputes(rng, today)
        with phase("cobranza: commitments"):
            made = _commitments(rng, today)
    # Like the ledger's, the seeded history ends yesterday: last night's judgement.
    with phase("cobranza: judge"):
        judged = commitments.judge(today=today - dt.timedelta(days=1))
    with phase("cobranza: replies"):
        answered = _replies(rng, today)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-month-end") as beside:
        # Month-end aging for the dashboard's trend and roll rates (13: the first month's CEI
        # needs the close of the month before). The closes read the invoices, payments and
        # disputes, all written by now; nothing below writes them. So when those rows are
        # committed, the closes run on a connection of their own beside the history, profiles
        # and alerts: each of those phases runs its statements on one core, and the machine has
        # more (at 100,000 clients the closes take ~55 s). Inside a caller's transaction (a
        # test) another connection would not see the rows: then they are taken in turn.
        closes = None if connection.in_atomic_block else beside.submit(copy_context().run, _closes_beside, today, phase)
        with transaction.atomic():
            history = _history(seed, today, phase)
        # The jobs below read what the steps above wrote in bulk: hundreds of thousands of rows
        # in tables autovacuum has not looked at yet. Without statistics the planner takes them
        # for empty and picks nested loops (the profiles took ten times longer at 100,000 clients).
        with phase("cobranza: statistics"):
            _analyze(
                Dispute,
                Dispute.invoices.through,
                Commitment,
                Commitment.invoices.through,
                Installment,
                Notice,
                NoticeItem,
                CollectorTask,
                InboundMessage,
                WorklistRankDirty,
            )
        with phase("cobranza: profiles"):
            profiles = _profiles(today)
        with phase("cobranza: statistics"):
            _analyze(ClientProfile, SettlementOffset, SettlementNorm)
        with phase("cobranza: alerts"):
            raised = alerts.raise_alerts(today=today - dt.timedelta(days=1))
        snapshots = _closes(today, phase) if closes is None else closes.result()
    with phase("cobranza: statistics"):
        _analyze(AgingSnapshot)
    return (
        f"cobranza: empresa «{profile.trade_name}» configurada; {disputes} disputas, "
        f"{made['promise']} promesas ({made['open']} vigentes), "
        f"{made['plan']} planes de pagos; juicio: {judged['kept'] + judged['paid_off']} cumplidas, "
        f"{judged['broken']} incumplidas; {answered} respuestas de clientes; "
        f"historial de {HISTORY_DAYS} días: {history['notices']} avisos, {history['tasks']} tareas, "
        f"{history['promises']} promesas evaluadas; {profiles} perfiles calculados; "
        f"{len(snapshots)} cierres de mes; "
        f"{raised.get('raised', 0) if isinstance(raised, dict) else 0} alertas tempranas"
    )


def _closes(today: dt.date, phase: Phases) -> dict:
    """The month-end snapshots of the 13 months before ``today``."""
    with phase("cobranza: month-end snapshots"):
        return dashboard_jobs.backfill_snapshots(months=13, today=today)


def _closes_beside(today: dt.date, phase: Phases) -> dict:
    """``_closes`` on the seed's second thread, which then closes the connection it opened."""
    try:
        return _closes(today, phase)
    finally:
        connection.close()


def _analyze(*models) -> None:
    q = connection.ops.quote_name
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {', '.join(q(m._meta.db_table) for m in models)}")


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


# --- history for the performance pages ----------------------------------------------------------

HISTORY_DAYS = 120
# Of the ladder's call and review tasks, the share each collector did (by name order): the
# collector-performance page shows who keeps up with the agenda.
COMPLETION_BY_RANK = (92, 74, 55)
# Of the messages, the share (per cent) that failed to go out, and that the contact rules deferred once.
FAILED_PCT = 4
DEFERRED_PCT = 12
# A collector's logged promise counts as kept when its invoices were paid within these days.
PROMISE_WINDOW_DAYS = 21


def _history(seed: int, today: dt.date, phase: Phases | None = None) -> dict[str, int]:
    """The last ``HISTORY_DAYS`` of the ladder and of the collectors' work, derived in SQL from
    the seeded ledger (docs/domain.md#dunning-effectiveness, #collector-performance):

    - every invoice that was still owed on the day a step of its client's ladder fell due
      (due date + offset, hand-off steps aside) got that step's notice, sent that morning —
      a few failed or were deferred once; the payments that followed are the ledger's own, so
      what each step and channel collected is what the seeded history paid;
    - each call or review notice made its task for the client's collector, done (or not yet)
      at a rate that differs per collector;
    - each promise a collector logged on a call, with the invoices it named, became a promise
      to pay judged kept, partly kept or broken by the payments of the following three weeks.
    A handful of set-based statements, whatever the size of the portfolio."""
    phase = phase or Phases()
    since = today - dt.timedelta(days=HISTORY_DAYS)
    tz = timezone.get_current_timezone()
    params = {
        "since": since,
        "today": today,
        "seed": str(seed),
        "failed": FAILED_PCT,
        "deferred": DEFERRED_PCT,
        "tz": str(tz),
        # Invoices a step of the window can reach (steps fall from some days before the due
        # date to a few months after it): an index range, not the whole ledger.
        "first_due": since - dt.timedelta(days=366),
        "last_due": today + dt.timedelta(days=366),
        "now": clock.now(),
        "messages": [c.value for c in MESSAGE_CHANNELS],
        "commitments": Commitment._meta.db_table,
        "promise_window": PROMISE_WINDOW_DAYS,
        "tasks": [StepChannel.CALL.value, StepChannel.REVIEW.value],
    }
    t = {
        "client": Client._meta.db_table,
        "invoice": Invoice._meta.db_table,
        "allocation": PaymentAllocation._meta.db_table,
        "payment": Payment._meta.db_table,
        "step": PolicyStep._meta.db_table,
        "notice": Notice._meta.db_table,
        "item": NoticeItem._meta.db_table,
        "task": CollectorTask._meta.db_table,
        "commitment": Commitment._meta.db_table,
        "commitment_invoice": Commitment.invoices.through._meta.db_table,
        "installment": Installment._meta.db_table,
        "interaction": Interaction._meta.db_table,
        "interaction_invoice": Interaction.invoices.through._meta.db_table,
        "user": get_user_model()._meta.db_table,
    }
    # A deterministic die per row: the same seed and ledger give the same history.
    die = "abs(hashtext({key} || ':' || %(seed)s)) %% 100"
    # Keyed on what the seed decides (tax id, step position, day), not on row ids.
    notice_die = die.format(key="r.tax_id || ':' || r.position || ':' || r.day")
    done = {}
    with connection.cursor() as cur:
        # Dropped at the end; ON COMMIT DROP too, for a failure (an outer transaction, e.g. a
        # test, may seed twice before any commit).
        cur.execute("DROP TABLE IF EXISTS demo_reached, demo_promised")
        with phase("history: reached steps"):
            cur.execute(
                f"""
                CREATE TEMP TABLE demo_reached ON COMMIT DROP AS
                WITH ladder AS MATERIALIZED (
                    SELECT c.id AS client_id, c.tax_id, {effective_policy_sql()} AS policy_id
                    FROM {t["client"]} c
                    {effective_policy_joins_sql("c")}
                ),
                reached AS MATERIALIZED (
                    SELECT i.client_id, l.tax_id, i.id AS invoice_id, i.amount, st.id AS step_id, st.position,
                           st.channel, i.due_date + st.offset_days AS day, GREATEST(st.offset_days, 0) AS days_overdue
                    FROM {t["invoice"]} i
                    JOIN ladder l ON l.client_id = i.client_id
                    JOIN {t["step"]} st ON st.policy_id = l.policy_id AND st.is_active
                    WHERE i.status NOT IN ('cancelled', 'disputed')
                      AND i.due_date BETWEEN %(first_due)s AND %(last_due)s
                      AND (st.channel = ANY(%(messages)s) OR st.channel = ANY(%(tasks)s))
                      AND i.due_date + st.offset_days >= GREATEST(%(since)s, i.issue_date)
                      AND i.due_date + st.offset_days < %(today)s
                      AND (i.status <> 'written_off' OR i.due_date + st.offset_days < CAST(i.updated_at AS date))
                )
                SELECT r.client_id, r.tax_id, r.invoice_id, r.step_id, r.position, r.channel, r.day, r.days_overdue,
                       r.amount - COALESCE(SUM(a.amount), 0) AS open_balance
                FROM reached r
                LEFT JOIN {t["allocation"]} a ON a.invoice_id = r.invoice_id
                    AND EXISTS (SELECT 1 FROM {t["payment"]} p WHERE p.id = a.payment_id AND p.received_on < r.day)
                GROUP BY r.client_id, r.tax_id, r.invoice_id, r.amount, r.step_id, r.position, r.channel, r.day,
                         r.days_overdue
                """,  # noqa: S608 - table names from model metadata; values are parameters
                params,
            )
        with phase("history: drop settled"):
            cur.execute("DELETE FROM demo_reached WHERE open_balance <= 0")
        with phase("history: notices"):
            cur.execute(
                f"""
                INSERT INTO {t["notice"]} (client_id, step_id, channel, planned_for, scheduled_at, status,
                    recipient, language, subject, body, attempts, deferrals, sent_at, message_id,
                    provider_ref, reason, created_at, updated_at)
                SELECT r.client_id, r.step_id, r.channel, r.day,
                       (r.day + time '08:00') AT TIME ZONE %(tz)s,
                       CASE WHEN r.channel = ANY(%(messages)s) AND {notice_die} < %(failed)s
                            THEN 'failed' ELSE 'sent' END,
                       '', c.language, '', '', 1,
                       CASE WHEN r.channel = ANY(%(messages)s) AND {notice_die} >= %(failed)s
                                 AND {notice_die} < %(failed)s + %(deferred)s THEN 1 ELSE 0 END,
                       CASE WHEN r.channel = ANY(%(messages)s) AND {notice_die} < %(failed)s THEN NULL
                            ELSE (r.day + time '08:00' + ({notice_die} %% 180) * interval '1 minute')
                                 AT TIME ZONE %(tz)s END,
                       '', '', '', %(now)s, %(now)s
                FROM (SELECT DISTINCT client_id, tax_id, step_id, position, channel, day FROM demo_reached) r
                JOIN {t["client"]} c ON c.id = r.client_id
                """,  # noqa: S608
                params,
            )
        done["notices"] = cur.rowcount
        with phase("history: notice items"):
            cur.execute(
                f"""
                INSERT INTO {t["item"]} (notice_id, invoice_id, step_id, open_balance, days_overdue)
                SELECT n.id, r.invoice_id, r.step_id, r.open_balance, r.days_overdue
                FROM demo_reached r
                JOIN {t["notice"]} n ON n.client_id = r.client_id AND n.step_id = r.step_id AND n.planned_for = r.day
                """,  # noqa: S608
                params,
            )
        task_die = die.format(key="c.tax_id || ':' || st.position || ':' || n.planned_for || ':task'")
        with phase("history: tasks"):
            cur.execute(
                f"""
                WITH collectors AS (
                    SELECT u.id, ROW_NUMBER() OVER (ORDER BY u.username) AS rank
                    FROM {t["user"]} u WHERE u.id IN (SELECT collector_id FROM {t["client"]})
                ),
                rates AS (
                    SELECT id, (ARRAY{list(COMPLETION_BY_RANK)})[1 + (rank - 1) %% {len(COMPLETION_BY_RANK)}] AS pct
                    FROM collectors
                )
                INSERT INTO {t["task"]} (client_id, kind, notice_id, title, assigned_to_id, due_on, status,
                    created_at, completed_at, completed_by_id)
                SELECT n.client_id, CASE WHEN n.channel = 'call' THEN 'call' ELSE 'review' END, n.id,
                       LEFT(st.name || ': ' || string_agg(i.number, ', ' ORDER BY i.number), 255),
                       c.collector_id, n.planned_for,
                       CASE WHEN {task_die} < r.pct THEN 'done' ELSE 'open' END,
                       n.scheduled_at,
                       CASE WHEN {task_die} < r.pct THEN n.scheduled_at + ({task_die} %% 3) * interval '1 day'
                            + interval '4 hours' END,
                       CASE WHEN {task_die} < r.pct THEN c.collector_id END
                FROM {t["notice"]} n
                JOIN {t["step"]} st ON st.id = n.step_id
                JOIN {t["client"]} c ON c.id = n.client_id
                JOIN rates r ON r.id = c.collector_id
                JOIN {t["item"]} it ON it.notice_id = n.id
                JOIN {t["invoice"]} i ON i.id = it.invoice_id
                WHERE n.channel = ANY(%(tasks)s) AND n.planned_for >= %(since)s
                GROUP BY n.id, st.name, st.position, c.tax_id, c.collector_id, r.pct
                """,  # noqa: S608
                params,
            )
        done["tasks"] = cur.rowcount
        # Promises the collectors logged, judged against what the ledger paid in the weeks after:
        # the seeded timeline keeps the promised date in its text only, so the promise is kept
        # when the invoices it named were paid within PROMISE_WINDOW_DAYS (its date: the last
        # of those payments), partly kept when some money came, broken otherwise (its date: the
        # call's next action, or two weeks on).
        day = "CAST(e.occurred_at AT TIME ZONE %(tz)s AS date)"
        with phase("history: promises judged"):
            cur.execute(
                f"""
                CREATE TEMP TABLE demo_promised ON COMMIT DROP AS
                WITH named AS (
                    SELECT e.id AS entry_id, e.client_id, e.author_id, e.contact_id, e.next_action_on,
                           {day} AS made_on, i.id AS invoice_id, i.currency, i.amount
                    FROM {t["interaction"]} e
                    JOIN {t["interaction_invoice"]} ei ON ei.interaction_id = e.id
                    JOIN {t["invoice"]} i ON i.id = ei.invoice_id
                    WHERE e.outcome = 'promise' AND e.author_id IS NOT NULL AND e.corrects_id IS NULL
                      AND e.occurred_at >= (CAST(%(since)s AS date) + time '00:00') AT TIME ZONE %(tz)s
                      AND {day} + %(promise_window)s < %(today)s - 1
                      AND i.status <> 'cancelled'
                ),
                -- What each named invoice had been paid before the promise, and what came in the
                -- window after it: one pass over the invoices' allocations (a handful each).
                paid AS (
                    SELECT n.entry_id, n.invoice_id,
                           COALESCE(SUM(a.amount) FILTER (WHERE p.received_on < n.made_on), 0) AS before,
                           COALESCE(SUM(a.amount) FILTER (WHERE p.received_on >= n.made_on
                               AND p.received_on <= n.made_on + %(promise_window)s), 0) AS after,
                           MAX(p.received_on) FILTER (WHERE p.received_on >= n.made_on
                               AND p.received_on <= n.made_on + %(promise_window)s) AS last_on
                    FROM named n
                    LEFT JOIN {t["allocation"]} a ON a.invoice_id = n.invoice_id
                    LEFT JOIN {t["payment"]} p ON p.id = a.payment_id
                    GROUP BY n.entry_id, n.invoice_id
                ),
                promised AS (
                    SELECT n.entry_id, n.client_id, n.author_id, n.contact_id, n.made_on,
                           COALESCE(n.next_action_on, n.made_on + 14) AS said_on,
                           MIN(n.currency) AS currency,
                           SUM(n.amount - pd.before) AS total,
                           SUM(LEAST(pd.after, n.amount - pd.before)) AS covered,
                           MAX(pd.last_on) AS last_on
                    FROM named n
                    JOIN paid pd ON pd.entry_id = n.entry_id AND pd.invoice_id = n.invoice_id
                    GROUP BY n.entry_id, n.client_id, n.author_id, n.contact_id, n.made_on, n.next_action_on
                    HAVING COUNT(DISTINCT n.currency) = 1 AND SUM(n.amount - pd.before) > 0
                )
                SELECT nextval(pg_get_serial_sequence(%(commitments)s, 'id')) AS commitment_id, p.*,
                       CASE WHEN p.covered >= p.total THEN p.last_on
                            ELSE LEAST(GREATEST(p.said_on, p.made_on), CAST(%(today)s AS date) - 2) END AS due_on
                FROM promised p
                """,  # noqa: S608
                params,
            )
        with phase("history: promises written"):
            cur.execute(
                f"""
                WITH made AS (
                    INSERT INTO {t["commitment"]} (id, client_id, kind, status, currency, total, made_on, grace_days,
                        missed_allowed, missed_count, paid_amount, notes, created_by_id, created_at, resolved_on,
                        contact_id)
                    SELECT d.commitment_id, d.client_id, 'promise',
                           CASE WHEN d.covered >= d.total THEN 'kept' WHEN d.covered > 0 THEN 'partial'
                                ELSE 'broken' END,
                           d.currency, d.total, d.made_on, 0, 0,
                           CASE WHEN d.covered >= d.total THEN 0 ELSE 1 END, d.covered,
                           'Promesa acordada por teléfono.', d.author_id,
                           (d.made_on + time '12:00') AT TIME ZONE %(tz)s, d.due_on + 1, d.contact_id
                    FROM demo_promised d
                    RETURNING id
                ),
                promised AS (SELECT d.* FROM demo_promised d JOIN made m ON m.id = d.commitment_id),
                links AS (
                    INSERT INTO {t["commitment_invoice"]} (commitment_id, invoice_id)
                    SELECT p.commitment_id, ei.invoice_id
                    FROM promised p JOIN {t["interaction_invoice"]} ei ON ei.interaction_id = p.entry_id
                    RETURNING 1
                )
                INSERT INTO {t["installment"]} (commitment_id, number, due_on, amount, status, covered, judged_on)
                SELECT p.commitment_id, 1, p.due_on, p.total,
                       CASE WHEN p.covered >= p.total THEN 'kept' WHEN p.covered > 0 THEN 'partial' ELSE 'missed' END,
                       LEAST(p.covered, p.total), p.due_on + 1
                FROM promised p
                """,  # noqa: S608
                params,
            )
        done["promises"] = cur.rowcount
        cur.execute("DROP TABLE demo_reached, demo_promised")
    return done
