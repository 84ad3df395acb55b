"""The debtor's self-service page (public, reached by a signed link) and what staff do with it:
the portal panel of the client page (the link: copy, send now, revoke, issue a new one; the
debtor's proposals to approve or reject).

Public views need no login (``login_not_required``): the signed token is the credential and
resolves to exactly one client, so nothing here takes a client id from the request. Every
request is rate limited (per IP and per token) before the token is even checked, and pages
are rendered in the client's language. Responses are never cached and send no Referer, so
the token does not leak to caches or other sites.
"""

from __future__ import annotations

import functools
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import numbers
from accounts.forms import add_service_errors
from accounts.roles import is_staff_member
from accounts.services import ensure_can_work
from accounts.views import _safe_next, _visible_client, section_url, staff_required
from cobranza.business import payments
from cobranza.business import selectors as business
from cobranza.engine import messaging
from cobranza.models import PortalProposal
from cobranza.portal import links, selectors, services
from cobranza.portal.forms import LinkSendForm, PlanRequestForm, ProblemForm, PromiseForm, ProposalRejectForm

DONE_MESSAGES = ("promise", "plan", "proposal", "problem")


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def portal_view(view):
    """Public, rate limited, token → client (``request`` gets no client id from the URL),
    rendered in the client's language and the business's number format (even for a signed-in
    staff member with a format of their own: docs/domain.md#number-formats)."""

    # No CSRF check here. CSRF defends credentials a browser sends by itself (a session
    # cookie); the portal has none: its credential is the token in the URL, which a forged
    # request would have to know, and with it could act directly anyway. And the check cannot
    # pass: these pages send "Referrer-Policy: no-referrer" (the URL must not leak), under
    # which browsers post forms with "Origin: null", which Django's check rejects (403 on
    # every form of the portal, found by tests/e2e/test_portal_browser.py).
    @csrf_exempt
    @login_not_required
    @functools.wraps(view)
    def wrapper(request, token, *args, **kwargs):
        if links.rate_limited(request, token=token):
            return _rate_limited(request)
        try:
            client = links.client_from_token(token)
        except links.LinkError as exc:
            return _invalid(request, exc)
        with translation.override(client.language), numbers.override(""):
            response = view(request, client, token, *args, **kwargs)
        response["Content-Language"] = client.language
        return _private(response)

    return wrapper


def _rate_limited(request) -> HttpResponse:
    response = render(request, "cobranza/selfservice/rate_limited.html", _identity(), status=429)
    response["Retry-After"] = str(links.rate_window())
    return _private(response)


def _invalid(request, exc: links.LinkError) -> HttpResponse:
    response = render(request, "cobranza/selfservice/invalid.html", {"reason": exc.reason, **_identity()}, status=404)
    return _private(response)


def _identity(language: str | None = None) -> dict:
    """Who the debtor is dealing with: the business's name, logo, colour, contact details and
    legal footer (docs/domain.md, "Who the debtor hears from")."""
    profile = business.current()
    language = language or translation.get_language() or "es"
    return {
        "business": profile,
        "company": profile.trade_name,
        "logo_url": business.logo_path(profile),
        "contact_email": business.contact_email(profile),
        "legal_footer": business.by_language(profile, "legal_footer", language),
    }


def _page(request, template: str, client, token: str, **context) -> HttpResponse:
    return render(
        request,
        template,
        {"client": client, "token": token, **_identity(client.language), **context},
    )


@csrf_exempt
@login_not_required
@require_GET
def short_link(request, code):
    """The short link of SMS and WhatsApp messages: checked like a token (rate limit,
    signature, revocation, expiry), then a redirect to a freshly signed long link."""
    if links.rate_limited(request, token=code):
        return _rate_limited(request)
    try:
        client = links.client_from_short_code(code)
    except links.LinkError as exc:
        return _invalid(request, exc)
    return _private(redirect(reverse("selfservice:statement", args=[links.token_for(client)])))


def _back(token: str, done: str):
    return redirect(reverse("selfservice:statement", args=[token]) + f"?hecho={done}")


@portal_view
@require_GET
def statement(request, client, token):
    done = request.GET.get("hecho", "")
    services.visit_record(client=client)
    data = selectors.statement_of(client)
    return _page(
        request,
        "cobranza/selfservice/statement.html",
        client,
        token,
        statement=data,
        agreements=selectors.agreements_of(client, data.today),
        done=done if done in DONE_MESSAGES else "",
        can_act=bool(selectors.open_currencies(client)),
        # Pay now: templates/cobranza/selfservice/_pay.html.
        pay=payments.portal_section(client=client, invoices=[line.invoice for line in data.lines], today=data.today),
    )


@portal_view
@require_GET
def statement_pdf(request, client, token):
    from weasyprint import HTML  # imported here: loading pango costs ~0.3 s at start-up

    data = selectors.statement_of(client)
    html = render_to_string(
        "cobranza/selfservice/statement_pdf.html",
        {
            "client": client,
            "statement": data,
            **_identity(client.language),
            "logo_file": business.logo_file_uri(business.current()),
        },
    )
    response = HttpResponse(HTML(string=html).write_pdf(), content_type="application/pdf")
    services.statement_downloaded(client=client)
    filename = _("estado-de-cuenta") + f"-{data.today.isoformat()}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@portal_view
