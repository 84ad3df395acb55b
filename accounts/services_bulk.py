"""Set-based writes to the ledger, for bulk loads (imports of accounting exports).

The single-row services in :mod:`accounts.services` validate one object at a time
(``full_clean`` runs a query per unique and check constraint) and write one timeline entry
per invoice or payment: about 100 rows a second. These do the same work in sets:

- the same rules, checked without a query per row: the models' field validators
  (``clean_fields``), the services' own checks (``ensure_manager``/``ensure_can_work``,
  ``_check_requested``, the allocation rules), and one query per natural key (invoice
  numbers, payment references, tax ids) instead of one per row. The database constraints
  stay the last word: an ``IntegrityError`` still rolls everything back;
- the rows written by :func:`ledger_bulk_insert`, the one writer of new ledger rows that
  imports, ``seed_demo`` and the benchmark loader share: it checks the ledger's invariants on
  the whole set, then writes with ``COPY`` and one ``UPDATE … FROM unnest(…)`` for the stored
  invoices that payments touch;
- the audit history: **one CREATE entry per model per load** for the new rows
  (``audit.log_bulk_creation``: who, when, which ids, from which file; ``audit.field_history``
  answers "who set this field, when" from it) and an UPDATE entry per changed stored row
  (``audit.log_updates``, in one INSERT);
- the timeline as **one summary entry per client** per load ("Importadas 37 facturas"),
  collected in a :class:`TimelineBatch` shared by every call of one import, so a file split
  in chunks still writes one entry per client.

Every function takes keyword-only arguments and the acting user ``by``, and runs in one
transaction (callers that load in chunks wrap all chunks in their own). Invalid input raises
:class:`BulkValidationError`, which names the failing items by their position in the input.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import operator
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.dispatch import Signal
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import clock

from . import audit
from .models import (
    ZERO,
    BusinessGroup,
    Channel,
    Client,
    Contact,
    Interaction,
    Invoice,
    Language,
    NonPaymentReason,
    Payment,
    PaymentAllocation,
    money_errors,
    validate_time_zone,
)
from .services import (
    CENT,
    CLIENT_FIELDS,
    AllocationRequest,
    _apply,
    _check_requested,
    _payment_status,
    _payment_summary,
    ensure_can_work,
    ensure_manager,
    to_money,
)
from .utils import actor, money_str

LOCK_CHUNK = 5000  # ids per SELECT … FOR UPDATE
BODY_LINES = 10  # lines of detail per timeline entry (the invoices are linked); the rest is counted

InteractionInvoice = Interaction.invoices.through

# Sent once per ``payments_bulk_record`` call, inside its transaction, with ``recorded``: a
# list of (payment, its new allocations) for the payments recorded (not the known references
# returned as they were). ``accounts.signals.payment_recorded`` is not sent per payment here:
# a receiver of a bulk load should act on the set (one statement, not one per payment).
payments_bulk_recorded = Signal()

__all__ = [
    "AllocationRequest",
    "BulkValidationError",
    "ClientsUpsertResult",
    "NewInvoice",
    "NewPayment",
    "TimelineBatch",
    "clients_bulk_upsert",
    "invoices_bulk_create",
    "payments_bulk_record",
]


class BulkValidationError(ValidationError):
    """The items that failed, by their index in the input: ``item_errors[i]`` is a
    ``{field: [messages]}`` dict (``NON_FIELD_ERRORS`` for the whole item)."""

    def __init__(self, errors: dict[int, ValidationError]):
        self.item_errors: dict[int, dict[str, list[str]]] = {}
        for index, error in sorted(errors.items()):
            if hasattr(error, "error_dict"):
                self.item_errors[index] = error.message_dict
            else:
                self.item_errors[index] = {NON_FIELD_ERRORS: error.messages}
        super().__init__(
            [
                f"#{index}: {msg}"
                for index, fields in self.item_errors.items()
                for messages in fields.values()
                for msg in messages
            ]
        )


# --- the timeline: one entry per client per load --------------------------------------------


@dataclass
class _ClientLines:
    created: bool = False
    changes: list[str] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    payments: list[tuple[Payment, list[PaymentAllocation]]] = field(default_factory=list)


class TimelineBatch:
    """Collects what a bulk load did to each client and writes it as one timeline entry per
    client in :meth:`flush`. Pass the same batch to every bulk call of one import; a call
    given no batch writes its own entries when it finishes."""

    def __init__(self, *, by: AbstractBaseUser | None, source: str = ""):
        self.by = by
        self.source = source
        self._clients: dict[int, _ClientLines] = defaultdict(_ClientLines)
        self._dates: dict[dt.date, str] = {}
        self._invoice_line: str | None = None
        self._language: str | None = None
        self._texts: dict[tuple[str, int], str] = {}

    def client_created(self, client: Client) -> None:
        self._clients[client.pk].created = True

    def client_changed(self, client: Client, lines: list[str]) -> None:
        self._clients[client.pk].changes.extend(lines)

    def invoices_created(self, invoices: Iterable[Invoice]) -> None:
        for inv in invoices:
            self._clients[inv.client_id].invoices.append(inv)

    def payment_recorded(self, payment: Payment, allocations: list[PaymentAllocation]) -> None:
        self._clients[payment.client_id].payments.append((payment, allocations))

    def flush(self) -> list[InteractionRow]:
        """Write the entries and their invoice links (through ``ledger_bulk_insert``)."""
        now = clock.now()
        author = actor(self.by)
        entries = []
        for client_id, lines in self._clients.items():
            # Linked: the invoices of the lines shown (the timeline shows a chip per link; a
            # chip for each of a client's 5,000 imported invoices would bury the page).
            shown_invoices, shown_payments = self._shown(lines)
            invoice_ids = [inv.pk for inv in shown_invoices]
            invoice_ids += [a.invoice.pk for _p, allocs in shown_payments for a in allocs]
            entries.append(
                InteractionRow(
                    client=client_id,
                    kind=Interaction.Kind.SYSTEM,
                    direction=Interaction.Direction.INTERNAL,
                    summary=self._summary(lines)[:255],
                    body=self._body(lines),
                    author_id=author.pk if author is not None else None,
                    occurred_at=now,
                    created_at=now,
                    invoices=tuple(dict.fromkeys(invoice_ids)),
                )
            )
        ledger_bulk_insert(rows=LedgerRows(interactions=entries))
        self._clients.clear()
        self._dates, self._invoice_line, self._texts = {}, None, {}  # in the language of the next flush
        return entries

    def _summary(self, lines: _ClientLines) -> str:
        parts = []
        if lines.created:
            parts.append(self._text("created"))
        elif lines.changes:
            parts.append(self._text("changed"))
        if lines.invoices:
            n = len(lines.invoices)
            parts.append(
                self._text("invoices", n)
                % {"n": n, "amount": _totals((inv.amount, inv.currency) for inv in lines.invoices)}
            )
        if lines.payments:
            n = len(lines.payments)
            parts.append(
                self._text("payments", n)
                % {"n": n, "amount": _totals((p.amount, p.currency) for p, _a in lines.payments)}
            )
        text = " · ".join(parts)
        if self.source:
            text += self._text("source")
        return text

    def _text(self, what: str, n: int = 1) -> str:
        """The summaries' wording, translated once per batch and count: an import's tens of
        thousands of entries share a handful of them."""
        key = (what, n)
        text = self._texts.get(key)
        if text is None:
            if what == "created":
                text = _("Alta del cliente")
            elif what == "changed":
                text = _("Datos del cliente actualizados")
            elif what == "invoices":
                text = ngettext("Importada %(n)s factura por %(amount)s", "Importadas %(n)s facturas por %(amount)s", n)
            elif what == "payments":
                text = ngettext("%(n)s pago registrado por %(amount)s", "%(n)s pagos registrados por %(amount)s", n)
            else:
                text = " " + _("(archivo %(file)s)") % {"file": self.source}
            self._texts[key] = text
        return text

    @staticmethod
    def _shown(lines: _ClientLines) -> tuple[list[Invoice], list[tuple[Payment, list[PaymentAllocation]]]]:
        shown_invoices = lines.invoices[:BODY_LINES]
        return shown_invoices, lines.payments[: BODY_LINES - len(shown_invoices)]

    def _date(self, day: dt.date) -> str:
        """A short date in the current language; an import's thousands of lines share a few
        hundred dates, each formatted once."""
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = date_format(day, "SHORT_DATE_FORMAT")
        return text

    def _body(self, lines: _ClientLines) -> str:
        shown_invoices, shown_payments = self._shown(lines)
        out = list(lines.changes)
        if self._invoice_line is None:  # translated once per batch, not once per line
            self._invoice_line = _("Factura %(number)s emitida por %(amount)s, vence el %(due)s")
            self._language = translation.get_language()
        out += [
            self._invoice_line
            % {
                "number": inv.number,
                "amount": money_str(inv.amount, inv.currency, self._language),
                "due": self._date(inv.due_date),
            }
            for inv in shown_invoices
        ]
        out += [
            f"{self._date(payment.received_on)}: {_payment_summary(payment, allocations)}"
            for payment, allocations in shown_payments
        ]
        more = len(lines.invoices) - len(shown_invoices) + len(lines.payments) - len(shown_payments)
        if more > 0:
            out.append(ngettext("… y %(n)s línea más", "… y %(n)s líneas más", more) % {"n": more})
        return "\n".join(out)


def _totals(pairs: Iterable[tuple[Decimal, str]]) -> str:
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for amount, currency in pairs:
        sums[currency] += amount
    return ", ".join(money_str(amount, currency) for currency, amount in sorted(sums.items()))


def _source(timeline: TimelineBatch | None, source: str) -> str:
    return timeline.source if timeline is not None else source


def _finish(timeline: TimelineBatch | None, own: TimelineBatch) -> None:
    if timeline is None:
        own.flush()


def _clean(obj, exclude: Sequence[str], index: int, errors: dict[int, ValidationError]) -> None:
    """The model's field validators, without the per-object queries of ``full_clean``
    (foreign keys are given as objects; uniqueness is checked per set by the caller)."""
    try:
        obj.clean_fields(exclude=list(exclude))
    except ValidationError as exc:
        errors[index] = exc


def _add_error(errors: dict[int, ValidationError], index: int, field_name: str, message: str) -> None:
    if index in errors:
        merged = errors[index].update_error_dict({})
        merged.setdefault(field_name, []).append(message)
        errors[index] = ValidationError(merged)
    else:
        errors[index] = ValidationError({field_name: [message]})


def _rows_of(row_class, objs: Sequence) -> list:
    """Rows for ``ledger_bulk_insert`` from model instances (references by id)."""
    if not objs:
        return []
    names, attrs = _row_attrs(row_class, type(objs[0]))
    values = map(operator.attrgetter(*attrs), objs)
    if names == row_class.__slots__:  # every field, in order: positional (a third of the cost)
        return [row_class(*v) for v in values]
    return [row_class(**dict(zip(names, v, strict=True))) for v in values]


@functools.cache
def _row_attrs(row_class, model) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The row's fields filled from a model instance, and the instance's attribute for each
    (a reference's id)."""
    names, attrs = [], []
    for name in row_class.__slots__:
        if name == "invoices":
            continue
        f = model._meta.get_field(name) if name != "id" else None
        names.append(name)
        attrs.append(f.attname if f is not None and f.is_relation else name)
    return tuple(names), tuple(attrs)


