"""Message templates: a safe template language, its placeholders, validation and rendering.

Templates are written by managers in the product, so the language is Django's template syntax
run by a dedicated :class:`~django.template.Engine` that can reach nothing but the context we
give it: no loaders (no files), no ``{% load %}`` / ``{% include %}`` / ``{% extends %}`` /
``{% debug %}``, a short list of tags and filters, and a context made of plain values (never
model instances). Output is plain text (text/plain email, SMS, WhatsApp, the body of a letter
that ``letters.py`` escapes into its own HTML), so autoescaping is off.

A broken template must be caught when it is saved, not when a reminder is sent:
:func:`validate_template_text` compiles it, refuses forbidden tags, checks every variable
against :data:`PLACEHOLDERS` (statically, including ``{% if %}`` and ``{% for %}``, which
Django resolves silently) and renders it against :func:`sample_context`. Rendering a saved
template therefore does not fail; if it somehow does, :class:`TemplateRenderError` tells the
dispatcher to record a permanent failure instead of retrying.

Every render has a budget (:class:`Budget`), because a template is code a manager runs on our
servers: loops only over the documented lists (``facturas``, ``total``), at most
:data:`MAX_LOOP_DEPTH` loops deep and :data:`MAX_BLOCK_DEPTH` tags deep, a source of at most
:data:`TEMPLATE_MAX_CHARS`, an output of at most :data:`OUTPUT_MAX_CHARS` (every filter's result
too) and ``MESSAGE_RENDER_SECONDS`` of rendering. Validation refuses what breaks the static
limits, field by field; a render that runs out of budget raises :class:`TemplateBudgetExceeded`
(a :class:`TemplateRenderError`), so a preview shows it and a send is recorded as failed.

Layout niceties, so a manager can write readable templates: a line holding only tags (``{% for
f in facturas %}``) leaves no blank line behind, trailing spaces are dropped and runs of blank
lines collapse into one. Money and dates print in the language of the text actually rendered
(a Spanish fallback text for an English client reads "$1,234.50" and "2 de marzo de 2026").
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import re
import time
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import FilterExpression, Lexer, Node, TokenType, Variable, VariableNode
from django.template.defaulttags import FilterNode, FirstOfNode, ForNode, IfNode, NowNode, WithNode
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.functional import lazy
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import clock, numbers
from accounts.models import Client, Contact, Invoice, Language
from accounts.rules import open_invoice_q
from cobranza.business import payments
from cobranza.business import selectors as business_selectors
from cobranza.models import BusinessProfile, MessageTemplate, MessageTemplateText, Notice, NoticeItem, StepChannel
from cobranza.portal import links

# --- channel limits ----------------------------------------------------------------------

# Three concatenated GSM-7 segments (153 characters each, plus margin); with accents the
# provider switches to UCS-2 and bills more segments, but the text still arrives whole.
SMS_MAX_CHARS = 480
# Meta's limit for the body of a WhatsApp message template.
WHATSAPP_MAX_CHARS = 1024
# Plain text everywhere: emails are text/plain and letters.py escapes the body into its HTML.
AUTOESCAPE_BY_CHANNEL = {
    StepChannel.EMAIL: False,
    StepChannel.SMS: False,
    StepChannel.WHATSAPP: False,
    StepChannel.LETTER: False,
}
FALLBACK_LANGUAGE = Language.ES


class TemplateRenderError(Exception):
    """A template could not be rendered. Permanent: retrying produces the same error."""


class TemplateBudgetExceeded(TemplateRenderError):
    """A render went over one of the limits of :class:`Budget`."""


def _shown_later(message, params: Mapping) -> str:
    """``message % params`` worded when it is shown, not when it is raised: a render runs in
    the language of the text being rendered (an English text in the Spanish editor), and its
    errors must read in the editor's language (docs/domain.md#texts)."""
    return lazy(lambda: str(message) % params, str)()


# --- the budget of a render --------------------------------------------------------------

# Longest subject or body a manager can save (the default texts are under 1,500 characters).
TEMPLATE_MAX_CHARS = 10_000
# Longest output of a render, and of any one filter: a statement listing a thousand invoices
# fits many times over.
OUTPUT_MAX_CHARS = 200_000
# Two loops: the invoices of each currency ({% for t in total %}{% for f in facturas %}).
MAX_LOOP_DEPTH = 2
# Tags inside tags ({% if %} in {% for %} in {% with %}...).
MAX_BLOCK_DEPTH = 8
# Seconds one render (subject and body) may take; the setting MESSAGE_RENDER_SECONDS overrides.
RENDER_SECONDS = 2.0
# What a loop may go over: the lists the context holds (and their slices), never a string,
# a record or anything else a manager could make long.
LOOPABLE_TYPES = (list, tuple)


class Budget:
    """Time, output size and loop depth left to one render; checked by every loop iteration
    and every filter call, which are the only places where work can multiply."""

    def __init__(self, *, seconds: float | None = None, max_chars: int = OUTPUT_MAX_CHARS):
        seconds = getattr(settings, "MESSAGE_RENDER_SECONDS", RENDER_SECONDS) if seconds is None else seconds
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.max_chars = max_chars
        self.loop_depth = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded(
                _shown_later(
                    gettext_lazy("La plantilla tarda demasiado en generarse (más de %(seconds)s s)."),
                    {"seconds": self.seconds},
                )
            )

    def check_size(self, length: int) -> None:
        if length > self.max_chars:
            raise TemplateBudgetExceeded(
                _shown_later(
                    gettext_lazy("La plantilla genera un texto demasiado largo (más de %(limit)s caracteres)."),
                    {"limit": self.max_chars},
                )
            )

    @contextlib.contextmanager
    def loop(self):
        self.loop_depth += 1
        try:
            if self.loop_depth > MAX_LOOP_DEPTH:
                raise TemplateBudgetExceeded(loop_depth_message())
            yield
        finally:
            self.loop_depth -= 1


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("message_template_budget", default=None)


def _current_budget() -> Budget:
    # Outside render_text (a template compiled by hand) the default budget still applies.
    return _budget.get() or Budget()


@contextlib.contextmanager
def budgeted(budget: Budget | None = None):
    """Render under ``budget`` (a fresh default one if None)."""
    budget = budget or Budget()
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def loop_depth_message() -> str:
    return _shown_later(
        gettext_lazy("Como máximo %(depth)s {%% for %%} uno dentro de otro."), {"depth": MAX_LOOP_DEPTH}
    )


def loop_source_message(name: str) -> str:
    return _shown_later(
        gettext_lazy("«%(name)s» no es una lista: solo se pueden recorrer con {%% for %%} %(lists)s."),
        {"name": name, "lists": ", ".join(n for n, f in PLACEHOLDERS.items() if f.many)},
    )


