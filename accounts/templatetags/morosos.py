"""Template helpers for the collections UI: money, aging buckets, status badges, links.

Labels come from the models and selectors (already marked for translation); this module
only decides how they look.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import template
from django.conf import settings
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from accounts import clock, numbers
from accounts.models import Client, Interaction, Invoice
from accounts.selectors import BUCKETS_BY_CODE, bucket_for_days

register = template.Library()


# --- money and dates -----------------------------------------------------------------------


@register.filter
def money(amount, currency="MXN"):
    """``{{ invoice.amount|money:invoice.currency }}`` in the active number format."""
    if amount is None or amount == "":
        return ""
    return numbers.format_money(amount, currency or settings.DEFAULT_CURRENCY) or amount


@register.filter
def money_locale(currency):
    """The BCP 47 tag of the active number format, for formatting in the browser."""
    return numbers.active().code


@register.filter
def num(value, places=1):
    """``{{ x|num:1 }}``: a number in the active format (instead of ``floatformat``)."""
    return numbers.format_number(value, int(places))


@register.filter
def percent(value, places=1):
    """``{{ rate|percent }}`` → "12.5 %" / "12.5%" (en-US); "" without a value."""
    return numbers.format_percent(value, int(places))


def _as_date(value):
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


@register.filter
def days_overdue(due_date, today=None):
    """Days past ``due_date`` (0 when not yet due, '' without a date)."""
    if not due_date:
        return ""
    today = _as_date(today) or clock.localdate()
    return max((today - _as_date(due_date)).days, 0)


@register.filter
def days_until(value):
    """Signed days from today to ``value``: negative when it is in the past."""
    if not value:
        return ""
    return (_as_date(value) - clock.localdate()).days


@register.filter
def absolute(value):
    try:
        return abs(value)
    except TypeError:
        return value


@register.filter
def pct_of(part, whole):
    """``part`` as a percentage of ``whole``, a number for ``floatformat`` (localized)."""
    try:
        part, whole = Decimal(part or 0), Decimal(whole or 0)
    except (InvalidOperation, TypeError, ValueError):
        return Decimal(0)
    return part / whole * 100 if whole > 0 else Decimal(0)


@register.filter
def share(part, whole):
    """``part`` as a percentage of ``whole`` for CSS widths: always a dot decimal."""
    try:
        part, whole = Decimal(part or 0), Decimal(whole or 0)
    except (InvalidOperation, TypeError, ValueError):
        return "0"
    if whole <= 0 or part <= 0:
        return "0"
    pct = min(part / whole * 100, Decimal(100))
    return f"{pct:.1f}"


# --- badges --------------------------------------------------------------------------------

BUCKET_CSS = {
    "current": "bucket-current",
    "1_30": "bucket-1",
    "31_60": "bucket-2",
    "61_90": "bucket-3",
    "91_120": "bucket-4",
    "120_plus": "bucket-5",
}


@register.simple_tag
def bucket_badge(code):
    """The aging bucket of a client or invoice, coloured by severity."""
    bucket = BUCKETS_BY_CODE.get(code or "")
    if bucket is None:
        return format_html('<span class="text-body-tertiary">—</span>')
    return format_html('<span class="badge badge-bucket {}">{}</span>', BUCKET_CSS[bucket.code], bucket.label)


@register.filter
def bucket_code(due_date):
    """The bucket code for a due date (the client list has the oldest due date, not a code)."""

    if not due_date:
        return ""
    return bucket_for_days((clock.localdate() - _as_date(due_date)).days).code


CLIENT_STATUS_CSS = {
    Client.Status.ACTIVE: "status-active",
    Client.Status.IN_COLLECTION: "status-collection",
    Client.Status.AGENCY: "status-agency",
    Client.Status.LEGAL: "status-legal",
    Client.Status.WRITTEN_OFF: "status-written-off",
}

INVOICE_STATUS_CSS = {
    Invoice.Status.OPEN: "status-open",
    Invoice.Status.PARTIALLY_PAID: "status-partial",
    Invoice.Status.PAID: "status-paid",
    Invoice.Status.DISPUTED: "status-disputed",
    Invoice.Status.WRITTEN_OFF: "status-written-off",
    Invoice.Status.CANCELLED: "status-cancelled",
}

# The labels (lazy: translated when shown). ``get_status_display`` rebuilds a dict of every
# choice on each call: a list page shows 25 badges.
CLIENT_STATUS_LABELS = dict(Client.Status.choices)
INVOICE_STATUS_LABELS = dict(Invoice.Status.choices)


@register.simple_tag
def client_status_badge(client):
    return format_html(
        '<span class="badge badge-status {}">{}</span>',
        CLIENT_STATUS_CSS.get(client.status, ""),
        CLIENT_STATUS_LABELS.get(client.status, client.status),
    )


@register.simple_tag
def invoice_status_badge(invoice):
    return format_html(
        '<span class="badge badge-status {}">{}</span>',
        INVOICE_STATUS_CSS.get(invoice.status, ""),
        INVOICE_STATUS_LABELS.get(invoice.status, invoice.status),
    )


@register.filter
def is_collectible(invoice):
    return invoice.status in Invoice.COLLECTIBLE_STATUSES and invoice.open_balance > 0


KIND_ICONS = {
    Interaction.Kind.CALL: "telephone",
    Interaction.Kind.EMAIL: "envelope",
    Interaction.Kind.SMS: "chat-left-text",
    Interaction.Kind.WHATSAPP: "whatsapp",
    Interaction.Kind.LETTER: "mailbox",
    Interaction.Kind.VISIT: "geo-alt",
    Interaction.Kind.NOTE: "sticky",
    Interaction.Kind.SYSTEM: "gear",
}


@register.simple_tag
def kind_icon(kind):
    return format_html('<i class="bi bi-{}" aria-hidden="true"></i>', KIND_ICONS.get(kind, "dot"))


OUTCOME_CSS = {
    "promise": "outcome-promise",
    "paid": "outcome-paid",
    "reached": "outcome-reached",
    "dispute": "outcome-dispute",
    "refused": "outcome-refused",
    "wrong_contact": "outcome-refused",
    "failed": "outcome-refused",
}


@register.simple_tag
def outcome_badge(entry):
    if not entry.outcome:
        return ""
    return format_html(
        '<span class="badge badge-outcome {}">{}</span>',
        OUTCOME_CSS.get(entry.outcome, ""),
        entry.get_outcome_display(),
    )


@register.filter
def user_label(user):
    """A person's name for the UI; the timeline's null author is the system."""
    if user is None:
        return _("Sistema")
    return user.get_full_name() or user.get_username()


@register.filter
def elided_range(paginator, number):
    """Page numbers around ``number`` with ``paginator.ELLIPSIS`` for the gaps."""
    return list(paginator.get_elided_page_range(number, on_each_side=2, on_ends=1))


# --- links ---------------------------------------------------------------------------------


def _query(params) -> str:
    pairs = [(k, v) for k in params for v in params.getlist(k) if v not in ("", None)]
    return "?" + urlencode(pairs) if pairs else "?"


@register.simple_tag(takes_context=True)
def qs(context, **changes):
    """The current query string with ``changes`` applied; ``None`` or "" removes a key.
    Empty parameters are dropped so filter links stay short."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    return _query(params)


