"""The dunning operations pages: what goes out on a day, the notices, approvals, letters to
print, and the dunning panel of the client page (with the forms it posts to).

Same access rules as ``accounts.views``: a login and a staff role everywhere; manager pages
answer 403 to everyone else; a collector reaches only their own clients' notices, invoices
and letters, and anything else is a 404 (ids do not reveal what exists). Writes go through
``cobranza.ops.services``, which check permissions again.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts import clock
from accounts import selectors as ledger_selectors
from accounts.models import Client
from accounts.roles import is_manager, is_staff_member
from accounts.views import _safe_next, _visible_client, manager_required, section_url, staff_required
from cobranza.engine import contacts, letters, messaging
from cobranza.models import MESSAGE_CHANNELS, Notice, NoticeStatus, StepChannel
from cobranza.ops import selectors, services
from cobranza.ops.forms import (
    ApprovalDecisionForm,
    ClientPauseForm,
    ClientPolicyForm,
    InvoiceHoldForm,
    LetterSelectionForm,
    NoticeFilterForm,
    OutboxForm,
)

NOTICES_PER_PAGE = 50
APPROVALS_PER_PAGE = 20
LETTERS_PER_PAGE = 50


def _client_url(client) -> str:
    """The client page, its "Cobranza" section open at the dunning panel."""
    return section_url(client, "cobranza", "cobranza")


def _form_errors(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _service_errors(request, exc: ValidationError) -> None:
    for error in exc.messages:
        messages.error(request, error)


def _who(client: Client) -> str:
    collector = client.collector
    if collector is None:
        return _("el equipo de cobranza")
    return collector.get_full_name() or collector.get_username()


def _counts(request) -> selectors.OpsCounts:
    return selectors.ops_counts(request.user)


# --- lo que sale -----------------------------------------------------------------------------


@manager_required
@require_GET
def outbox(request):
    form = OutboxForm(request.GET or None)
    day = form.chosen_day()
    data = selectors.outbox(day=day, limit=selectors.OUTBOX_DETAIL)
    today = form.today
    return render(
        request,
        "cobranza/ops/outbox.html",
        {
            "form": form,
            "outbox": data,
            "plan": data.plan,
            "day": day,
            "today": today,
            "shortcuts": [
                (_("Hoy"), today),
                (_("Mañana"), today + dt.timedelta(days=1)),
                (_("En 7 días"), today + dt.timedelta(days=7)),
            ],
            "counts": _counts(request),
        },
    )


# --- avisos ----------------------------------------------------------------------------------


@staff_required
@require_GET
def notice_list(request):
    form = NoticeFilterForm(request.GET)
    filters = form.filters()
    paginator = Paginator(selectors.notice_list(user=request.user, **filters), NOTICES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "cobranza/ops/notice_list.html",
        {
            "form": form,
            "page_obj": page,
            "notices": selectors.with_totals(page.object_list),
            "filters": filters,
            "is_filtered": any(filters.values()),
            "counts": _counts(request),
        },
    )


def _message_of(notice: Notice, items) -> tuple[messaging.Rendered | None, bool, str]:
    """What the notice says: the stored message once rendered by dispatch, else a preview
    with today's data and the contact dispatch would choose. (rendered, is_preview, error)."""
    if notice.channel not in MESSAGE_CHANNELS:
        return None, False, ""
    if notice.body:
        return messaging.Rendered(subject=notice.subject, body=notice.body, language=notice.language), False, ""
    if notice.status not in (NoticeStatus.PLANNED, NoticeStatus.AWAITING_APPROVAL, NoticeStatus.FAILED):
        return None, False, ""
    if notice.contact is None:
        notice.contact = contacts.choose_contact(notice.client, notice.channel)
    try:
        return messaging.render_notice(notice, items=items), True, ""
    except messaging.TemplateRenderError as exc:
        return None, True, str(exc)


def _task_text(notice: Notice) -> str:
    """What a call, review or hand-off step does when it is processed."""
    who = _who(notice.client)
    if notice.channel == StepChannel.CALL:
        return _("Se creará una tarea de llamada para %(who)s.") % {"who": who}
    if notice.channel == StepChannel.REVIEW:
        return _("Se creará una tarea de revisión para %(who)s.") % {"who": who}
    if notice.channel in (StepChannel.AGENCY, StepChannel.LEGAL):
        status = Client.Status.AGENCY if notice.channel == StepChannel.AGENCY else Client.Status.LEGAL
        return _("El cliente pasará al estado «%(status)s» y se creará una tarea para %(who)s.") % {
            "status": status.label,
            "who": who,
        }
    return ""


def _totals(items) -> dict:
    totals: dict = {}
    for item in items:
        totals[item.invoice.currency] = totals.get(item.invoice.currency, 0) + item.open_balance
    return dict(sorted(totals.items()))