# Django's template parser words its errors in English only: the usual ones, said again in the
# editor's language with their details (tag, filter, text); any other keeps Django's words.
_SYNTAX_ERRORS = (
    (
        re.compile(r"Invalid block tag on line \d+: '(?P<tag>[^']*)', expected (?P<expected>.*?)\. Did you forget"),
        gettext_lazy("{%% %(tag)s %%} no va aquí; se esperaba %(expected)s."),
    ),
    (
        re.compile(r"Unclosed tag on line \d+: '(?P<tag>[^']*)'\. Looking for one of: (?P<expected>.*?)\.?$"),
        gettext_lazy("Falta cerrar {%% %(tag)s %%}: se esperaba %(expected)s."),
    ),
    (re.compile(r"Invalid filter: '(?P<name>[^']*)'"), gettext_lazy("Filtro desconocido: «%(name)s».")),
    (
        re.compile(r"Could not parse the remainder: '(?P<rest>.*)' from '(?P<token>.*)'$"),
        gettext_lazy("No se entiende «%(rest)s» en «%(token)s»."),
    ),
    (re.compile(r"Empty variable tag"), gettext_lazy("Hay un {{ }} vacío.")),
    (re.compile(r"Empty block tag"), gettext_lazy("Hay un {%% %%} vacío.")),
    (
        re.compile(r"Variables and attributes may not begin with underscores: '(?P<name>[^']*)'"),
        gettext_lazy("Una variable no puede empezar con guion bajo: «%(name)s»."),
    ),
    (
        re.compile(r"(?P<name>\w+) requires (?P<needed>\d+) arguments?, (?P<given>\d+) provided"),
        gettext_lazy("El filtro «%(name)s» recibe %(needed)s argumentos y se le dieron %(given)s."),
    ),
    (
        re.compile(r"'for' statements should use the format"),
        gettext_lazy("Un {%% for %%} se escribe así: {%% for elemento in lista %%}."),
    ),
    (
        re.compile(r"in if tag|at end of if expression"),
        gettext_lazy("La condición del {%% if %%} está mal escrita."),
    ),
)


def syntax_error_detail(exc: Exception) -> str:
    """What is wrong in a template, in the active language (Django's own English as a fallback)."""
    message = str(exc)
    for pattern, wording in _SYNTAX_ERRORS:
        found = pattern.search(message)
        if found:
            return str(wording) % found.groupdict()
    return message


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    # The language of the text used (the client's, or the fallback).
    language: str = FALLBACK_LANGUAGE


# --- the template language ---------------------------------------------------------------

register = Library()

ALLOWED_TAGS = ("if", "for", "with", "comment", "firstof", "now", "spaceless", "filter", "verbatim", "templatetag")
# Allowed tags that open a block (closed by an end tag).
_BLOCK_TAGS = frozenset({"if", "for", "with", "comment", "spaceless", "filter", "verbatim"})
# Tags that only continue or close an allowed one.
_INNER_TAGS = frozenset(
    {"elif", "else", "endif", "empty", "endfor", "endwith", "endcomment", "endspaceless", "endfilter", "endverbatim"}
)
# Named in the error message, so a manager pasting a web template understands the refusal.
FORBIDDEN_TAGS = frozenset(
    {
        "load",
        "include",
        "extends",
        "block",
        "debug",
        "ssi",
        "url",
        "csrf_token",
        "static",
        "autoescape",
        "cycle",
        "lorem",
        "regroup",
        "widthratio",
        "ifchanged",
        "resetcycle",
        "querystring",
        "partial",
        "partialdef",
    }
)
# Formatting filters that cannot read outside the context nor allocate unbounded memory
# (ljust/center/floatformat with huge arguments could).
ALLOWED_FILTERS = (
    "default",
    "default_if_none",
    "upper",
    "lower",
    "title",
    "capfirst",
    "length",
    "pluralize",
    "yesno",
    "join",
    "first",
    "last",
    "slice",
    "truncatechars",
    "truncatewords",
    "wordwrap",
    "add",
    "divisibleby",
)


class BudgetedForNode(ForNode):
    """``{% for %}`` that goes only over lists, at most MAX_LOOP_DEPTH deep, and checks the
    time and the size of its output at every iteration (Django's ForNode, budgeted)."""

    def render(self, context):
        budget = _current_budget()
        parentloop = context.get("forloop", {})
        with budget.loop(), context.push():
            values = self.sequence.resolve(context, ignore_failures=True)
            if values is None:
                values = []
            if not isinstance(values, LOOPABLE_TYPES):
                raise TemplateBudgetExceeded(loop_source_message(self.sequence.token))
            if not values:
                return self.nodelist_empty.render(context)
            if self.is_reversed:
                values = list(reversed(values))
            count = len(values)
            output: list[str] = []
            length = 0
            loop_dict = context["forloop"] = {"parentloop": parentloop}
            for i, item in enumerate(values):
                budget.check_time()
                loop_dict.update(
                    counter0=i,
                    counter=i + 1,
                    revcounter=count - i,
                    revcounter0=count - i - 1,
                    first=i == 0,
                    last=i == count - 1,
                )
                if len(self.loopvars) > 1:
                    if not isinstance(item, LOOPABLE_TYPES) or len(item) != len(self.loopvars):
                        raise ValueError(f"Need {len(self.loopvars)} values to unpack in for loop")
                    context.update(dict(zip(self.loopvars, item, strict=True)))
                else:
                    context[self.loopvars[0]] = item
                for node in self.nodelist_loop:
                    text = node.render_annotated(context)
                    length += len(text)
                    output.append(text)
                if len(self.loopvars) > 1:
                    context.pop()
                budget.check_size(length)
        # As Django's ForNode: each part was escaped (or not) by the node that rendered it.
        return mark_safe("".join(output))  # noqa: S308


@register.tag("for")
def do_for(parser, token):
    node = defaulttags.do_for(parser, token)
    return BudgetedForNode(node.loopvars, node.sequence, node.is_reversed, node.nodelist_loop, node.nodelist_empty)


@functools.wraps(defaultfilters.join)
def _safe_join(value, arg, autoescape=True):
    # The only filter whose output can be many times its input ("x"*5000 joined by "y"*5000):
    # refused before the string is built.
    try:
        estimate = len(value) * (len(arg) + 1) + len(str(value))
    except TypeError:
        estimate = 0
    _current_budget().check_size(estimate)
    return defaultfilters.join(value, arg, autoescape=autoescape)


def _budgeted_filter(func):
    """``func`` checking the render's time before and the size of its result after."""

    @functools.wraps(func)
    def wrapper(value, *args, **kwargs):
        budget = _current_budget()
        budget.check_time()
        result = func(value, *args, **kwargs)
        if isinstance(result, str | list | tuple):
            budget.check_size(len(result))
        return result

    return wrapper


for _name in ALLOWED_TAGS:
    if _name != "for":
        register.tag(_name, defaulttags.register.tags[_name])
for _name in ALLOWED_FILTERS:
    register.filters[_name] = _budgeted_filter(
        _safe_join if _name == "join" else defaultfilters.register.filters[_name]
    )