def _write(
    table: str, objs: list, row_class, errors: dict[int, ValidationError], positions: Sequence[int] | None = None
) -> None:
    """Insert model instances through ``ledger_bulk_insert`` and give them their ids. The
    writer's errors for these rows join ``errors`` (the caller's own checks, by input index:
    ``positions[i]`` is the input index of ``objs[i]``); with any error nothing is written and
    BulkValidationError names every failing item."""
    rows = _rows_of(row_class, objs)
    batch = LedgerRows(**{table: rows})
    if errors:
        found = ledger_rows_check(rows=batch)
    else:
        try:
            ledger_bulk_insert(rows=batch, lock_stored=False)
        except LedgerRowsError as exc:
            found = exc.row_errors
        else:
            for obj, row in zip(objs, rows, strict=True):
                obj.pk = row.id
                obj._state.adding, obj._state.db = False, connection.alias
            return
    for (_table, index), by_field in found.items():
        for name, messages in by_field.items():
            for message in messages:
                _add_error(errors, positions[index] if positions is not None else index, name, message)
    raise BulkValidationError(errors)


def _log_created(by, objs: list, source: str = "") -> None:
    """The audit history of new rows: one CREATE entry per model for the whole set
    (``audit.log_bulk_creation``: who, when, which rows, from which file), not one per row.
    An entry per row with its values was 40 % of an import's time; the values are the rows'
    own, and every later change records its before → after."""
    audit.log_bulk_creation(by=by, objects=objs, source=source)


# --- clients -------------------------------------------------------------------------------

# Set from the objects given (foreign keys), checked once per distinct value (time zone), or
# not editable: left out of the per-object field validation.
_CLIENT_NOT_CLEANED = ("segment", "collector", "business_group", "time_zone", "created_at", "updated_at")


@dataclass
class ClientsUpsertResult:
    clients: list[Client]  # in input order
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _normalise_client(values: dict) -> dict:
    out = dict(values)
    for name in ("legal_name", "trade_name"):
        if name in out:
            out[name] = (out[name] or "").strip()
    for name in ("tax_id", "currency", "country"):
        if name in out:
            out[name] = (out[name] or "").strip().upper()
    if "credit_limit" in out:
        out["credit_limit"] = to_money(out["credit_limit"])
    return out


def clients_bulk_upsert(
    *,
    by: AbstractBaseUser | None,
    rows: Sequence[dict],
    timeline: TimelineBatch | None = None,
    source: str = "",
) -> ClientsUpsertResult:
    """Create or update clients by tax id (the natural key; required here). Each row holds
    ``tax_id`` and any of ``CLIENT_FIELDS``; a new client needs ``legal_name`` and
    ``segment`` and gets the model defaults for the rest, as with ``client_create``. A row
    equal to what is stored changes nothing and writes no timeline entry."""
    ensure_manager(by)
    errors: dict[int, ValidationError] = {}
    rows = [_normalise_client(r) for r in rows]
    for i, r in enumerate(rows):
        unknown = set(r) - set(CLIENT_FIELDS)
        if unknown:
            raise TypeError(f"clients_bulk_upsert got unknown fields: {sorted(unknown)}")
        if not r.get("tax_id"):
            _add_error(errors, i, "tax_id", _("Indique el RFC / NIF."))
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r.get("tax_id") in first:
            _add_error(errors, i, "tax_id", _("Ya existe un cliente con este RFC / NIF."))
        first.setdefault(r.get("tax_id"), i)
    for zone in {r["time_zone"] for r in rows if "time_zone" in r}:
        try:
            validate_time_zone(zone)
        except ValidationError as exc:
            for i, r in enumerate(rows):
                if r.get("time_zone") == zone:
                    _add_error(errors, i, "time_zone", exc.messages[0])

    with transaction.atomic():
        tax_ids = [r["tax_id"] for r in rows if r.get("tax_id")]
        existing = {c.tax_id: c for c in Client.objects.select_for_update().filter(tax_id__in=tax_ids)}
        before = audit.snapshot(existing.values())
        result = ClientsUpsertResult(clients=[])
        new, new_at, changed, lines = [], [], [], {}
        fields_changed: set[str] = set()
        now = clock.now()
        for i, r in enumerate(rows):
            client = existing.get(r.get("tax_id"))
            if client is None:
                if not r.get("segment"):
                    _add_error(errors, i, "segment", _("Indique el segmento."))
                    result.clients.append(None)
                    continue
                client = Client(**r, created_at=now, updated_at=now)
                _clean(client, _CLIENT_NOT_CLEANED, i, errors)
                new.append(client)
                new_at.append(i)
            else:
                diff = {}
                for name, value in r.items():
                    old = getattr(client, name)
                    if old != value:
                        diff[name] = (old, value)
                        setattr(client, name, value)
                if diff:
                    _clean(client, _CLIENT_NOT_CLEANED, i, errors)
                    client.updated_at = now
                    changed.append(client)
                    fields_changed.update(diff)
                    lines[client.pk] = [_change_line(name, old, value) for name, (old, value) in diff.items()]
                else:
                    result.unchanged += 1
            result.clients.append(client)
        if errors:
            raise BulkValidationError(errors)
        _write("clients", new, ClientRow, errors, new_at)
        if changed:
            try:
                with transaction.atomic():
                    Client.objects.bulk_update(changed, [*sorted(fields_changed), "updated_at"], batch_size=500)
            except IntegrityError as exc:
                raise ValidationError({"tax_id": _("Ya existe un cliente con este RFC / NIF.")}) from exc
        _log_created(by, new, _source(timeline, source))
        audit.log_updates(by=by, before=before, after=changed)
        result.created, result.updated = len(new), len(changed)
        own = timeline or TimelineBatch(by=by, source=source)
        for client in new:
            own.client_created(client)
        for client in changed:
            own.client_changed(client, lines[client.pk])
        _finish(timeline, own)
    return result


