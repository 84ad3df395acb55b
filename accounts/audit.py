"""Audit history and login throttling: who changed what and when, and who may try to log in.

**Audit history** is django-auditlog. The models it follows are registered in settings
(``AUDITLOG_INCLUDE_TRACKING_MODELS``); every ``save()`` and ``delete()`` of them writes a
``LogEntry`` with the field changes (before → after). Who made the change:

- in a request, the logged-in user: ``AuditActorMiddleware`` keeps the request and the actor is
  read when the entry is written, so a REST API call authenticated by its token (which DRF
  does inside the view, after every middleware) is credited to the token's user too;
- in background code acting for a person (an import started by a manager), ``acting_as(user)``;
- otherwise nobody: the system (planner, workers, nightly jobs), shown as «Sistema».

Set-based writes (``QuerySet.update``, ``bulk_update``, ``bulk_create``, raw SQL) send no
signal. Services that make such a change on a person's behalf record it with ``snapshot`` and
``log_updates`` / ``log_creations``: the same entries, in one INSERT. A load of thousands of
new rows (an import, ``accounts.services_bulk``) writes **one entry per model and load**
instead (``log_bulk_creation``): who, when, from which file, and which rows (their ids, as
ranges). ``object_history`` and ``field_history`` read both kinds: for a row created in bulk,
the value it was created with is the "before" of its first later change, or its value now.

**Login throttling** is django-axes: ``LoginThrottleBackend`` refuses a locked-out username
and address before the password is checked; the lock-out page is
``accounts.views_audit.lockout_response``; ``lockouts`` lists the current ones.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from auditlog.cid import get_cid
from auditlog.diff import get_field_value, model_instance_diff
from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Count, Max, Model, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils import formats, timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from accounts import clock

from .models import Client, Contact, Invoice, Payment, PaymentAllocation
from .utils import actor

# --- who made the change -------------------------------------------------------------------

_current_request: ContextVar = ContextVar("morosos_audit_request", default=None)
_acting_user: ContextVar = ContextVar("morosos_audit_actor", default=None)


class AuditActorMiddleware(AuditlogMiddleware):
    """auditlog's middleware (correlation id, context), with the actor resolved late.

    auditlog reads ``request.user`` when the request starts. A REST API client authenticates
    with its token inside the view (Django REST framework does it there), so at that moment it
    is still anonymous. Here the request is kept and ``fill_actor`` asks it for its user when
    an entry is written: by then DRF has set the token's user on the request.
    """

    def get_extra_data(self, request):
        data = super().get_extra_data(request)
        data.pop("actor", None)
        return data

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return super().__call__(request)
        finally:
            _current_request.reset(token)


@contextlib.contextmanager
def acting_as(user) -> Iterator[None]:
    """Credit the audited changes made inside the block to ``user`` (background work done for
    a person, e.g. an import a manager started). ``None`` or an anonymous user: the system."""
    token = _acting_user.set(actor(user))
    try:
        yield
    finally:
        _acting_user.reset(token)


def current_actor():
    """The user changes are credited to right now, or None for the system."""
    user = _acting_user.get()
    if user is not None:
        return user
    request = _current_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return actor(user) if isinstance(user, get_user_model()) else None


def fill_actor(sender, instance, **kwargs):
    """pre_save of LogEntry: the actor, unless the entry already names one."""
    if instance.actor_id is None:
        actor = current_actor()
        if actor is not None:
            instance.actor = actor
            instance.actor_email = actor.email or None


# --- explicit entries for set-based writes -------------------------------------------------


def snapshot(objects: Iterable[Model]) -> dict:
    """Copies of objects as they are before a set-based change, keyed by (model, pk)."""
    return {(type(obj), obj.pk): copy.copy(obj) for obj in objects}


def _actor_for(by):
    return actor(by) or current_actor()


def _entry(obj: Model, action: int, changes: dict, actor, now) -> LogEntry:
    return LogEntry(
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_pk=str(obj.pk),
        object_id=obj.pk if isinstance(obj.pk, int) else None,
        object_repr=str(obj),
        action=action,
        changes=changes,
        actor=actor,
        actor_email=(actor.email or None) if actor is not None else None,
        timestamp=now,
        cid=get_cid(),
    )


def log_updates(*, by, before: dict, after: Iterable[Model]) -> int:
    """Write an UPDATE entry for each object of ``after`` that differs from its ``snapshot``
    (fields excluded in the registration are ignored, as for a save). One INSERT."""
    actor, now = _actor_for(by), clock.now()
    entries = []
    for obj in after:
        old = before.get((type(obj), obj.pk))
        if old is None or not auditlog.contains(type(obj)):
            continue
        # auditlog's diff, over the fields whose values differ: the others would compare
        # equal anyway, and a load settling thousands of invoices changes two fields of ten.
        differ = [
            name
            for f in obj._meta.concrete_fields
            if getattr(old, f.attname) != getattr(obj, f.attname)
            for name in {f.name, f.attname}
        ]
        changes = model_instance_diff(old, obj, fields_to_check=differ) if differ else None
        if changes:
            entries.append(_entry(obj, LogEntry.Action.UPDATE, changes, actor, now))
    _insert(entries)
    return len(entries)


BULK_INSERT_FROM = 100  # entries: fewer go through bulk_create


def _insert(entries: list[LogEntry]) -> None:
    """Write the entries: ``bulk_create`` for a few; for many, one ``INSERT … SELECT FROM
    unnest(one array per column)`` per 5,000 (``bulk_create`` compiles every value of every
    row into the statement, which for thousands of JSON documents costs more than the
    database's own work). No ids are read back."""
    if len(entries) < BULK_INSERT_FROM:
        LogEntry.objects.bulk_create(entries)
        return
    fields = [f for f in LogEntry._meta.concrete_fields if not f.primary_key and not f.generated]
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sql = f"INSERT INTO {q(LogEntry._meta.db_table)} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor:
        for start in range(0, len(entries), 5000):
            chunk = entries[start : start + 5000]
            cursor.execute(
                sql,
                [
                    [
                        json.dumps(v, cls=DjangoJSONEncoder) if f.attname in json_fields and v is not None else v
                        for v in (getattr(entry, f.attname) for entry in chunk)
                    ]
                    for f in fields
                ],
            )


def log_creations(*, by, objects: Iterable[Model]) -> int:
    """Write a CREATE entry for each object inserted by ``bulk_create`` (pks needed). One INSERT."""
    actor, now = _actor_for(by), clock.now()
    entries = [
        _entry(obj, LogEntry.Action.CREATE, model_instance_diff(None, obj) or {}, actor, now)
        for obj in objects
        if obj.pk is not None and auditlog.contains(type(obj))
    ]
    _insert(entries)
    return len(entries)


# --- one entry for a set of new rows ----------------------------------------------------------

BULK = "bulk"  # additional_data key of an entry that stands for a set of rows


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs: a load takes its ids from the table's sequence, so
    5,000 rows are usually one run."""
    out: list[list[int]] = []
    for pk in sorted(ids):
        if out and pk == out[-1][1] + 1:
            out[-1][1] = pk
        else:
            out.append([pk, pk])
    return out


def log_bulk_creation(*, by, objects: Sequence[Model], source: str = "") -> int:
    """One CREATE entry per audited model for rows a set-based load inserted (ids needed):
    who (``by``, else the current actor), when, how many, from which file (``source``) and
    which rows (``additional_data["bulk"]["ranges"]``). The values are the rows' own: a later
    change records its before → after (see ``field_history``). Returns the entries written."""
    who, now = _actor_for(by), clock.now()
    by_model: dict[type, list[int]] = defaultdict(list)
    for obj in objects:
        if obj.pk is not None and auditlog.contains(type(obj)):
            by_model[type(obj)].append(obj.pk)
    entries = []
    for model, ids in by_model.items():
        ranges = id_ranges(ids)
        what = model._meta.verbose_name if len(ids) == 1 else model._meta.verbose_name_plural
        label = _("Alta en bloque de %(n)s %(what)s") % {"n": len(ids), "what": what}
        if source:
            label += " " + _("(archivo %(file)s)") % {"file": source}
        entries.append(
            LogEntry(
                content_type=ContentType.objects.get_for_model(model),
                object_pk=f"{ranges[0][0]}-{ranges[-1][1]}"[:255],
                object_id=None,
                object_repr=label,
                action=LogEntry.Action.CREATE,
                changes={},
                actor=who,
                actor_email=(who.email or None) if who is not None else None,
                timestamp=now,
                cid=get_cid(),
                additional_data={BULK: {"count": len(ids), "ranges": ranges, "source": source}},
            )
        )
    LogEntry.objects.bulk_create(entries)
    return len(entries)


def _bulk_entries(model: type[Model], ids: QuerySet) -> Q:
    """The bulk entries of ``model`` whose ranges hold any id of ``ids`` (a queryset of the
    model): one subquery, over the few bulk entries of the model."""
    content_type = ContentType.objects.get_for_model(model)
    sub_sql, sub_params = ids.values("pk").query.sql_with_params()
    table = connection.ops.quote_name(LogEntry._meta.db_table)
    sql = f"""
        SELECT e.id FROM {table} e
        WHERE e.content_type_id = %s AND e.object_id IS NULL AND (e.additional_data -> '{BULK}') IS NOT NULL
          AND EXISTS (
            SELECT 1 FROM jsonb_array_elements(e.additional_data -> '{BULK}' -> 'ranges') AS r, ({sub_sql}) AS s(id)
            WHERE s.id BETWEEN (r ->> 0)::bigint AND (r ->> 1)::bigint
          )
    """  # noqa: S608 - quoted table name from model metadata; values are parameters
    return Q(pk__in=RawSQL(sql, [content_type.pk, *sub_params]))  # noqa: S611 - no user text in the SQL


def object_history(obj: Model) -> QuerySet:
    """Every entry about one object, oldest first: its own entries and the bulk entry of the
    load that created it, if any. One query."""
    model = type(obj)
    own = Q(content_type=ContentType.objects.get_for_model(model), object_id=obj.pk)
    return (
        LogEntry.objects.filter(own | _bulk_entries(model, model._base_manager.filter(pk=obj.pk)))
        .select_related("actor")
        .order_by("timestamp", "id")
    )


@dataclass
class FieldChange:
    """One change of one field: when, by whom (None: the system), the values as auditlog
    stores them (text; "None" for empty) and the entry that records it."""

    timestamp: dt.datetime
    actor: object
    before: str
    after: str
    entry: LogEntry


def field_history(obj: Model, name: str) -> list[FieldChange]:
    """Who changed field ``name`` of ``obj``, when, from what to what, oldest first. A row
    created in bulk has no values in its entry: what it was created with is the "before" of
    its first later change of the field, or the value it holds now."""
    entries = list(object_history(obj))
    changes: list[FieldChange] = []
    pending: FieldChange | None = None  # a bulk creation waiting for its value
    for entry in entries:
        if entry.object_id is None and BULK in (entry.additional_data or {}):
            pending = FieldChange(entry.timestamp, entry.actor, "None", "", entry)
            changes.append(pending)
            continue
        values = (entry.changes or {}).get(name)
        if not isinstance(values, (list, tuple)) or len(values) != 2:
            continue
        if pending is not None:
            pending.after, pending = values[0], None
        changes.append(FieldChange(entry.timestamp, entry.actor, values[0], values[1], entry))
    if pending is not None:
        value = get_field_value(obj, obj._meta.get_field(name))
        pending.after = value if isinstance(value, str) else str(value)
    return changes


# --- reading the history -------------------------------------------------------------------


def audited_content_types() -> list[ContentType]:
    """The audited models, as content types, in a stable order (one cached lookup)."""
    models = sorted(auditlog.get_models(), key=lambda m: (m._meta.app_label, m._meta.model_name))
    found = ContentType.objects.get_for_models(*models)
    return [found[m] for m in models]


def client_history(client: Client) -> QuerySet:
    """Changes to a client, its contacts, invoices and payments (and how they were applied),
    newest first, with the bulk loads that created any of them. One query: each kind of
    object is matched by id through a subquery."""
    types = ContentType.objects.get_for_models(Client, Contact, Invoice, Payment, PaymentAllocation)
    related = {
        Client: Client.objects.filter(pk=client.pk),
        Contact: Contact.objects.filter(client=client),
        Invoice: Invoice.objects.filter(client=client),
        Payment: Payment.objects.filter(client=client),
        PaymentAllocation: PaymentAllocation.objects.filter(payment__client=client),
    }
    condition = Q(content_type=types[Client], object_id=client.pk)
    for model, rows in related.items():
        if model is not Client:
            condition |= Q(content_type=types[model], object_id__in=rows.values("pk"))
    # The loads that created any of them (one entry per load, see log_bulk_creation).
    for model in (Client, Invoice, Payment, PaymentAllocation):
        condition |= _bulk_entries(model, related[model])
    return _listing(LogEntry.objects.filter(condition))


def audit_log(
    *,
    content_type: ContentType | None = None,
    actor=None,
    system: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet:
    """Every audited change, newest first, filtered by model, by who made it (``system``:
    only the background jobs') and by local date (both ends included)."""
    qs = LogEntry.objects.filter(content_type__in=audited_content_types())
    if content_type is not None:
        qs = qs.filter(content_type=content_type)
    if system:
        qs = qs.filter(actor__isnull=True)
    elif actor is not None:
        qs = qs.filter(actor=actor)
    tz = timezone.get_current_timezone()
    if date_from is not None:
        qs = qs.filter(timestamp__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=tz))
    if date_to is not None:
        qs = qs.filter(timestamp__lt=dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz))
    return _listing(qs)


