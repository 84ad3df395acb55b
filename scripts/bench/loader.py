# ruff: noqa: S608 - only table and column names from this module are interpolated into SQL
"""Bulk loader for the benchmarks: a believable collections portfolio at COPY speed.

Rows are generated in Python, chunk by chunk of clients, and streamed into PostgreSQL with
``COPY ... FROM STDIN`` (psycopg2 ``copy_expert``), never one ORM save per row: the ledger's
rows through the ledger's bulk writer (``accounts.services_bulk.ledger_bulk_insert``, shared
with imports and ``seed_demo``, which refuses a chunk breaking an invariant of the services),
the collections rows (disputes, promises, tasks, pauses) directly. The data keeps every
invariant of the ledger that the services and the database keep:

- ``Invoice.amount_paid`` equals the sum of its allocations, and ``status`` agrees with it
  (``open`` = nothing paid, ``partially_paid``, ``paid`` = settled) unless it is disputed,
  written off or cancelled; ``open_balance`` is a generated column and is never written;
- a payment's ``unallocated`` is its amount minus its allocations (overpayments leave credit);
- invoice numbers, payment references and tax ids are unique; choices, currencies, countries
  and time zones are valid; due dates are on or after issue dates; nothing is in the future;
- the timeline (``accounts_interaction``) is only inserted into (append-only by trigger);
- open disputes hold exactly the ``disputed`` invoices; open promises list open invoices and
  have one pending installment; paused clients have a reason.

The data: each client has a hidden payer profile (docs/domain.md#late-payers: good, casual, intentional,
negligent, circumstantial, chronic) that decides when its invoices get paid, so every aging
bucket is populated, old invoices are mostly paid, and some clients carry disputes, open
promises, pauses and open tasks. Client 0 has many invoices (the 360° page benchmark) and
the first collector holds a large share of the portfolio (the worklist benchmark).

Deterministic: one ``random.Random(seed)`` and ``today``; ids start after the tables' current
maximum, so the same code loads the benchmark database and a test database.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction

from accounts import services_bulk
from accounts.services_bulk import (
    AllocationRow,
    ClientRow,
    ContactRow,
    InteractionRow,
    InvoiceRow,
    LedgerRows,
    PaymentRow,
)

N_COLLECTORS = 20
BIG_COLLECTOR_SHARE = 0.15  # the first collector's share of the clients
CHUNK_CLIENTS = 5000
PASSWORD = "bench-password"  # noqa: S105 - throw-away users of the benchmark database

PROFILES = (
    # name, weight, never-pay probability, (min, max) days paid after the due date
    ("good", 0.40, 0.005, (-6, 4)),
    ("casual", 0.18, 0.02, (0, 25)),
    ("intentional", 0.12, 0.04, (10, 50)),
    ("negligent", 0.08, 0.35, (30, 160)),
    ("circumstantial", 0.08, 0.10, (5, 70)),
    ("chronic", 0.14, 0.15, (30, 130)),
)
COUNTRIES = (
    # country, currency, time zones, language weights (es share), weight
    ("MX", "MXN", ("America/Mexico_City", "America/Monterrey", "America/Tijuana"), 1.0, 0.85),
    ("ES", "EUR", ("Europe/Madrid",), 1.0, 0.08),
    ("US", "USD", ("America/New_York", "America/Chicago"), 0.5, 0.07),
)
SEGMENTS = (("cuenta-clave", 0.10), ("regular", 0.55), ("esporadico", 0.25), ("alto-riesgo", 0.10))
NAMES = (
    "Abarrotes",
    "Comercializadora",
    "Distribuidora",
    "Ferretería",
    "Grupo",
    "Industrias",
    "Logística",
    "Materiales",
    "Servicios",
    "Transportes",
    "Constructora",
    "Farmacias",
)
PLACES = ("del Norte", "del Bajío", "Peninsular", "del Pacífico", "Central", "del Golfo", "Ibérica", "Unidos")
METHODS = ("transfer", "transfer", "transfer", "transfer", "cash", "card", "check", "direct_debit")
CALL_OUTCOMES = ("reached", "no_answer", "no_answer", "left_message", "promise", "refused", "reached")
CALL_SUMMARIES = {
    "reached": "Llamada: se habló con el cliente",
    "no_answer": "Llamada: no contesta",
    "left_message": "Llamada: se dejó recado",
    "promise": "Llamada: promete pagar",
    "refused": "Llamada: se niega a pagar",
}
REASONS = ("forgot", "cash_flow", "waiting", "process", "not_received", "other", "")

# The ledger's tables, written by ledger_bulk_insert; ids are taken here (after the tables'
# current maximum) so the collections rows can refer to them before the chunk is written.
LEDGER_TABLES = {
    "accounts_client": "clients",
    "accounts_contact": "contacts",
    "accounts_invoice": "invoices",
    "accounts_payment": "payments",
    "accounts_paymentallocation": "allocations",
    "accounts_interaction": "interactions",
}
# The collections' tables, written here with COPY.
TABLES = {
    "cobranza_commitment": (
        "id kind status currency total made_on grace_days missed_allowed missed_count paid_amount notes created_at "
        "resolved_on approved_by_id client_id contact_id created_by_id"
    ),
    "cobranza_commitment_invoices": "id commitment_id invoice_id",
    "cobranza_installment": "id number due_on amount status covered judged_on reminded_at commitment_id",
    "cobranza_dispute": (
        "id reason description status opened_on resolution resolution_amount resolution_notes resolved_on "
        "client_id opened_by_id owner_id resolved_by_id"
    ),
    "cobranza_dispute_invoices": "id dispute_id invoice_id",
    "cobranza_collectortask": (
        "id kind title due_on status created_at completed_at assigned_to_id client_id completed_by_id notice_id "
        "commitment_id dispute_id"
    ),
    "cobranza_clientdunning": "id paused_until pause_reason updated_at client_id updated_by_id policy_id",
}
N = r"\N"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


@dataclass
class Staff:
    manager: object
    admin: object
    collectors: list

    @property
    def big_collector(self):
        return self.collectors[0]


def ensure_staff() -> Staff:
    """The benchmark's staff users (idempotent): a manager, an admin and the collectors."""
    User = get_user_model()
    groups = {g.name: g for g in Group.objects.all()}

    def user(username: str, group: str, first: str, last: str):
        u, created = User.objects.get_or_create(
            username=username, defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"}
        )
        if created:
            u.set_password(PASSWORD)
            u.save(update_fields=["password"])
        u.groups.add(groups[group])
        return u

    manager = user("bench_gerente", "Gerente", "Gabriela", "Garza")
    admin = user("bench_admin", "Administrador", "Adriana", "Villarreal")
    collectors = [user(f"bench_gestor{i:02d}", "Gestor de cobranza", "Gestor", f"{i:02d}") for i in range(N_COLLECTORS)]
    return Staff(manager=manager, admin=admin, collectors=collectors)