@staff_required
@require_GET
def notice_detail(request, pk):
    try:
        notice = selectors.notice_detail(user=request.user, pk=pk)
    except Notice.DoesNotExist as exc:
        raise Http404(_("Aviso no encontrado.")) from exc
    items = list(notice.items.all())
    stored_contact = notice.contact
    rendered, is_preview, render_error = _message_of(notice, items)
    letter_file = notice.channel == StepChannel.LETTER and letters.letter_path(notice).is_file()
    manager = is_manager(request.user)
    return render(
        request,
        "cobranza/ops/notice_detail.html",
        {
            "notice": notice,
            "client": notice.client,
            "items": items,
            "totals": _totals(items),
            "contact": stored_contact,
            "rendered": rendered,
            "is_preview": is_preview,
            "render_error": render_error,
            # A superseded step never became a task: nothing "will" happen.
            "task_text": _task_text(notice) if notice.status != NoticeStatus.SUPERSEDED else "",
            "letter_file": letter_file,
            "interrupted": notice.status == NoticeStatus.FAILED and bool(notice.message_id),
            "can_approve": manager and notice.status == NoticeStatus.AWAITING_APPROVAL,
            "can_cancel": manager and notice.status in (NoticeStatus.PLANNED, NoticeStatus.AWAITING_APPROVAL),
            "can_retry": manager and notice.status == NoticeStatus.FAILED,
            "today": clock.localdate(),
            "counts": _counts(request),
        },
    )


@manager_required
@require_POST
def notice_retry(request, pk):
    notice = get_object_or_404(selectors.notices_visible_to(request.user).select_related("client", "step"), pk=pk)
    try:
        services.notice_retry(by=request.user, notice=notice)
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        messages.success(
            request,
            _("Aviso «%(step)s» de %(client)s de nuevo en la cola: sale en la próxima pasada del envío.")
            % {"step": notice.step.name, "client": notice.client.display_name},
        )
    return redirect(_safe_next(request, reverse("cobranza:notice_detail", args=[notice.pk])))


# --- aprobaciones ----------------------------------------------------------------------------


def _approval_entry(notice: Notice, facts: selectors.ApprovalFacts) -> dict:
    # The message as it would go out now: only the invoices still due, at today's balances.
    rendered, _preview, error = _message_of(notice, facts.due) if facts.due else (None, False, "")
    return {
        "notice": notice,
        "items": facts.due,
        "dropped": facts.dropped,
        "warnings": facts.warnings,
        "blocked": facts.blocked,
        "totals": facts.totals,
        "rendered": rendered,
        "render_error": error,
        "task_text": _task_text(notice),
    }


@manager_required
@require_GET
def approvals(request):
    paginator = Paginator(selectors.approval_queue(), APPROVALS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    notices = list(page.object_list)
    facts = selectors.approval_facts(notices)
    return render(
        request,
        "cobranza/ops/approvals.html",
        {
            "page_obj": page,
            "entries": [_approval_entry(n, facts[n.pk]) for n in notices],
            "counts": _counts(request),
        },
    )


@manager_required
@require_POST
def approval_decide(request):
    back = _safe_next(request, reverse("cobranza:approvals"))
    form = ApprovalDecisionForm(
        request.POST,
        notices_qs=Notice.objects.filter(
            status__in=[NoticeStatus.PLANNED, NoticeStatus.AWAITING_APPROVAL]
        ).select_related("client", "step"),
    )
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(back)
    action = form.cleaned_data["action"]
    reason = form.cleaned_data["reason"]
    done: list[Notice] = []
    for notice in form.cleaned_data["notices"].order_by("id"):
        try:
            if action == form.APPROVE:
                services.notice_approve(by=request.user, notice=notice)
            else:
                services.notice_cancel(by=request.user, notice=notice, reason=reason)
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, f"{notice.client.display_name} · {notice.step.name}: {error}")
        else:
            done.append(notice)
    if len(done) == 1:
        notice = done[0]
        if action == form.APPROVE:
            text = _("Aviso aprobado: %(client)s · %(step)s.")
        else:
            text = _("Aviso cancelado: %(client)s · %(step)s.")
        messages.success(request, text % {"client": notice.client.display_name, "step": notice.step.name})
    elif done:
        if action == form.APPROVE:
            text = ngettext("%(count)d aviso aprobado.", "%(count)d avisos aprobados.", len(done))
        else:
            text = ngettext("%(count)d aviso cancelado.", "%(count)d avisos cancelados.", len(done))
        messages.success(request, text % {"count": len(done)})
    return redirect(back)


# --- cartas ----------------------------------------------------------------------------------