def _listing(qs: QuerySet) -> QuerySet:
    return qs.select_related("actor", "content_type").order_by("-timestamp", "-id")


# --- showing it ----------------------------------------------------------------------------

ACTION_LABELS = {
    LogEntry.Action.CREATE: "create",
    LogEntry.Action.UPDATE: "update",
    LogEntry.Action.DELETE: "delete",
    LogEntry.Action.ACCESS: "access",
}


@dataclass
class Change:
    label: str
    before: str
    after: str


@dataclass
class Row:
    entry: LogEntry
    model_label: str
    object_label: str
    action: str
    action_label: str
    actor_label: str
    changes: list[Change] = field(default_factory=list)
    client_id: int | None = None


def _action_label(action: int) -> str:
    return {
        LogEntry.Action.CREATE: _("Alta"),
        LogEntry.Action.UPDATE: _("Cambio"),
        LogEntry.Action.DELETE: _("Baja"),
    }.get(action, _("Consulta"))


def _actor_label(user) -> str:
    if user is None:
        return _("Sistema")
    return user.get_full_name() or user.get_username()


def _is_null(value) -> bool:
    return value is None or value == "None" or value == ""


def present(entries: Iterable[LogEntry]) -> list[Row]:
    """Rows for a page of entries: field labels, choice labels, dates and related objects by
    name. Related objects are read in one query per related model, whatever the page size."""
    entries = list(entries)
    wanted: dict[type, set] = defaultdict(set)
    parsed = []
    for entry in entries:
        model = entry.content_type.model_class()
        items = []
        for name, values in (entry.changes or {}).items():
            if not isinstance(values, (list, tuple)) or len(values) != 2:
                continue  # m2m entries: not used by the registered models
            try:
                model_field = model._meta.get_field(name) if model is not None else None
            except Exception:
                model_field = None
            if model_field is not None and not model_field.concrete:
                continue  # a reverse relation: auditlog lists them on creation, they say nothing
            if _is_fk(model_field):
                for value in values:
                    if not _is_null(value):
                        wanted[model_field.related_model].add(str(value))
            items.append((name, model_field, values))
        parsed.append((entry, model, items))

    names: dict[type, dict[str, str]] = {}
    for related, pks in wanted.items():
        manager = related._base_manager
        valid = [value for value in (_pk_or_none(related, pk) for pk in pks) if value is not None]
        names[related] = {str(obj.pk): _related_label(obj) for obj in manager.filter(pk__in=valid)}

    rows = []
    for entry, model, items in parsed:
        changes = [
            Change(
                label=str(getattr(model_field, "verbose_name", name)),
                before=_display(model_field, values[0], names),
                after=_display(model_field, values[1], names),
            )
            for name, model_field, values in items
        ]
        if entry.action == LogEntry.Action.CREATE:
            # A new object: what it was created with, without the empty fields.
            changes = [c for c in changes if c.after != "—"]
        rows.append(
            Row(
                entry=entry,
                model_label=str(model._meta.verbose_name) if model is not None else entry.content_type.model,
                object_label=entry.object_repr,
                action=ACTION_LABELS.get(entry.action, "access"),
                action_label=_action_label(entry.action),
                actor_label=_actor_label(entry.actor),
                changes=changes,
                client_id=entry.object_id if model is Client else None,
            )
        )
    return rows


