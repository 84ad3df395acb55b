"""Managers' pages for dunning policies, their ladders and message templates.

Every view here is for managers and administrators (``manager_required``: collectors and
users without a role get 403; anonymous visitors are sent to the login page by
LoginRequiredMiddleware). Services check the role again.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import clock
from accounts.models import Language
from accounts.roles import is_admin
from accounts.views import manager_required
from cobranza.engine import html_email, messaging
from cobranza.ladders import selectors, services
from cobranza.ladders.forms import (
    CatchUpForm,
    PolicyForm,
    PreviewForm,
    StepForm,
    TemplateForm,
    add_service_errors,
    text_field,
)
from cobranza.ladders.services import SUBJECT_CHANNELS, StepRemoval, TextDraft
from cobranza.models import MESSAGE_CHANNELS, MessageTemplate, Policy, PolicyStep, StepChannel

CLIENT_PICKER = "preview-client-picker"


def _is_partial(request, target: str) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


def _policy_url(policy, anchor: str = "") -> str:
    url = reverse("cobranza:policy_edit", args=[policy.pk])
    return f"{url}#{anchor}" if anchor else url


# --- policies ------------------------------------------------------------------------------


@manager_required
@require_GET
def policy_list(request):
    policies = list(selectors.policies_overview())
    for policy in policies:
        policy.tolerance_label = selectors.amount_label(policy.tolerance)
    return render(request, "cobranza/policies/policy_list.html", {"policies": policies})


@manager_required
@require_http_methods(["GET", "POST"])
def policy_create(request):
    form = PolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            policy = services.policy_create(by=request.user, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Política «%(name)s» creada. Ahora agregue los pasos de su escalera.") % {"name": policy.name},
            )
            return redirect(_policy_url(policy, "escalera"))
    return render(
        request,
        "cobranza/policies/policy_form.html",
        {"form": form, "policy": None, "title": _("Nueva política de cobranza")},
    )


@manager_required
@require_http_methods(["GET", "POST"])
def policy_edit(request, pk):
    policy = get_object_or_404(Policy.objects.select_related("segment"), pk=pk)
    form = PolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        try:
            services.policy_update(by=request.user, policy=policy, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Política guardada."))
            return redirect(_policy_url(policy))
    ladder = selectors.policy_ladder(policy)
    return render(
        request,
        "cobranza/policies/policy_form.html",
        {
            "form": form,
            "policy": policy,
            "ladder": ladder,
            "has_out_of_order": any(row.out_of_order for row in ladder),
            "title": policy.name,
        },
    )


# --- steps ---------------------------------------------------------------------------------


def _step_page(request, *, form, policy, step=None):
    return render(
        request,
        "cobranza/policies/step_form.html",
        {
            "form": form,
            "policy": policy,
            "step": step,
            "ladder": selectors.policy_ladder(policy),
            "message_channels": [c.value for c in MESSAGE_CHANNELS],
            "title": _("Editar paso") if step else _("Nuevo paso"),
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def step_create(request, pk):
    policy = get_object_or_404(Policy, pk=pk)
    form = StepForm(
        request.POST or None,
        templates=selectors.step_templates(),
        initial={"position": services.next_position(policy)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            step = services.step_create(by=request.user, policy=policy, **form.changes())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Paso «%(name)s» agregado a la escalera.") % {"name": step.name})
            return redirect(_policy_url(policy, "escalera"))
    return _step_page(request, form=form, policy=policy)


@manager_required
@require_http_methods(["GET", "POST"])
def step_edit(request, pk):
    step = get_object_or_404(PolicyStep.objects.select_related("policy", "template"), pk=pk)
    form = StepForm(request.POST or None, templates=selectors.step_templates(step.template), instance=step)
    if request.method == "POST" and form.is_valid():
        try:
            step = services.step_update(by=request.user, step=step, **form.changes())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Paso «%(name)s» guardado.") % {"name": step.name})
            return redirect(_policy_url(step.policy, "escalera"))
    return _step_page(request, form=form, policy=step.policy, step=step)


@manager_required
@require_POST
def step_delete(request, pk):
    step = get_object_or_404(PolicyStep.objects.select_related("policy"), pk=pk)
    outcome = services.step_delete(by=request.user, step=step)
    if outcome == StepRemoval.DELETED:
        messages.success(request, _("Paso «%(name)s» eliminado.") % {"name": step.name})
    elif outcome == StepRemoval.DEACTIVATED:
        messages.warning(
            request,
            _(
                "El paso «%(name)s» ya generó avisos, que lo necesitan en su historial: "
                "no se eliminó, se desactivó. Ya no programará avisos nuevos."
            )
            % {"name": step.name},
        )
    else:
        messages.info(
            request,
            _("El paso «%(name)s» ya generó avisos y ya estaba desactivado: se conserva para el historial.")
            % {"name": step.name},
        )
    return redirect(_policy_url(step.policy, "escalera"))


@manager_required
@require_POST
def step_move(request, pk):
    step = get_object_or_404(PolicyStep.objects.select_related("policy"), pk=pk)
    direction = request.POST.get("direction", "")
    try:
        services.step_move(by=request.user, step=step, direction=direction)
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    return redirect(_policy_url(step.policy, f"paso-{step.pk}"))


@manager_required
@require_http_methods(["GET", "POST"])
def step_catch_up(request, pk):
    """An administrator confirms that a new or edited step reaches the invoices already past
    its day, after reading how many notices that creates today (docs/domain.md#pacing)."""
    if not is_admin(request.user):
        raise PermissionDenied(_("Solo un administrador puede confirmar una puesta al día."))
    step = get_object_or_404(PolicyStep.objects.select_related("policy", "catch_up_confirmed_by"), pk=pk)
    form = CatchUpForm(request.POST or None)
    if request.method == "POST" and step.applies_from is not None:
        if form.is_valid():
            expected = selectors.CatchUp(day=clock.localdate(), total_without=0, total_with=0, **form.cleaned_data)
            try:
                services.step_catch_up_confirm(by=request.user, step=step, expected=expected)
            except ValidationError as exc:
                for error in exc.messages:
                    messages.error(request, error)
            else:
                messages.success(
                    request,
                    _("Puesta al día confirmada: el paso «%(name)s» se aplica ahora a todas las facturas.")
                    % {"name": step.name},
                )
                return redirect(_policy_url(step.policy, f"paso-{step.pk}"))
        else:
            messages.error(request, _("Faltan las cifras confirmadas: vuelva a cargar la página."))
    preview = selectors.catch_up_preview(step) if step.applies_from is not None else None
    if preview is not None:
        form = CatchUpForm(
            initial={"notices": preview.notices, "invoices": preview.invoices, "superseded": preview.superseded}
        )
    return render(
        request,
        "cobranza/policies/step_catch_up.html",
        {"step": step, "policy": step.policy, "preview": preview, "form": form},
    )


# --- message templates ---------------------------------------------------------------------


@manager_required
@require_GET
def template_list(request):
    templates = list(selectors.templates_overview())
    for template in templates:
        template.languages = [t.language for t in template.texts.all()]
    return render(
        request,
        "cobranza/policies/template_list.html",
        {"templates": templates, "languages": Language.choices},
    )


def _preview_context(*, channel, language, drafts, client, oob=False) -> dict:
    """Render the draft of ``language`` (falling back to Spanish, as sending does)."""
    names = dict(Language.choices)
    draft = drafts.get(language)
    fallback = None
    if language != messaging.FALLBACK_LANGUAGE and (draft is None or draft.is_blank):
        fallback = names[messaging.FALLBACK_LANGUAGE]
        language = messaging.FALLBACK_LANGUAGE
        draft = drafts.get(language)
    subject = draft.subject if draft and channel in SUBJECT_CHANNELS else ""
    body = draft.body if draft else ""
    if channel not in [c.value for c in MESSAGE_CHANNELS]:
        channel = StepChannel.EMAIL
    preview = messaging.preview_draft(channel=channel, subject=subject, body=body, language=language, client=client)
    return {
        "preview": preview,
        # An email is previewed as its HTML part, built by the function that sends it.
        "preview_html": html_email.preview_html(preview) if channel == StepChannel.EMAIL else "",
        "preview_language": language,
        "preview_language_name": names.get(language, language),
        "fallback_language_name": fallback,
        "preview_for": client,
        "shows_subject": channel in SUBJECT_CHANNELS,
        "error_fields": {
            "subject": text_field(language, "subject"),
            "body": text_field(language, "body"),
        },
        "oob": oob,
    }


def _placeholder_panel() -> list[dict]:
    """``messaging.placeholder_help()`` as the editor's help panel shows it: what to type
    (and insert) for each variable and each of its fields."""
    items = []
    for entry in messaging.placeholder_help():
        name = entry["name"]
        if entry["many"]:
            var = name[0]
            loop = "{% for " + var + " in " + name + " %}"
            token = entry["example"] or loop + "{{ " + var + " }}{% endfor %}"
            prefix = var
        else:
            loop = ""
            token = "{{ " + name + " }}"
            prefix = name
        items.append(
            {
                "name": name,
                "token": token,
                "loop": loop,
                "many": entry["many"],
                "description": entry["description"],
                "fields": [
                    {"token": "{{ " + prefix + "." + field + " }}", "description": spec["description"]}
                    for field, spec in entry["fields"].items()
                ],
            }
        )
    return items


def _template_page(request, *, form, template, preview_client, preview_language):
    if _is_partial(request, CLIENT_PICKER):
        response = render(
            request,
            "cobranza/policies/_client_picker.html",
            {
                "clients": selectors.preview_clients(
                    user=request.user, q=request.GET.get("cliente_q", ""), selected=preview_client
                ),
                "selected": preview_client,
            },
        )
        response["HX-Trigger-After-Settle"] = "preview-refresh"
        patch_vary_headers(response, ["HX-Request"])
        return response
    drafts = form.drafts() if form.is_bound and form.is_valid() else None
    if drafts is None:
        values = form.data if form.is_bound else form.initial
        drafts = {
            language: TextDraft(
                subject=values.get(text_field(language, "subject"), "") or "",
                body=values.get(text_field(language, "body"), "") or "",
            )
            for language in Language.values
        }
    channel = (form.data.get("channel") if form.is_bound else form.initial.get("channel")) or StepChannel.EMAIL
    context = {
        "form": form,
        "template": template,
        "usage": selectors.template_usage(template) if template else [],
        "clients": selectors.preview_clients(user=request.user, selected=preview_client),
        "selected": preview_client,
        "placeholders": _placeholder_panel(),
        "languages": Language.choices,
        "subject_channels": [str(c) for c in SUBJECT_CHANNELS],
        "title": template.name if template else _("Nueva plantilla de mensaje"),
        **_preview_context(channel=channel, language=preview_language, drafts=drafts, client=preview_client),
    }
    # The page's own language selector reflects what was asked, not the fallback used.
    context["selected_language"] = preview_language
    response = render(request, "cobranza/policies/template_form.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _preview_choice(request):
    """The client and language the preview is for, from the page's query or the posted form."""
    source = request.POST if request.method == "POST" else request.GET
    client = selectors.preview_client(user=request.user, pk=source.get("preview_client") or source.get("cliente"))
    language = source.get("preview_language") or source.get("idioma") or messaging.FALLBACK_LANGUAGE
    if language not in Language.values:
        language = messaging.FALLBACK_LANGUAGE
    return client, language


def _after_save_url(template, client, language) -> str:
    params = {}
    if client is not None:
        params["cliente"] = client.pk
    if language != messaging.FALLBACK_LANGUAGE:
        params["idioma"] = language
    url = reverse("cobranza:template_edit", args=[template.pk])
    return f"{url}?{urlencode(params)}" if params else url


@manager_required
@require_http_methods(["GET", "POST"])
def template_create(request):
    client, language = _preview_choice(request)
    form = TemplateForm(request.POST or None, initial={"channel": StepChannel.EMAIL, "is_active": True})
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_save(
                by=request.user,
                name=form.cleaned_data["name"],
                channel=form.cleaned_data["channel"],
                tone=form.cleaned_data["tone"],
                is_active=form.cleaned_data["is_active"],
                texts=form.drafts(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Plantilla «%(name)s» creada.") % {"name": template.name})
            return redirect(_after_save_url(template, client, language))
    return _template_page(request, form=form, template=None, preview_client=client, preview_language=language)


@manager_required
@require_http_methods(["GET", "POST"])
def template_edit(request, pk):
    template = get_object_or_404(MessageTemplate.objects.prefetch_related("texts"), pk=pk)
    client, language = _preview_choice(request)
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_save(
                by=request.user,
                template=template,
                name=form.cleaned_data["name"],
                channel=form.cleaned_data["channel"],
                tone=form.cleaned_data["tone"],
                is_active=form.cleaned_data["is_active"],
                texts=form.drafts(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("Plantilla «%(name)s» guardada.") % {"name": template.name})
            return redirect(_after_save_url(template, client, language))
    return _template_page(request, form=form, template=template, preview_client=client, preview_language=language)


@manager_required
@require_POST
def template_preview(request) -> HttpResponse:
    """The live preview (htmx): the posted draft rendered for a client or the sample data,
    or why it cannot be rendered, shown inline. Never a 500 for a broken template."""
    form = PreviewForm(request.POST)
    form.is_valid()
    client, language = _preview_choice(request)
    channel = form.cleaned_data.get("channel") or StepChannel.EMAIL
    context = _preview_context(channel=channel, language=language, drafts=form.drafts(), client=client, oob=True)
    context["languages"] = Language.choices
    return render(request, "cobranza/policies/_template_preview.html", context)