@staff_required
@require_GET
def letter_list(request):
    show_all = request.GET.get("show") == "all"
    paginator = Paginator(selectors.letters(user=request.user, to_print=not show_all), LETTERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "cobranza/ops/letters.html",
        {"page_obj": page, "letters": page.object_list, "show_all": show_all, "counts": _counts(request)},
    )


@staff_required
@require_GET
def letter_pdf(request, pk):
    """The letter's PDF, only to someone who may see its client; never a public media URL."""
    notice = get_object_or_404(
        selectors.notices_visible_to(request.user).filter(channel=StepChannel.LETTER).select_related("client"),
        pk=pk,
    )
    path = letters.letter_path(notice)
    if not path.is_file():
        raise Http404(_("La carta todavía no se ha generado."))
    response = FileResponse(
        path.open("rb"),
        content_type="application/pdf",
        as_attachment="download" in request.GET,
        filename=f"carta-{notice.pk}-{notice.planned_for:%Y%m%d}.pdf",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required
@require_POST
def letters_mark_printed(request):
    back = _safe_next(request, reverse("cobranza:letters"))
    form = LetterSelectionForm(request.POST, notices_qs=selectors.letters(user=request.user, to_print=False))
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(back)
    chosen = [n.pk for n in form.cleaned_data["notices"]]
    try:
        changed = services.letters_mark_printed(by=request.user, notice_ids=chosen)
    except ValidationError as exc:
        _service_errors(request, exc)
        return redirect(back)
    if changed:
        messages.success(
            request,
            ngettext("%(count)d carta marcada como impresa.", "%(count)d cartas marcadas como impresas.", changed)
            % {"count": changed},
        )
    if changed < len(chosen):
        messages.info(request, _("Las demás ya estaban impresas o su PDF todavía no se ha generado."))
    return redirect(back)


# --- the client's dunning panel ----------------------------------------------------------------


def client_panel(request, client) -> str:
    """The dunning panel of the client page (registered in ``CobranzaConfig.ready``)."""
    if not is_staff_member(request.user):
        return ""
    manager = is_manager(request.user)
    panel = selectors.client_dunning_panel(client, with_policies=manager)
    return render_to_string(
        "cobranza/_client_panel.html",
        {"panel": panel, "client": client, "can_manage": manager, "today": panel.today},
        request=request,
    )


@staff_required
@require_POST
def client_pause(request, pk):
    client = _visible_client(request, pk)
    form = ClientPauseForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(_client_url(client))
    pausing = form.cleaned_data["action"] == ClientPauseForm.PAUSE
    try:
        dunning = services.client_pause(
            by=request.user,
            client=client,
            until=form.cleaned_data["until"] if pausing else None,
            reason=form.cleaned_data["reason"] if pausing else "",
        )
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        if pausing:
            messages.success(
                request,
                _("Recordatorios de %(client)s en pausa hasta el %(date)s.")
                % {"client": client.display_name, "date": date_format(dunning.paused_until, "SHORT_DATE_FORMAT")},
            )
        else:
            messages.success(request, _("Recordatorios de %(client)s reanudados.") % {"client": client.display_name})
    return redirect(_client_url(client))


@manager_required
@require_POST
def client_policy(request, pk):
    client = _visible_client(request, pk)
    form = ClientPolicyForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(_client_url(client))
    policy = form.cleaned_data["policy"]
    try:
        services.client_set_policy(by=request.user, client=client, policy=policy)
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        if policy:
            messages.success(
                request,
                _("%(client)s sigue ahora la política «%(policy)s».")
                % {
                    "client": client.display_name,
                    "policy": policy.name,
                },
            )
        else:
            messages.success(
                request, _("%(client)s vuelve a la política de su segmento.") % {"client": client.display_name}
            )
    return redirect(_client_url(client))


def _visible_invoice(request, pk):
    return get_object_or_404(ledger_selectors.invoices_visible_to(request.user), pk=pk)


@staff_required
@require_POST
def invoice_hold(request, pk):
    invoice = _visible_invoice(request, pk)
    form = InvoiceHoldForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(_client_url(invoice.client))
    try:
        services.invoice_hold(
            by=request.user, invoice=invoice, until=form.cleaned_data["until"], reason=form.cleaned_data["reason"]
        )
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        messages.success(
            request, _("Factura %(number)s retenida: no recibirá recordatorios.") % {"number": invoice.number}
        )
    return redirect(_client_url(invoice.client))


@staff_required
@require_POST
def invoice_release(request, pk):
    invoice = _visible_invoice(request, pk)
    services.invoice_release(by=request.user, invoice=invoice)
    messages.success(request, _("Factura %(number)s liberada: vuelve a la escalera.") % {"number": invoice.number})
    return redirect(_client_url(invoice.client))
