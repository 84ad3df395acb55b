"""Escalation: the ladder ran to its end and the client still owes.

A client escalates when one of its invoices is still collectible ``DUNNING_ESCALATION_GRACE_DAYS``
after the day of its policy's last active step (due date + last offset + grace), and the
ladder actually acted on that invoice (it is listed on at least one notice of that policy),
and it is not under an open promise, plan or extension.
Steps skipped for a minimum amount or cancelled by a manager do not hold escalation back: the
ladder's time is over either way.

Escalating moves the client from *active* to *in collection* (a person takes over), writes
the reason in the client's timeline and opens two tasks: one for the assigned collector and
one for the managers' queue (unassigned). Hand-off steps (agency, legal) already changed the
status, so those clients are not active and do not escalate again.

Set-based: one statement finds and flips the clients (``UPDATE … WHERE status = 'active'``),
so two planners running at once escalate each client once.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from accounts import clock
from accounts.models import Client, ClientStatus, Interaction, Invoice
from accounts.rules import sql_literal
from cobranza import rules, texts
from cobranza.engine.planner import effective_cte
from cobranza.models import CollectorTask, NoticeItem, Policy, PolicyStep, TaskKind


def grace_days() -> int:
    return int(getattr(settings, "DUNNING_ESCALATION_GRACE_DAYS", 7))


def _escalating_sql() -> str:
    t = {
        "client": Client._meta.db_table,
        "invoice": Invoice._meta.db_table,
        "policy": Policy._meta.db_table,
        "step": PolicyStep._meta.db_table,
        "item": NoticeItem._meta.db_table,
        # The day escalation is due for an invoice: its last step's day plus the grace days.
        "day": "(i.due_date + ls.last_offset + %(grace)s)",
    }
    return """
    WITH {effective},
    last_step AS (
        SELECT policy_id, MAX(offset_days) AS last_offset FROM {step} WHERE is_active GROUP BY policy_id
    )
    SELECT DISTINCT i.client_id
    FROM {invoice} i
    JOIN effective e ON e.client_id = i.client_id
    JOIN {client} c ON c.id = i.client_id AND c.status = {active}
    JOIN {policy} p ON p.id = e.policy_id AND p.is_active
    JOIN last_step ls ON ls.policy_id = p.id
    WHERE {dunnable}
      AND i.open_balance >= p.tolerance
      AND {day} <= %(today)s
      AND EXISTS (
          SELECT 1 FROM {item} ni JOIN {step} s ON s.id = ni.step_id
          WHERE ni.invoice_id = i.id AND s.policy_id = p.id
      )
    """.format(
        effective=effective_cte(),
        dunnable=rules.dunnable_invoice_sql("i", "%(today)s"),
        active=sql_literal(ClientStatus.ACTIVE),
        **t,
    )


def escalate(*, today: dt.date, now: dt.datetime | None = None, dry_run: bool = False) -> list[int]:
    """Escalate every client whose ladder ended unpaid; returns their ids."""
    now = now or clock.now()
    params = {"today": today, "grace": grace_days()}
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_escalating_sql(), params)
            candidates = [row[0] for row in cur.fetchall()]
        if dry_run or not candidates:
            return candidates
        # The conditional update is the claim: a concurrent run flips (and returns) none of these.
        escalated = []
        for chunk_start in range(0, len(candidates), 1000):
            chunk = candidates[chunk_start : chunk_start + 1000]
            with connection.cursor() as cur:
                cur.execute(
                    f"UPDATE {Client._meta.db_table} SET status = %s, updated_at = %s "
                    f"WHERE status = %s AND id IN ({', '.join(['%s'] * len(chunk))}) RETURNING id",
                    [
                        ClientStatus.IN_COLLECTION,
                        connection.ops.adapt_datetimefield_value(now),
                        ClientStatus.ACTIVE,
                        *chunk,
                    ],
                )
                escalated.extend(row[0] for row in cur.fetchall())
        if escalated:
            _record(escalated, today=today, now=now)
    return escalated


def _record(client_ids: list[int], *, today: dt.date, now: dt.datetime) -> None:
    """Timeline entries and tasks for the escalated clients, in bulk (same transaction)."""
    grace = grace_days()
    clients = Client.objects.filter(pk__in=client_ids).select_related("collector")
    with translation.override(settings.LANGUAGE_CODE):
        summary = texts.ESCALATED()
        body = _(
            "Pasaron %(days)s días desde el último paso automático de su política y sigue con saldo vencido. "
            "Se crearon tareas para el gestor y para el gerente."
        ) % {"days": grace}
        collector_title = texts.ESCALATION_COLLECTOR()
        manager_title = texts.ESCALATION_MANAGER()
    Interaction.objects.bulk_create(
        Interaction(
            client=client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            **texts.columns("summary", summary),
            body=body,
            occurred_at=now,
        )
        for client in clients
    )
    tasks = []
    for client in clients:
        name = client.trade_name or client.legal_name
        if client.collector_id:
            tasks.append(
                CollectorTask(
                    client=client,
                    kind=TaskKind.ESCALATION,
                    **texts.columns("title", texts.join([collector_title, name], sep=": ")),
                    assigned_to_id=client.collector_id,
                    due_on=today,
                    created_at=now,
                )
            )
        # The managers' queue: unassigned, seen by every manager.
        tasks.append(
            CollectorTask(
                client=client,
                kind=TaskKind.ESCALATION,
                **texts.columns("title", texts.join([manager_title, name], sep=": ")),
                assigned_to=None,
                due_on=today,
                created_at=now,
            )
        )
    CollectorTask.objects.bulk_create(tasks)
