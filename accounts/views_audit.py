"""Security pages: the audit history (per client and for the whole system), the login
lock-out page, the administrators' list of locked-out logins, and the throttled password
change.

Access: a client's history follows the client page (any staff member who may open the client;
another collector's client is a 404); the system-wide history is for managers and
administrators; lock-outs are for administrators.
"""

from __future__ import annotations

import functools

from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts import clock

from . import audit, selectors
from .forms import ThrottledPasswordChangeForm
from .roles import is_admin
from .views import manager_required, staff_required

ENTRIES_PER_PAGE = 50
SYSTEM = "sistema"


def admin_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied(_("Esta página es solo para administradores."))
        return view(request, *args, **kwargs)

    return wrapper


def _page(request, qs):
    page = Paginator(qs, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    return page, audit.present(page.object_list)


# --- a client's history --------------------------------------------------------------------


@staff_required
@require_GET
def client_history(request, pk):
    client = get_object_or_404(selectors.clients_visible_to(request.user), pk=pk)
    page, rows = _page(request, audit.client_history(client))
    return render(request, "accounts/audit/client_history.html", {"client": client, "page_obj": page, "rows": rows})


# --- the whole system ----------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    model = forms.ChoiceField(label=gettext_lazy("Qué"), required=False)
    user = forms.ChoiceField(label=gettext_lazy("Quién"), required=False)
    date_from = forms.DateField(
        label=gettext_lazy("Desde"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("Hasta"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Named "app.model" (e.g. ?model=cobranza.policy), so other pages can link to a filter.
        self.content_types = {f"{ct.app_label}.{ct.model}": ct for ct in audit.audited_content_types()}
        self.fields["model"].choices = [("", _("Todo"))] + sorted(
            (
                (key, str(ct.model_class()._meta.verbose_name_plural).capitalize())
                for key, ct in self.content_types.items()
            ),
            key=lambda choice: choice[1],
        )
        staff = (
            get_user_model()
            .objects.filter(Q(groups__isnull=False) | Q(is_superuser=True))
            .distinct()
            .order_by("first_name", "username")
        )
        self.users = {str(u.pk): u for u in staff}
        self.fields["user"].choices = [("", _("Todos")), (SYSTEM, _("Sistema (procesos automáticos)"))] + [
            (pk, u.get_full_name() or u.get_username()) for pk, u in self.users.items()
        ]
        for name in ("model", "user"):
            self.fields[name].widget.attrs["class"] = "form-select"
        for name in ("date_from", "date_to"):
            self.fields[name].widget.attrs["class"] = "form-control"

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("La fecha final no puede ser anterior a la inicial."))
        return data

    def filters(self) -> dict:
        """What the valid fields ask for; an invalid field filters nothing (its error shows)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = self.cleaned_data
        user = data.get("user") or ""
        return {
            "content_type": self.content_types.get(data.get("model") or ""),
            "system": user == SYSTEM,
            "actor": self.users.get(user),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }


@manager_required
@require_GET
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.filters()
    page, rows = _page(request, audit.audit_log(**filters))
    return render(
        request,
        "accounts/audit/audit_log.html",
        {"form": form, "page_obj": page, "rows": rows, "is_filtered": any(filters.values())},
    )


# --- login lock-outs -----------------------------------------------------------------------


@login_not_required
def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out login gets (django-axes' AXES_LOCKOUT_CALLABLE): when to try again,
    and whom to ask. Every failure while locked restarts the cool-off, so it ends one cool-off
    after now."""
    cool_off = audit.cool_off()
    return render(
        request,
        "registration/lockout.html",
        {
            "retry_at": timezone.localtime(clock.now() + cool_off),
            "minutes": max(1, round(cool_off.total_seconds() / 60)),
            "failure_limit": settings.AXES_FAILURE_LIMIT,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


@admin_required
@require_GET
def lockout_list(request):
    return render(
        request,
        "accounts/audit/lockouts.html",
        {"lockouts": audit.lockouts(), "failure_limit": settings.AXES_FAILURE_LIMIT, "cool_off": audit.cool_off()},
    )


@require_POST
@admin_required
def lockout_reset(request):
    username = (request.POST.get("username") or "").strip()
    ip_address = (request.POST.get("ip_address") or "").strip()
    if not username and not ip_address:
        messages.error(request, _("Indique qué bloqueo quiere levantar."))
        return redirect("lockout_list")
    removed = AxesProxyHandler.reset_attempts(username=username or None, ip_address=ip_address or None)
    if removed:
        messages.success(
            request, _("Acceso desbloqueado: %(user)s ya puede volver a entrar.") % {"user": username or ip_address}
        )
    else:
        messages.info(request, _("No había intentos fallidos que levantar."))
    return redirect("lockout_list")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; wrong old passwords are throttled (ThrottledPasswordChangeForm)."""

    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}
