"""Reads with logic: who sees which clients, balances, aging, the timeline.

Aging buckets, collectible invoices and days overdue have exactly one definition
(``accounts.rules``), used by the client list filter, the client page and the portfolio
summary alike. Every function here costs a fixed number of queries, whatever the number of
rows (tests assert it).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    IntegerField,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from accounts import clock, rules

from .models import MONEY, ZERO, Client, Contact, ContactRole, Interaction, Invoice, Payment, PaymentAllocation
from .roles import GROUP_NAMES, Role, is_collector, is_manager
from .rules import (  # noqa: F401 - re-exported: the rules' long-standing import path
    BUCKETS,
    BUCKETS_BY_CODE,
    COLLECTIBLE,
    OVERDUE_BUCKETS,
    Bucket,
    aging_bucket_expr,
    bucket_for_days,
    days_late,
    due_range,
    overdue_q,
)

# Its former name (the demo's tests import it from here).
aging_bucket = aging_bucket_expr


# --- visibility ------------------------------------------------------------------------


def clients_visible_to(user) -> QuerySet[Client]:
    """Managers and administrators see every client; a collector sees their own."""
    if is_manager(user):
        return Client.objects.all()
    if is_collector(user):
        return Client.objects.filter(collector=user)
    return Client.objects.none()


# --- client list -----------------------------------------------------------------------

SORTS = {
    "name": ("legal_name", "id"),
    "-name": ("-legal_name", "-id"),
    "-balance": ("-open_balance_total", "legal_name", "id"),
    "balance": ("open_balance_total", "legal_name", "id"),
    "-overdue": ("-overdue_total", "legal_name", "id"),
    "overdue": ("overdue_total", "legal_name", "id"),
    "oldest": ("oldest_due", "legal_name", "id"),  # most days overdue first
    "-oldest": ("-oldest_due", "legal_name", "id"),
    "segment": ("segment__position", "legal_name", "id"),
    # With a search: the best match first (client_search_rank_sql).
    "relevance": ("-search_rank", "legal_name", "id"),
}
RELEVANCE = "relevance"


def _client_sum(field_filter: Q) -> Subquery:
    """Sum of open balances of a client's collectible invoices in the client's currency."""
    rows = (
        Invoice.objects.filter(COLLECTIBLE, field_filter, client=OuterRef("pk"), currency=OuterRef("currency"))
        .order_by()
        .values("client")
        .annotate(total=Sum("open_balance"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=DecimalField(**MONEY)), Value(ZERO), output_field=DecimalField(**MONEY))


def with_balances(qs: QuerySet[Client], today: dt.date) -> QuerySet[Client]:
    oldest = (
        Invoice.objects.filter(COLLECTIBLE, client=OuterRef("pk"))
        .order_by()
        .values("client")
        .annotate(d=Min("due_date"))
        .values("d")
    )
    other_currency = Invoice.objects.filter(COLLECTIBLE, client=OuterRef("pk")).exclude(currency=OuterRef("currency"))
    return qs.annotate(
        open_balance_total=_client_sum(Q()),
        overdue_total=_client_sum(overdue_q(today)),
        oldest_due=Subquery(oldest),
        has_other_currency=Exists(other_currency),
    )


# --- search (docs/domain.md#search) ---------------------------------------------------------

# Substring and typo-tolerant matches need three characters (a trigram); shorter text matches
# names and tax ids only.
SEARCH_MIN_CHARS = 3
# Phone numbers match on their digits: at least this many.
SEARCH_MIN_DIGITS = 4
# The phone and WhatsApp numbers of a contact as one string of digits ("/" between them), the
# expression the contact's trigram index is built on (accounts.models.Contact).
CONTACT_DIGITS_SQL = "regexp_replace(({alias}.phone || '/' || {alias}.whatsapp), '[^0-9/]', '', 'g')"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def client_search_sql(q: str) -> tuple[str, list]:
    """``(sql, params)``: the ids of the clients ``q`` finds — any part of the name or trade
    name, a name with a typo (trigram word similarity), the tax id or its beginning, any part of
    an invoice number, a contact's email, any run of digits of a contact's phone or WhatsApp.

    Each branch reads its trigram index; ``UNION`` keeps each client once. The name conditions
    stay one ``OR`` (one bitmap scan of the client table): a row that matches a cheap
    ``ILIKE`` skips the typo-tolerant test (~5 µs a row), which a branch of its own would run on
    every match of a broad word (at 100,000 clients, «Ferreter»: 75 ms instead of 100 ms)."""
    q = q.strip()
    like = _like(q)
    prefix = _like(q)[1:]
    client, invoice, contact = Client._meta.db_table, Invoice._meta.db_table, Contact._meta.db_table
    # Table names and constants only; the values are parameters.
    branches: list[str] = []
    params: list = []
    if len(q) >= SEARCH_MIN_CHARS:
        branches.append(
            f"SELECT c.id FROM {client} c WHERE c.legal_name ILIKE %s OR c.trade_name ILIKE %s "  # noqa: S608
            "OR c.tax_id ILIKE %s OR c.legal_name %%> %s OR c.trade_name %%> %s"
        )
        params += [like, like, prefix, q, q]
        branches.append(f"SELECT i.client_id FROM {invoice} i WHERE i.number ILIKE %s")  # noqa: S608
        branches.append(f"SELECT ct.client_id FROM {contact} ct WHERE ct.email ILIKE %s")  # noqa: S608
        params += [like, like]
    else:
        # Too short for a trigram: no index helps, so one scan of the names.
        branches.append(
            f"SELECT c.id FROM {client} c "  # noqa: S608
            "WHERE c.legal_name ILIKE %s OR c.trade_name ILIKE %s OR c.tax_id ILIKE %s"
        )
        params += [like, like, prefix]
    digits = re.sub(r"\D", "", q)
    if len(digits) >= SEARCH_MIN_DIGITS:
        digits_sql = CONTACT_DIGITS_SQL.format(alias="ct")
        branches.append(f"SELECT ct.client_id FROM {contact} ct WHERE {digits_sql} LIKE %s")  # noqa: S608
        params.append(f"%{digits}%")
    return " UNION ".join(branches), params


def client_search_rank_sql(q: str) -> tuple[str, list]:
    """``(sql, params)``: how well ``q`` matches a client row (``accounts_client``), highest
    first: the exact tax id or invoice number, a name that starts with it, then the trigram
    word similarity of the name (0 for clients found by part of an invoice, an email or a
    phone)."""
    q = q.strip()
    table = Client._meta.db_table
    exact_sql, exact_params = client_search_exact_sql(q)
    prefix_sql, prefix_params = client_search_prefix_sql(q)
    # Table names only; the values are parameters.
    sql = (
        f"CASE WHEN {exact_sql} THEN 3 "
        f"WHEN {prefix_sql} THEN 2 "
        f"ELSE GREATEST(word_similarity(%s, {table}.legal_name), "
        f"CASE WHEN {table}.trade_name <> '' THEN word_similarity(%s, {table}.trade_name) ELSE 0 END) END"
    )
    return sql, [*exact_params, *prefix_params, q, q]


def client_search_exact_sql(q: str) -> tuple[str, list]:
    """``(sql, params)``: a condition on a client row (``accounts_client``): ``q`` is its
    exact tax id or the exact number of one of its invoices, whatever the case — the best match
    there is. Both arms can be index conditions, so the condition can stand alone with a
    ``LIMIT``: the tax id through the trigram index (``ILIKE`` without wildcards), the invoice
    through ``id = ANY(ARRAY(…))``, read once per statement on the ``UPPER(number)`` index (not
    once per ranked row, nor a scan of every client)."""
    q = q.strip()
    table = Client._meta.db_table
    invoices = Invoice._meta.db_table
    # Table names only; the values are parameters.
    sql = (
        f"({table}.tax_id ILIKE %s "  # noqa: S608
        f"OR {table}.id = ANY(ARRAY(SELECT i.client_id FROM {invoices} i WHERE UPPER(i.number) = UPPER(%s))))"
    )
    return sql, [_like(q)[1:-1], q]


def client_search_prefix_sql(q: str) -> tuple[str, list]:
    """``(sql, params)``: a condition on a client row: its legal or trade name starts with
    ``q`` (the second-best match; a name that starts with the text also contains it, so such a
    row is always one ``client_search_sql`` finds)."""
    table = Client._meta.db_table
    prefix = _like(q.strip())[1:]
    return f"({table}.legal_name ILIKE %s OR {table}.trade_name ILIKE %s)", [prefix, prefix]


def client_search_q(q: str) -> RawSQL:
    """The clients ``q`` finds, as a filter on a Client queryset: ``id = ANY(ARRAY(…))`` reads
    the matches first and then their rows by primary key (``id IN (…)`` was planned as a hash
    join over a scan of every client)."""
    sql, params = client_search_sql(q)
    table = Client._meta.db_table
    return RawSQL(f'"{table}"."id" = ANY(ARRAY({sql}))', params, output_field=BooleanField())  # noqa: S611 - table names and constants; values are parameters


class RankedClients:
    """The clients a search found, best match first, as the paginator reads them: the ids of
    every match are ranked in one statement (their number is the count), and the rows of a page
    — with their balances — are read by id, in that order."""

    def __init__(self, ids: list[int], rows: QuerySet[Client]):
        self.ids = ids
        self.rows = rows

    def count(self) -> int:
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self[index : index + 1 if index != -1 else None][0]
        ids = self.ids[index]
        by_id = {c.pk: c for c in self.rows.filter(pk__in=ids)} if ids else {}
        return [by_id[pk] for pk in ids if pk in by_id]

    def __iter__(self):
        return iter(self[:])

    def get(self) -> Client:
        (only,) = self[:]
        return only


@dataclass
class SearchHit:
    """What a search found for one client besides its name: invoices, contacts."""

    invoices: list[str]
    contacts: list[str]


def search_hits(q: str, client_ids: list[int]) -> dict[int, SearchHit]:
    """For the clients of a page: the invoice numbers and contacts ``q`` matched (at most three
    of each per client; 2 queries, whatever the rows)."""
    q = q.strip()
    hits: dict[int, SearchHit] = {}
    if not client_ids or len(q) < SEARCH_MIN_CHARS:
        return hits
    numbers = (
        Invoice.objects.filter(client_id__in=client_ids, number__icontains=q)
        .order_by("client_id", "number")
        .values_list("client_id", "number")
    )
    for client_id, number in numbers:
        hit = hits.setdefault(client_id, SearchHit([], []))
        if len(hit.invoices) < 3:
            hit.invoices.append(number)
    digits = re.sub(r"\D", "", q)
    matched = Q(email__icontains=q)
    contacts = Contact.objects.filter(client_id__in=client_ids)
    if len(digits) >= SEARCH_MIN_DIGITS:
        sql = CONTACT_DIGITS_SQL.format(alias=Contact._meta.db_table)
        contacts = contacts.alias(phone_digits=RawSQL(sql, [], output_field=CharField()))  # noqa: S611 - table names and constants; values are parameters
        matched |= Q(phone_digits__contains=digits)
    contacts = contacts.filter(matched).order_by("client_id", "name").values_list("client_id", "name", "email", "phone")
    for client_id, name, email, phone in contacts:
        hit = hits.setdefault(client_id, SearchHit([], []))
        if len(hit.contacts) < 3:
            hit.contacts.append(" · ".join(v for v in (name, email, phone) if v))
    return hits


# The header box's suggestions (docs/domain.md#search): a few matches while the collector types.
SUGGESTIONS = 8
SUGGEST_MIN_CHARS = 2
# The suggestions' typo tolerance, tried first: pg_trgm's word similarity of at least this
# (the list's is pg_trgm's default, 0.6). A one-letter typo in a name scores about 0.75-0.8.
SUGGEST_WORD_SIMILARITY = 0.75


def client_suggestions(
    *, user, q: str, limit: int = SUGGESTIONS, similarity: float | None = SUGGEST_WORD_SIMILARITY
) -> list[Client]:
    """The best few clients ``q`` finds, for the header box as the collector types: the list's
    own search (``client_search_sql``) and rank (``client_search_rank_sql``), in the list's
    order, without filters, balances or a count. Each client carries ``search_hit`` (the
    invoices or contacts matched, ``search_hits``).

    It stops early when it can (docs/domain.md#search):

    1. the exact tax id or invoice number and the names that start with ``q`` (the two best
       ranks) are read first, with a ``LIMIT`` and no ``ORDER BY``: a broad word that starts
       thousands of names stops after ``limit`` of them (not the alphabetically first ones).
       Two characters (too short for a trigram) suggest only names that start with them;
    2. otherwise every match is ranked, first with a stricter typo tolerance (``similarity``):
       a name with a typo that is like a thousand others (same words but one) is found without
       ranking all of them; the list's own tolerance only when that finds nothing.

    2 to 6 queries (the stricter tolerance: a savepoint and ``set_config``)."""
    q = (q or "").strip()
    if len(q) < SUGGEST_MIN_CHARS:
        return []
    visible = clients_visible_to(user).only("id", "legal_name", "trade_name", "tax_id")
    rank_sql, rank_params = client_search_rank_sql(q)
    rank = RawSQL(rank_sql, rank_params)  # noqa: S611 - table names and constants; values are parameters
    top_sql, top_params = client_search_prefix_sql(q)
    if len(q) >= SEARCH_MIN_CHARS:
        exact_sql, exact_params = client_search_exact_sql(q)
        top_sql, top_params = f"({exact_sql} OR {top_sql})", [*exact_params, *top_params]
    top = RawSQL(top_sql, top_params, output_field=BooleanField())  # noqa: S611 - table names and constants; values are parameters
    # No ORDER BY: the bitmap heap scan stops after ``limit`` rows.
    ids = list(visible.filter(top).order_by().values_list("id", flat=True)[:limit])
    if len(ids) >= limit or len(q) < SEARCH_MIN_CHARS:
        # Enough of the two best ranks; or too short for a trigram, when the rest of the list's
        # matches (any part of a name) would be a scan of every client at each keystroke.
        ranked = visible.filter(pk__in=ids).annotate(search_rank=rank).order_by(*SORTS[RELEVANCE])
        clients = list(ranked)
    else:
        ranked = visible.filter(client_search_q(q)).annotate(search_rank=rank).order_by(*SORTS[RELEVANCE])[:limit]
        clients = _with_word_similarity(ranked, similarity) if similarity is not None else []
        if not clients:
            clients = list(ranked.all())
    hits = search_hits(q, [c.pk for c in clients])
    for client in clients:
        client.search_hit = hits.get(client.pk)
    return clients


def _with_word_similarity(qs: QuerySet[Client], similarity: float) -> list[Client]:
    """The rows of ``qs`` read with pg_trgm's ``%>`` threshold at ``similarity``. The setting is
    local to a savepoint rolled back after the read, so it never outlives this query (not
    even inside a caller's transaction)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [str(similarity)])
        rows = list(qs)
        transaction.set_rollback(True)
    return rows


def client_list(
    *,
    user,
    q: str = "",
    segment: int | None = None,
    collector: int | str | None = None,
    status: str = "",
    bucket: str = "",
    sort: str = "name",
    today: dt.date | None = None,
) -> QuerySet[Client] | RankedClients:
    """The client list with its search, filters and sort. ``collector="none"`` means
    unassigned. ``bucket`` filters by the client's oldest collectible invoice."""
    today = today or clock.localdate()
    qs = clients_visible_to(user).select_related("segment", "collector")
    q = (q or "").strip()
    if q:
        qs = qs.filter(client_search_q(q))
    elif sort == RELEVANCE:
        sort = "name"
    if segment:
        qs = qs.filter(segment_id=segment)
    if collector == "none":
        qs = qs.filter(collector__isnull=True)
    elif collector:
        qs = qs.filter(collector_id=collector)
    if status:
        qs = qs.filter(status=status)
    if sort == RELEVANCE and bucket not in BUCKETS_BY_CODE:
        # Best match first: rank every match once, read the balances of the page's rows only.
        rank_sql, rank_params = client_search_rank_sql(q)
        ids = list(
            qs.annotate(search_rank=RawSQL(rank_sql, rank_params))  # noqa: S611 - table names and constants; values are parameters
            .order_by(*SORTS[RELEVANCE])
            .values_list("id", flat=True)
        )
        return RankedClients(ids, with_balances(clients_visible_to(user).select_related("segment", "collector"), today))
    qs = with_balances(qs, today)
    if bucket in BUCKETS_BY_CODE:
        qs = qs.filter(due_range(BUCKETS_BY_CODE[bucket], today, field="oldest_due"), oldest_due__isnull=False)
    if sort == RELEVANCE:
        rank_sql, rank_params = client_search_rank_sql(q)
        qs = qs.annotate(search_rank=RawSQL(rank_sql, rank_params))  # noqa: S611 - table names and constants; values are parameters
    return qs.order_by(*SORTS.get(sort, SORTS["name"]))


# --- one client ------------------------------------------------------------------------


@dataclass
class CurrencySummary:
    currency: str
    open_balance: Decimal
    overdue: Decimal
    buckets: list[tuple[Bucket, Decimal, int]]  # (bucket, amount, count)
    credit: Decimal  # unallocated payments in this currency

    @property
    def net(self) -> Decimal:
        return self.open_balance - self.credit


@dataclass
class ClientSummary:
    currencies: list[CurrencySummary]
    credit_limit: Decimal
    credit_used_pct: Decimal | None  # share of the limit used, in the client's currency
    max_days_overdue: int
    invoice_count_open: int

    @property
    def main(self) -> CurrencySummary | None:
        return self.currencies[0] if self.currencies else None


def client_summary(client: Client, today: dt.date | None = None) -> ClientSummary:
    """Balances by currency and aging bucket, client credit and credit-limit use (2 queries)."""
    today = today or clock.localdate()
    rows = (
        Invoice.objects.filter(COLLECTIBLE, client=client)
        .annotate(bucket=aging_bucket_expr(today))
        .values("currency", "bucket")
        .annotate(total=Sum("open_balance"), n=Count("id"), oldest=Min("due_date"))
        .order_by()
    )
    credits = dict(
        Payment.objects.filter(client=client, unallocated__gt=0)
        .values("currency")
        .annotate(total=Sum("unallocated"))
        .order_by()
        .values_list("currency", "total")
    )
    per: dict[str, dict[str, tuple[Decimal, int]]] = {}
    oldest = None
    count = 0
    for row in rows:
        per.setdefault(row["currency"], {})[row["bucket"]] = (row["total"], row["n"])
        count += row["n"]
        if row["bucket"] != "current":
            oldest = row["oldest"] if oldest is None else min(oldest, row["oldest"])
    currencies = []
    for cur in sorted(set(per) | set(credits), key=lambda c: (c != client.currency, c)):
        data = per.get(cur, {})
        buckets = [(b, data.get(b.code, (ZERO, 0))[0], data.get(b.code, (ZERO, 0))[1]) for b in BUCKETS]
        open_balance = sum((amt for _b, amt, _n in buckets), ZERO)
        overdue = sum((amt for b, amt, _n in buckets if b.code != "current"), ZERO)
        currencies.append(CurrencySummary(cur, open_balance, overdue, buckets, credits.get(cur, ZERO)))
    main_open = next((c.open_balance for c in currencies if c.currency == client.currency), ZERO)
    used = (main_open / client.credit_limit * 100).quantize(Decimal("0.1")) if client.credit_limit > 0 else None
    return ClientSummary(
        currencies=currencies,
        credit_limit=client.credit_limit,
        credit_used_pct=used,
        max_days_overdue=days_late(oldest, today) if oldest else 0,
        invoice_count_open=count,
    )


def client_invoices(client: Client, today: dt.date | None = None, *, include_closed: bool = True) -> QuerySet[Invoice]:
    """A client's invoices with days overdue and aging bucket computed in SQL."""
    today = today or clock.localdate()
    qs = Invoice.objects.filter(client=client)
    if not include_closed:
        qs = qs.filter(COLLECTIBLE)
    return qs.annotate(bucket=aging_bucket_expr(today)).order_by(
        Case(When(COLLECTIBLE, then=Value(0)), default=Value(1), output_field=IntegerField()), "due_date", "id"
    )


def _count_of(qs: QuerySet) -> Coalesce:
    rows = qs.order_by().values("client").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0), output_field=IntegerField())


