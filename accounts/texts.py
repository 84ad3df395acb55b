"""Texts the system writes, in the reader's language (docs/domain.md#texts).

A timeline entry, a task title, a notice's skip or deferral reason or an alert written by the
system is stored twice: as the Spanish text (the old column, for exports, search and rows that
predate codes) and as a *code* with *parameters* (``<field>_code``, ``<field>_params``). Pages
render the code in the language of whoever reads them; an unknown code, or parameters that no
longer fit the template, fall back to the stored text.

Each text is defined once, with :func:`define`, in the registry of the app that writes it
(``accounts.texts`` here, ``cobranza.texts`` for collections)::

    CLIENT_CREATED = define("ledger.client_created", _("Alta del cliente"))
    ...
    summary = CLIENT_CREATED()  # a Text: a str holding the Spanish, with .code and .params

Parameters are data (names, numbers, invoice numbers — kept as written) or other texts, which
are rendered in the reader's language too: nested texts (``Text``), choice labels
(:func:`choice`), dates (:func:`date`), money (:func:`money`) and lists (:func:`join`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import formats, translation
from django.utils.html import escape
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from accounts import numbers

REGISTRY: dict[str, Any] = {}

# Choice classes a stored text may name (a stored row must not make us import anything else).
CHOICE_MODULES = ("accounts.models", "cobranza.models")


class Text(str):
    """A system-written text. As a string (slicing, joining, comparing, the old column) it is
    its Spanish wording; ``str()``, %-formatting and templates show it in the active language;
    ``code`` and ``params`` are what is stored to render it again later."""

    code: str
    params: dict

    def __new__(cls, code: str, params: Mapping[str, Any] | None = None):
        params = {key: _to_json(value) for key, value in (params or {}).items()}
        with translation.override(settings.LANGUAGE_CODE):
            stored = render(code, params, strict=True)
        obj = super().__new__(cls, stored)
        obj.code = code
        obj.params = params
        return obj

    def __str__(self) -> str:
        # Shown (templates, %-formatting, str()) in the active language; stored (columns())
        # as the Spanish wording.
        return render(self.code, self.params, str.__str__(self))

    def __html__(self) -> str:
        return escape(str(self))

    def __reduce__(self):
        # Copies and pickles keep the code (str's own would call __new__ with the wording).
        return (_restore, (str.__str__(self), self.code, self.params))

    def as_json(self) -> dict:
        return {"code": self.code, "params": self.params}


def _restore(wording: str, code: str, params: dict) -> Text:
    obj = str.__new__(Text, wording)
    obj.code = code
    obj.params = params
    return obj


class Definition:
    """One registered text: call it with the template's parameters to get a :class:`Text`."""

    def __init__(self, code: str, template):
        self.code = code
        self.template = template

    def __call__(self, **params) -> Text:
        return Text(self.code, params)


def define(code: str, template) -> Definition:
    """Register ``code`` → a lazily translated Spanish template (gettext_lazy, or ngettext_lazy
    with a named number). Each code is defined once."""
    if code in REGISTRY and REGISTRY[code] is not template:
        raise ValueError(f"text code defined twice: {code}")
    REGISTRY[code] = template
    return Definition(code, template)


# --- parameters that are rendered in the reader's language ------------------------------------


def choice(choices: type[models.Choices], value: str, *, lower: bool = False) -> Text:
    """A choice's label (``StepChannel.EMAIL`` → «Correo electrónico» / "Email")."""
    params = {"choices": f"{choices.__module__}.{choices.__qualname__}", "value": str(value)}
    return Text("@choice", {**params, "lower": True} if lower else params)


def date(value: dt.date, fmt: str = "SHORT_DATE_FORMAT") -> Text:
    """A date in the reader's format (a Django date format name or format string)."""
    return Text("@date", {"value": value.isoformat(), "format": fmt})


def from_columns(obj, field: str) -> Text | str:
    """What ``obj`` stores in ``field``, as a Text again when it has a code (to quote it in
    another text: «Alerta cerrada: <the alert's title>»)."""
    wording, code = getattr(obj, field), getattr(obj, f"{field}_code", "")
    return _restore(wording, code, getattr(obj, f"{field}_params", None) or {}) if code else wording


def money(amount, currency: str) -> Text:
    """An amount in the reader's number format (``accounts.numbers.format_money``)."""
    return Text("@money", {"amount": str(amount), "currency": currency})


def number(value, places: int = 1) -> Text:
    """A number in the reader's number format (``accounts.numbers.format_number``)."""
    return Text("@number", {"value": str(value), "places": places})


def join(items: Iterable[Any], sep: str = "; ") -> Text:
    """Several texts (or data) in a row, each in the reader's language."""
    items = [item for item in items if item]
    if len(items) == 1 and isinstance(items[0], Text):
        return items[0]
    return Text("@join", {"items": items, "sep": sep})