def _change_line(name: str, old, new) -> str:
    """The same wording as ``client_update``'s timeline entry."""
    label = Client._meta.get_field(name).verbose_name
    if name == "status":
        old, new = Client.Status(old).label, Client.Status(new).label
    return f"{label}: {old or '—'} → {new or '—'}"


# --- invoices ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInvoice:
    client: Client
    number: str
    issue_date: dt.date
    amount: Decimal
    due_date: dt.date | None = None
    currency: str | None = None  # the client's when not given
    external_ref: str = ""
    description: str = ""


_INVOICE_NOT_CLEANED = ("client", "amount_paid", "status", "created_at", "updated_at")


def invoices_bulk_create(
    *,
    by: AbstractBaseUser | None,
    invoices: Sequence[NewInvoice],
    timeline: TimelineBatch | None = None,
    source: str = "",
) -> list[Invoice]:
    """Create many invoices (``invoice_create``'s rules, checked per set). Returns them in
    input order, with their ids."""
    ensure_manager(by)
    errors: dict[int, ValidationError] = {}
    now = clock.now()
    objs = []
    for i, spec in enumerate(invoices):
        inv = Invoice(
            client=spec.client,
            number=spec.number.strip(),
            issue_date=spec.issue_date,
            due_date=spec.due_date or spec.issue_date + dt.timedelta(days=spec.client.payment_terms_days),
            amount=to_money(spec.amount),
            currency=(spec.currency or spec.client.currency).upper(),
            external_ref=spec.external_ref.strip(),
            description=spec.description.strip(),
            created_at=now,
            updated_at=now,
        )
        if not _invoice_plainly_valid(inv):
            _clean(inv, _INVOICE_NOT_CLEANED, i, errors)
        objs.append(inv)
    with transaction.atomic():
        # The ledger's rules (unique numbers, due dates, money) are the writer's.
        _write("invoices", objs, InvoiceRow, errors)
        _log_created(by, objs, _source(timeline, source))
        own = timeline or TimelineBatch(by=by, source=source)
        own.invoices_created(objs)
        _finish(timeline, own)
    return objs


_AMOUNT_FIELD = Invoice._meta.get_field("amount")
_WHOLE_DIGITS_LIMIT = Decimal(10) ** (_AMOUNT_FIELD.max_digits - _AMOUNT_FIELD.decimal_places)
_NUMBER_MAX = Invoice._meta.get_field("number").max_length
_EXTERNAL_REF_MAX = Invoice._meta.get_field("external_ref").max_length
_DESCRIPTION_MAX = Invoice._meta.get_field("description").max_length


def _invoice_plainly_valid(inv: Invoice) -> bool:
    """What ``clean_fields`` checks on a new invoice (lengths, dates, the amount's digits and
    minimum, the currency code), checked directly: ``clean_fields`` costs more than the rest
    of the row's work. False does not mean invalid: the full check then runs and names the
    problem in the model's own words."""
    amount = inv.amount
    return (
        type(inv.number) is str
        and 0 < len(inv.number) <= _NUMBER_MAX
        and type(inv.external_ref) is str
        and len(inv.external_ref) <= _EXTERNAL_REF_MAX
        and type(inv.description) is str
        and len(inv.description) <= _DESCRIPTION_MAX
        and type(inv.issue_date) is dt.date
        and type(inv.due_date) is dt.date
        and type(amount) is Decimal
        and amount.is_finite()
        and CENT <= amount < _WHOLE_DIGITS_LIMIT
        and amount.as_tuple().exponent >= CENT.as_tuple().exponent
        and type(inv.currency) is str
        and _ISO_CURRENCY.fullmatch(inv.currency) is not None
    )


# --- payments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPayment:
    client: Client
    amount: Decimal
    received_on: dt.date
    currency: str | None = None  # the client's when not given
    method: str = Payment.Method.TRANSFER
    reference: str = ""
    # None: oldest due first among the client's open invoices in the currency (disputed ones
    # wait); a list: just those amounts; an empty list: all of it stays as client credit.
    allocations: Sequence[AllocationRequest] | None = None
    notes: str = ""


_PAYMENT_NOT_CLEANED = ("client", "recorded_by", "unallocated", "created_at")


def payments_bulk_record(
    *,
    by: AbstractBaseUser | None,
    payments: Sequence[NewPayment],
    timeline: TimelineBatch | None = None,
    source: str = "",
) -> list[Payment]:
    """Record many payments and apply them to invoices, in input order (a later payment sees
    the balances the earlier ones left), with ``payment_record``'s rules.

    A payment whose reference is already stored for the same client, amount and currency is
    returned as is (``created`` False): a file loaded twice records each payment once.
    Returns the payments in input order."""
    clients = {p.client.pk: p.client for p in payments}
    for client in clients.values():
        ensure_can_work(by, client)
    errors: dict[int, ValidationError] = {}
    today = clock.localdate()
    author = actor(by)
    now = clock.now()
    objs: list[Payment] = []
    wanted_by_index: dict[int, dict[int, Decimal] | None] = {}
    for i, spec in enumerate(payments):
        amount = to_money(spec.amount)
        payment = Payment(
            client=spec.client,
            received_on=spec.received_on,
            amount=amount,
            currency=(spec.currency or spec.client.currency).upper(),
            method=spec.method,
            reference=spec.reference.strip(),
            unallocated=amount,
            notes=spec.notes,
            recorded_by=author,
            created_at=now,
        )
        _clean(payment, _PAYMENT_NOT_CLEANED, i, errors)
        if spec.received_on > today + dt.timedelta(days=1):
            _add_error(errors, i, "received_on", _("La fecha de pago no puede estar en el futuro."))
        wanted = None
        if spec.allocations is not None:
            wanted = {}
            for req in spec.allocations:
                req_amount = to_money(req.amount)
                if req_amount < 0:
                    _add_error(errors, i, "allocations", _("Los importes aplicados no pueden ser negativos."))
                elif req_amount > 0:
                    wanted[int(req.invoice_id)] = wanted.get(int(req.invoice_id), ZERO) + req_amount
            if sum(wanted.values(), ZERO) > amount:
                _add_error(errors, i, "allocations", _("Lo aplicado a facturas supera el importe del pago."))
        wanted_by_index[i] = wanted
        objs.append(payment)

    with transaction.atomic():
        result = _dedupe_references(objs, errors)
        invoices = _lock_invoices(objs, wanted_by_index, result)
        by_id = {inv.pk: inv for inv in invoices}
        before = audit.snapshot(invoices)
        queues: dict[tuple[int, str], deque[Invoice]] = defaultdict(deque)
        for inv in invoices:  # ordered by due date: the oldest is paid first
            if inv.status in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID):
                queues[(inv.client_id, inv.currency)].append(inv)
        new, new_at, allocations, touched = [], [], [], {}
        applied: list[tuple[Payment, list[PaymentAllocation]]] = []
        for i, payment in enumerate(objs):
            if result[i] is not None or i in errors:
                continue
            wanted = wanted_by_index[i]
            if wanted is None:
                # Oldest first; _apply stops when the money runs out, paid ones leave the head.
                targets = queues[(payment.client_id, payment.currency)]
                while targets and targets[0].amount_paid >= targets[0].amount:
                    targets.popleft()
            else:
                targets = [by_id[k] for k in wanted if k in by_id and by_id[k].client_id == payment.client_id]
                targets.sort(key=lambda inv: (inv.due_date, inv.pk))
                try:
                    _check_requested(targets, wanted, payment.currency)
                except ValidationError as exc:
                    errors[i] = exc
                    continue
            done = _apply(payment, targets, wanted)
            for alloc in done:
                touched[alloc.invoice.pk] = alloc.invoice
            new.append(payment)
            new_at.append(i)
            allocations += done
            applied.append((payment, done))
            payment.created = True
            result[i] = payment
        if errors:
            raise BulkValidationError(errors)
        _write_payments(new, new_at, allocations)
        _log_created(by, [*new, *allocations], _source(timeline, source))
        audit.log_updates(by=by, before=before, after=touched.values())
        payments_bulk_recorded.send(sender=Payment, recorded=applied)
        own = timeline or TimelineBatch(by=by, source=source)
        for payment, done in applied:
            own.payment_recorded(payment, done)
        _finish(timeline, own)
    return result