@require_http_methods(["GET", "POST"])
def promise(request, client, token):
    form = PromiseForm(request.POST or None, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.promise_create(
                client=client,
                pay_on=form.cleaned_data["pay_on"],
                amount=form.cleaned_data["amount"],
                currency=form.cleaned_data["currency"],
            )
        except ValidationError as exc:
            add_service_errors(form, _map_installment_errors(exc))
        else:
            return _back(token, "proposal" if isinstance(result, PortalProposal) else "promise")
    return _page(request, "cobranza/selfservice/promise.html", client, token, form=form)


def _map_installment_errors(exc: ValidationError) -> ValidationError:
    # commitment_create speaks of "installments"; on this form they are the date and amount.
    if hasattr(exc, "error_dict") and "installments" in exc.error_dict:
        errors = dict(exc.error_dict)
        errors.setdefault("amount", []).extend(errors.pop("installments"))
        if "invoices" in errors:
            errors.setdefault("__all__", []).extend(errors.pop("invoices"))
        return ValidationError(errors)
    if hasattr(exc, "error_dict") and "invoices" in exc.error_dict:
        errors = dict(exc.error_dict)
        errors.setdefault("__all__", []).extend(errors.pop("invoices"))
        return ValidationError(errors)
    return exc


@portal_view
@require_http_methods(["GET", "POST"])
def plan_request(request, client, token):
    form = PlanRequestForm(request.POST or None, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.plan_request(
                client=client,
                installments=form.cleaned_data["installments"],
                first_on=form.cleaned_data["first_on"],
                spacing=form.cleaned_data["spacing"],
                currency=form.cleaned_data["currency"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            add_service_errors(form, _map_installment_errors(exc))
        else:
            return _back(token, "proposal" if isinstance(result, PortalProposal) else "plan")
    return _page(request, "cobranza/selfservice/plan_request.html", client, token, form=form)


@portal_view
@require_http_methods(["GET", "POST"])
def report_problem(request, client, token):
    form = ProblemForm(request.POST or None, client=client, initial={"invoice": request.GET.get("factura")})
    if request.method == "POST" and form.is_valid():
        try:
            services.problem_report(
                client=client,
                invoice=form.cleaned_data["invoice"],
                reason=form.cleaned_data["reason"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _back(token, "problem")
    return _page(request, "cobranza/selfservice/report_problem.html", client, token, form=form)


# --- staff ---------------------------------------------------------------------------------


@staff_required
@require_POST
def revoke(request, pk):
    """Revoke every self-service link of a client (login required by the middleware; a
    collector reaches only their own clients: anything else is a 404, then a 403 from
    ``ensure_can_work``)."""
    client = _visible_client(request, pk)
    ensure_can_work(request.user, client)
    links.revoke(by=request.user, client=client)
    messages.success(request, _("Se revocaron los enlaces de autoservicio de este cliente."))
    return redirect(_client_page(client))


def _client_page(client, anchor: str = "portal") -> str:
    """The client page, its "Cobranza" section open at the portal panel."""
    return section_url(client, "cobranza", anchor)


def _flash_errors(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@staff_required
@require_POST
def link_send(request, pk):
    """Send the client's portal link now (or revoke every earlier link and send a new one)."""
    client = _visible_client(request, pk)
    ensure_can_work(request.user, client)
    form = LinkSendForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_client_page(client))
    try:
        message = services.link_send(
            by=request.user,
            client=client,
            channel=form.cleaned_data["channel"],
            key=form.cleaned_data["key"],
            reissue=form.cleaned_data["reissue"],
        )
    except ValidationError as exc:
        _flash_errors(request, exc)
    else:
        messages.success(
            request,
            (
                _("Enlaces anteriores revocados; el nuevo sale por %(channel)s y el envío queda en el historial.")
                if form.cleaned_data["reissue"]
                else _("El enlace sale por %(channel)s; el envío queda en el historial.")
            )
            % {"channel": message.get_channel_display()},
        )
    return redirect(_client_page(client))


def _proposal(request, pk) -> PortalProposal:
    proposal = get_object_or_404(PortalProposal.objects.select_related("client"), pk=pk)
    # A collector reaches only their own clients' proposals (404 otherwise, as for the client).
    client = _visible_client(request, proposal.client_id)
    ensure_can_work(request.user, client)
    return proposal


@staff_required
@require_POST
def proposal_approve(request, pk):
    proposal = _proposal(request, pk)
    try:
        services.proposal_approve(by=request.user, proposal=proposal)
    except ValidationError as exc:
        _flash_errors(request, exc)
    else:
        messages.success(
            request, _("Propuesta aprobada: los recordatorios de esas facturas se detienen mientras la cumpla.")
        )
    return redirect(_safe_next(request, _client_page(proposal.client)))


@staff_required
@require_POST
def proposal_reject(request, pk):
    proposal = _proposal(request, pk)
    form = ProposalRejectForm(request.POST)
    if not form.is_valid():
        _flash_errors(request, ValidationError(list(form.errors.get("note", []))))
        return redirect(_client_page(proposal.client))
    try:
        services.proposal_reject(by=request.user, proposal=proposal, note=form.cleaned_data["note"])
    except ValidationError as exc:
        _flash_errors(request, exc)
    else:
        messages.success(request, _("Propuesta rechazada: se avisa al cliente y los recordatorios siguen."))
    return redirect(_safe_next(request, _client_page(proposal.client)))


def client_panel(request, client) -> str:
    """The portal panel of the client page (registered in ``CobranzaConfig.ready``): the link,
    what was sent, and the debtor's proposals waiting for a decision. Constant queries."""
    if not is_staff_member(request.user):
        return ""
    panel = selectors.staff_panel(client)
    # The public address reminders carry; without one, this server's own address (to copy).
    public = messaging.payment_link(client=client)
    return render_to_string(
        "cobranza/selfservice/_staff_panel.html",
        {
            "client": client,
            "panel": panel,
            "link": public or request.build_absolute_uri(links.link_for(client)),
            "can_send": bool(public),
            "link_days": settings.SELF_SERVICE_LINK_DAYS,
            "send_form_key": uuid.uuid4().hex,
            "reject_form": ProposalRejectForm(),
        },
        request=request,
    )