@register.inclusion_tag("accounts/_sort_header.html", takes_context=True)
def sort_header(context, first, label, desc=False, css=""):
    """A sortable column header. ``first`` is the sort of the first click (a key of
    ``selectors.SORTS``, e.g. ``-balance``); a second click reverses it. ``desc`` says
    whether that first click reads as descending, for the arrow. Keeps the filters and
    goes back to page 1."""
    current = context["request"].GET.get("sort") or "name"
    opposite = first[1:] if first.startswith("-") else f"-{first}"
    params = context["request"].GET.copy()
    params.pop("page", None)
    params["sort"] = opposite if current == first else first
    direction = ""
    if current == first:
        direction = "desc" if desc else "asc"
    elif current == opposite:
        direction = "asc" if desc else "desc"
    return {"href": _query(params), "label": label, "direction": direction, "css": css}


# --- forms ---------------------------------------------------------------------------------


@register.simple_tag
def select_field(bound_field):
    """A bound choice field's ``<select>``, built here: Django's widget templates include two
    templates per option (the client list's filters have ~45 options: a fifth of the page's
    rendering). Same name, id, attributes and selected option; grouped choices and multiple
    selects keep Django's own rendering."""
    field, widget = bound_field.field, bound_field.field.widget
    choices = list(field.choices)
    if getattr(widget, "allow_multiple_selected", False) or any(isinstance(c[1], (list, tuple)) for c in choices):
        return bound_field.as_widget()
    # As BoundField.as_widget builds them: required, aria-invalid and aria-describedby, the id.
    extra = bound_field.build_widget_attrs({}, widget)
    if bound_field.auto_id and "id" not in widget.attrs:
        extra.setdefault("id", bound_field.auto_id)
    attrs = widget.build_attrs(widget.attrs, {"name": bound_field.html_name, **extra})
    value = bound_field.value()
    chosen = "" if value is None else str(value)
    options = format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((v, " selected" if str(v) == chosen else "", label) for v, label in choices),
    )
    return format_html("<select{}>{}</select>", flatatt(attrs), options)
