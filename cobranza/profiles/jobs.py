"""Delinquency profiles: the five kinds of late payer plus the good payer (docs/domain.md#late-payers).

``compute_profiles`` recomputes every client's profile (or the given clients') from its
payment history in a few set-based SQL statements: one ``INSERT … SELECT … ON CONFLICT DO
UPDATE`` aggregates the history per client, classifies it with a ``CASE`` and stores the
evidence as JSON; two conditional ``UPDATE``s move the good-payer standing. No Python loop
runs over clients or invoices.

Evidence, per client (``ClientProfile.evidence``, shown on the client page):

- ``settled_24m``: invoices fully paid whose settlement date is in the last 24 months. The
  settlement date is the date of the last payment applied to the invoice (credit notes and
  discounts included: they settle too).
- ``late_24m`` / ``share_late_pct``: of those, how many were settled after their due date, and
  the share in percent.
- ``avg_days_late`` / ``max_days_late``: days late at settlement (settlement date − due date,
  0 when paid on time), averaged over all settled invoices, and the maximum.
- ``overdue_count`` / ``overdue_amount`` / ``oldest_days_overdue``: invoices with a balance at
  the day's close past their due date, not in dispute then (the receivables at that date); the
  amount in the client's currency; the days of the oldest one.
- ``disputes_12m`` / ``disputes_open``: disputes opened in the last 12 months; disputes open at
  the day.
- ``disputed_invoices``: invoices in dispute at the day (a dispute open then, or status
  *disputed* without a ``Dispute`` record: the ledger's own way to withhold an invoice).
- ``promises_broken_12m`` / ``promises_partial_12m``: promises to pay (commitments of kind
  *promise*) judged broken or only partly kept in the last 12 months.
- ``payments_60d``: money payments received in the last 60 days (credit notes and discounts
  are not money from the client and do not count).
- ``promises_kept_12m``: promises to pay judged kept in the last 12 months (in the client's favour).
- ``disputed_settled_24m`` / ``disputed_share_pct``: settled invoices that had a dispute opened
  by their settlement date (paid once the dispute was solved), and their share of the settled.
- ``written_off_24m``: invoices written off in the last 24 months (did not pay in the end).
- ``contacts_90d`` / ``responses_90d`` (and ``_12m``): outbound contact attempts that went out,
  and the client's answers (inbound entries, contacts answered, commitments made).

Rules, first match wins (``RULES`` says the same for the UI):

1. **new** — fewer than 3 settled invoices, nothing overdue and nothing in dispute (a dispute
   is evidence enough for rule 2).
2. **circumstantial** — a dispute open or an invoice in dispute, 2 or more disputes in 12
   months, or at least 30 % of the settled invoices paid after a dispute.
3. **negligent** — 2 or more broken (or partly kept) promises in 12 months and more than the
   kept ones, an invoice more than 90 days overdue and no payment in 60 days, something overdue
   and 3 or more contact attempts in 90 days with no response, or an invoice written off.
4. **chronic** — average days late above 30 and more than 60 % paid late.
5. **intentional** — more than 50 % paid late and nothing written off: pays in the end (rule
   3 took the write-offs; the chronic ones were taken by rule 4, so what
   is left here pays late often but by 30 days or less on average — or by more, but not
   often enough to be chronic).
6. **good** — at least 6 settled invoices, at most 10 % paid late, 3 days late or less on
   average, and no broken promise in 12 months.
7. **casual** — everyone else: pays, occasionally late.

The comparisons are exact integer arithmetic (``late × 100 > 60 × settled``), so a share of
exactly 60 % is not "more than 60 %".

A collector may override the computed profile with a reason (``services.profile_override``);
the override wins (``ClientProfile.effective``) until cleared. The good-payer standing follows
the *effective* profile: becoming good sets ``good_payer_since``; a good payer that stops being
good gets ``good_payer_lost_on``, one task for the collector (kind GOOD_PAYER_LOST) and one
timeline entry — once per loss, whichever run or override notices it (the conditional
``UPDATE … RETURNING`` is the claim).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import clock
from accounts.models import Client, Interaction, Invoice, Payment, PaymentAllocation
from accounts.rules import (
    days_between_sql,
    days_late_sql,
    overdue_sql,
    settled_invoices_sql,
    sql_in,
    sql_literal,
)
from accounts.utils import actor
from cobranza import texts

# The receivables at a date are the dashboard's (one definition: docs/domain.md#receivables).
from cobranza.dashboard.metrics import _cube_sql
from cobranza.forecast import jobs as forecast_jobs
from cobranza.forecast import selectors as forecast
from cobranza.models import (
    ClientProfile,
    CollectorTask,
    Commitment,
    Dispute,
    Profile,
    SettlementNorm,
    SettlementOffset,
    TaskKind,
)
from cobranza.performance.selectors import CONTACT_KINDS
from cobranza.rules import effective_profile_sql

# --- rules and protocols, as the UI shows them ------------------------------------------------

NEW_MIN_SETTLED = 3
GOOD_MIN_SETTLED = 6
GOOD_MAX_SHARE_LATE = 10  # percent
GOOD_MAX_AVG_DAYS = 3
CHRONIC_MIN_AVG_DAYS = 30
CHRONIC_MIN_SHARE_LATE = 60  # percent
INTENTIONAL_MIN_SHARE_LATE = 50  # percent
NEGLIGENT_MIN_BROKEN = 2
NEGLIGENT_MIN_DAYS_OVERDUE = 90
NEGLIGENT_NO_PAYMENT_DAYS = 60
CIRCUMSTANTIAL_MIN_DISPUTES = 2
# Disputes most invoices: at least this share of the invoices settled in 24 months had a dispute.
CIRCUMSTANTIAL_MIN_DISPUTED_SHARE = 30  # percent
# Unanswered contacts: this many attempts in the window, not one answer, while overdue.
NEGLIGENT_MIN_UNANSWERED = 3
NEGLIGENT_CONTACT_WINDOW_DAYS = 90

# Contact responses (docs/domain.md#evidence): an attempt is an outbound contact of these kinds
# that did not fail to go out; the client answered when an entry is inbound (a reply, a portal
# action, a call they made) or an outbound contact ended in one of these outcomes.
ANSWERED_OUTCOMES = (
    Interaction.Outcome.REACHED,
    Interaction.Outcome.PROMISE,
    Interaction.Outcome.PLAN_REQUEST,
    Interaction.Outcome.DISPUTE,
    Interaction.Outcome.REFUSED,
    Interaction.Outcome.PAID,
)

# In the order they are applied: the first that matches decides.
RULES: tuple[tuple[str, str], ...] = (
    (
        Profile.NEW,
        gettext_lazy("Menos de 3 facturas liquidadas en 24 meses, nada vencido y nada en disputa."),
    ),
    (
        Profile.CIRCUMSTANTIAL,
        gettext_lazy(
            "Una disputa abierta o una factura en disputa, 2 o más disputas en los últimos 12 meses, o al "
            "menos el 30 % de las facturas liquidadas en 24 meses pasaron por una disputa (las paga una vez "
            "resuelta)."
        ),
    ),
    (
        Profile.NEGLIGENT,
        gettext_lazy(
            "2 o más promesas de pago incumplidas (o cumplidas solo en parte) en 12 meses y más que las "
            "cumplidas; una factura con más de 90 días de atraso y ningún pago en los últimos 60 días; algo "
            "vencido y 3 o más intentos de contacto en 90 días sin ninguna respuesta; o una factura castigada "
            "en 24 meses (no pagó)."
        ),
    ),
    (
        Profile.CHRONIC,
        gettext_lazy(
            "Atraso promedio al liquidar de más de 30 días y más del 60 % de las facturas pagadas con atraso."
        ),
    ),
    (
        Profile.INTENTIONAL,
        gettext_lazy(
            "Más del 50 % de las facturas pagadas con atraso, y al final paga: ninguna factura castigada "
            "(la regla anterior se lleva a quien no pagó)."
        ),
    ),
    (
        Profile.GOOD,
        gettext_lazy(
            "Al menos 6 facturas liquidadas, como máximo el 10 % pagadas con atraso, atraso promedio de "
            "3 días o menos y ninguna promesa incumplida en 12 meses."
        ),
    ),
    (Profile.CASUAL, gettext_lazy("Los demás: paga, a veces con algún atraso.")),
)
RULE_BY_PROFILE = dict(RULES)


@dataclass(frozen=True)
class Protocol:
    """How to treat a profile (docs/domain.md#late-payers)."""

    summary: str
    tone: str
    channel: str
    negotiate: str
    steps: tuple[str, ...] = field(default_factory=tuple)


PROTOCOLS: dict[str, Protocol] = {
    Profile.GOOD: Protocol(
        summary=gettext_lazy("Cliente puntual: cuidar la relación y premiarla."),
        tone=gettext_lazy("Cordial y de agradecimiento."),
        channel=gettext_lazy("Correo electrónico; recordatorio amable antes del vencimiento."),
        negotiate=gettext_lazy(
            "Mantener sus beneficios (condiciones especiales, más plazo, descuento por pronto pago) y "
            "dejar claro que se pierden si deja de pagar a tiempo."
        ),
        steps=(
            gettext_lazy("Agradecer la puntualidad y recordar los beneficios de buen pagador."),
            gettext_lazy("Si se atrasa, preguntar primero si todo está bien con el producto o servicio."),
        ),
    ),
    Profile.CASUAL: Protocol(
        summary=gettext_lazy("Siempre paga; se atrasa de vez en cuando por causas ajenas."),
        tone=gettext_lazy("Recordatorio amable, sin presión."),
        channel=gettext_lazy("Correo o WhatsApp; una llamada cordial si no responde."),
        negotiate=gettext_lazy("Confirmar la fecha de pago; si hace falta, unos días más de plazo."),
        steps=(
            gettext_lazy("Enviar un recordatorio cortés en cuanto venza."),
            gettext_lazy("Si no responde, llamar para entender el motivo y acordar la fecha."),
        ),
    ),
    Profile.INTENTIONAL: Protocol(
        summary=gettext_lazy("Puede pagar, pero prioriza otros pagos; al final paga."),
        tone=gettext_lazy("Firme y constante, con fechas fijas."),
        channel=gettext_lazy("Llamada directa y confirmación por escrito; seguimiento regular."),
        negotiate=gettext_lazy(
            "Una promesa de pago con fecha concreta y su seguimiento; recargos por atraso pactados de antemano; "
            "no conceder más plazo sin un compromiso."
        ),
        steps=(
            gettext_lazy("Llamar el día del vencimiento y acordar una fecha de pago."),
            gettext_lazy("Dar seguimiento el día acordado; si no paga, subir el tono un paso."),
        ),
    ),
    Profile.NEGLIGENT: Protocol(
        summary=gettext_lazy("Despreocupado, sin voluntad de pago; usa el dinero en otras cosas."),
        tone=gettext_lazy("Firme, sin amenazas; escalamiento rápido."),
        channel=gettext_lazy("Llamada y carta formal; hablar con el aval."),
        negotiate=gettext_lazy(
            "Pago inmediato o una garantía; plazo corto antes de enviar a agencia de cobranza o a la vía "
            "judicial; suspender el crédito."
        ),
        steps=(
            gettext_lazy("Contactar al titular y al aval; documentar cada contacto."),
            gettext_lazy("Si no hay acuerdo en pocos días, proponer el envío a agencia o jurídico."),
        ),
    ),
    Profile.CIRCUMSTANTIAL: Protocol(
        summary=gettext_lazy("Retiene el pago por una queja sobre nuestro producto o servicio."),
        tone=gettext_lazy("Escuchar y resolver primero; tono conciliador."),
        channel=gettext_lazy("Llamada o visita; el responsable de la queja también participa."),
        negotiate=gettext_lazy(
            "Abrir una disputa, resolver el reclamo (nota de crédito, ajuste, reposición) y después cobrar el saldo."
        ),
        steps=(
            gettext_lazy("Registrar la disputa con sus facturas: los recordatorios se pausan."),
            gettext_lazy("Al resolverla, cobrar el saldo que quede con un recordatorio cortés."),
        ),
    ),
    Profile.CHRONIC: Protocol(
        summary=gettext_lazy("Siempre se atrasa, y por muchos días; suele tener problemas de liquidez."),
        tone=gettext_lazy("Cercano pero exigente; seguimiento estrecho."),
        channel=gettext_lazy("Llamadas frecuentes; revisión semanal de la cuenta."),
        negotiate=gettext_lazy(
            "Plan de pagos (fraccionamiento), plazo de crédito más corto o menor límite, y seguimiento de cada cuota."
        ),
        steps=(
            gettext_lazy("Proponer un plan de pagos realista para lo vencido."),
            gettext_lazy("Revisar el límite y el plazo de crédito con el gerente."),
        ),
    ),
    Profile.NEW: Protocol(
        summary=gettext_lazy("Todavía no hay historial suficiente para saber cómo paga."),
        tone=gettext_lazy("Cortés; conocer al cliente."),
        channel=gettext_lazy("Correo y una llamada de confirmación antes del primer vencimiento."),
        negotiate=gettext_lazy(
            "Dejar claras desde el inicio las condiciones y los recargos por pago atrasado; registrar "
            "contactos de respaldo."
        ),
        steps=(
            gettext_lazy("Confirmar quién paga y por qué canal prefiere que se le avise."),
            gettext_lazy("Observar los primeros pagos: el perfil se recalcula cada noche."),
        ),
    ),
}

PROFILE_ORDER: tuple[str, ...] = (
    Profile.GOOD,
    Profile.CASUAL,
    Profile.INTENTIONAL,
    Profile.CIRCUMSTANTIAL,
    Profile.CHRONIC,
    Profile.NEGLIGENT,
    Profile.NEW,
)


def months_ago(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` earlier (the last day of that month when it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- SQL --------------------------------------------------------------------------------------


def _json(pairs: list[tuple[str, str]]) -> str:
    args = ", ".join(f"'{key}', {expr}" for key, expr in pairs)
    return f"jsonb_build_object({args})"


def _money_text(expr: str) -> str:
    return f"CAST(CAST({expr} AS numeric(14, 2)) AS text)"


def _ratio(num: str, den: str, scale: int) -> str:
    """``num × scale ÷ den`` rounded to one decimal, 0 when ``den`` is 0."""
    return f"CASE WHEN {den} > 0 THEN ROUND(CAST({num} AS numeric) * {scale} / {den}, 1) ELSE 0 END"


def _scope(client_ids: list[int] | None, column: str, params: dict) -> str:
    if client_ids is None:
        return ""
    if not client_ids:
        return " AND 1 = 0"
    # One array parameter: an import's catch-up scopes tens of thousands of clients.
    params["scope_ids"] = [int(pk) for pk in client_ids]
    return f" AND {column} = ANY(%(scope_ids)s)"


def _receivable_sql(today: dt.date, params: dict, client_ids: list[int] | None = None) -> str:
    """The invoices each client owed at the close of ``today``, one row each with its balance,
    aging bucket, due date and whether it was in dispute then: the dashboard's receivables at a
    date (docs/domain.md#receivables), so a profile as of a past day reads the ledger as it was
    that day. Its positional parameters become named ones in ``params``. ``client_ids``: only
    those clients' invoices (the profiles computed are theirs)."""
    dims = ("invoice", "client", "currency", "due_date")
    sql, positional = _cube_sql(None, today, dims=dims, client_ids=client_ids)
    pieces = sql.replace("%%", "\0").split("%s")
    assert "%" not in "".join(pieces) and len(pieces) == len(positional) + 1
    out = [pieces[0]]
    for n, (value, piece) in enumerate(zip(positional, pieces[1:], strict=True)):
        params[f"r{n}"] = value
        out.append(f"%(r{n})s{piece}")
    return "".join(out).replace("\0", "%%")


def _classify_sql(scope: str, receivable: str) -> str:
    """Each client of ``scope``: ``client_id``, its ``computed`` profile and the ``evidence`` (a
    SELECT on named parameters, see ``compute_profiles``)."""
    t = {
        "client": Client._meta.db_table,
        "invoice": Invoice._meta.db_table,
        "payment": Payment._meta.db_table,
        "allocation": PaymentAllocation._meta.db_table,
        "dispute": Dispute._meta.db_table,
        "commitment": Commitment._meta.db_table,
        "profile": ClientProfile._meta.db_table,
        "oldest_days": days_between_sql("%(today)s", "o.oldest_due"),
        "overdue": overdue_sql("%(today)s", "i.due_date"),
        "interaction": Interaction._meta.db_table,
        "dispute_invoice": Dispute.invoices.through._meta.db_table,
    }
    judged = "(COALESCE(m.resolved_on, m.made_on) >= %(since_12m)s AND COALESCE(m.resolved_on, m.made_on) <= %(today)s)"
    made = "(m.made_on >= %(since_12m)s AND m.made_on <= %(today)s)"
    contact_kinds = sql_in("e.kind", CONTACT_KINDS)
    attempt = f"(e.direction = 'outbound' AND {contact_kinds} AND e.outcome <> 'failed')"
    answered = sql_in("e.outcome", ANSWERED_OUTCOMES)
    answer = f"(e.direction = 'inbound' OR (e.direction = 'outbound' AND {contact_kinds} AND {answered}))"
    disputed_settled = settled_invoices_sql(
        join=(
            "JOIN scope s ON s.client_id = i.client_id "
            f"JOIN {t['dispute_invoice']} di ON di.invoice_id = i.id "
            f"JOIN {t['dispute']} d ON d.id = di.dispute_id"
        ),
        having="MIN(d.opened_on) <= MAX(p.received_on)",
    )
    evidence = _json(
        [
            ("as_of", "%(today_text)s"),
            ("settled_24m", "f.settled"),
            ("late_24m", "f.late"),
            ("share_late_pct", _ratio("f.late", "f.settled", 100)),
            ("avg_days_late", _ratio("f.days_sum", "f.settled", 1)),
            ("max_days_late", "f.days_max"),
            ("overdue_count", "f.overdue_n"),
            ("overdue_amount", _money_text("f.overdue_amount")),
            ("currency", "f.currency"),
            ("oldest_days_overdue", "f.oldest_days"),
            ("disputes_12m", "f.disputes_12m"),
            ("disputes_open", "f.disputes_open"),
            ("disputed_invoices", "f.disputed_invoices"),
            ("promises_broken_12m", "f.broken_12m"),
            ("promises_partial_12m", "f.partial_12m"),
            ("promises_kept_12m", "f.kept_12m"),
            ("payments_60d", "f.payments_60d"),
            ("disputed_settled_24m", "f.disputed_settled"),
            ("disputed_share_pct", _ratio("f.disputed_settled", "f.settled", 100)),
            ("written_off_24m", "f.written_off"),
            ("contacts_90d", "f.contacts_90d"),
            ("responses_90d", "f.responses_90d"),
            ("contacts_12m", "f.contacts_12m"),
            ("responses_12m", "f.responses_12m"),
        ],
    )
    non_cash = ", ".join(f"'{m}'" for m in ("credit_note", "discount"))
    return f"""
    WITH scope AS (
        SELECT c.id AS client_id, c.currency FROM {t["client"]} c WHERE 1 = 1 {scope}
    ),
    settled AS ({settled_invoices_sql(join="JOIN scope s ON s.client_id = i.client_id")}),
    settled_days AS (
        SELECT client_id, {days_late_sql("settled_on", "due_date")} AS days_late
        FROM settled
        WHERE settled_on >= %(since_24m)s AND settled_on <= %(today)s
    ),
    offsets AS (
        SELECT client_id, COUNT(*) AS n, {forecast.MEDIAN} AS med
        FROM (SELECT s.client_id, {forecast.OFFSET_DAYS} AS days FROM settled s
              WHERE s.settled_on >= %(offset_since)s AND s.settled_on < %(today)s) d
        GROUP BY client_id
    ),
    history AS (
        SELECT client_id, COUNT(*) AS settled,
               SUM(CASE WHEN days_late > 0 THEN 1 ELSE 0 END) AS late,
               SUM(days_late) AS days_sum, MAX(days_late) AS days_max
        FROM settled_days GROUP BY client_id
    ),
    receivable AS ({receivable}),
    overdue AS (
        SELECT r.client AS client_id,
               SUM(CASE WHEN r.disputed = 0 AND r.bucket <> 'current' THEN 1 ELSE 0 END) AS n,
               SUM(CASE WHEN r.disputed = 0 AND r.bucket <> 'current' AND r.currency = s.currency
                        THEN r.amount ELSE 0 END) AS amount,
               MIN(CASE WHEN r.disputed = 0 AND r.bucket <> 'current' THEN r.due_date END) AS oldest_due,
               SUM(r.disputed) AS disputed
        FROM receivable r
        JOIN scope s ON s.client_id = r.client
        GROUP BY r.client
    ),
    disputes AS (
        SELECT d.client_id,
               SUM(CASE WHEN d.opened_on >= %(since_12m)s AND d.opened_on <= %(today)s THEN 1 ELSE 0 END) AS recent,
               SUM(CASE WHEN d.opened_on <= %(today)s AND (d.resolved_on IS NULL OR d.resolved_on > %(today)s)
                        THEN 1 ELSE 0 END) AS open_n
        FROM {t["dispute"]} d
        JOIN scope s ON s.client_id = d.client_id
        GROUP BY d.client_id
    ),
    promises AS (
        SELECT m.client_id,
               SUM(CASE WHEN m.kind = 'promise' AND m.status = 'broken' AND {judged} THEN 1 ELSE 0 END) AS broken,
               SUM(CASE WHEN m.kind = 'promise' AND m.status = 'partial' AND {judged} THEN 1 ELSE 0 END) AS partial,
               SUM(CASE WHEN m.kind = 'promise' AND m.status = 'kept' AND {judged} THEN 1 ELSE 0 END) AS kept,
               SUM(CASE WHEN {made} AND m.made_on > %(since_contact)s THEN 1 ELSE 0 END) AS made_recently,
               SUM(CASE WHEN {made} THEN 1 ELSE 0 END) AS made_12m
        FROM {t["commitment"]} m
        JOIN scope s ON s.client_id = m.client_id
        WHERE {made} OR {judged}
        GROUP BY m.client_id
    ),
    contacts AS (
        SELECT e.client_id,
               SUM(CASE WHEN {attempt} THEN 1 ELSE 0 END) AS attempts_12m,
               SUM(CASE WHEN {answer} THEN 1 ELSE 0 END) AS answers_12m,
               SUM(CASE WHEN {attempt} AND e.occurred_at >= %(since_contact_at)s THEN 1 ELSE 0 END) AS attempts_recent,
               SUM(CASE WHEN {answer} AND e.occurred_at >= %(since_contact_at)s THEN 1 ELSE 0 END) AS answers_recent
        FROM {t["interaction"]} e
        JOIN scope s ON s.client_id = e.client_id
        WHERE e.occurred_at >= %(since_12m_at)s AND e.occurred_at < %(until)s AND e.corrects_id IS NULL
        GROUP BY e.client_id
    ),
    disputed_settled AS (
        SELECT client_id, COUNT(*) AS n
        FROM ({disputed_settled}) x
        WHERE settled_on >= %(since_24m)s AND settled_on <= %(today)s
        GROUP BY client_id
    ),
    written_off AS (
        SELECT i.client_id, COUNT(*) AS n
        FROM {t["invoice"]} i
        JOIN scope s ON s.client_id = i.client_id
        WHERE i.status = 'written_off' AND i.updated_at >= %(since_24m_at)s AND i.updated_at < %(until)s
        GROUP BY i.client_id
    ),
    paid_recently AS (
        SELECT p.client_id, COUNT(*) AS n
        FROM {t["payment"]} p
        JOIN scope s ON s.client_id = p.client_id
        WHERE p.received_on > %(since_60d)s AND p.received_on <= %(today)s AND p.method NOT IN ({non_cash})
        GROUP BY p.client_id
    ),
    facts AS (
        SELECT s.client_id, s.currency,
               COALESCE(h.settled, 0) AS settled, COALESCE(h.late, 0) AS late,
               COALESCE(h.days_sum, 0) AS days_sum, COALESCE(h.days_max, 0) AS days_max,
               COALESCE(o.n, 0) AS overdue_n, COALESCE(o.amount, 0) AS overdue_amount,
               CASE WHEN o.oldest_due IS NULL THEN 0 ELSE {t["oldest_days"]} END AS oldest_days,
               COALESCE(d.recent, 0) AS disputes_12m, COALESCE(d.open_n, 0) AS disputes_open,
               COALESCE(o.disputed, 0) AS disputed_invoices,
               COALESCE(m.broken, 0) AS broken_12m, COALESCE(m.partial, 0) AS partial_12m,
               COALESCE(m.kept, 0) AS kept_12m,
               COALESCE(pr.n, 0) AS payments_60d,
               COALESCE(ds.n, 0) AS disputed_settled,
               COALESCE(w.n, 0) AS written_off,
               COALESCE(k.attempts_recent, 0) AS contacts_90d,
               COALESCE(k.answers_recent, 0) + COALESCE(m.made_recently, 0) AS responses_90d,
               COALESCE(k.attempts_12m, 0) AS contacts_12m,
               COALESCE(k.answers_12m, 0) + COALESCE(m.made_12m, 0) AS responses_12m
        FROM scope s
        LEFT JOIN history h ON h.client_id = s.client_id
        LEFT JOIN overdue o ON o.client_id = s.client_id
        LEFT JOIN disputes d ON d.client_id = s.client_id
        LEFT JOIN promises m ON m.client_id = s.client_id
        LEFT JOIN paid_recently pr ON pr.client_id = s.client_id
        LEFT JOIN contacts k ON k.client_id = s.client_id
        LEFT JOIN disputed_settled ds ON ds.client_id = s.client_id
        LEFT JOIN written_off w ON w.client_id = s.client_id
    )
    SELECT f.client_id,
           CASE
             WHEN f.settled < {NEW_MIN_SETTLED} AND f.overdue_n = 0 AND f.disputes_open = 0
                  AND f.disputed_invoices = 0 THEN 'new'
             WHEN f.disputes_open > 0 OR f.disputed_invoices > 0
                  OR f.disputes_12m >= {CIRCUMSTANTIAL_MIN_DISPUTES}
                  OR (f.disputed_settled > 0
                      AND f.disputed_settled * 100 >= {CIRCUMSTANTIAL_MIN_DISPUTED_SHARE} * f.settled)
                  THEN 'circumstantial'
             WHEN (f.broken_12m + f.partial_12m >= {NEGLIGENT_MIN_BROKEN}
                   AND f.broken_12m + f.partial_12m > f.kept_12m)
                  OR (f.oldest_days > {NEGLIGENT_MIN_DAYS_OVERDUE} AND f.payments_60d = 0)
                  OR (f.overdue_n > 0 AND f.contacts_90d >= {NEGLIGENT_MIN_UNANSWERED} AND f.responses_90d = 0)
                  OR f.written_off > 0 THEN 'negligent'
             WHEN f.days_sum > {CHRONIC_MIN_AVG_DAYS} * f.settled
                  AND f.late * 100 > {CHRONIC_MIN_SHARE_LATE} * f.settled THEN 'chronic'
             WHEN f.late * 100 > {INTENTIONAL_MIN_SHARE_LATE} * f.settled THEN 'intentional'
             WHEN f.settled >= {GOOD_MIN_SETTLED}
                  AND f.late * 100 <= {GOOD_MAX_SHARE_LATE} * f.settled
                  AND f.days_sum <= {GOOD_MAX_AVG_DAYS} * f.settled
                  AND f.broken_12m + f.partial_12m = 0 THEN 'good'
             ELSE 'casual'
           END AS computed,
           {evidence} AS evidence,
           COALESCE(so.n, 0) AS offset_settled, so.med AS offset_median
    FROM facts f
    LEFT JOIN offsets so ON so.client_id = f.client_id
    """  # noqa: S608 - table names from model metadata and constants; values are parameters


def _compute_sql(scope: str, receivable: str) -> str:
    table = ClientProfile._meta.db_table
    norm = SettlementNorm._meta.db_table
    return f"""
    WITH q AS ({_classify_sql(scope, receivable)}),
    -- The settlement offsets the cash forecast standing at the start of ``today`` reads.
    -- (the segment's and the portfolio's medians of the day are stored first: compute_profiles).
    offsets AS (
        INSERT INTO {SettlementOffset._meta.db_table} (client_id, as_of, settled, median, days)
        SELECT q.client_id, %(today)s, own.n, own.med, {forecast.expected_offset_sql("own", "seg", "pf")}
        FROM q
        CROSS JOIN LATERAL (SELECT q.offset_settled AS n, q.offset_median AS med) own
        JOIN {Client._meta.db_table} c ON c.id = q.client_id
        LEFT JOIN (SELECT segment_id, settled AS n, median AS med FROM {norm}
                   WHERE segment_id IS NOT NULL AND as_of = %(today)s) seg ON seg.segment_id = c.segment_id
        LEFT JOIN (SELECT settled AS n, median AS med FROM {norm}
                   WHERE segment_id IS NULL AND as_of = %(today)s) pf ON true
        ON CONFLICT (client_id) DO UPDATE
            SET as_of = excluded.as_of, settled = excluded.settled, median = excluded.median,
                days = excluded.days)
    INSERT INTO {table} (client_id, computed, evidence, computed_at, override, override_reason)
    SELECT q.client_id, q.computed, q.evidence, %(now)s, '', '' FROM q
    ON CONFLICT (client_id) DO UPDATE
        SET computed = excluded.computed, evidence = excluded.evidence, computed_at = excluded.computed_at
    """  # noqa: S608 - table name from model metadata; values are parameters


def _effective_good_sql() -> str:
    """On the profile table's own columns: the effective profile is good."""
    return f"({effective_profile_sql(None)} = {sql_literal(Profile.GOOD)})"


# --- good-payer standing ------------------------------------------------------------------------


def _update_standing(*, client_ids: list[int] | None, today: dt.date, now: dt.datetime, by=None) -> tuple[int, int]:
    """Move the good-payer standing after profiles (or an override) changed. Returns
    (gained, lost). Losses get one task and one timeline entry each: the conditional UPDATE
    returns a client only to the run that flips it."""
    table = ClientProfile._meta.db_table
    params: dict = {"today": today}
    scope = _scope(client_ids, "client_id", params)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            UPDATE {table} SET good_payer_since = %(today)s, good_payer_lost_on = NULL
            WHERE {_effective_good_sql()}
              AND (good_payer_since IS NULL OR good_payer_lost_on IS NOT NULL){scope}
            """,  # noqa: S608 - table name from model metadata; values are parameters
            params,
        )
        gained = max(cur.rowcount, 0)
        cur.execute(
            f"""
            UPDATE {table} SET good_payer_lost_on = %(today)s
            WHERE NOT {_effective_good_sql()}
              AND good_payer_since IS NOT NULL AND good_payer_lost_on IS NULL{scope}
            RETURNING client_id
            """,  # noqa: S608 - table name from model metadata; values are parameters
            params,
        )
        lost = [row[0] for row in cur.fetchall()]
    if lost:
        _record_losses(lost, today=today, now=now, by=by)
    return gained, len(lost)


def _record_losses(client_ids: list[int], *, today: dt.date, now: dt.datetime, by=None) -> None:
    """One timeline entry and one task for the collector per client that lost the standing."""
    rows = list(ClientProfile.objects.filter(client_id__in=client_ids).select_related("client").order_by("client_id"))
    author = actor(by)
    with translation.override(settings.LANGUAGE_CODE):
        entries, tasks = [], []
        for row in rows:
            client = row.client
            name = client.trade_name or client.legal_name
            since = row.good_payer_since.isoformat() if row.good_payer_since else "—"
            entries.append(
                Interaction(
                    client=client,
                    kind=Interaction.Kind.SYSTEM,
                    direction=Interaction.Direction.INTERNAL,
                    **texts.columns("summary", texts.GOOD_PAYER_LOST(profile=texts.choice(Profile, row.effective))),
                    body=_(
                        "Era buen pagador desde el %(since)s. Avise al cliente de los beneficios que pierde y de "
                        "cómo recuperarlos."
                    )
                    % {"since": since},
                    author=author,
                    occurred_at=now,
                )
            )
            tasks.append(
                CollectorTask(
                    client=client,
                    kind=TaskKind.GOOD_PAYER_LOST,
                    **texts.columns("title", texts.GOOD_PAYER_LOST_TASK(name=name)),
                    assigned_to_id=client.collector_id,
                    due_on=today,
                    created_at=now,
                )
            )
    Interaction.objects.bulk_create(entries)
    CollectorTask.objects.bulk_create(tasks)


# --- the nightly job ----------------------------------------------------------------------------


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def _params(today: dt.date, **extra) -> dict:
    # The contact window: the last 90 days, today included.
    since_contact = today - dt.timedelta(days=NEGLIGENT_CONTACT_WINDOW_DAYS)
    return {
        "today": today,
        "today_text": today.isoformat(),
        "since_24m": months_ago(today, 24),
        "since_12m": months_ago(today, 12),
        "since_60d": today - dt.timedelta(days=NEGLIGENT_NO_PAYMENT_DAYS),
        # The cash forecast standing at the start of ``today`` reads these (its own window).
        "offset_since": today - dt.timedelta(days=forecast.HISTORY_DAYS),
        "since_contact": since_contact,
        # Timeline entries and write-offs carry a moment: the days above in the site's time zone.
        "until": _start_of(today + dt.timedelta(days=1)),
        "since_contact_at": _start_of(since_contact + dt.timedelta(days=1)),
        "since_12m_at": _start_of(months_ago(today, 12)),
        "since_24m_at": _start_of(months_ago(today, 24)),
        **extra,
    }


def profile_as_of(client_id: int, day: dt.date) -> tuple[str, dict]:
    """The profile and evidence ``client_id`` had at the close of ``day``, from the ledger as
    it was then (nothing stored; one query). For the client page's "as of" view."""
    params = _params(day)
    scope = _scope([client_id], "c.id", params)
    with connection.cursor() as cur:
        cur.execute(_classify_sql(scope, _receivable_sql(day, params, [client_id])), params)
        row = cur.fetchone()
    evidence = row[2] if isinstance(row[2], dict) else json.loads(row[2])
    return row[1], evidence


def compute_profiles(*, today: dt.date, client_ids=None, now: dt.datetime | None = None, standing: bool = True) -> dict:
    """Recompute the profile of every client (or of ``client_ids``) as of the close of
    ``today``, from the ledger as it was that day (a past day gives the profiles the clients
    had then: ``compute_profiles --as-of``). ``standing=False`` leaves the good-payer standing
    (its tasks and timeline entries) alone: the command does so for a past day.

    Returns ``{"today", "clients", "by_profile", "good_payer_gained", "good_payer_lost"}``."""
    now = now or clock.now()
    ids = None if client_ids is None else [int(pk) for pk in client_ids]
    params = _params(today, now=now)
    scope = _scope(ids, "c.id", params)
    sql = _compute_sql(scope, _receivable_sql(today, params, ids))
    with transaction.atomic():
        if ids is None:  # the medians the clients with few settled invoices take, first
            forecast_jobs.store_settlement_norms(as_of=today)
        with connection.cursor() as cur:
            cur.execute(sql, params)
            touched = max(cur.rowcount, 0)
        gained, lost = (0, 0)
        if standing:
            gained, lost = _update_standing(client_ids=ids, today=today, now=now)
        counts = ClientProfile.objects.all()
        if ids is not None:
            counts = counts.filter(client_id__in=ids)
        by_profile = dict(counts.values_list("computed").annotate(n=Count("pk")).values_list("computed", "n"))
    return {
        "today": today.isoformat(),
        "clients": touched,
        "by_profile": dict(sorted(by_profile.items())),
        "good_payer_gained": gained,
        "good_payer_lost": lost,
    }
