"""The collector's day: "Mi cartera hoy" (the prioritised worklist), tasks marked done from
it, reassignment of clients by managers, and the calendar.

Same access rules as ``accounts.views``: a login and a staff role everywhere. A collector
always sees their own queue (the ``collector`` choice is not even read); a manager picks whose.
A task of another collector's client, or one reserved for managers, is a 404 for a collector.
Writes go through ``cobranza.worklist.services`` and ``accounts.services``, which check
permissions again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts import clock
from accounts import selectors as ledger_selectors
from accounts import services as ledger
from accounts.forms import BulkAssignForm
from accounts.roles import is_manager
from accounts.views import _safe_next, manager_required, staff_required
from cobranza.worklist import selectors, services
from cobranza.worklist.forms import CalendarForm, ScopeForm, TaskDoneForm


def _field_errors(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _collectors(request):
    """The collectors a manager can choose from (None for a collector: no choice)."""
    return list(ledger_selectors.collectors()) if is_manager(request.user) else None


def _name(user) -> str:
    if user is None:
        return _("sin asignar")
    return user.get_full_name() or user.get_username()


@staff_required
@require_GET
def worklist(request):
    collectors = _collectors(request)
    form = ScopeForm(request.GET, user=request.user, collectors=collectors)
    scope = form.scope()
    today = clock.localdate()
    paginator = Paginator(selectors.worklist(user=request.user, scope=scope, today=today), selectors.WORKLIST_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rows = selectors.worklist_rows(page.object_list, user=request.user, scope=scope, today=today)
    return render(
        request,
        "cobranza/worklist/worklist.html",
        {
            "form": form,
            "scope": scope,
            "page_obj": page,
            "rows": rows,
            "today": today,
            "progress": selectors.day_progress(user=request.user, scope=scope, today=today),
            "promise_rates": selectors.promise_kept_rates(scope=scope, today=today),
            "promise_rate_days": selectors.PROMISE_RATE_DAYS,
            "score_rules": selectors.SCORE_RULES,
            "collectors": collectors,
            "manager": collectors is not None,
            "task_form": TaskDoneForm(),
        },
    )


@staff_required
@require_POST
def task_done(request, pk):
    task = get_object_or_404(selectors.tasks_visible_to(request.user).select_related("client"), pk=pk)
    back = _safe_next(request, reverse("cobranza:worklist"))
    form = TaskDoneForm(request.POST)
    if not form.is_valid():
        _field_errors(request, form)
        return redirect(back)
    try:
        services.task_complete(by=request.user, task=task, note=form.cleaned_data["note"])
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return redirect(back)
    messages.success(
        request,
        _("Tarea hecha: %(title)s (%(client)s).") % {"title": task.title_text, "client": task.client.display_name},
    )
    return redirect(back)


@manager_required
@require_POST
def worklist_reassign(request):
    collectors = list(ledger_selectors.collectors())
    form = BulkAssignForm(
        request.POST,
        clients_qs=ledger_selectors.clients_visible_to(request.user),
        collector_options=[(str(u.pk), _name(u)) for u in collectors],
    )
    back = _safe_next(request, reverse("cobranza:worklist"))
    if not form.is_valid():
        _field_errors(request, form)
        return redirect(back)
    collector = form.cleaned_data["collector"]
    clients = form.cleaned_data["clients"]
    try:
        changed = ledger.clients_assign_collector(
            by=request.user, client_ids=[c.pk for c in clients], collector=collector
        )
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return redirect(back)
    if changed:
        messages.success(
            request,
            ngettext(
                "%(count)d cliente reasignado a %(name)s.",
                "%(count)d clientes reasignados a %(name)s.",
                changed,
            )
            % {"count": changed, "name": _name(collector)},
        )
    else:
        messages.info(request, _("Los clientes elegidos ya estaban asignados a %(name)s.") % {"name": _name(collector)})
    return redirect(back)


@staff_required
@require_GET
def calendar(request):
    collectors = _collectors(request)
    form = CalendarForm(request.GET, user=request.user, collectors=collectors)
    scope = form.scope()
    today = clock.localdate()
    cal = selectors.calendar_week(user=request.user, scope=scope, day=form.day(), today=today)
    return render(
        request,
        "cobranza/worklist/calendar.html",
        {
            "form": form,
            "scope": scope,
            "cal": cal,
            "today": today,
            "manager": collectors is not None,
            "this_week": selectors.week_start(today),
        },
    )