def _write_payments(payments: list[Payment], positions: list[int], allocations: list[PaymentAllocation]) -> None:
    """The payments and their allocations through ``ledger_bulk_insert`` (which also writes
    the invoices' new amount_paid and status); the writer's errors are reported on the
    payment's input index. The invoices are locked already (``_lock_invoices``)."""
    rows = _rows_of(PaymentRow, payments)
    row_of = {id(p): row for p, row in zip(payments, rows, strict=True)}
    alloc_rows = [
        AllocationRow(payment=row_of[id(a.payment)], invoice=a.invoice.pk, amount=a.amount, created_at=a.created_at)
        for a in allocations
    ]
    try:
        ledger_bulk_insert(rows=LedgerRows(payments=rows, allocations=alloc_rows), lock_stored=False)
    except LedgerRowsError as exc:
        index_of = {id(row): positions[i] for i, row in enumerate(rows)}
        errors: dict[int, ValidationError] = {}
        for (table, index), by_field in exc.row_errors.items():
            row = rows[index] if table == "payments" else alloc_rows[index].payment
            for name, messages in by_field.items():
                for message in messages:
                    _add_error(errors, index_of[id(row)], "allocations" if table == "allocations" else name, message)
        raise BulkValidationError(errors) from exc
    for payment, row in zip(payments, rows, strict=True):
        payment.pk = row.id
        payment._state.adding, payment._state.db = False, connection.alias
    for alloc, row in zip(allocations, alloc_rows, strict=True):
        alloc.pk, alloc.payment_id = row.id, row.payment.id
        alloc._state.adding, alloc._state.db = False, connection.alias


def _dedupe_references(objs: list[Payment], errors: dict[int, ValidationError]) -> list[Payment | None]:
    """One query for the references: a stored equal payment is returned (not recorded
    again), a different one under the same reference is an error, as in ``payment_record``."""
    result: list[Payment | None] = [None] * len(objs)
    refs = [p.reference for p in objs if p.reference]
    stored = {p.reference: p for p in Payment.objects.filter(reference__in=refs)} if refs else {}
    first: dict[str, int] = {}
    for i, p in enumerate(objs):
        if not p.reference:
            continue
        other = stored.get(p.reference)
        if other is None and p.reference in first:
            other = objs[first[p.reference]]
        first.setdefault(p.reference, i)
        if other is None:
            continue
        if other.client_id != p.client_id or other.amount != p.amount or other.currency != p.currency:
            _add_error(
                errors, i, "reference", _("La referencia %(ref)s ya corresponde a otro pago.") % {"ref": p.reference}
            )
        elif other.pk is not None:
            other.created = False
            result[i] = other
        else:
            _add_error(errors, i, "reference", _("Ya existe un pago con esta referencia."))
    return result


def _lock_invoices(objs, wanted_by_index, result) -> list[Invoice]:
    """Lock (in id order, in chunks) every invoice the payments may touch: the ones named,
    and the open ones of clients whose payments go oldest first. Ordered by due date."""
    named: set[int] = set()
    auto: set[tuple[int, str]] = set()
    for i, payment in enumerate(objs):
        if result[i] is not None:
            continue
        wanted = wanted_by_index.get(i)
        if wanted is None:
            auto.add((payment.client_id, payment.currency))
        else:
            named.update(wanted)
    found: dict[int, Invoice] = {}
    ids = sorted(named)
    for start in range(0, len(ids), LOCK_CHUNK):
        qs = Invoice.objects.select_for_update().filter(pk__in=ids[start : start + LOCK_CHUNK]).order_by("pk")
        found.update((inv.pk, inv) for inv in qs)
    auto_clients = sorted({client_id for client_id, _c in auto})
    for start in range(0, len(auto_clients), LOCK_CHUNK):
        qs = (
            Invoice.objects.select_for_update()
            .filter(
                client_id__in=auto_clients[start : start + LOCK_CHUNK],
                status__in=[Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID],
            )
            .order_by("pk")
        )
        for inv in qs:
            if (inv.client_id, inv.currency) in auto:
                found.setdefault(inv.pk, inv)
    return sorted(found.values(), key=lambda inv: (inv.due_date, inv.pk))


# --- the ledger writer: every bulk insert of ledger rows goes through here ---------------------
#
# Imports (the functions above), ``seed_demo`` (accounts.demo) and the benchmark loader
# (scripts/bench/loader.py) hand their new rows to ``ledger_bulk_insert``. The rows are plain
# slotted objects, not model instances: building a model instance costs ten times more, and a
# 100,000-client demo has millions of rows. A row refers to a parent either by id (a row
# already stored) or by the parent's row object in the same batch; the writer takes ids from the
# tables' sequences, so children can point at parents before anything is written.


class _Row:
    __slots__ = ()

    def __str__(self) -> str:
        # What COPY writes for a reference to this row: its id (assigned before any child is
        # written). The csv module turns every non-string value into text with str().
        return str(self.id)


@dataclass(slots=True, eq=False)
class BusinessGroupRow(_Row):
    name: str
    notes: str = ""
    id: int | None = None


@dataclass(slots=True, eq=False)
class ClientRow(_Row):
    legal_name: str
    segment_id: int
    tax_id: str = ""
    trade_name: str = ""
    kind: str = Client.Kind.COMPANY
    collector_id: int | None = None
    credit_limit: Decimal = ZERO
    payment_terms_days: int = 30
    currency: str = "MXN"
    language: str = "es"
    time_zone: str = "America/Mexico_City"
    country: str = "MX"
    business_group: BusinessGroupRow | int | None = None
    client_since: dt.date | None = None
    status: str = Client.Status.ACTIVE
    address: str = ""
    notes: str = ""
    created_at: dt.datetime | None = None  # None: the moment of the insert
    updated_at: dt.datetime | None = None
    id: int | None = None


@dataclass(slots=True, eq=False)
class ContactRow(_Row):
    client: ClientRow | int
    name: str
    role: str = Contact.Role.BILLING
    position: str = ""
    email: str = ""
    phone: str = ""
    whatsapp: str = ""
    preferred_channel: str = "email"
    opt_out_email: bool = False
    opt_out_sms: bool = False
    opt_out_whatsapp: bool = False
    opt_out_phone: bool = False
    opt_out_letter: bool = False
    is_active: bool = True
    notes: str = ""
    created_at: dt.datetime | None = None
    id: int | None = None