def _active_language() -> str:
    return (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]


@register.filter(name="money", is_safe=False)
def money_filter(value, currency=None):
    """``{{ f.saldo|money }}`` or ``{{ importe|money:"EUR" }}``: amount with its currency,
    formatted for the language of the message. Never raises (a template must not crash)."""
    if isinstance(value, Money):
        return value.format(currency or value["moneda"])
    if value in (None, ""):
        return ""
    try:
        return numbers.format_money(value, currency or settings.DEFAULT_CURRENCY, numbers.debtor_code()) or str(value)
    except (InvalidOperation, ValueError, TypeError, AttributeError, KeyError):
        return str(value)


@register.filter(name="date", expects_localtime=True, is_safe=False)
def date_filter(value, arg=None):
    """``{{ f.vencimiento|date }}`` → "2 de marzo de 2026" / "March 2, 2026";
    ``|date:"SHORT_DATE_FORMAT"`` → "02/03/2026" / "03/02/2026"; or a format string."""
    if value in (None, ""):
        return ""
    try:
        return formats.date_format(value, arg or "DATE_FORMAT")
    except (AttributeError, TypeError, ValueError):
        return ""


SENTINEL = "\x00⟦%s⟧\x00"
_SENTINEL_RE = re.compile("\x00⟦(.*?)⟧\x00")


def _make_engine(*, autoescape: bool, string_if_invalid: str = "", debug: bool = False) -> Engine:
    engine = Engine(
        dirs=[],
        app_dirs=False,
        loaders=[],
        libraries={},
        builtins=[],
        autoescape=autoescape,
        string_if_invalid=string_if_invalid,
        debug=debug,
    )
    # Engine always prepends Django's default builtins (every tag and filter, {% load %} and
    # {% include %} among them); replace them with the whitelist. No libraries: nothing to load.
    engine.template_builtins = [register]
    engine.template_libraries = {}
    return engine


@functools.cache
def _engine(autoescape: bool, validating: bool) -> Engine:
    if validating:
        return _make_engine(autoescape=autoescape, string_if_invalid=SENTINEL, debug=True)
    return _make_engine(autoescape=autoescape)


_TAG = r"(?:\{%.*?%\}|\{#.*?#\})"
_TAG_ONLY_LINE = re.compile(rf"^[ \t]*({_TAG}(?:[ \t]*{_TAG})*)[ \t]*\r?\n", re.MULTILINE)


def _trim_tag_lines(source: str) -> str:
    """A line holding only tags or comments produces no output line (Jinja's trim_blocks)."""
    return _TAG_ONLY_LINE.sub(r"\1", source)


@functools.lru_cache(maxsize=512)
def _compile(source: str, autoescape: bool, validating: bool = False, trim: bool = True):
    return _engine(autoescape, validating).from_string(_trim_tag_lines(source) if trim else source)