def with_detail_counts(qs: QuerySet[Client]) -> QuerySet[Client]:
    """Clients with ``invoice_total``, ``payment_total``, ``contact_total`` and
    ``interaction_total``: the sizes shown on the client page's tabs, read with the client (no
    COUNT query per tab)."""
    return qs.annotate(
        invoice_total=_count_of(Invoice.objects.filter(client=OuterRef("pk"))),
        payment_total=_count_of(Payment.objects.filter(client=OuterRef("pk"))),
        contact_total=_count_of(Contact.objects.filter(client=OuterRef("pk"))),
        interaction_total=_count_of(Interaction.objects.filter(client=OuterRef("pk"))),
    )


def client_last_contact(client: Client) -> Interaction | None:
    """The client's newest person-made entry (a call, an e-mail, a visit...; not a system
    event), with its author and contact: one query on the timeline's own index."""
    return (
        Interaction.objects.filter(client=client)
        .exclude(kind=Interaction.Kind.SYSTEM)
        .select_related("author", "contact")
        .order_by("-occurred_at", "-id")
        .first()
    )


def client_payments(client: Client) -> QuerySet[Payment]:
    return (
        Payment.objects.filter(client=client)
        .select_related("recorded_by")
        .prefetch_related(
            Prefetch(
                "allocations",
                queryset=PaymentAllocation.objects.select_related("invoice").order_by("invoice__due_date"),
            )
        )
    )