def _to_json(value):
    if isinstance(value, Text):
        return value.as_json()
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    # Lazy strings would be frozen in whatever language is active: pass texts (define, choice)
    # instead. A plain string is data and is kept as written.
    return str(value)


def _param(value):
    """A stored parameter, ready for its template in the active language."""
    if isinstance(value, dict) and "code" in value:
        return render(value["code"], value.get("params") or {}, "", strict=True)
    if isinstance(value, list):
        return [_param(v) for v in value]
    return value


def _builtin(code: str, params: Mapping[str, Any]) -> str:
    if code == "@choice":
        path = params["choices"]
        if not path.startswith(CHOICE_MODULES):
            raise LookupError(path)
        choices = import_string(path)
        if not (isinstance(choices, type) and issubclass(choices, models.Choices)):
            raise LookupError(path)
        label = str(choices(params["value"]).label)
        return label.lower() if params.get("lower") else label
    if code == "@date":
        return formats.date_format(dt.date.fromisoformat(params["value"]), params.get("format", "SHORT_DATE_FORMAT"))
    if code == "@money":
        return numbers.format_money(Decimal(params["amount"]), params["currency"])
    if code == "@number":
        return numbers.format_number(params["value"], int(params.get("places", 1)))
    if code == "@join":
        return params["sep"].join(str(item) for item in _param(params["items"]))
    raise LookupError(code)


def render(code: str, params: Mapping[str, Any] | None, fallback: str = "", *, strict: bool = False) -> str:
    """``code`` with ``params`` in the active language; ``fallback`` (the stored text) when the
    code is unknown (a row older than codes, a text since removed) or the parameters do not fit
    its template. ``strict`` raises instead: a writer's mistake should fail its tests."""
    if not code:
        return fallback
    params = params or {}
    try:
        if code.startswith("@"):
            return _builtin(code, params)
        template = REGISTRY[code]
        values = {key: _param(value) for key, value in params.items()}
        return str(template % values) if values else str(template)
    except (KeyError, LookupError, TypeError, ValueError):
        if strict:
            raise
        return fallback


def columns(field: str, value: str, *, max_length: int = 255) -> dict[str, Any]:
    """The column values that store ``value`` in ``field``: its wording (cut to the column)
    and, for a :class:`Text`, its code and parameters; a plain string (what a person typed)
    gets no code. For ``Model(**columns(...))`` and ``queryset.update(**columns(...))``."""
    code, params = (value.code, value.params) if isinstance(value, Text) else ("", {})
    return {field: str.__str__(value).strip()[:max_length], f"{field}_code": code, f"{field}_params": params}


class Shown:
    """A model attribute: the text of ``field`` in the reader's language, rendered from
    ``<field>_code`` and ``<field>_params`` (the stored text when there is no code)."""

    def __init__(self, field: str):
        self.field = field

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        fallback = getattr(obj, self.field)
        return render(getattr(obj, f"{self.field}_code", ""), getattr(obj, f"{self.field}_params", None), fallback)


def code_fields(field: str, *, max_length: int = 60) -> tuple[models.CharField, models.JSONField]:
    """The two columns that hold ``field``'s code and parameters. Database defaults, so rows
    inserted by SQL (planner, bulk loads) need no value."""
    return (
        models.CharField(max_length=max_length, blank=True, default="", db_default="", editable=False),
        models.JSONField(default=dict, blank=True, db_default=models.Value({}, models.JSONField()), editable=False),
    )


# --- the ledger's texts (accounts.services) ---------------------------------------------------

UNASSIGNED = define("ledger.unassigned", _("sin asignar"))
CLIENT_CREATED = define("ledger.client_created", _("Alta del cliente"))
CLIENT_UPDATED = define("ledger.client_updated", _("Datos del cliente actualizados"))
PORTFOLIO_REASSIGNED = define("ledger.reassigned", _("Cartera reasignada a %(name)s"))
CONTACT_CREATED = define("ledger.contact_created", _("Nuevo contacto: %(name)s (%(role)s)"))
CONTACT_UPDATED = define("ledger.contact_updated", _("Contacto actualizado: %(name)s"))
INVOICE_ISSUED = define("ledger.invoice_issued", _("Factura %(number)s emitida por %(amount)s, vence el %(due)s"))
INVOICES_DISPUTED = define("ledger.invoices_disputed", _("Facturas en disputa: %(list)s"))
INVOICES_UNDISPUTED = define("ledger.invoices_undisputed", _("Facturas fuera de disputa: %(list)s"))
INVOICE_STATUS = define("ledger.invoice_status", _("Factura %(number)s: %(old)s → %(new)s"))
PAYMENT_RECEIVED = define("ledger.payment_received", _("Pago recibido de %(amount)s"))
PAYMENT_CREDIT = define("ledger.payment_credit", _("saldo a favor %(credit)s"))
CREDIT_APPLIED = define("ledger.credit_applied", _("Saldo a favor aplicado: %(amount)s"))