@dataclass
class LoadResult:
    clients: int = 0
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    generate_seconds: float = 0.0
    copy_seconds: float = 0.0
    big_client_id: int = 0
    first_client_id: int = 0


class _Ids:
    """Next id per table, starting after what the table already holds."""

    def __init__(self, cur):
        self.next = {}
        for table in [*LEDGER_TABLES, *TABLES]:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            self.next[table] = cur.fetchone()[0] + 1

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


def _invoice_counts(rng: random.Random, n_clients: int, n_invoices: int) -> list[int]:
    """Invoices per client summing to ``n_invoices``: client 0 has many (the 360° page), the
    rest from a skewed distribution (a few large accounts, many small ones)."""
    big = min(max(n_invoices // 2000, 20), 500) if n_clients > 1 else n_invoices
    counts = [1] * n_clients
    counts[0] = big
    rest = n_invoices - big - (n_clients - 1)
    if rest > 0 and n_clients > 1:
        weights = [rng.paretovariate(1.6) for _ in range(n_clients - 1)]
        total = sum(weights)
        extra = [int(rest * w / total) for w in weights]
        for i, e in enumerate(extra, start=1):
            counts[i] += e
        leftover = n_invoices - sum(counts)
        for i in rng.sample(range(1, n_clients), min(abs(leftover), n_clients - 1)):
            counts[i] += 1 if leftover > 0 else 0
        counts[0] += n_invoices - sum(counts)
    return counts


def _pick(rng: random.Random, pairs, weight_at: int = 1):
    x = rng.random()
    acc = 0.0
    for item in pairs:
        acc += item[weight_at]
        if x < acc:
            return item
    return pairs[-1]


class Generator:
    def __init__(self, *, rng, ids: _Ids, today: dt.date, staff: Staff, segments: dict, now: dt.datetime):
        self.rng = rng
        self.ids = ids
        self.today = today
        self.staff = staff
        self.segments = segments
        self.now = now
        self.ledger = LedgerRows()
        self.rows = {t: [] for t in TABLES}
        self.big_client_id = 0

    def add(self, table: str, *values) -> None:
        self.rows[table].append("\t".join(N if v is None else str(v) for v in values))

    def flush(self, cur) -> dict:
        # The history ends yesterday: nothing after the midnight that starts today (UTC).
        as_of = dt.datetime.combine(self.today, dt.time(0), tzinfo=dt.UTC)
        written = services_bulk.ledger_bulk_insert(rows=self.ledger, as_of=as_of)
        self.ledger = LedgerRows()
        copied = {table: written[name] for table, name in LEDGER_TABLES.items()}
        copied["accounts_interaction_invoices"] = written["interaction_invoices"]
        for table, lines in self.rows.items():
            if not lines:
                continue
            buf = io.StringIO("\n".join(lines) + "\n")
            cols = ", ".join(TABLES[table].split())
            cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN", buf)
            copied[table] = len(lines)
            lines.clear()
        return copied

    def _ts(self, day: dt.date, hour: int | None = None) -> dt.datetime:
        h = hour if hour is not None else self.rng.randint(9, 18)
        return dt.datetime(day.year, day.month, day.day, h, self.rng.randint(0, 59), tzinfo=dt.UTC)

    def client(self, index: int, n_invoices: int) -> None:
        rng, today, add, take, ledger = self.rng, self.today, self.add, self.ids.take, self.ledger
        cid = take("accounts_client")
        if index == 0:
            self.big_client_id = cid
        profile = _pick(rng, PROFILES)
        pname, _w, never, (dmin, dmax) = profile
        country, currency, zones, es_share, _cw = _pick(rng, COUNTRIES, -1)
        segment = self.segments[_pick(rng, SEGMENTS)[0]]
        collectors = self.staff.collectors
        r = rng.random()
        if r < BIG_COLLECTOR_SHARE or index == 0:
            collector = collectors[0]
        elif r < 0.95:
            collector = collectors[rng.randrange(1, len(collectors))]
        else:
            collector = None
        name = f"{rng.choice(NAMES)} {rng.choice(PLACES)} {cid}"
        terms = rng.choice((15, 30, 30, 30, 45, 60))
        language = "es" if rng.random() < es_share else "en"
        since = today - dt.timedelta(days=rng.randint(400, 4000))
        # invoices ----------------------------------------------------------------------------
        overdue_open = []  # (invoice id, balance cents, due date)
        disputed = []
        invoice_rows = {}
        max_overdue = 0
        for k in range(n_invoices):
            iid = take("accounts_invoice")
            issue = today - dt.timedelta(days=rng.randint(1, 540))
            due = issue + dt.timedelta(days=terms)
            amount = int(rng.lognormvariate(10.5, 1.0)) + 100  # cents: ~300 .. 100,000 units
            paid = 0
            status = "open"
            pay_day = None
            if rng.random() < never:
                pay_day = None
            else:
                pay_day = max(issue, due + dt.timedelta(days=rng.randint(dmin, dmax)))
                if pay_day >= today:
                    pay_day = None
            partial_day = None
            if pay_day is not None:
                paid, status = amount, "paid"
            elif due < today and rng.random() < 0.12:
                # part paid somewhere between issue and yesterday
                span = (today - issue).days - 1
                partial_day = issue + dt.timedelta(days=rng.randint(0, max(span, 0)))
                paid = max(1, int(amount * rng.uniform(0.2, 0.8)))
                status = "partially_paid"
            days_over = (today - due).days
            if status in ("open", "partially_paid") and days_over > 0:
                x = rng.random()
                if (pname == "circumstantial" and x < 0.30) or x < 0.01:
                    status = "disputed"
                    disputed.append(iid)
                elif pname == "negligent" and days_over > 300 and x < 0.5 and status == "open":
                    status = "written_off"
                elif x > 0.995 and status == "open":
                    status = "cancelled"
            if status in ("open", "partially_paid") and days_over > 0:
                overdue_open.append((iid, amount - paid, due))
                max_overdue = max(max_overdue, days_over)
            created = self._ts(issue, 8)
            invoice = InvoiceRow(
                id=iid,
                client=cid,
                number=f"B{cid}-{k + 1:04d}",
                issue_date=issue,
                due_date=due,
                currency=currency,
                amount=_decimal(amount),
                amount_paid=_decimal(paid),
                status=status,
                description="Venta de mercancía" if k % 3 else "Servicios del mes",
                created_at=created,
                updated_at=created,
            )
            ledger.invoices.append(invoice)
            invoice_rows[iid] = invoice
            for day, cents in ((pay_day, paid if pay_day else 0), (partial_day, paid if partial_day else 0)):
                if day is None or cents == 0:
                    continue
                pid = take("accounts_payment")
                extra = rng.randint(1, 5000) if rng.random() < 0.01 else 0
                method = rng.choice(METHODS)
                ref = f"BREF{pid}" if rng.random() < 0.7 else ""
                ts = self._ts(day)
                author = collector.pk if collector and rng.random() < 0.3 else None
                payment = PaymentRow(
                    id=pid,
                    client=cid,
                    received_on=day,
                    amount=_decimal(cents + extra),
                    currency=currency,
                    method=method,
                    reference=ref,
                    unallocated=_decimal(extra),
                    recorded_by_id=author,
                    created_at=ts,
                )
                ledger.payments.append(payment)
                ledger.allocations.append(
                    AllocationRow(
                        id=take("accounts_paymentallocation"),
                        payment=payment,
                        invoice=invoice,
                        amount=_decimal(cents),
                        created_at=ts,
                    )
                )
        status = "in_collection" if max_overdue > 60 and rng.random() < 0.4 else "active"
        ledger.clients.append(
            ClientRow(
                id=cid,
                legal_name=name,
                trade_name=name.split(" ")[0] + f" {cid}" if rng.random() < 0.3 else "",
                tax_id=f"BEN{cid:010d}",
                kind="company" if rng.random() < 0.8 else "person",
                credit_limit=_decimal(rng.choice((0, 5_000_000, 10_000_000, 50_000_000))),
                payment_terms_days=terms,
                currency=currency,
                language=language,
                time_zone=rng.choice(zones),
                country=country,
                client_since=since,
                status=status,
                address=f"Calle {rng.randint(1, 999)}, Col. Centro",
                created_at=self.now,
                updated_at=self.now,
                collector_id=collector.pk if collector else None,
                segment_id=segment,
            )
        )
        # contacts ----------------------------------------------------------------------------
        billing = take("accounts_contact")
        billing_row = ContactRow(
            id=billing,
            client=cid,
            role="billing",
            name=f"Cuentas por pagar {cid}",
            position="Tesorería",
            email=f"pagos{cid}@cliente{cid % 97}.example.com",
            phone=f"+52 55 {cid % 10000:04d} {rng.randint(0, 9999):04d}",
            preferred_channel="email",
            opt_out_email=rng.random() < 0.01,
            created_at=self.now,
        )
        ledger.contacts.append(billing_row)
        if rng.random() < 0.6:
            ledger.contacts.append(
                ContactRow(
                    id=take("accounts_contact"),
                    client=cid,
                    role="primary",
                    name=f"Dirección {cid}",
                    position="Director general",
                    email=f"direccion{cid}@cliente{cid % 97}.example.com",
                    phone=f"+52 81 {cid % 10000:04d} 0000",
                    whatsapp=f"+52 81 {cid % 10000:04d} 0000",
                    preferred_channel="phone",
                    created_at=self.now,
                )
            )
        if rng.random() < 0.1:
            ledger.contacts.append(
                ContactRow(
                    id=take("accounts_contact"),
                    client=cid,
                    role="guarantor",
                    name=f"Aval {cid}",
                    phone=f"+52 33 {cid % 10000:04d} 1111",
                    preferred_channel="phone",
                    created_at=self.now,
                )
            )
        # timeline ----------------------------------------------------------------------------
        author = collector.pk if collector else None
        for iid, _bal, due in overdue_open[:3]:
            day = min(today - dt.timedelta(days=1), due + dt.timedelta(days=rng.randint(1, 20)))
            outcome = rng.choice(CALL_OUTCOMES)
            next_on = today + dt.timedelta(days=rng.randint(-3, 7)) if rng.random() < 0.2 else None
            ts = self._ts(day)
            ledger.interactions.append(
                InteractionRow(
                    id=take("accounts_interaction"),
                    client=cid,
                    kind="call",
                    summary=CALL_SUMMARIES[outcome],
                    direction="outbound",
                    outcome=outcome,
                    contact=billing_row,
                    body="Se le recordó el saldo vencido.",
                    author_id=author,
                    occurred_at=ts,
                    next_action_on=next_on,
                    created_at=ts,
                    nonpayment_reason=rng.choice(REASONS) if outcome in ("reached", "promise", "refused") else "",
                    invoices=(invoice_rows[iid],),
                )
            )
        if rng.random() < 0.5:
            ts = self._ts(today - dt.timedelta(days=rng.randint(1, 200)))
            ledger.interactions.append(
                InteractionRow(
                    id=take("accounts_interaction"),
                    client=cid,
                    kind="note",
                    summary="Nota: cliente revisado",
                    direction="internal",
                    author_id=author,
                    occurred_at=ts,
                    created_at=ts,
                )
            )
        # disputes: one open dispute per client holding its disputed invoices -----------------
        if disputed:
            did = take("cobranza_dispute")
            opened = today - dt.timedelta(days=rng.randint(1, 60))
            add(
                "cobranza_dispute",
                did,
                rng.choice(("product", "service", "price", "delivery")),
                "El cliente reclama la entrega.",
                "open",
                opened,
                "",
                "0.00",
                "",
                None,
                cid,
                author,
                author,
                None,
            )
            for iid in disputed:
                add("cobranza_dispute_invoices", take("cobranza_dispute_invoices"), did, iid)
        # an open promise on one or two overdue invoices ---------------------------------------
        if overdue_open and rng.random() < 0.12:
            chosen = overdue_open[: rng.randint(1, 2)]
            total = sum(b for _i, b, _d in chosen)
            mid = take("cobranza_commitment")
            made = today - dt.timedelta(days=rng.randint(1, 7))
            add(
                "cobranza_commitment",
                mid,
                "promise",
                "open",
                currency,
                _money(total),
                made,
                0,
                0,
                0,
                "0.00",
                "",
                self._ts(made),
                None,
                None,
                cid,
                billing,
                author,
            )
            for iid, _b, _d in chosen:
                add("cobranza_commitment_invoices", take("cobranza_commitment_invoices"), mid, iid)
            add(
                "cobranza_installment",
                take("cobranza_installment"),
                1,
                today + dt.timedelta(days=rng.randint(1, 14)),
                _money(total),
                "pending",
                "0.00",
                None,
                None,
                mid,
            )
        # an open task for the collector --------------------------------------------------------
        if overdue_open and rng.random() < 0.05:
            add(
                "cobranza_collectortask",
                take("cobranza_collectortask"),
                "follow_up",
                "Seguimiento acordado",
                today + dt.timedelta(days=rng.randint(-5, 3)),
                "open",
                self.now,
                None,
                author,
                cid,
                None,
                None,
                None,
                None,
            )
        if rng.random() < 0.01:
            add(
                "cobranza_clientdunning",
                take("cobranza_clientdunning"),
                today + dt.timedelta(days=rng.randint(5, 30)),
                "Negociación en curso con dirección",
                self.now,
                cid,
                None,
                None,
            )


def load(*, n_clients: int, n_invoices: int, today: dt.date, seed: int = 7, progress=None) -> LoadResult:
    """Load the portfolio into the current database (``django.db.connection``)."""
    from accounts.models import Segment

    started = time.perf_counter()
    rng = random.Random(seed)
    staff = ensure_staff()
    segments = dict(Segment.objects.values_list("code", "pk"))
    missing = {code for code, _w in SEGMENTS} - set(segments)
    if missing:
        raise RuntimeError(f"reference segments missing: {sorted(missing)} (run migrate)")
    counts = _invoice_counts(rng, n_clients, n_invoices)
    result = LoadResult(clients=n_clients)
    totals: dict[str, int] = {}
    now = dt.datetime.combine(today, dt.time(6), tzinfo=dt.UTC)
    with transaction.atomic(), connection.cursor() as cur:
        ids = _Ids(cur)
        result.first_client_id = ids.next["accounts_client"]
        gen = Generator(rng=rng, ids=ids, today=today, staff=staff, segments=segments, now=now)
        for start in range(0, n_clients, CHUNK_CLIENTS):
            t0 = time.perf_counter()
            for index in range(start, min(start + CHUNK_CLIENTS, n_clients)):
                gen.client(index, counts[index])
            t1 = time.perf_counter()
            for table, n in gen.flush(cur).items():
                totals[table] = totals.get(table, 0) + n
            t2 = time.perf_counter()
            result.generate_seconds += t1 - t0
            result.copy_seconds += t2 - t1
            if progress:
                progress(f"  {min(start + CHUNK_CLIENTS, n_clients):,}/{n_clients:,} clients loaded")
        # The ids were taken here, not from the sequences: move them past what was loaded.
        for table in [*LEDGER_TABLES, *TABLES]:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(MAX(id), 1)) FROM {table}")
    result.big_client_id = gen.big_client_id
    result.counts = totals
    result.seconds = time.perf_counter() - started
    return result


def analyze() -> None:
    """VACUUM ANALYZE what was loaded: the steady state autovacuum keeps a production database
    in (planner statistics, and a visibility map so covering indexes serve index-only scans).
    Measured right after a bulk COPY, every index-only scan would read the heap instead.

    The whole database, not only the tables the loader writes: the nightly jobs and the history
    fill others (notice items, profiles, snapshots, settlement offsets) that a planner without
    statistics would guess about — e.g. ~2,300 notice items per invoice instead of 4.5."""
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE)")