def client_timeline(client: Client, *, kind: str = "") -> QuerySet[Interaction]:
    qs = Interaction.objects.filter(client=client).select_related("author", "contact")
    if kind:
        qs = qs.filter(kind=kind)
    return qs.prefetch_related(Prefetch("invoices", queryset=Invoice.objects.only("id", "number", "client_id")))


def open_invoices_for_allocation(client: Client, currency: str | None = None) -> QuerySet[Invoice]:
    """Invoices a payment can be applied to, oldest due first."""
    qs = Invoice.objects.filter(client=client, open_balance__gt=0).exclude(status=Invoice.Status.CANCELLED)
    if currency:
        qs = qs.filter(currency=currency)
    return qs.order_by("due_date", "id")


@dataclass
class PaymentPreview:
    """What an automatic payment would pay before it is recorded (same rule as recording it)."""

    currency: str
    amount: Decimal
    rows: list[tuple[Invoice, Decimal, Decimal]]  # (invoice, paid now, balance left)
    credit: Decimal  # what stays as client credit


def payment_preview(client: Client, *, amount: Decimal, currency: str) -> PaymentPreview:
    """Where ``amount`` in ``currency`` would go if recorded now with automatic allocation
    (``accounts.rules.auto_allocation``, as ``services.payment_record`` applies it; 1 query)."""
    invoices = Invoice.objects.filter(rules.auto_allocation_q(currency), client=client).order_by(
        *rules.AUTO_ALLOCATION_ORDER
    )
    plan = rules.auto_allocation(invoices, amount)
    rows = [(invoice, paid, invoice.open_balance - paid) for invoice, paid in plan]
    applied = sum((paid for _i, paid in plan), ZERO)
    return PaymentPreview(currency=currency, amount=amount, rows=rows, credit=amount - applied)


