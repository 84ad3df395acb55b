"""The HTML email every debtor receives beside the plain text (docs/domain.md#html-email).

Message templates stay text (``cobranza.engine.messaging``); this module wraps what a template
produced in an HTML part built for real mail clients: table layout, every style inlined by
css-inline (mail clients drop ``<style>`` and external CSS), the business's logo and brand
colour, the text's paragraphs (escaped), the invoices as a table in the message's language and
locale, the totals per currency, a pay button per payment link and the bank-transfer details
(``cobranza.business.payments.ways_to_pay``), the portal link and the opt-out line.

:func:`build` is the one function behind the real send (dispatch, through :func:`compose_notice`)
and the template editor's live preview (:func:`preview_html`): the only difference is how the
logo is referenced — a ``cid:`` inline attachment in the sent message, a ``data:`` URI in the
preview (the browser has no MIME message to resolve ``cid:`` against).
"""

from __future__ import annotations

import base64
import datetime as dt
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import css_inline
from django.template.loader import render_to_string
from django.utils import formats, translation
from django.utils.translation import gettext as _

from accounts import numbers
from cobranza.business import payments, selectors
from cobranza.engine import messaging
from cobranza.models import BusinessProfile, Notice

LOGO_CID = "logo"
# A logo larger than this is left out of the message (it would make every reminder heavy).
LOGO_MAX_BYTES = 300_000
LOGO_TYPES = ("image/png", "image/jpeg", "image/gif")
# The word a debtor replies with to stop emails (docs/domain.md#contact-rules: every email
# offers an opt-out); the footer says it unless the template's text already does.
OPT_OUT_WORD = {"es": "BAJA", "en": "STOP"}

# Rows of the invoice table: each costs about 0.7 KB once styles are inlined, and Gmail clips
# a message over 102 KB. The totals always cover every invoice; the rest are on the portal.
MAX_TABLE_ROWS = 60

_INLINER = css_inline.CSSInliner(keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False)


@dataclass(frozen=True)
class InlineImage:
    cid: str
    content: bytes
    mimetype: str


@dataclass(frozen=True)
class EmailContent:
    """Both parts of one email: the text alternative and the HTML with its inline images."""

    subject: str
    text: str
    html: str
    images: tuple[InlineImage, ...] = ()
    language: str = messaging.FALLBACK_LANGUAGE


def _logo(business: BusinessProfile) -> InlineImage | None:
    """The logo as an inline image, read from storage once per profile read: a dispatch batch
    (``selectors.remembered``) shares one read among its messages; a new read of the profile
    (the next batch, a preview) reads the file again, so a replaced logo shows at once."""
    if not business.logo:
        return None
    cache = business.__dict__.setdefault("_inline_logos", {})
    if business.logo.name not in cache:
        cache[business.logo.name] = _read_logo(business)
    return cache[business.logo.name]


def _read_logo(business: BusinessProfile) -> InlineImage | None:
    mimetype = mimetypes.guess_type(business.logo.name)[0] or ""
    if mimetype not in LOGO_TYPES:
        return None
    try:
        if business.logo.size > LOGO_MAX_BYTES:
            return None
        with business.logo.open("rb") as fh:
            content = fh.read(LOGO_MAX_BYTES + 1)
    except (OSError, ValueError):  # the file is gone from storage: send without the logo
        return None
    return InlineImage(cid=LOGO_CID, content=content, mimetype=mimetype)


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def _rows(facturas: Sequence[Mapping]) -> list[dict]:
    return [
        {
            "number": f["numero"],
            "due": formats.date_format(f["vencimiento"], "SHORT_DATE_FORMAT"),
            "days": f["dias_vencida"],
            "balance": str(f["saldo"]),
        }
        for f in facturas
    ]


def _by_language(business: BusinessProfile, field: str, language: str) -> str:
    return (getattr(business, f"{field}_{language}", "") or getattr(business, f"{field}_es", "") or "").strip()


def _text_with_ways_to_pay(text: str, ways: payments.WaysToPay) -> str:
    """The text part, with the ways to pay appended when the template did not show them: the
    alternative must carry what the HTML carries."""
    lines = []
    for link in ways.links:
        if link.url not in text:
            label = (
                _("Pagar en línea")
                if len(ways.links) == 1
                else _("Pagar %(amount)s en línea")
                % {"amount": numbers.format_money(link.amount, link.currency, numbers.debtor_code())}
            )
            lines.append(f"{label}: {link.url}")
    bank = ways.bank
    if bank and not ((bank.clabe and bank.clabe in text) or (bank.iban and bank.iban in text)):
        lines.append(_("Transferencia bancaria:"))
        for label, value in (
            (_("Banco"), bank.bank),
            (_("Titular"), bank.holder),
            (_("CLABE"), bank.clabe),
            (_("IBAN"), bank.iban),
            (_("Número de cuenta"), bank.account),
            (_("Referencia"), ways.reference),
        ):
            if value:
                lines.append(f"  {label}: {value}")
    return text + ("\n\n" + "\n".join(lines) if lines else "")