def _tidy_body(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _tidy_subject(text: str) -> str:
    # One line: a newline in a subject is a header injection (and Django refuses it).
    return " ".join(text.split())


# --- the context: values that print well -------------------------------------------------


class Record(dict):
    """A group of values that prints as its main text: ``{{ cliente }}`` is the name,
    ``{{ cliente.razon_social }}`` a field. A dict, so lookups never reach Python attributes."""

    def __init__(self, text="", /, **fields):
        super().__init__(fields)
        self._text = text

    def __str__(self) -> str:
        return str(self._text)

    def __bool__(self) -> bool:
        return bool(str(self._text))


class Money(dict):
    """An amount and its currency; prints in the business's number format ("$1,234.50" in
    es-MX, "1.234,50 €" in es-ES; docs/domain.md#number-formats)."""

    def __init__(self, cantidad, moneda: str, rule: str = ""):
        super().__init__(cantidad=Decimal(cantidad), moneda=moneda)
        self.rule = rule  # the business's number format when known (not a template field)

    def format(self, currency: str | None = None) -> str:
        rule = self.rule or numbers.debtor_code()
        return numbers.format_money(self["cantidad"], currency or self["moneda"], rule)

    def __str__(self) -> str:
        return self.format()

    def __bool__(self) -> bool:
        return True


class ByLanguage:
    """A text per language, printed in the language of the message (for data, not UI)."""

    def __init__(self, texts: Mapping[str, str]):
        self.texts = dict(texts)

    def __str__(self) -> str:
        return self.texts.get(_active_language()) or self.texts.get(FALLBACK_LANGUAGE) or ""

    def __bool__(self) -> bool:
        return any(self.texts.values())


class TotalText:
    """The per-currency totals in one phrase: "$12,500.00 y USD1,250.00"."""

    AND = {"es": " y ", "en": " and "}

    def __init__(self, totals: Sequence[Money]):
        self.totals = list(totals)

    def __str__(self) -> str:
        parts = [str(t) for t in self.totals]
        if len(parts) <= 1:
            return "".join(parts)
        conjunction = self.AND.get(_active_language(), self.AND["es"])
        return ", ".join(parts[:-1]) + conjunction + parts[-1]

    def __bool__(self) -> bool:
        return bool(self.totals)


class PaymentRecord(Record):
    """``{{ pago }}``: the business's ways to pay these invoices (``payments.ways_to_pay``),
    built on first use, so a template that never names it costs no query."""

    def __init__(self, *, client_ref: str, owed: list[payments.Owed]):
        super().__init__("")
        self._client_ref = client_ref
        self._owed = owed
        self._ways: payments.WaysToPay | None = None

    @property
    def ways(self) -> payments.WaysToPay:
        if self._ways is None:
            ways = payments.ways_to_pay(client_ref=self._client_ref, invoices=self._owed)
            bank = ways.bank
            dict.update(
                self,
                enlace=ways.link,
                referencia=ways.reference,
                banco=bank.bank,
                titular=bank.holder,
                clabe=bank.clabe,
                iban=bank.iban,
                cuenta=bank.account,
            )
            self._text = ways.link
            self._ways = ways
        return self._ways

    def __getitem__(self, key):
        self.ways  # noqa: B018 - loads the values
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self.ways  # noqa: B018
        return super().__contains__(key)

    def get(self, key, default=None):
        self.ways  # noqa: B018
        return super().get(key, default)

    def __str__(self) -> str:
        self.ways  # noqa: B018
        return super().__str__()

    def __bool__(self) -> bool:
        return bool(self.ways)


COLLECTIONS_TEAM = {"es": "Equipo de cobranza", "en": "Collections team"}


class MessageContext(dict):
    """The variables of one message, and the language they were built for."""

    def __init__(self, values: Mapping, *, language: str):
        super().__init__(values)
        self.language = language


# --- placeholders ------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A documented context variable: its fields, and whether it is a list of them."""

    description: str
    fields: Mapping[str, Field] | None = None
    many: bool = False
    example: str = ""

    def item(self) -> Field:
        return replace(self, many=False)

    def as_dict(self) -> dict:
        return {
            "description": str(self.description),
            "many": self.many,
            "example": self.example,
            "fields": {name: f.as_dict() for name, f in (self.fields or {}).items()},
        }


class _Any:
    """A value the static check cannot type (a loop with several variables, a filtered value)."""


ANY = _Any()

_MONEY_FIELDS = {
    "cantidad": Field(gettext_lazy("la cantidad sin formato (número)")),
    "moneda": Field(gettext_lazy("código ISO de la moneda"), example="MXN"),
}


def _money_field(description) -> Field:
    return Field(description, fields=_MONEY_FIELDS, example="$1,234.50")


PLACEHOLDERS: dict[str, Field] = {
    "cliente": Field(
        gettext_lazy("el cliente: se muestra con su nombre comercial o, si no tiene, su razón social"),
        fields={
            "nombre": Field(gettext_lazy("nombre comercial o razón social")),
            "razon_social": Field(gettext_lazy("razón social")),
            "nombre_comercial": Field(gettext_lazy("nombre comercial (puede estar vacío)")),
            "rfc": Field(gettext_lazy("RFC / NIF")),
        },
        example="{{ cliente }}",
    ),
    "contacto": Field(
        gettext_lazy("la persona a quien se dirige el mensaje; vacío si no hay contacto"),
        fields={
            "nombre": Field(gettext_lazy("nombre")),
            "puesto": Field(gettext_lazy("puesto (puede estar vacío)")),
        },
        example="{{ contacto|default:cliente }}",
    ),
    "facturas": Field(
        gettext_lazy("todas las facturas del cliente en este paso, de la más antigua a la más reciente"),
        many=True,
        fields={
            "numero": Field(gettext_lazy("folio")),
            "concepto": Field(gettext_lazy("concepto (puede estar vacío)")),
            "importe": _money_field(gettext_lazy("importe original con moneda")),
            "saldo": _money_field(gettext_lazy("saldo pendiente con moneda")),
            "moneda": Field(gettext_lazy("código ISO de la moneda")),
            "emision": Field(gettext_lazy("fecha de emisión")),
            "vencimiento": Field(gettext_lazy("fecha de vencimiento")),
            "dias_vencida": Field(gettext_lazy("días de atraso (0 si aún no vence)")),
            "dias_para_vencer": Field(gettext_lazy("días que faltan para el vencimiento (0 si ya venció)")),
        },
        example="{% for f in facturas %}{{ f.numero }}: {{ f.saldo }}, {{ f.vencimiento }}{% endfor %}",
    ),
    "total": Field(
        gettext_lazy("el total pendiente, uno por moneda"),
        many=True,
        fields=_MONEY_FIELDS,
        example="{% for t in total %}{{ t }}{% endfor %}",
    ),
    "total_texto": Field(gettext_lazy("el total pendiente en una frase («$12,500.00 y USD1,250.00»)")),
    "dias_max_vencida": Field(gettext_lazy("días de atraso de la factura más antigua")),
    "gestor": Field(
        gettext_lazy("el gestor de cobranza asignado (o el equipo de cobranza)"),
        fields={
            "nombre": Field(gettext_lazy("nombre")),
            "correo": Field(gettext_lazy("correo electrónico")),
            "telefono": Field(gettext_lazy("teléfono de cobranza (puede estar vacío)")),
        },
    ),
    "empresa": Field(
        gettext_lazy("nuestra empresa (Datos de la empresa): se muestra con su nombre comercial"),
        fields={
            "nombre": Field(gettext_lazy("nombre comercial")),
            "razon_social": Field(gettext_lazy("razón social")),
            "rfc": Field(gettext_lazy("RFC / NIF (puede estar vacío)")),
            "telefono": Field(gettext_lazy("teléfono")),
            "correo": Field(gettext_lazy("correo para responder (responder a, o el del remitente)")),
            "web": Field(gettext_lazy("sitio web (puede estar vacío)")),
            "firma": Field(gettext_lazy("firma, en el idioma del mensaje (puede estar vacía)")),
            "pie_legal": Field(gettext_lazy("pie legal, en el idioma del mensaje (puede estar vacío)")),
            "banco": Field(gettext_lazy("banco para transferencias (puede estar vacío)")),
            "titular": Field(gettext_lazy("titular de la cuenta (puede estar vacío)")),
            "clabe": Field(gettext_lazy("CLABE (puede estar vacía)")),
            "iban": Field(gettext_lazy("IBAN (puede estar vacío)")),
            "cuenta": Field(gettext_lazy("número de cuenta (puede estar vacío)")),
        },
        example="{{ empresa.firma|default:empresa }}",
    ),
    "enlace_pago": Field(
        gettext_lazy(
            "enlace personal del cliente a su estado de cuenta para pagar en línea (corto en SMS y WhatsApp; "
            "vacío si no hay dirección pública)"
        )
    ),
    "pago": Field(
        gettext_lazy("las formas de pago de la empresa para estas facturas; se muestra como el enlace de pago"),
        fields={
            "enlace": Field(gettext_lazy("enlace del proveedor de pagos por el total (puede estar vacío)")),
            "referencia": Field(gettext_lazy("referencia que el cliente indica en su transferencia")),
            "banco": Field(gettext_lazy("banco para transferencias (puede estar vacío)")),
            "titular": Field(gettext_lazy("titular de la cuenta")),
            "clabe": Field(gettext_lazy("CLABE (puede estar vacía)")),
            "iban": Field(gettext_lazy("IBAN (puede estar vacío)")),
            "cuenta": Field(gettext_lazy("número de cuenta (puede estar vacío)")),
        },
        example="{% if pago.enlace %}{{ pago.enlace }}{% endif %} {{ pago.referencia }}",
    ),
    "hoy": Field(gettext_lazy("la fecha de hoy")),
}

_FORLOOP = Field(
    "forloop",
    fields={
        "counter": Field(""),
        "counter0": Field(""),
        "revcounter": Field(""),
        "revcounter0": Field(""),
        "first": Field(""),
        "last": Field(""),
        "parentloop": ANY,  # type: ignore[dict-item]
    },
)
# Filters that keep a list a list (so ``{% for f in facturas|slice:":5" %}`` stays typed).
_LIST_FILTERS = frozenset({"slice"})


def placeholder_help() -> list[dict]:
    """The documented variables for the template editor's help panel."""
    return [{"name": name, **f.as_dict()} for name, f in PLACEHOLDERS.items()]


# --- building contexts -------------------------------------------------------------------


# Channels with a length limit carry the short link (/p/<code>) instead of the long one.
SHORT_LINK_CHANNELS = (StepChannel.SMS, StepChannel.WHATSAPP)


def company_record(profile: BusinessProfile) -> Record:
    """``{{ empresa }}``: the business that is owed, printed as its trade name, with its
    details as fields (docs/domain.md, "Who the debtor hears from")."""
    record = Record(
        profile.trade_name,
        nombre=profile.trade_name,
        razon_social=profile.legal_name,
        rfc=profile.tax_id,
        telefono=profile.phone,
        correo=business_selectors.contact_email(profile),
        web=profile.website,
        firma=ByLanguage({"es": profile.signature_es, "en": profile.signature_en}),
        pie_legal=ByLanguage({"es": profile.legal_footer_es, "en": profile.legal_footer_en}),
        banco=profile.bank_name,
        titular=profile.bank_account_holder,
        clabe=profile.clabe,
        iban=profile.iban,
        cuenta=profile.bank_account,
    )
    # The amounts of the message read in this business's number format (not a template field).
    record.number_format = business_selectors.number_format_of(profile)
    return record


def payment_link(
    *, client: Client | None, channel: str = StepChannel.EMAIL, business: BusinessProfile | None = None, **_ignored
) -> str:
    """The debtor's signed, expiring self-service link on the business's public address
    (``cobranza.portal.links``): the short one on SMS and WhatsApp, the long one elsewhere.
    Empty while no public address is configured (reminders then carry no link) or without a
    client. One link per client, not per notice: revoking the client's links
    (``links.revoke``) covers every reminder already sent."""
    profile = business if business is not None else business_selectors.current()
    if not profile.public_base_url or client is None or client.pk is None:
        return ""
    if channel in SHORT_LINK_CHANNELS:
        return links.short_link_for(client, profile)
    return links.link_for(client, profile)


def _client_today(client: Client | None) -> dt.date:
    try:
        tz = zoneinfo.ZoneInfo(client.time_zone) if client is not None else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = None
    return timezone.localdate(timezone=tz)


def _invoice_of(item) -> Invoice:
    # A NoticeItem (or anything with .invoice) or an Invoice itself.
    return item if hasattr(item, "due_date") else item.invoice


def _factura(invoice: Invoice, today: dt.date) -> Record:
    days = (today - invoice.due_date).days
    return Record(
        invoice.number,
        numero=invoice.number,
        concepto=invoice.description or "",
        importe=Money(invoice.amount, invoice.currency),
        saldo=Money(invoice.open_balance, invoice.currency),
        moneda=invoice.currency,
        emision=invoice.issue_date,
        vencimiento=invoice.due_date,
        dias_vencida=max(days, 0),
        dias_para_vencer=max(-days, 0),
    )


def _collector_record(collector, profile: BusinessProfile) -> Record:
    # Without a collector, or one without phone or email, the debtor gets the business's.
    phone = profile.phone
    email = business_selectors.contact_email(profile)
    if collector is None:
        team = ByLanguage(COLLECTIONS_TEAM)
        return Record(team, nombre=team, correo=email, telefono=phone)
    name = (collector.get_full_name() if hasattr(collector, "get_full_name") else "") or collector.get_username()
    return Record(name, nombre=name, correo=collector.email or email, telefono=getattr(collector, "phone", "") or phone)


def _context_from(
    *,
    cliente: Record,
    contacto: Record,
    facturas: list[Record],
    collector_record: Record,
    enlace: str,
    today: dt.date,
    language: str,
    empresa: Record,
    client_ref: str = "",
) -> MessageContext:
    facturas = sorted(facturas, key=lambda f: (f["vencimiento"], f["numero"]))
    sums: dict[str, Decimal] = {}
    for f in facturas:
        sums[f["moneda"]] = sums.get(f["moneda"], Decimal("0")) + f["saldo"]["cantidad"]
    # The largest amount first: it is the one that matters to the reader.
    rule = getattr(empresa, "number_format", "")
    totals = [
        Money(amount, currency, rule) for currency, amount in sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return MessageContext(
        {
            "cliente": cliente,
            "contacto": contacto,
            "facturas": facturas,
            "total": totals,
            "total_texto": TotalText(totals),
            "dias_max_vencida": max((f["dias_vencida"] for f in facturas), default=0),
            "gestor": collector_record,
            "empresa": empresa,
            "enlace_pago": enlace,
            "pago": PaymentRecord(
                client_ref=client_ref,
                owed=[payments.Owed(f["numero"], f["saldo"]["cantidad"], f["moneda"]) for f in facturas],
            ),
            "hoy": today,
        },
        language=language,
    )


def _client_record(client: Client) -> Record:
    return Record(
        client.display_name,
        nombre=client.display_name,
        razon_social=client.legal_name,
        nombre_comercial=client.trade_name or "",
        rfc=client.tax_id or "",
    )


def _contact_record(contact: Contact | None) -> Record:
    if contact is None:
        return Record("", nombre="", puesto="")
    return Record(contact.name, nombre=contact.name, puesto=contact.position or "")


def build_context(
    *,
    client: Client,
    contact: Contact | None,
    items: Iterable,
    language: str,
    collector=None,
    today: dt.date | None = None,
    link: str | None = None,
    channel: str = StepChannel.EMAIL,
    business: BusinessProfile | None = None,
) -> MessageContext:
    """The variables of a message to ``client`` on ``channel``. ``items`` are NoticeItems (with
    their invoice loaded) or Invoices; balances are the invoices' current ones and days are
    counted to ``today`` (default: today in the client's time zone). Without ``business`` the
    profile is read (one query); the link costs one (its revocation version)."""
    today = today or _client_today(client)
    profile = business if business is not None else business_selectors.current()
    return _context_from(
        cliente=_client_record(client),
        contacto=_contact_record(contact),
        facturas=[_factura(_invoice_of(item), today) for item in items],
        collector_record=_collector_record(collector, profile),
        enlace=payment_link(client=client, channel=channel, business=profile) if link is None else link,
        today=today,
        language=language,
        empresa=company_record(profile),
        client_ref=str(client.pk or ""),
    )


_SAMPLE = {
    "es": {
        "cliente": ("Comercializadora del Bajío", "Comercializadora del Bajío, S.A. de C.V.", "CBA0102037Q1"),
        "contacto": ("María Fernanda López Ortega", "Gerente de cuentas por pagar"),
        "gestor": ("Lucía Ramírez Salgado", "lucia.ramirez@example.com", "+52 55 5123 4567"),
        "concepto": "Suministro de material de empaque",
    },
    "en": {
        "cliente": ("Northwind Trading", "Northwind Trading LLC", "NWT0102037Q1"),
        "contacto": ("Mary Elizabeth Johnson", "Accounts payable manager"),
        "gestor": ("Lucy Ramirez Salgado", "lucy.ramirez@example.com", "+1 210 555 0147"),
        "concepto": "Packaging supplies",
    },
}
# As long as real ones, so the SMS length check is honest.
SAMPLE_TOKEN = "1042.1:1vRk3Q:Xk3dQp9sLm2VbR8tYwZ4nH6jKe0AbCdEfGhIjKlMnOp"
SAMPLE_SHORT_CODE = "80-1a2-0k3dqp9slm2vbr8t"


# The business of validation's sample data (no database): as long as a real one's details,
# so the SMS and WhatsApp length checks stay honest. Previews use the real business.
SAMPLE_BUSINESS = BusinessProfile(
    trade_name="Comercial del Centro",
    legal_name="Comercial del Centro, S.A. de C.V.",
    tax_id="CCE150312KT4",
    sender_name="Cobranza Comercial del Centro",
    sender_email="cobranza@comercialdelcentro.example",
    reply_to="pagos@comercialdelcentro.example",
    phone="+52 55 5000 0142",
    website="https://www.comercialdelcentro.example",
    signature_es="Departamento de Crédito y Cobranza\nComercial del Centro\nTel. +52 55 5000 0142",
    signature_en="Credit and Collections Department\nComercial del Centro\nPhone +52 55 5000 0142",
    bank_name="Banco del Centro",
    bank_account_holder="Comercial del Centro, S.A. de C.V.",
    clabe="002010077777777771",
    bank_account="0123456789",
    legal_footer_es="Comercial del Centro, S.A. de C.V. · RFC CCE150312KT4 · Aviso de privacidad en nuestro sitio.",
    legal_footer_en="Comercial del Centro, S.A. de C.V. · Tax ID CCE150312KT4 · Privacy notice on our website.",
    public_base_url="https://cobranza.comercialcentro.mx",
)


def _sample_link(channel: str, profile: BusinessProfile) -> str:
    """The sample data's link: built like a real one (same address, same paths), with a
    token that opens nothing; empty, like a real one, without a public address."""
    if not profile.public_base_url:
        return ""
    if channel in SHORT_LINK_CHANNELS:
        return business_selectors.public_url(profile, reverse("portal_short_link", args=[SAMPLE_SHORT_CODE]))
    return links.url_for_token(SAMPLE_TOKEN, profile)


def sample_context(
    language: str = FALLBACK_LANGUAGE,
    *,
    offset_days: int = 15,
    today: dt.date | None = None,
    channel: str = StepChannel.EMAIL,
    business: BusinessProfile | None = None,
):
    """Realistic data for previews and validation: three invoices in two currencies (one
    partly paid), ``offset_days`` past due (negative: not yet due), a collector, a link, and
    a business (``SAMPLE_BUSINESS`` unless given: previews pass the real one). No queries."""
    profile = business if business is not None else SAMPLE_BUSINESS
    rule = business_selectors.number_format_of(profile)
    sample = _SAMPLE.get(language, _SAMPLE[FALLBACK_LANGUAGE])
    today = today or clock.localdate()
    spread = (0, 2, 4) if offset_days >= 0 else (0, 0, 0)
    rows = [
        ("F-2026-00871", "12500.00", "12500.00", "MXN"),
        ("F-2026-00912", "8320.50", "4320.50", "MXN"),
        ("F-2026-00955", "1250.00", "1250.00", "USD"),
    ]
    facturas = []
    for (number, amount, balance, currency), extra in zip(rows, reversed(spread), strict=True):
        due = today - dt.timedelta(days=offset_days + extra)
        days = (today - due).days
        facturas.append(
            Record(
                number,
                numero=number,
                concepto=sample["concepto"],
                importe=Money(amount, currency, rule),
                saldo=Money(balance, currency, rule),
                moneda=currency,
                emision=due - dt.timedelta(days=30),
                vencimiento=due,
                dias_vencida=max(days, 0),
                dias_para_vencer=max(-days, 0),
            )
        )
    trade, legal, tax_id = sample["cliente"]
    name, position = sample["contacto"]
    collector_name, email, phone = sample["gestor"]
    return _context_from(
        cliente=Record(trade, nombre=trade, razon_social=legal, nombre_comercial=trade, rfc=tax_id),
        contacto=Record(name, nombre=name, puesto=position),
        facturas=facturas,
        collector_record=Record(collector_name, nombre=collector_name, correo=email, telefono=phone),
        enlace=_sample_link(channel, profile),
        today=today,
        language=language,
        empresa=company_record(profile),
        client_ref=SAMPLE_TOKEN.split(".", 1)[0],
    )


# --- rendering ---------------------------------------------------------------------------


def pick_text(template: MessageTemplate, language: str) -> MessageTemplateText:
    """The template's text in ``language``, else Spanish, else any (uses prefetched texts)."""
    texts = {t.language: t for t in template.texts.all()}
    for candidate in (language, FALLBACK_LANGUAGE):
        if candidate in texts:
            return texts[candidate]
    if texts:
        return texts[sorted(texts)[0]]
    raise TemplateRenderError(_("La plantilla «%(name)s» no tiene ningún texto.") % {"name": template.name})


def render_text(*, channel: str, subject: str, body: str, language: str, context: Mapping) -> Rendered:
    """Render one subject and body in ``language``. Raises TemplateRenderError, nothing else."""
    autoescape = AUTOESCAPE_BY_CHANNEL.get(channel, False)
    try:
        # Saved around validation (an import, the shell, an older version) is possible: the
        # size limit and the budget hold here too.
        for source in (subject, body):
            _check_source_limits(source or "")
        rule = getattr(context.get("empresa"), "number_format", None)
        with translation.override(language), numbers.for_business(rule), budgeted() as budget:
            ctx = Context(dict(context), autoescape=autoescape)
            rendered_subject = _compile(subject or "", autoescape).render(ctx) if subject else ""
            rendered_body = _compile(body or "", autoescape).render(ctx)
            budget.check_size(len(rendered_subject) + len(rendered_body))
    except TemplateRenderError:
        raise
    except TemplateSyntaxError as exc:  # saved around validation: said like the editor says it
        raise TemplateRenderError(_("Error de sintaxis: %(error)s") % {"error": syntax_error_detail(exc)}) from exc
    except Exception as exc:  # a template must never crash a worker: report it as permanent
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from exc
    return Rendered(subject=_tidy_subject(rendered_subject), body=_tidy_body(rendered_body), language=language)


def render(*, template: MessageTemplate, language: str, context: Mapping) -> Rendered:
    """Render ``template`` in ``language`` (falling back to Spanish, then to any text)."""
    text = pick_text(template, language)
    return render_text(
        channel=template.channel, subject=text.subject, body=text.body, language=text.language, context=context
    )


def _load_for_render(notice_id: int) -> Notice:
    return (
        Notice.objects.select_related("client", "client__collector", "contact", "step__template")
        .prefetch_related(
            Prefetch(
                "items", queryset=NoticeItem.objects.select_related("invoice").order_by("invoice__due_date", "id")
            ),
            "step__template__texts",
        )
        .get(pk=notice_id)
    )


def render_notice(
    notice: Notice,
    *,
    items: Sequence | None = None,
    today: dt.date | None = None,
    business: BusinessProfile | None = None,
) -> Rendered:
    """The message of a notice: its client, contact, collector and all its invoices, from the
    business, with the client's link for the notice's channel.

    Without ``items`` the notice is re-read with everything it needs (three queries, however
    many invoices). The dispatcher passes the items still due at send time, on a notice it
    loaded with its relations, and the business it read; then only the template's texts and
    the link's version are read (two queries)."""
    if items is None:
        notice = _load_for_render(notice.pk)
        items = list(notice.items.all())
    template = notice.step.template
    if template is None:
        raise TemplateRenderError(_("El paso «%(step)s» no tiene plantilla de mensaje.") % {"step": notice.step.name})
    context = notice_context(notice, items=items, today=today, business=business)
    return render(template=template, language=notice.language or notice.client.language, context=context)


def notice_context(
    notice: Notice, *, items: Sequence, today: dt.date | None = None, business: BusinessProfile | None = None
) -> MessageContext:
    """The variables of a notice's message (``render_notice``; the HTML email wraps the same)."""
    client = notice.client
    return build_context(
        client=client,
        contact=notice.contact,
        items=items,
        language=notice.language,
        collector=client.collector,
        today=today,
        channel=notice.channel,
        business=business,
    )


AUTOMATED_CONTACT_ROLES = (Contact.Role.BILLING, Contact.Role.PRIMARY, Contact.Role.BACKUP)


def client_preview_context(
    client: Client, *, language: str | None = None, today: dt.date | None = None, channel: str = StepChannel.EMAIL
):
    """The context a message to ``client`` on ``channel`` would have today: its open (not
    disputed) invoices, its billing contact, its collector, its real link (the one sending
    would carry). A fixed number of queries."""
    invoices = list(Invoice.objects.filter(open_invoice_q(), client=client).order_by("due_date", "number"))
    contacts = list(client.contacts.filter(is_active=True, role__in=AUTOMATED_CONTACT_ROLES).order_by("id"))
    contacts.sort(key=lambda c: AUTOMATED_CONTACT_ROLES.index(c.role))
    return build_context(
        client=client,
        contact=contacts[0] if contacts else None,
        items=invoices,
        language=language or client.language,
        collector=client.collector,
        today=today,
        channel=channel,
    )


def preview_for_client(
    template: MessageTemplate, client: Client, language: str | None = None, *, today: dt.date | None = None
) -> Rendered:
    """The live preview of a saved template against a real client's open invoices."""
    context = client_preview_context(client, language=language, today=today, channel=template.channel)
    return render(template=template, language=language or client.language, context=context)


@dataclass
class Preview:
    """What the template editor shows: the rendered draft, or why it cannot be saved."""

    rendered: Rendered | None
    errors: dict[str, list[str]] = field(default_factory=dict)
    # The variables it was rendered with (the HTML email preview wraps the same).
    context: MessageContext | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def preview_draft(
    *,
    channel: str,
    subject: str,
    body: str,
    language: str,
    client: Client | None = None,
    today: dt.date | None = None,
) -> Preview:
    """Validate and render an unsaved text (for the editor's live preview): against a real
    client's open invoices when given, otherwise against the sample data. Never raises."""
    try:
        validate_template_text(channel=channel, subject=subject, body=body, language=language)
    except ValidationError as exc:
        return Preview(rendered=None, errors={k: [str(m) for m in v] for k, v in exc.message_dict.items()})
    context = (
        client_preview_context(client, language=language, today=today, channel=channel)
        if client is not None
        else sample_context(language, today=today, channel=channel, business=business_selectors.current())
    )
    try:
        return Preview(
            rendered=render_text(channel=channel, subject=subject, body=body, language=language, context=context),
            context=context,
        )
    except TemplateRenderError as exc:
        return Preview(rendered=None, errors={"body": [str(exc)]})


# --- validation --------------------------------------------------------------------------


class _Checker:
    """Walks a compiled template and checks every variable against PLACEHOLDERS, with the
    names bound by {% for %}, {% with %} and ``as`` in scope."""

    def __init__(self):
        self.errors: list[str] = []
        self.loop_depth = 0

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def nodelist(self, nodes: Iterable[Node], scope: dict) -> None:
        scope = dict(scope)  # names set with "as" live until the end of the enclosing block
        for node in nodes:
            self.node(node, scope)

    def node(self, node: Node, scope: dict) -> None:
        if isinstance(node, VariableNode):
            self.expression(node.filter_expression, scope)
        elif isinstance(node, IfNode):
            for condition, nodes in node.conditions_nodelists:
                if condition is not None:
                    self.condition(condition, scope)
                self.nodelist(nodes, scope)
        elif isinstance(node, ForNode):
            sequence = self.expression(node.sequence, scope)
            inner = {**scope, "forloop": _FORLOOP}
            if sequence is None:  # unknown: already reported
                item = ANY
            elif sequence is not ANY and sequence.many:
                item = sequence.item() if len(node.loopvars) == 1 else ANY
            else:
                self.error(loop_source_message(node.sequence.token))
                item = ANY
            if self.loop_depth >= MAX_LOOP_DEPTH:
                self.error(loop_depth_message())
            for name in node.loopvars:
                inner[name] = item
            self.loop_depth += 1
            self.nodelist(node.nodelist_loop, inner)
            self.loop_depth -= 1
            self.nodelist(node.nodelist_empty, scope)
        elif isinstance(node, WithNode):
            inner = dict(scope)
            for name, expression in node.extra_context.items():
                inner[name] = self.expression(expression, scope) or ANY
            self.nodelist(node.nodelist, inner)
        elif isinstance(node, FilterNode):
            self.expression(node.filter_expr, {**scope, "var": ANY})
            self.nodelist(node.nodelist, scope)
        elif isinstance(node, FirstOfNode):
            for expression in node.vars:
                self.expression(expression, scope)
            if node.asvar:
                scope[node.asvar] = ANY
        elif isinstance(node, NowNode):
            if node.asvar:
                scope[node.asvar] = ANY
        else:
            for attr in getattr(node, "child_nodelists", ()):
                self.nodelist(getattr(node, attr, None) or [], scope)

    def condition(self, condition, scope: dict) -> None:
        value = getattr(condition, "value", None)
        if isinstance(value, FilterExpression):  # a TemplateLiteral: one operand
            self.expression(value, scope)
            return
        for operand in (getattr(condition, "first", None), getattr(condition, "second", None)):
            if operand is not None:
                self.condition(operand, scope)

    def expression(self, expression: FilterExpression, scope: dict):
        for _func, args in expression.filters:
            for is_lookup, arg in args:
                if is_lookup:
                    self.variable(arg, scope)
        var = expression.var
        base = self.variable(var, scope) if isinstance(var, Variable) else ANY
        if not expression.filters or base is None:
            return base
        names = {getattr(func, "_filter_name", "") for func, _args in expression.filters}
        if isinstance(base, Field) and base.many and names <= _LIST_FILTERS:
            return base
        return ANY

    def variable(self, var: Variable, scope: dict):
        if var.lookups is None:  # a literal
            return ANY
        root, *rest = var.lookups
        node = scope[root] if root in scope else PLACEHOLDERS.get(root)
        if node is None:
            self.error(
                _("Variable desconocida: «{{ %(name)s }}». Disponibles: %(available)s.")
                % {"name": var.var, "available": ", ".join(PLACEHOLDERS)}
            )
            return None
        path = root
        for bit in rest:
            if node is ANY:
                return ANY
            if node.many and bit.isdigit():
                node = node.item()
            elif not node.many and node.fields and bit in node.fields:
                node = node.fields[bit]
            else:
                available = ", ".join(node.fields or ()) if not node.many else _("un número de posición")
                self.error(
                    _("«%(path)s» no tiene el dato «%(field)s» (en «{{ %(name)s }}»).%(hint)s")
                    % {
                        "path": path,
                        "field": bit,
                        "name": var.var,
                        "hint": (" " + _("Datos disponibles: %(fields)s.") % {"fields": available})
                        if available
                        else "",
                    }
                )
                return None
            path = f"{path}.{bit}"
        return node


def _tag_errors(source: str) -> list[str]:
    errors = []
    for token in Lexer(source).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        bits = token.contents.split()
        name = bits[0] if bits else ""
        if not name or name in ALLOWED_TAGS or name in _INNER_TAGS:
            continue
        if name in FORBIDDEN_TAGS:
            errors.append(
                _("La etiqueta {%% %(tag)s %%} no está permitida en las plantillas de mensajes (línea %(line)s).")
                % {"tag": name, "line": token.lineno}
            )
        else:
            errors.append(
                _("Etiqueta desconocida {%% %(tag)s %%} (línea %(line)s). Se permiten: %(allowed)s.")
                % {"tag": name, "line": token.lineno, "allowed": ", ".join(ALLOWED_TAGS)}
            )
    return errors


def _limit_errors(source: str) -> list[str]:
    """The size and nesting limits, read from the tokens (no parsing: a template nested
    thousands deep would overflow the parser's recursion)."""
    if len(source) > TEMPLATE_MAX_CHARS:
        return [
            _("El texto tiene %(length)s caracteres; el máximo es %(limit)s.")
            % {"length": len(source), "limit": TEMPLATE_MAX_CHARS}
        ]
    depth = 0
    for token in Lexer(source).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        name = (token.contents.split() or [""])[0]
        if name in _BLOCK_TAGS:
            depth += 1
            if depth > MAX_BLOCK_DEPTH:
                return [
                    _("Como máximo %(depth)s etiquetas una dentro de otra (línea %(line)s).")
                    % {"depth": MAX_BLOCK_DEPTH, "line": token.lineno}
                ]
        elif name.startswith("end"):
            depth = max(depth - 1, 0)
    return []


@functools.lru_cache(maxsize=512)
def _within_limits(source: str) -> bool:
    # Cached by source like _compile (an edit is a new entry): a dispatch batch renders the
    # same few texts fifty times, and reading their tokens cost more than rendering them.
    return not _limit_errors(source)


def _check_source_limits(source: str) -> None:
    if _within_limits(source):
        return
    errors = _limit_errors(source)  # worded in the language active now, not cached
    raise TemplateBudgetExceeded(errors[0])


def _compile_errors(source: str, autoescape: bool):
    """Compile ``source`` for validation: (template, errors)."""
    errors = _limit_errors(source) or _tag_errors(source)
    if errors:
        return None, errors
    try:
        # Untrimmed, so line numbers in errors are the editor's; trimming changes only spaces.
        template = _compile(source, autoescape, True, False)
    except TemplateSyntaxError as exc:
        line = getattr(exc, "template_debug", {}).get("line")
        if line:
            return None, [
                _("Error de sintaxis en la línea %(line)s: %(error)s")
                % {"line": line, "error": syntax_error_detail(exc)}
            ]
        return None, [_("Error de sintaxis: %(error)s") % {"error": syntax_error_detail(exc)}]
    checker = _Checker()
    checker.nodelist(template.nodelist, {})
    return _compile(source, autoescape, True, True), checker.errors


def validate_template_text(*, channel: str, subject: str, body: str, language: str = FALLBACK_LANGUAGE) -> None:
    """Raise ``ValidationError({"subject": [...], "body": [...]})`` unless the text compiles,
    uses only allowed tags and documented variables, renders against the sample data, and
    fits its channel (email needs a subject; SMS and WhatsApp have a length limit)."""
    errors: dict[str, list[str]] = {}
    autoescape = AUTOESCAPE_BY_CHANNEL.get(channel, False)
    compiled = {}
    for name, source in (("subject", subject or ""), ("body", body or "")):
        if not source.strip():
            continue
        template, problems = _compile_errors(source, autoescape)
        if problems:
            errors[name] = problems
        else:
            compiled[name] = template
    if channel == StepChannel.EMAIL and not (subject or "").strip():
        errors.setdefault("subject", []).append(_("Un correo necesita un asunto."))
    if not (body or "").strip():
        errors.setdefault("body", []).append(_("Escriba el texto del mensaje."))
    if channel not in AUTOESCAPE_BY_CHANNEL:
        errors.setdefault("body", []).append(_("Canal sin mensajes: %(channel)s.") % {"channel": channel})

    if compiled:
        context = sample_context(language, channel=channel)
        for name, template in compiled.items():
            try:
                rule = getattr(context.get("empresa"), "number_format", None)
                with translation.override(language), numbers.for_business(rule), budgeted() as budget:
                    output = template.render(Context(dict(context), autoescape=autoescape))
                    budget.check_size(len(output))
            except TemplateBudgetExceeded as exc:
                errors.setdefault(name, []).append(str(exc))
                continue
            except Exception as exc:  # reported to the editor, never raised at send time
                errors.setdefault(name, []).append(
                    _("No se pudo generar con los datos de ejemplo: %(error)s") % {"error": exc}
                )
                continue
            missing = sorted(set(_SENTINEL_RE.findall(output)))
            if missing:
                errors.setdefault(name, []).append(
                    _("Variables que no se pueden resolver: %(names)s.") % {"names": ", ".join(missing)}
                )
                continue
            if name != "body":
                continue
            length = len(_tidy_body(output))
            limit = {StepChannel.SMS: SMS_MAX_CHARS, StepChannel.WHATSAPP: WHATSAPP_MAX_CHARS}.get(channel)
            if limit and length > limit:
                errors.setdefault("body", []).append(
                    _(
                        "Con los datos de ejemplo el mensaje tiene %(length)d caracteres; "
                        "el máximo para %(channel)s es %(limit)d."
                    )
                    % {"length": length, "channel": StepChannel(channel).label, "limit": limit}
                )
    if errors:
        raise ValidationError(errors)


def validate_template(template: MessageTemplate) -> None:
    """Validate every text of a saved template; errors are keyed "<language>.subject"/"body"."""
    errors: dict[str, list[str]] = {}
    for text in template.texts.all():
        try:
            validate_template_text(
                channel=template.channel, subject=text.subject, body=text.body, language=text.language
            )
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors[f"{text.language}.{key}"] = messages
    if errors:
        raise ValidationError(errors)