# --- portfolio -------------------------------------------------------------------------


@dataclass
class PortfolioRow:
    currency: str
    total: Decimal
    overdue: Decimal
    buckets: list[tuple[Bucket, Decimal, int]]
    clients_overdue: int


def portfolio_aging(*, user, today: dt.date | None = None) -> list[PortfolioRow]:
    """Receivables by currency and aging bucket over the clients the user sees (2 queries)."""
    today = today or clock.localdate()
    invoices = Invoice.objects.filter(COLLECTIBLE, client__in=clients_visible_to(user).values("pk"))
    rows = (
        invoices.annotate(bucket=aging_bucket_expr(today))
        .values("currency", "bucket")
        .annotate(total=Sum("open_balance"), n=Count("id"))
        .order_by()
    )
    overdue_clients = dict(
        invoices.filter(overdue_q(today))
        .values("currency")
        .annotate(n=Count("client", distinct=True))
        .order_by()
        .values_list("currency", "n")
    )
    per: dict[str, dict[str, tuple[Decimal, int]]] = {}
    for row in rows:
        per.setdefault(row["currency"], {})[row["bucket"]] = (row["total"], row["n"])
    result = []
    for cur, data in sorted(per.items(), key=lambda kv: -sum(v[0] for v in kv[1].values())):
        buckets = [(b, *data.get(b.code, (ZERO, 0))) for b in BUCKETS]
        total = sum((amt for _b, amt, _n in buckets), ZERO)
        overdue = sum((amt for b, amt, _n in buckets if b.code != "current"), ZERO)
        result.append(PortfolioRow(cur, total, overdue, buckets, overdue_clients.get(cur, 0)))
    return result