@dataclass(slots=True, eq=False)
class InvoiceRow(_Row):
    client: ClientRow | int
    number: str
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount: Decimal
    # Must equal the sum of the invoice's allocations in the batch (a new invoice has no other).
    amount_paid: Decimal = ZERO
    # A payment-derived status must agree with amount_paid; disputed, written off and
    # cancelled are kept (a cancelled invoice cannot carry payments).
    status: str = Invoice.Status.OPEN
    external_ref: str = ""
    description: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    id: int | None = None


@dataclass(slots=True, eq=False)
class PaymentRow(_Row):
    client: ClientRow | int
    received_on: dt.date
    amount: Decimal
    currency: str
    method: str = Payment.Method.TRANSFER
    reference: str = ""
    unallocated: Decimal = ZERO  # must equal amount minus the payment's allocations
    notes: str = ""
    recorded_by_id: int | None = None
    created_at: dt.datetime | None = None
    id: int | None = None


@dataclass(slots=True, eq=False)
class AllocationRow(_Row):
    payment: PaymentRow  # allocations belong to a payment of the same batch
    invoice: InvoiceRow | int  # a stored invoice (by id) has its amount_paid and status updated
    amount: Decimal
    created_at: dt.datetime | None = None
    id: int | None = None


@dataclass(slots=True, eq=False)
class InteractionRow(_Row):
    client: ClientRow | int
    kind: str
    summary: str
    direction: str = Interaction.Direction.OUTBOUND
    outcome: str = ""
    contact: ContactRow | int | None = None
    body: str = ""
    author_id: int | None = None
    occurred_at: dt.datetime | None = None  # None: the moment of the insert
    next_action_on: dt.date | None = None
    corrects_id: int | None = None
    created_at: dt.datetime | None = None
    nonpayment_reason: str = ""
    # A system text's code and its parameters as JSON text (accounts.texts); none by default.
    summary_code: str = ""
    summary_params: str = "{}"
    invoices: tuple = ()  # InvoiceRow or stored invoice ids, all of the entry's client
    id: int | None = None


@dataclass
class LedgerRows:
    """New rows for ``ledger_bulk_insert``, one list per table."""

    groups: list[BusinessGroupRow] = field(default_factory=list)
    clients: list[ClientRow] = field(default_factory=list)
    contacts: list[ContactRow] = field(default_factory=list)
    invoices: list[InvoiceRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)
    allocations: list[AllocationRow] = field(default_factory=list)
    interactions: list[InteractionRow] = field(default_factory=list)


class LedgerRowsError(ValidationError):
    """The rows that break a rule: ``row_errors[(table, index)]`` is ``{field: [messages]}``,
    ``table`` one of the lists of :class:`LedgerRows`."""

    def __init__(self, errors: dict[tuple[str, int], dict[str, list[str]]]):
        self.row_errors = dict(sorted(errors.items()))
        super().__init__(
            [
                f"{table}[{index}].{name}: {msg}"
                for (table, index), fields in self.row_errors.items()
                for name, messages in fields.items()
                for msg in messages
            ]
        )

    def for_table(self, table: str) -> dict[int, ValidationError]:
        """This table's errors by index, as the bulk services report them."""
        return {i: ValidationError(f) for (t, i), f in self.row_errors.items() if t == table}


_ISO_CURRENCY = re.compile(r"[A-Z]{3}")
_ISO_COUNTRY = re.compile(r"[A-Z]{2}")
_CHOICES = {
    "client_kind": frozenset(Client.Kind.values),
    "client_status": frozenset(Client.Status.values),
    "language": frozenset(Language.values),
    "role": frozenset(Contact.Role.values),
    "channel": frozenset(Channel.values),
    "invoice_status": frozenset(Invoice.Status.values),
    "method": frozenset(Payment.Method.values),
    "kind": frozenset(Interaction.Kind.values),
    "direction": frozenset(Interaction.Direction.values),
    "outcome": frozenset(Interaction.Outcome.values),
    "reason": frozenset(NonPaymentReason.values),
}
_PAYMENT_STATUSES = frozenset(Invoice.PAYMENT_STATUSES)
_TABLE_ORDER = ("groups", "clients", "contacts", "invoices", "payments", "allocations", "interactions")
_MODELS = {
    "groups": BusinessGroup,
    "clients": Client,
    "contacts": Contact,
    "invoices": Invoice,
    "payments": Payment,
    "allocations": PaymentAllocation,
    "interactions": Interaction,
}


class _Checker:
    """Collects errors by (table, index, field); valid values of a few text fields are
    checked once per distinct value."""

    def __init__(self):
        self.errors: dict[tuple[str, int], dict[str, list[str]]] = {}
        self._seen: dict[tuple[str, str], bool] = {}

    def add(self, table: str, index: int, name: str, message: str) -> None:
        self.errors.setdefault((table, index), {}).setdefault(name, []).append(str(message))

    def money(self, table: str, index: int, row) -> None:
        """The money rules of the single-row services (ISO 4217 currency, the largest amount)."""
        for name, problems in money_errors(row).items():
            for problem in problems:
                self.add(table, index, name, problem.messages[0])

    def ok(self, kind: str, value) -> bool:
        key = (kind, value)
        valid = self._seen.get(key)
        if valid is None:
            valid = self._seen[key] = _valid(kind, value)
        return valid


def _valid(kind: str, value) -> bool:
    if kind == "currency":
        return isinstance(value, str) and _ISO_CURRENCY.fullmatch(value) is not None
    if kind == "country":
        return isinstance(value, str) and _ISO_COUNTRY.fullmatch(value) is not None
    if kind == "time_zone":
        try:
            validate_time_zone(value)
        except ValidationError:
            return False
        return True
    if kind == "email":
        try:
            validate_email(value)
        except ValidationError:
            return False
        return True
    return value in _CHOICES[kind]


def _cents(value) -> bool:
    """A positive amount of money, to the cent."""
    return isinstance(value, Decimal) and value.is_finite() and value > 0 and value == value.quantize(CENT)


def ledger_bulk_insert(
    *, rows: LedgerRows, as_of: dt.datetime | None = None, lock_stored: bool = True
) -> dict[str, int]:
    """Insert new ledger rows in one transaction, enforcing the rules of the single-row services
    (``accounts.services``) on the whole set first; any broken rule raises
    :class:`LedgerRowsError` and nothing is written. Returns the rows written per table.

    The rules: choices, ISO currencies and countries, time zones and e-mail addresses valid;
    money positive and to the cent; invoice numbers, payment references, tax ids and group
    names unique (in the batch and against the stored rows); due date not before the issue
    date; ``amount_paid`` of a new invoice equal to its allocations, never above its amount, and
    its status agreeing with it; ``unallocated`` of a payment equal to its amount minus its
    allocations, never negative; an allocation in the payment's currency, to an invoice of the
    same client that is not cancelled, never above the invoice's open balance; a contact or an
    invoice linked to a timeline entry of the entry's client; nothing after ``as_of`` (default:
    now): payments up to the next day, as ``payment_record``, timeline entries up to five
    minutes, as ``interaction_log``.

    Allocations to stored invoices (given by id) add to their ``amount_paid`` and set their
    payment-derived status; ``lock_stored`` locks those rows first (a caller that already
    holds the locks may skip it). Rows get their ids from the tables' sequences; the data goes
    in with ``COPY``. Timestamps left None are set to the moment of the insert."""
    now = clock.now()
    as_of = as_of or now
    check = _Checker()
    stored, touched = _validate(rows, check, as_of, now, lock_stored)
    if check.errors:
        raise LedgerRowsError(check.errors)
    written = {}
    if _load is not None:
        # The COPY runs behind the caller's back; a database error surfaces at the next call
        # or at the end of the load, both inside the load's one transaction.
        _write_rows(None, rows, stored, touched, now, written)
        return written
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _write_rows(cursor, rows, stored, touched, now, written)
    except IntegrityError as exc:
        # A constraint the checks above could not see: a concurrent writer stored the same
        # number, reference or tax id between the check and the COPY.
        raise ValidationError(_("La base de datos rechazó la carga: %(error)s") % {"error": exc}) from exc
    return written