def _pk_or_none(model, value):
    """A stored value as the related model's primary key; None if it cannot be one."""
    try:
        return model._meta.pk.to_python(value)
    except (ValidationError, TypeError, ValueError):
        return None


def _related_label(obj) -> str:
    user_model = get_user_model()
    if isinstance(obj, user_model):
        return obj.get_full_name() or obj.get_username()
    return str(obj)


def _is_fk(model_field) -> bool:
    return model_field is not None and bool(model_field.many_to_one or model_field.one_to_one)


def _display(model_field, value, names) -> str:
    if _is_null(value):
        return "—"
    if model_field is None:
        return str(value)
    if _is_fk(model_field):
        return names.get(model_field.related_model, {}).get(str(value), _("#%(id)s (eliminado)") % {"id": value})
    if model_field.choices:
        return str(dict(model_field.flatchoices).get(value, value))
    internal = model_field.get_internal_type()
    if internal == "DecimalField":
        # A form may hand the model 45000 where the database keeps 45000.00.
        try:
            return str(Decimal(str(value)).quantize(Decimal(1).scaleb(-model_field.decimal_places)))
        except (InvalidOperation, TypeError):
            return str(value)
    if internal == "BooleanField":
        return _("Sí") if str(value) == "True" else _("No")
    if internal == "DateField":
        parsed = parse_date(str(value))
        return formats.date_format(parsed, "SHORT_DATE_FORMAT") if parsed else str(value)
    if internal == "DateTimeField":
        parsed = parse_datetime(str(value))
        if parsed is not None:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed, dt.UTC)
            return formats.date_format(timezone.localtime(parsed), "SHORT_DATETIME_FORMAT")
    return str(value)