def upcoming_next_actions(*, user, today: dt.date | None = None, limit: int = 10) -> QuerySet[Interaction]:
    """Interactions whose next action date is due, for the clients the user sees."""
    today = today or clock.localdate()
    return (
        Interaction.objects.filter(next_action_on__lte=today, client__in=clients_visible_to(user).values("pk"))
        .select_related("client", "author")
        .order_by("next_action_on", "-occurred_at")[:limit]
    )


# --- UI helpers (read-only, added for the browser pages) --------------------------------


def collectors() -> QuerySet:
    """Active users in the collector group: the choices for assigning a client."""

    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=GROUP_NAMES[Role.COLLECTOR])
        .order_by("first_name", "last_name", "username")
        .distinct()
    )


def business_group_members(*, client: Client, user, today: dt.date | None = None) -> QuerySet[Client]:
    """The other clients of ``client``'s business group with their balances (one query).
    ``visible`` says whether ``user`` may open each one: a collector sees the names of the
    whole group (docs/domain.md#client-analysis) but works only their own."""
    if client.business_group_id is None:
        return Client.objects.none()
    today = today or clock.localdate()
    if is_manager(user):
        visible = Value(True)
    else:
        visible = Case(When(collector_id=user.pk, then=Value(True)), default=Value(False))
    qs = Client.objects.filter(business_group_id=client.business_group_id).exclude(pk=client.pk)
    return with_balances(qs, today).annotate(visible=visible).order_by("legal_name", "id")


def client_contacts(client: Client, *, active_only: bool = False) -> QuerySet:
    """A client's contacts: active first, then primary, billing, guarantor, backup."""

    order = [ContactRole.PRIMARY, ContactRole.BILLING, ContactRole.GUARANTOR, ContactRole.BACKUP]
    qs = client.contacts.all()
    if active_only:
        qs = qs.filter(is_active=True)
    role_rank = Case(*(When(role=r, then=Value(i)) for i, r in enumerate(order)), output_field=IntegerField())
    return qs.order_by("-is_active", role_rank, "name", "id")


def contacts_visible_to(user) -> QuerySet:
    return Contact.objects.filter(client__in=clients_visible_to(user).values("pk")).select_related("client")


def invoices_visible_to(user) -> QuerySet[Invoice]:
    return Invoice.objects.filter(client__in=clients_visible_to(user).values("pk")).select_related("client")
