"""The business's identity: the administrators' settings page, the first-login setup, and
the public logo that emails and portal pages point at (docs/domain.md, "Who the debtor hears
from")."""

from __future__ import annotations

import functools
import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.forms import add_service_errors
from accounts.roles import is_admin
from cobranza.business import selectors, services
from cobranza.business.forms import BusinessSettingsForm, SetupForm
from cobranza.business.middleware import mark_done

# A day: the logo's address carries its version (?v=), so a new logo is a new address.
LOGO_MAX_AGE = 24 * 3600


def admin_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied(_("Esta acción requiere el rol de administrador."))
        return view(request, *args, **kwargs)

    return wrapper


def _initial(profile) -> dict:
    return {name: getattr(profile, name) for name in services.TEXT_FIELDS}


@require_http_methods(["GET", "POST"])
@admin_required
def settings_page(request):
    profile = selectors.current()
    form = BusinessSettingsForm(request.POST or None, request.FILES or None, initial=_initial(profile))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        logo = data.get("logo")
        fields = {name: data[name] for name in services.TEXT_FIELDS if name in data}
        kwargs = {"logo": logo} if logo else ({"logo": None} if data.get("remove_logo") else {})
        try:
            services.business_update(by=request.user, fields=fields, **kwargs)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Se guardaron los datos de la empresa."))
            return redirect("cobranza:business_settings")
    return render(
        request,
        "cobranza/business/settings.html",
        {"form": form, "profile": profile, "logo_path": selectors.logo_path(profile)},
    )


@require_http_methods(["GET", "POST"])
@admin_required
def setup(request):
    """The first-login setup: the essentials, then on to where the administrator was going."""
    profile = selectors.current()
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    if profile.setup_completed_at is not None and request.method == "GET":
        mark_done(request)
        return redirect(next_url or reverse("home"))
    form = SetupForm(request.POST or None, initial={name: getattr(profile, name) for name in services.ESSENTIAL_FIELDS})
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in services.ESSENTIAL_FIELDS}
        try:
            services.business_setup_complete(by=request.user, fields=fields)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            mark_done(request)
            messages.success(
                request,
                _(
                    "Listo: sus clientes recibirán los mensajes a nombre de %(name)s. Complete el logotipo, la firma y "
                    "los datos bancarios en Datos de la empresa."
                )
                % {"name": fields["trade_name"]},
            )
            return redirect(next_url or reverse("home"))
    request.business_setup_pending = False  # this page is the notice
    return render(request, "cobranza/business/setup.html", {"form": form, "next": next_url})


@login_not_required
@require_GET
def logo(request):
    """The current logo, public: emails and portal pages show it to debtors. It holds no client
    data; caches may keep it for a day (its address changes with every new logo)."""
    profile = selectors.current()
    if not profile.logo:
        raise Http404
    try:
        file = profile.logo.open("rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404 from exc
    content_type = mimetypes.guess_type(profile.logo.name)[0] or "application/octet-stream"
    response = FileResponse(file, content_type=content_type)
    patch_cache_control(response, public=True, max_age=LOGO_MAX_AGE)
    response["X-Content-Type-Options"] = "nosniff"
    return response