# The tables ledger_bulk_insert writes, whose plain indexes and foreign keys
# ledger_bulk_load sets aside during a load.
_LOAD_MODELS = (Client, Contact, Invoice, Payment, PaymentAllocation, Interaction, InteractionInvoice)


class _Load:
    """A ``ledger_bulk_load`` of an empty ledger in progress, on the connection that writes.

    The tables are locked against every other session and held no row when the load began,
    so what the writer would ask the database between chunks it knows itself: the natural
    keys already loaded (for the uniqueness checks) and the next id of each table (taken
    from the sequences at the start, set back into them at the end). The ``COPY`` of a chunk
    then runs in a thread of its own while the caller prepares the next chunk: the database
    and Python work at the same time (the thread waits on the server without the GIL)."""

    def __init__(self, raw_connection, wrapper):
        self.raw = raw_connection  # psycopg2 serialises the threads' use of one connection
        self.wrapper = wrapper
        self.keys: dict[str, set] = {}
        self.first_id: dict = {}
        self.next_id: dict = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-copy")
        self.pending: Future | None = None

    def take_ids(self, model, n: int) -> range:
        first = self.next_id[model]
        self.next_id[model] = first + n
        return range(first, first + n)

    def submit(self, job: Callable[[object], None]) -> None:
        """Run ``job(cursor)`` after the previous one (whose error, if any, is raised here)."""
        self.wait()

        def run():
            with self.wrapper.wrap_database_errors, self.raw.cursor() as cursor:
                job(cursor)

        self.pending = self.executor.submit(run)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def before_statement(self, execute, sql, params, many, context):
        """Every other statement of the connection waits for the COPY in flight: psycopg2 does
        not keep a query from cutting into a COPY of another thread (it breaks both)."""
        self.wait()
        return execute(sql, params, many, context)


_load: _Load | None = None
# The natural keys _unique checks, by table: (table, row attribute).
_LOAD_KEYS = (("groups", "name"), ("clients", "tax_id"), ("invoices", "number"), ("payments", "reference"))