def build(
    *,
    rendered: messaging.Rendered,
    context: Mapping,
    business: BusinessProfile | None = None,
    embed: str = "cid",
    ways: payments.WaysToPay | None = None,
) -> EmailContent:
    """Both parts of the email for ``rendered`` (what a template produced from ``context``).
    ``embed`` is ``"cid"`` for a message to send, ``"data"`` for a browser preview; ``ways``
    replaces the context's ways to pay (an installment reminder asks for the installment)."""
    business = business if business is not None else selectors.current()
    language = rendered.language or messaging.FALLBACK_LANGUAGE
    if ways is None:
        pago = context.get("pago")
        ways = pago.ways if isinstance(pago, messaging.PaymentRecord) else payments.WaysToPay()
    logo = _logo(business)
    logo_src = ""
    if logo is not None:
        logo_src = (
            f"cid:{logo.cid}"
            if embed == "cid"
            else f"data:{logo.mimetype};base64,{base64.b64encode(logo.content).decode()}"
        )
    name = business.trade_name or business.legal_name
    facturas = list(context.get("facturas") or [])
    with translation.override(language):
        text = _text_with_ways_to_pay(rendered.body, ways)
        business_line = " · ".join(
            part for part in (business.legal_name or business.trade_name, business.phone, business.website) if part
        )
        html = render_to_string(
            "cobranza/email/message.html",
            {
                "language": language,
                "subject": rendered.subject,
                "business_name": name,
                "brand_color": business.brand_color or "#0d6efd",
                "logo_src": logo_src,
                "paragraphs": _paragraphs(rendered.body),
                "rows": _rows(facturas[:MAX_TABLE_ROWS]),
                "more_rows": max(len(facturas) - MAX_TABLE_ROWS, 0),
                "totals": [{"currency": t["moneda"], "text": str(t)} for t in context.get("total") or []],
                "pay_links": [
                    {"url": link.url, "text": numbers.format_money(link.amount, link.currency, numbers.debtor_code())}
                    for link in ways.links
                ],
                "bank": ways.bank if ways.bank else None,
                "reference": ways.reference,
                "portal_url": context.get("enlace_pago") or "",
                "business_line": business_line,
                "legal_footer": _by_language(business, "legal_footer", language),
                # The default templates end with their own opt-out line: not twice.
                "opt_out": OPT_OUT_WORD.get(language, OPT_OUT_WORD["es"]) not in rendered.body,
            },
        )
    html = _INLINER.inline(html)
    return EmailContent(
        subject=rendered.subject,
        text=text,
        html=html,
        images=(logo,) if logo is not None and embed == "cid" else (),
        language=language,
    )


def compose_notice(notice: Notice, *, items: Sequence, today: dt.date | None = None, business=None) -> EmailContent:
    """The email of an email notice, both parts (dispatch's send path): its template rendered
    once, as ``messaging.render_notice`` does, then wrapped. Raises TemplateRenderError."""
    template = notice.step.template
    if template is None:
        raise messaging.TemplateRenderError(
            _("El paso «%(step)s» no tiene plantilla de mensaje.") % {"step": notice.step.name}
        )
    context = messaging.notice_context(notice, items=items, today=today, business=business)
    rendered = messaging.render(template=template, language=notice.language or notice.client.language, context=context)
    try:
        return build(rendered=rendered, context=context, embed="cid")
    except Exception as exc:  # a broken logo or profile must fail the notice, not the worker
        raise messaging.TemplateRenderError(f"HTML: {type(exc).__name__}: {exc}") from exc


def wrap_text(
    *,
    subject: str,
    body: str,
    language: str,
    client,
    contact,
    invoices: Sequence,
    amounts: dict | None = None,
) -> EmailContent:
    """Both parts of a debtor email whose text comes from elsewhere than a message template
    (an installment reminder): the same HTML, for ``client``'s ``invoices``; ``amounts``
    (currency → amount) is what the pay button asks for, when not the open balances."""
    context = messaging.build_context(
        client=client, contact=contact, items=invoices, language=language, collector=client.collector
    )
    ways = None
    if amounts is not None:
        ways = payments.ways_to_pay(
            client_ref=client.pk, invoices=payments.owed_from_invoices(invoices), amounts=amounts
        )
    rendered = messaging.Rendered(subject=subject, body=body.strip(), language=language)
    return build(rendered=rendered, context=context, embed="cid", ways=ways)


def preview_html(preview: messaging.Preview) -> str:
    """The HTML of a live preview, exactly as it would be sent (empty when it has errors)."""
    if not preview.ok or preview.rendered is None or preview.context is None:
        return ""
    return build(rendered=preview.rendered, context=preview.context, embed="data").html