# --- login throttling ----------------------------------------------------------------------


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lock-out check, for logins that come with a request.

    ``authenticate()`` called without a request (a management command, the shell, a test's
    ``client.login``) has no client to throttle: axes would raise there; this lets the next
    backend answer. Every login form and the API's token view pass their request.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def cool_off() -> dt.timedelta:
    return settings.AXES_COOLOFF_TIME


@dataclass
class Lockout:
    username: str
    ip_address: str
    failures: int
    last_attempt: dt.datetime
    locked: bool

    @property
    def unlocks_at(self) -> dt.datetime:
        return self.last_attempt + cool_off()


def lockouts() -> list[Lockout]:
    """Failed logins still counting (within the cool-off), per username and address: locked
    ones first. One query."""
    since = clock.now() - cool_off()
    groups = (
        AccessAttempt.objects.filter(attempt_time__gte=since)
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"), agents=Count("id"))
        .order_by("-last")
    )
    limit = settings.AXES_FAILURE_LIMIT
    found = [
        Lockout(
            username=g["username"] or "",
            ip_address=g["ip_address"] or "",
            failures=g["failures"] or 0,
            last_attempt=g["last"],
            locked=(g["failures"] or 0) >= limit,
        )
        for g in groups
    ]
    return sorted(found, key=lambda lock: not lock.locked)