@contextlib.contextmanager
def ledger_bulk_load():
    """Around many ``ledger_bulk_insert`` calls that fill the ledger's tables from empty (a
    demo seed, a benchmark load): inside one transaction, set aside the tables' foreign keys
    and plain (non-unique) indexes, and put them back at the end, as PostgreSQL's guide to
    populating a database advises. Each foreign key is then checked once, by one join over
    the loaded rows, and each index built by one sort, instead of a check and an index entry
    per row (the checks were a third of a seed's time, the indexes another third).

    Nothing is weakened: primary keys, unique and check constraints stay (the writer's own
    checks read the unique indexes), every foreign key is validated when it is re-created,
    before the transaction commits, and the whole load, set-aside and put-back included, is
    one transaction: an error or a crash leaves the tables as they were. Other sessions wait
    for the tables until the load commits. Use it only on the connection that writes."""
    tables = [m._meta.db_table for m in _LOAD_MODELS]
    with transaction.atomic(), connection.cursor() as cursor:
        # Rows written earlier in this transaction leave deferred checks pending, and
        # PostgreSQL will not alter a table under them: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            """
            SELECT t.relname, con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
            WHERE con.contype = 'f' AND con.conrelid = ANY(%s::regclass[])
            ORDER BY t.relname, con.conname
            """,
            [tables],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            """
            SELECT c.relname, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY 1
            """,
            [tables],
        )
        indexes = cursor.fetchall()
        q = connection.ops.quote_name
        for table, name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}")
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {q(name)}")
        # Dropping the constraints and indexes already took these locks; said explicitly, since
        # _Load relies on no other session writing the tables (or taking their ids).
        cursor.execute(f"LOCK TABLE {', '.join(q(t) for t in tables)} IN ACCESS EXCLUSIVE MODE")
        global _load
        load = _start_load(cursor) if _load is None else None
        try:
            if load is not None:
                _load = load
            with connection.execute_wrapper(load.before_statement) if load else contextlib.nullcontext():
                yield
            if load is not None:
                load.wait()
        finally:
            if load is not None:
                _load = None
                with contextlib.suppress(Exception):  # the error that brought us here is the one to raise
                    load.wait()
                load.executor.shutdown()
        if load is not None:
            for model, first in load.first_id.items():
                # The sequence goes on after the last id used (or gives ``first`` next).
                used = load.next_id[model] > first
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)",
                    [model._meta.db_table, load.next_id[model] - 1 if used else first, used],
                )
        # One sort per index and one join per foreign key: give them the memory for it.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # every deferrable constraint is initially deferred
        # Fresh statistics for the queries that follow a load (the planner would otherwise
        # take the tables for as empty as they were).
        cursor.execute(f"ANALYZE {', '.join(q(t) for t in tables)}")
        cursor.execute("SET LOCAL maintenance_work_mem TO DEFAULT")
        cursor.execute("SET LOCAL work_mem TO DEFAULT")


def _start_load(cursor) -> _Load | None:
    """The state of a fast load, if the ledger's tables are empty (else None: the writer then
    asks the database as usual)."""
    q = connection.ops.quote_name
    # Business groups too: the load writes them (their keys and ids are counted the same way).
    cursor.execute(f"LOCK TABLE {q(BusinessGroup._meta.db_table)} IN EXCLUSIVE MODE")
    models = (BusinessGroup, *_LOAD_MODELS)
    cursor.execute(
        " UNION ALL ".join(f"SELECT 1 FROM (SELECT 1 FROM {q(m._meta.db_table)} LIMIT 1) AS t" for m in models)  # noqa: S608
    )
    if cursor.fetchall():
        return None
    connection.ensure_connection()
    load = _Load(connection.connection, connections[DEFAULT_DB_ALIAS])
    for model in models:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [model._meta.db_table])
        load.first_id[model] = load.next_id[model] = cursor.fetchone()[0]
    return load


def ledger_rows_check(*, rows: LedgerRows, as_of: dt.datetime | None = None) -> dict[tuple[str, int], dict]:
    """The errors ``ledger_bulk_insert`` would raise for these rows (see
    :attr:`LedgerRowsError.row_errors`), without writing or locking anything."""
    now = clock.now()
    check = _Checker()
    _validate(rows, check, as_of or now, now, lock=False)
    return check.errors


def _write_rows(cursor, rows: LedgerRows, stored: dict, touched: set[int], now: dt.datetime, written: dict) -> None:
    copies = []
    for table in _TABLE_ORDER:
        objs = getattr(rows, table)
        _take_ids(cursor, _MODELS[table], objs)
        written[table] = len(objs)
        if objs:
            columns, attrs, not_null = _columns(_MODELS[table], type(objs[0]))
            copies.append(_copy_text(_MODELS[table], columns, map(operator.attrgetter(*attrs), objs), not_null))
    links = [(entry, invoice) for entry in rows.interactions for invoice in entry.invoices]
    if links:
        ids = _next_ids(cursor, InteractionInvoice, len(links))
        copies.append(
            _copy_text(
                InteractionInvoice,
                ("id", "interaction_id", "invoice_id"),
                ((i, entry, invoice) for i, (entry, invoice) in zip(ids, links, strict=True)),
            )
        )
    written["interaction_invoices"] = len(links)
    update = _stored_invoices_update(stored, touched, now)

    def write(cur) -> None:
        for sql, text in copies:
            cur.copy_expert(sql, text, _COPY_READ)  # positional: Django's debug cursor takes no keywords
        if update:
            cur.execute(*update)

    if _load is None:
        write(cursor)
        return
    for table, name in _LOAD_KEYS:
        _load.keys.setdefault(table, set()).update(v for v in (getattr(o, name) for o in getattr(rows, table)) if v)
    _load.submit(write)


def _validate(
    rows: LedgerRows, check: _Checker, as_of: dt.datetime, now: dt.datetime, lock: bool
) -> tuple[dict[int, list], set[int]]:
    """Every rule on every row. Returns the stored invoices the rows refer to (see
    ``_stored_invoices``, amount_paid including the batch's allocations) and the ids of those
    the allocations touch."""
    in_batch = {table: {id(r) for r in getattr(rows, table)} for table in ("groups", "clients", "contacts")}
    in_batch["invoices"] = {id(r) for r in rows.invoices}
    in_batch["payments"] = {id(r) for r in rows.payments}

    def ref(table, index, name, value, target, required=True) -> None:
        if value is None:
            if required:
                check.add(table, index, name, _("Este campo es obligatorio."))
        elif type(value) is not int and id(value) not in in_batch[target]:
            check.add(table, index, name, _("Se refiere a una fila que no está en la carga."))

    _unique(check, "groups", rows.groups, "name", BusinessGroup, _("Ya existe un grupo con este nombre."))
    for i, g in enumerate(rows.groups):
        if not g.name:
            check.add("groups", i, "name", _("Este campo es obligatorio."))

    _unique(check, "clients", rows.clients, "tax_id", Client, _("Ya existe un cliente con este RFC / NIF."))
    for i, c in enumerate(rows.clients):
        if not c.legal_name:
            check.add("clients", i, "legal_name", _("Este campo es obligatorio."))
        if c.segment_id is None:
            check.add("clients", i, "segment", _("Indique el segmento."))
        ref("clients", i, "business_group", c.business_group, "groups", required=False)
        for name, kind in (
            ("kind", "client_kind"),
            ("status", "client_status"),
            ("language", "language"),
            ("currency", "currency"),
            ("country", "country"),
            ("time_zone", "time_zone"),
        ):
            if not check.ok(kind, getattr(c, name)):
                check.add("clients", i, name, _("Valor no válido: %(v)s") % {"v": getattr(c, name)})
        if not isinstance(c.credit_limit, Decimal) or c.credit_limit < 0:
            check.add("clients", i, "credit_limit", _("El límite de crédito no puede ser negativo."))
        else:
            check.money("clients", i, c)
        if c.created_at is None:
            c.created_at = now
        if c.updated_at is None:
            c.updated_at = c.created_at

    contact_client = {}
    for i, c in enumerate(rows.contacts):
        ref("contacts", i, "client", c.client, "clients")
        contact_client[id(c)] = c.client
        if not c.name:
            check.add("contacts", i, "name", _("Este campo es obligatorio."))
        if not check.ok("role", c.role):
            check.add("contacts", i, "role", _("Valor no válido: %(v)s") % {"v": c.role})
        if not check.ok("channel", c.preferred_channel):
            check.add("contacts", i, "preferred_channel", _("Valor no válido: %(v)s") % {"v": c.preferred_channel})
        if c.email and not check.ok("email", c.email):
            check.add("contacts", i, "email", _("Introduzca una dirección de correo electrónico válida."))
        if c.created_at is None:
            c.created_at = now

    duplicate_number = _("Ya existe una factura con este folio.")
    _unique(check, "invoices", rows.invoices, "number", Invoice, duplicate_number)
    paid: dict[InvoiceRow | int, Decimal] = {}  # invoice row or stored id -> allocated in this batch
    for i, a in enumerate(rows.allocations):
        ref("allocations", i, "payment", a.payment, "payments")
        ref("allocations", i, "invoice", a.invoice, "invoices")
        if not _cents(a.amount):
            check.add("allocations", i, "amount", _("Los importes aplicados deben ser positivos, al centavo."))
            continue
        paid[a.invoice] = paid.get(a.invoice, ZERO) + a.amount
        if a.created_at is None:
            a.created_at = now
    # Locked: the stored invoices allocations pay (their balances change). The invoices a
    # timeline entry links are only read for their client: a timeline batch links the tens of
    # thousands an import has just written, and a lock would write each of their rows again.
    allocated_ids = {a.invoice for a in rows.allocations if type(a.invoice) is int}
    stored = _stored_invoices(allocated_ids, lock)
    linked_ids = {inv for e in rows.interactions for inv in e.invoices if type(inv) is int} - allocated_ids
    stored.update(_stored_invoices(linked_ids, lock=False))

    for i, inv in enumerate(rows.invoices):
        ref("invoices", i, "client", inv.client, "clients")
        if not inv.number:
            check.add("invoices", i, "number", _("Este campo es obligatorio."))
        if not check.ok("currency", inv.currency):
            check.add("invoices", i, "currency", _("Use un código de moneda ISO 4217 de tres letras (MXN, EUR, USD)."))
        if not _cents(inv.amount):
            check.add("invoices", i, "amount", _("El importe debe ser positivo, al centavo."))
            continue
        check.money("invoices", i, inv)
        if inv.due_date < inv.issue_date:
            check.add("invoices", i, "due_date", _("El vencimiento no puede ser anterior a la fecha de emisión."))
        allocated = paid.get(inv, ZERO)
        if inv.amount_paid != allocated:
            check.add(
                "invoices",
                i,
                "amount_paid",
                _("Lo pagado (%(p)s) no es la suma de lo aplicado (%(a)s).") % {"p": inv.amount_paid, "a": allocated},
            )
        elif allocated > inv.amount:
            check.add(
                "invoices",
                i,
                "amount_paid",
                _("A la factura %(n)s se le quiere aplicar %(a)s, pero su saldo es %(b)s.")
                % {"n": inv.number, "a": allocated, "b": inv.amount},
            )
        if not check.ok("invoice_status", inv.status):
            check.add("invoices", i, "status", _("Estado no válido."))
        elif inv.status in _PAYMENT_STATUSES:
            if inv.status != _payment_status(inv.amount, inv.amount_paid):
                check.add("invoices", i, "status", _("El estado no corresponde a lo pagado."))
        elif inv.status == Invoice.Status.CANCELLED and allocated:
            check.add("invoices", i, "status", _("No se puede cancelar una factura con pagos aplicados."))
        if inv.created_at is None:
            inv.created_at = now
        if inv.updated_at is None:
            inv.updated_at = inv.created_at

    for key, allocated in paid.items():
        if type(key) is int and key in stored:
            row = stored[key]
            row[3] += allocated
            if row[3] > row[2]:
                for i, a in enumerate(rows.allocations):
                    if a.invoice == key:
                        check.add(
                            "allocations",
                            i,
                            "amount",
                            _("A la factura %(n)s se le quiere aplicar %(a)s, pero su saldo es %(b)s.")
                            % {"n": row[5], "a": allocated, "b": row[2] - row[3] + allocated},
                        )

    duplicate_reference = _("Ya existe un pago con esta referencia.")
    _unique(check, "payments", rows.payments, "reference", Payment, duplicate_reference)
    last_day = as_of.date() + dt.timedelta(days=1)
    applied: dict[PaymentRow, Decimal] = {}
    for i, a in enumerate(rows.allocations):
        if type(a.payment) is int or id(a.payment) not in in_batch["payments"] or not _cents(a.amount):
            continue
        applied[a.payment] = applied.get(a.payment, ZERO) + a.amount
        if type(a.invoice) is int:
            inv = stored.get(a.invoice)
            if inv is None:
                check.add("allocations", i, "invoice", _("La factura %(id)s no existe.") % {"id": a.invoice})
                continue
            client, currency, status = inv[0], inv[1], inv[4]
        else:
            client, currency, status = a.invoice.client, a.invoice.currency, a.invoice.status
        if client != a.payment.client:
            check.add("allocations", i, "invoice", _("La factura no es del cliente del pago."))
        if currency != a.payment.currency:
            check.add(
                "allocations",
                i,
                "invoice",
                _("La factura está en %(c)s, no en %(p)s.") % {"c": currency, "p": a.payment.currency},
            )
        if status == Invoice.Status.CANCELLED:
            check.add("allocations", i, "invoice", _("La factura está cancelada."))
    seen_pairs: set[tuple] = set()
    for i, a in enumerate(rows.allocations):
        pair = (a.payment, a.invoice)
        if pair in seen_pairs:
            check.add("allocations", i, "invoice", _("El pago ya se aplicó a esta factura en la carga."))
        seen_pairs.add(pair)
    for i, p in enumerate(rows.payments):
        ref("payments", i, "client", p.client, "clients")
        if not _cents(p.amount):
            check.add("payments", i, "amount", _("El importe debe ser positivo, al centavo."))
            continue
        check.money("payments", i, p)
        if not check.ok("currency", p.currency):
            check.add("payments", i, "currency", _("Use un código de moneda ISO 4217 de tres letras (MXN, EUR, USD)."))
        if not check.ok("method", p.method):
            check.add("payments", i, "method", _("Valor no válido: %(v)s") % {"v": p.method})
        if p.received_on > last_day:
            check.add("payments", i, "received_on", _("La fecha de pago no puede estar en el futuro."))
        allocated = applied.get(p, ZERO)
        if allocated > p.amount:
            check.add("payments", i, "allocations", _("Lo aplicado a facturas supera el importe del pago."))
        elif p.unallocated != p.amount - allocated:
            check.add(
                "payments",
                i,
                "unallocated",
                _("El saldo a favor (%(u)s) no es el importe menos lo aplicado (%(r)s).")
                % {"u": p.unallocated, "r": p.amount - allocated},
            )
        if p.created_at is None:
            p.created_at = now

    latest = as_of + dt.timedelta(minutes=5)
    stored_contacts = _stored_contact_clients({e.contact for e in rows.interactions if type(e.contact) is int})
    for i, e in enumerate(rows.interactions):
        ref("interactions", i, "client", e.client, "clients")
        if not e.summary or len(e.summary) > 255:
            check.add("interactions", i, "summary", _("Indique un resumen de hasta 255 caracteres."))
        for name, kind in (
            ("kind", "kind"),
            ("direction", "direction"),
            ("outcome", "outcome"),
            ("nonpayment_reason", "reason"),
        ):
            if not check.ok(kind, getattr(e, name)):
                check.add("interactions", i, name, _("Valor no válido: %(v)s") % {"v": getattr(e, name)})
        if e.contact is not None:
            ref("interactions", i, "contact", e.contact, "contacts")
            owner = contact_client.get(id(e.contact)) if type(e.contact) is not int else stored_contacts.get(e.contact)
            if owner != e.client:
                check.add("interactions", i, "contact", _("El contacto no pertenece a este cliente."))
        for inv in e.invoices:
            owner = stored[inv][0] if type(inv) is int and inv in stored else getattr(inv, "client", None)
            if owner != e.client:
                check.add("interactions", i, "invoices", _("Alguna factura no pertenece a este cliente."))
                break
        if e.occurred_at is None:
            e.occurred_at = now
        elif e.occurred_at > latest:
            check.add("interactions", i, "occurred_at", _("La fecha y hora no puede estar en el futuro."))
        if e.created_at is None:
            e.created_at = e.occurred_at
    return stored, {key for key in paid if type(key) is int}


def _unique(check: _Checker, table: str, objs: list, name: str, model, message: str) -> None:
    """A natural key unique in the batch and against the stored rows (empty values aside:
    tax ids and references are optional)."""
    values = [getattr(o, name) for o in objs]
    given = [v for v in values if v]
    if not given:
        return
    if _load is not None and model in _load.next_id:  # the stored values are the ones this load wrote
        loaded = _load.keys.get(table, set())
        taken = {v for v in given if v in loaded}
    else:
        column = model._meta.get_field(name).column
        q = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {q(column)} FROM {q(model._meta.db_table)} WHERE {q(column)} = ANY(%s)",  # noqa: S608
                [given],
            )
            taken = {row[0] for row in cursor.fetchall()}
    if len(set(given)) == len(given) and not taken:
        return
    for i, v in enumerate(values):
        if v and v in taken:
            check.add(table, i, name, message)
        taken.add(v)


def _stored_invoices(ids: set[int], lock: bool) -> dict[int, list]:
    """{id: [client_id, currency, amount, amount_paid, status, number]} of stored invoices,
    locked in id order when ``lock``."""
    if not ids:
        return {}
    if _load is not None:
        _load.wait()  # the rows an earlier call of the load wrote
    q = connection.ops.quote_name
    sql = (
        f"SELECT id, client_id, currency, amount, amount_paid, status, number FROM {q(Invoice._meta.db_table)} "  # noqa: S608
        "WHERE id = ANY(%s) ORDER BY id" + (" FOR UPDATE" if lock else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(ids)])
        return {row[0]: list(row[1:]) for row in cursor.fetchall()}


def _stored_contact_clients(ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    if _load is not None:
        _load.wait()
    return dict(Contact.objects.filter(pk__in=ids).values_list("pk", "client_id"))


def _stored_invoices_update(stored: dict[int, list], touched: set[int], now: dt.datetime) -> tuple | None:
    """The new amount_paid (and payment-derived status) of the stored invoices that
    allocations of the batch touched: one ``UPDATE … FROM unnest(arrays)`` (SQL, parameters)."""
    ids = sorted(touched)
    if not ids:
        return None
    statuses = [
        _payment_status(stored[i][2], stored[i][3]) if stored[i][4] in _PAYMENT_STATUSES else stored[i][4] for i in ids
    ]
    q = connection.ops.quote_name
    table = q(Invoice._meta.db_table)
    return (
        f"""
        UPDATE {table} SET amount_paid = v.paid, status = v.status, updated_at = %s
        FROM unnest(%s::bigint[], %s::numeric[], %s::text[]) AS v(id, paid, status)
        WHERE {table}.id = v.id
        """,  # noqa: S608 - quoted table name from model metadata; values are parameters
        [now, ids, [stored[i][3] for i in ids], statuses],
    )


def _next_ids(cursor, model, n: int) -> Sequence[int]:
    """``n`` new ids from the table's sequence (safe with concurrent writers). Without a
    concurrent writer they are consecutive: then only the first and last come back, not a
    million rows; else the list of them.

    Inside a ``ledger_bulk_load`` of an empty ledger they come from the load's own counters
    (see :class:`_Load`), without asking the database."""
    if _load is not None and model in _load.next_id:
        return _load.take_ids(model, n)
    cursor.execute(
        """
        SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL ELSE array_agg(v ORDER BY v) END
        FROM (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS v FROM generate_series(1, %s)) AS ids
        """,
        [model._meta.db_table, n],
    )
    first, last, scattered = cursor.fetchone()
    return scattered if scattered is not None else range(first, last + 1)


def _take_ids(cursor, model, objs: list) -> None:
    missing = [o for o in objs if o.id is None]
    if missing:
        for obj, pk in zip(missing, _next_ids(cursor, model, len(missing)), strict=True):
            obj.id = pk


@functools.cache
def _columns(model, row_class) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The table's columns, the row attribute each is read from (a reference is read from the
    attribute named like the model's field, holding an id or a row), and the text columns that
    are never NULL (COPY's CSV format reads an unquoted empty value as NULL otherwise)."""
    fields = [f for f in model._meta.concrete_fields if not f.generated]
    slots = set(row_class.__slots__)
    attrs = tuple(f.name if f.is_relation and f.name in slots else f.attname for f in fields)
    missing = [a for a in attrs if a not in slots]
    if missing:
        raise TypeError(f"{row_class.__name__} lacks {missing} for {model._meta.label}")
    not_null = tuple(f.column for f in fields if not f.null and f.get_internal_type() in ("CharField", "TextField"))
    return tuple(f.column for f in fields), attrs, not_null


_COPY_READ = 1 << 20  # bytes COPY reads from the text at a time


def _copy_text(model, columns, values: Iterable[tuple], not_null: Sequence[str] = ()) -> tuple[str, io.StringIO]:
    """``COPY … FROM STDIN`` in CSV and its text: the csv module (in C) writes the lines with
    str() of each value (dates, decimals and date-times as PostgreSQL reads them, a row as
    its id) and None as an unquoted empty field, which COPY reads as NULL."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(values)
    buf.seek(0)
    q = connection.ops.quote_name
    options = "FORMAT csv" + (f", FORCE_NOT_NULL ({', '.join(map(q, not_null))})" if not_null else "")
    sql = f"COPY {q(model._meta.db_table)} ({', '.join(map(q, columns))}) FROM STDIN WITH ({options})"  # noqa: S608
    return sql, buf
