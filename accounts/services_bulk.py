"""Set-based writes to the ledger, for bulk loads (imports of accounting exports).

The single-row services in :mod:`accounts.services` validate one object at a time
(``full_clean`` runs a query per unique and check constraint) and write one timeline entry
per invoice or payment: about 100 rows a second. These do the same work in sets:

- the same rules, checked without a query per row: the models' field validators
  (``clean_fields``), the services' own checks (``ensure_manager``/``ensure_can_work``,
  ``_check_requested``, the allocation rules), and one query per natural key (invoice
  numbers, payment references, tax ids) instead of one per row. The database constraints
  stay the last word: an ``IntegrityError`` still rolls everything back;
- ``bulk_create`` in batches, and one ``UPDATE … FROM unnest(…)`` (PostgreSQL) or
  ``bulk_update`` (SQLite) for the invoices that payments touch;
- the audit history as the single-row services leave it (``audit.log_creations`` and
  ``log_updates``: a CREATE entry per new row, an UPDATE entry per changed row, in one INSERT);
- the timeline as **one summary entry per client** per load ("Importadas 37 facturas"),
  collected in a :class:`TimelineBatch` shared by every call of one import, so a file split
  in chunks still writes one entry per client.

Every function takes keyword-only arguments and the acting user ``by``, and runs in one
transaction (callers that load in chunks wrap all chunks in their own). Invalid input raises
:class:`BulkValidationError`, which names the failing items by their position in the input.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from auditlog.diff import get_field_value
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, JSONField
from django.dispatch import Signal
from django.utils import timezone
from django.utils.encoding import smart_str
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import audit
from .models import ZERO, Client, Interaction, Invoice, Payment, PaymentAllocation, validate_time_zone
from .services import (
    CLIENT_FIELDS,
    AllocationRequest,
    _apply,
    _check_requested,
    _payment_summary,
    ensure_can_work,
    ensure_manager,
    to_money,
)
from .utils import actor, money_str

BATCH_SIZE = 2000  # rows per INSERT (Django lowers it on SQLite to fit its parameter limit)
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

    def client_created(self, client: Client) -> None:
        self._clients[client.pk].created = True

    def client_changed(self, client: Client, lines: list[str]) -> None:
        self._clients[client.pk].changes.extend(lines)

    def invoices_created(self, invoices: Iterable[Invoice]) -> None:
        for inv in invoices:
            self._clients[inv.client_id].invoices.append(inv)

    def payment_recorded(self, payment: Payment, allocations: list[PaymentAllocation]) -> None:
        self._clients[payment.client_id].payments.append((payment, allocations))

    def flush(self) -> list[Interaction]:
        """Write the entries (one INSERT for all, one for their invoice links)."""
        now = timezone.now()
        author = actor(self.by)
        entries, links = [], []
        for client_id, lines in self._clients.items():
            entries.append(
                Interaction(
                    client_id=client_id,
                    kind=Interaction.Kind.SYSTEM,
                    direction=Interaction.Direction.INTERNAL,
                    summary=self._summary(lines)[:255],
                    body=self._body(lines),
                    author=author,
                    occurred_at=now,
                    created_at=now,
                )
            )
            # Linked: the invoices of the lines shown (the timeline shows a chip per link; a
            # chip for each of a client's 5,000 imported invoices would bury the page).
            shown_invoices, shown_payments = self._shown(lines)
            invoice_ids = [inv.pk for inv in shown_invoices]
            invoice_ids += [a.invoice.pk for _p, allocs in shown_payments for a in allocs]
            links.append(list(dict.fromkeys(invoice_ids)))
        _insert(Interaction, entries)
        _insert(
            InteractionInvoice,
            [
                InteractionInvoice(interaction_id=entry.pk, invoice_id=invoice_id)
                for entry, ids in zip(entries, links, strict=True)
                for invoice_id in ids
            ],
        )
        self._clients.clear()
        return entries

    def _summary(self, lines: _ClientLines) -> str:
        parts = []
        if lines.created:
            parts.append(_("Alta del cliente"))
        elif lines.changes:
            parts.append(_("Datos del cliente actualizados"))
        if lines.invoices:
            n = len(lines.invoices)
            parts.append(
                ngettext("Importada %(n)s factura por %(amount)s", "Importadas %(n)s facturas por %(amount)s", n)
                % {"n": n, "amount": _totals((inv.amount, inv.currency) for inv in lines.invoices)}
            )
        if lines.payments:
            n = len(lines.payments)
            parts.append(
                ngettext("%(n)s pago registrado por %(amount)s", "%(n)s pagos registrados por %(amount)s", n)
                % {"n": n, "amount": _totals((p.amount, p.currency) for p, _a in lines.payments)}
            )
        text = " · ".join(parts)
        if self.source:
            text += " " + _("(archivo %(file)s)") % {"file": self.source}
        return text

    @staticmethod
    def _shown(lines: _ClientLines) -> tuple[list[Invoice], list[tuple[Payment, list[PaymentAllocation]]]]:
        shown_invoices = lines.invoices[:BODY_LINES]
        return shown_invoices, lines.payments[: BODY_LINES - len(shown_invoices)]

    def _body(self, lines: _ClientLines) -> str:
        shown_invoices, shown_payments = self._shown(lines)
        out = list(lines.changes)
        out += [
            _("Factura %(number)s emitida por %(amount)s, vence el %(due)s")
            % {
                "number": inv.number,
                "amount": money_str(inv.amount, inv.currency),
                "due": date_format(inv.due_date, "SHORT_DATE_FORMAT"),
            }
            for inv in shown_invoices
        ]
        out += [
            f"{date_format(payment.received_on, 'SHORT_DATE_FORMAT')}: {_payment_summary(payment, allocations)}"
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


def _insert(model, objs: list, message_field: str = "", message: str = "") -> None:
    """Insert new objects and set their ids, with the database as the last word: a
    constraint broken by a concurrent writer becomes a ValidationError on ``message_field``
    (and the caller's transaction rolls back)."""
    if not objs:
        return
    try:
        with transaction.atomic():
            # Measured against an INSERT … SELECT FROM unnest(arrays): no faster here, the time
            # is the database's (indexes, constraints), not Django's compiling of the values.
            model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
    except IntegrityError as exc:
        if not message_field:
            raise
        raise ValidationError({message_field: message}) from exc


def _log_created(by, objs: list) -> None:
    """Audit CREATE entries for new rows: the entries ``audit.log_creations`` writes, with the
    diff taken over the model's own columns. auditlog's diff of a new object also reads every
    relation pointing at it (reverse foreign keys, one-to-ones): for a row just inserted they
    hold nothing, yet reading them costs a query or a manager per relation and per row, which
    made an import of 10,000 invoices spend two thirds of its time here."""
    actor, now = audit._actor_for(by), timezone.now()
    entries = []
    by_model: dict[type, list] = defaultdict(list)
    for obj in objs:
        by_model[type(obj)].append(obj)
    for model, group in by_model.items():
        if not auditlog.contains(model):
            continue
        spec = auditlog.get_model_fields(model)
        if spec["mask_fields"] or getattr(settings, "AUDITLOG_STORE_JSON_CHANGES", False):
            # Masked values or JSON-typed changes: leave them to auditlog's own diff.
            audit.log_creations(by=by, objects=group)
            continue
        fields = [
            f
            for f in model._meta.concrete_fields
            if not f.generated
            and (not spec["include_fields"] or f.name in spec["include_fields"])
            and f.name not in spec["exclude_fields"]
        ]
        getters = [(f.name, _audit_value(f)) for f in fields]
        for obj in group:
            changes = {}
            for name, value_of in getters:
                value = value_of(obj)
                if value != "None":  # auditlog's "before" of a new row
                    changes[name] = ["None", value if type(value) is str else smart_str(value)]
            entries.append(audit._entry(obj, LogEntry.Action.CREATE, changes, actor, now))
    if connection.vendor == "postgresql":
        _pg_insert(LogEntry, entries)
    else:
        LogEntry.objects.bulk_create(entries, batch_size=BATCH_SIZE)


def _audit_value(f):
    """auditlog's ``get_field_value`` for one field, its branch chosen once per field rather
    than once per value (it reads two settings and tests the field's type on every call):
    the plain branch, ``smart_str`` of the attribute, and the id for a foreign key; its own
    code for date-times, JSON and foreign keys shown by their string."""
    fk_as_string = getattr(settings, "AUDITLOG_USE_FK_STRING_REPRESENTATION", False)
    if isinstance(f, DateTimeField | JSONField) or (f.is_relation and fk_as_string):
        return lambda obj: get_field_value(obj, f)
    if f.is_relation and (f.one_to_one or f.many_to_one) and hasattr(f, "rel_class"):
        attname = f.attname
        return lambda obj: smart_str(getattr(obj, attname), strings_only=True)
    name = f.name
    return lambda obj: str(value) if type(value := smart_str(getattr(obj, name))).__name__ == "__proxy__" else value


def _pg_insert(model, objs: list) -> None:
    """``INSERT … SELECT FROM unnest(one array per column)``: Django's ``bulk_create``
    compiles each value of each row into the statement, which for the audit entries (a JSON
    document each) took more time than the database's own work. Values go as they are, JSON
    as text; no ids are read back (the audit entries need none)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sql = f"INSERT INTO {q(model._meta.db_table)} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    attnames = [f.attname for f in fields]
    with connection.cursor() as cursor:
        for start in range(0, len(objs), LOCK_CHUNK):
            chunk = objs[start : start + LOCK_CHUNK]
            cursor.execute(
                sql,
                [
                    [
                        json.dumps(v, cls=DjangoJSONEncoder) if a in json_fields and v is not None else v
                        for v in (getattr(obj, a) for obj in chunk)
                    ]
                    for a in attnames
                ],
            )


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
        new, changed, lines = [], [], {}
        fields_changed: set[str] = set()
        now = timezone.now()
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
        _insert(Client, new, "tax_id", _("Ya existe un cliente con este RFC / NIF."))
        if changed:
            try:
                with transaction.atomic():
                    Client.objects.bulk_update(changed, [*sorted(fields_changed), "updated_at"], batch_size=500)
            except IntegrityError as exc:
                raise ValidationError({"tax_id": _("Ya existe un cliente con este RFC / NIF.")}) from exc
        _log_created(by, new)
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
    now = timezone.now()
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
        _clean(inv, _INVOICE_NOT_CLEANED, i, errors)
        if i not in errors and inv.due_date < inv.issue_date:
            _add_error(errors, i, "due_date", _("El vencimiento no puede ser anterior a la fecha de emisión."))
        objs.append(inv)
    duplicate = _("Ya existe una factura con este folio.")
    seen: set[str] = set()
    with transaction.atomic():
        taken = set(Invoice.objects.filter(number__in=[o.number for o in objs]).values_list("number", flat=True))
        for i, inv in enumerate(objs):
            if inv.number in taken or inv.number in seen:
                _add_error(errors, i, "number", duplicate)
            seen.add(inv.number)
        if errors:
            raise BulkValidationError(errors)
        _insert(Invoice, objs, "number", duplicate)
        _log_created(by, objs)
        own = timeline or TimelineBatch(by=by, source=source)
        own.invoices_created(objs)
        _finish(timeline, own)
    return objs


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
    today = timezone.localdate()
    author = actor(by)
    now = timezone.now()
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
        new, allocations, touched = [], [], {}
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
            allocations += done
            applied.append((payment, done))
            payment.created = True
            result[i] = payment
        if errors:
            raise BulkValidationError(errors)
        _insert(Payment, new, "reference", _("Ya existe un pago con esta referencia."))
        _insert(PaymentAllocation, allocations)
        _save_invoice_balances(list(touched.values()), now)
        _log_created(by, [*new, *allocations])
        audit.log_updates(by=by, before=before, after=touched.values())
        payments_bulk_recorded.send(sender=Payment, recorded=applied)
        own = timeline or TimelineBatch(by=by, source=source)
        for payment, done in applied:
            own.payment_recorded(payment, done)
        _finish(timeline, own)
    return result


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


def _save_invoice_balances(invoices: list[Invoice], now: dt.datetime) -> None:
    """Write amount_paid and status of many invoices: one statement per chunk on PostgreSQL
    (``UPDATE … FROM unnest(arrays)``), Django's ``bulk_update`` elsewhere."""
    if not invoices:
        return
    if connection.vendor != "postgresql":
        for inv in invoices:
            inv.updated_at = now
        Invoice.objects.bulk_update(invoices, ["amount_paid", "status", "updated_at"], batch_size=500)
        return
    q = connection.ops.quote_name
    table = q(Invoice._meta.db_table)
    sql = f"""
        UPDATE {table} SET {q("amount_paid")} = v.paid, {q("status")} = v.status, {q("updated_at")} = %s
        FROM unnest(%s::bigint[], %s::numeric[], %s::text[]) AS v(id, paid, status)
        WHERE {table}.{q("id")} = v.id
    """  # noqa: S608 - quoted identifiers from model metadata; values are parameters
    with connection.cursor() as cursor:
        for start in range(0, len(invoices), LOCK_CHUNK):
            chunk = invoices[start : start + LOCK_CHUNK]
            cursor.execute(
                sql,
                [now, [inv.pk for inv in chunk], [inv.amount_paid for inv in chunk], [inv.status for inv in chunk]],
            )
