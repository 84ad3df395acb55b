"""The debtor's self-service page (public, reached by a signed link) and the staff view that
revokes a client's links.

Public views need no login (``login_not_required``): the signed token is the credential and
resolves to exactly one client, so nothing here takes a client id from the request. Every
request is rate limited (per IP and per token) before the token is even checked, and pages
are rendered in the client's language. Responses are never cached and send no Referer, so
the token does not leak to caches or other sites.
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import add_service_errors
from accounts.services import ensure_can_work
from accounts.views import _visible_client, staff_required
from cobranza.business import selectors as business
from cobranza.portal import links, selectors, services
from cobranza.portal.forms import PlanRequestForm, ProblemForm, PromiseForm

DONE_MESSAGES = ("promise", "plan", "problem")


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def portal_view(view):
    """Public, rate limited, token → client (``request`` gets no client id from the URL),
    rendered in the client's language."""

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
        with translation.override(client.language):
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
    return _page(
        request,
        "cobranza/selfservice/statement.html",
        client,
        token,
        statement=selectors.statement_of(client),
        done=done if done in DONE_MESSAGES else "",
        can_act=bool(selectors.open_currencies(client)),
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
    filename = _("estado-de-cuenta") + f"-{data.today.isoformat()}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@portal_view
@require_http_methods(["GET", "POST"])
def promise(request, client, token):
    form = PromiseForm(request.POST or None, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            services.promise_create(
                client=client,
                pay_on=form.cleaned_data["pay_on"],
                amount=form.cleaned_data["amount"],
                currency=form.cleaned_data["currency"],
            )
        except ValidationError as exc:
            add_service_errors(form, _map_installment_errors(exc))
        else:
            return _back(token, "promise")
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
    form = PlanRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.plan_request(
                client=client,
                installments=form.cleaned_data["installments"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _back(token, "plan")
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
    return redirect(reverse("client_detail", args=[client.pk]))
