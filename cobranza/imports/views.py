"""Import pages (managers only): the list of imports, the upload, the mapping of their
columns to ours, the job page with its progress bar (htmx polling), errors and summary.

Every upload is validated first as a dry run; the "Importar" button then runs the same file
for real. Files under ``INLINE_MAX_ROWS`` rows run in the request; larger ones go to the
``cobranza.run_import`` Celery task when it is registered (inline otherwise).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.views import manager_required
from cobranza import tasks
from cobranza.imports import services as imports
from cobranza.imports.forms import ClientsChoiceForm, ImportUploadForm, MappingForm
from cobranza.models import ImportJob, ImportKind


def _start(job: ImportJob) -> None:
    """Run now when small, else hand to the worker (after commit, so it sees the job)."""

    task = getattr(tasks, "run_import", None)
    if task is None or imports.count_rows(job) < imports.INLINE_MAX_ROWS:
        imports.run_job(job)
        return
    transaction.on_commit(lambda: task.delay(job.pk))


def _needs_mapping(job: ImportJob) -> bool:
    return not job.mapping_id and not (job.summary.get("options") or {}).get("columns")


@manager_required
@require_GET
def import_list(request):
    page = Paginator(ImportJob.objects.select_related("mapping", "created_by"), 25).get_page(request.GET.get("page"))
    return render(request, "cobranza/imports/list.html", {"page": page, "jobs": page.object_list})


@manager_required
@require_http_methods(["GET", "POST"])
def import_create(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = imports.job_create(
            by=request.user,
            kind=form.cleaned_data["kind"],
            file_name=upload.name,
            data=upload.read(),
            mapping=form.cleaned_data["mapping"],
            dry_run=True,
            facts=form.file_facts,
        )
        if job.mapping_id:
            _start(job)
        return redirect("cobranza:import_detail", pk=job.pk)
    return render(request, "cobranza/imports/create.html", {"form": form})


@manager_required
@require_http_methods(["GET", "POST"])
def import_detail(request, pk):
    job = get_object_or_404(ImportJob.objects.select_related("mapping", "created_by"), pk=pk)
    mapping_form, read_errors = None, []
    editable = job.status in (ImportJob.Status.PENDING, ImportJob.Status.REJECTED) or (
        job.status == ImportJob.Status.DONE and job.dry_run
    )
    if (_needs_mapping(job) or request.GET.get("mapear") or request.method == "POST") and editable:
        headers, read_errors = imports.file_headers(job)
        if headers:
            options = imports.job_options(job)
            initial = {
                "date_format": options.date_format,
                "decimal_separator": options.decimal_separator,
                "encoding": options.encoding,
            }
            initial.update({f"col_{k}": v for k, v in options.columns.items() if k != imports.IGNORE_KEY})
            initial["clients"] = job.summary.get(imports.CLIENTS_KEY)
            mapping_form = MappingForm(request.POST or None, kind=job.kind, headers=headers, initial=initial)
    if request.method == "POST" and mapping_form is not None and mapping_form.is_valid():
        data = mapping_form.cleaned_data
        options = imports.Options(
            kind=job.kind,
            columns=mapping_form.columns(),
            date_format=data["date_format"],
            decimal_separator=data["decimal_separator"],
            encoding=data["encoding"],
        )
        mapping = None
        if data["save_as"]:
            mapping = imports.mapping_save(by=request.user, name=data["save_as"], kind=job.kind, options=options)
        imports.job_restart(
            job, dry_run=True, mapping=mapping, options=None if mapping else options, clients=mapping_form.clients()
        )
        _start(job)
        return redirect("cobranza:import_detail", pk=job.pk)
    return render(
        request,
        "cobranza/imports/detail.html",
        {
            "job": job,
            "mapping_form": mapping_form,
            "read_errors": read_errors,
            "error_total": job.summary.get("error_count") or len(job.errors),
            "clients_form": _clients_form(job, editable),
            **_progress_context(job),
        },
    )


def _clients_form(job: ImportJob, editable: bool) -> ClientsChoiceForm | None:
    """The choice of creating the clients an invoice file names that do not exist: offered when
    its check found some, and to change their segment once chosen (docs/domain.md#imports)."""
    if not editable or job.kind not in (ImportKind.INVOICES, ImportKind.LEDGER) or _needs_mapping(job):
        return None
    missing = job.status == ImportJob.Status.REJECTED and job.summary.get("missing_clients")
    creating = job.status == ImportJob.Status.DONE and job.summary.get("clients_created")
    if not (missing or creating):
        return None
    return ClientsChoiceForm(initial_segment=(job.summary.get(imports.CLIENTS_KEY) or {}).get("segment"))


@manager_required
@require_POST
def import_clients(request, pk):
    """Check the same file again creating its missing clients in the chosen segment."""
    job = get_object_or_404(ImportJob.objects.select_related("mapping"), pk=pk)
    form = ClientsChoiceForm(request.POST)
    if _clients_form(job, editable=job.status == ImportJob.Status.REJECTED or job.dry_run) is None:
        messages.error(request, _("Esta importación ya no admite crear clientes."))
    elif not form.is_valid():
        messages.error(request, _("Elija un segmento de la lista."))
    else:
        choice = imports.clients_choice(create=True, segment=form.cleaned_data["segment"])
        imports.job_restart(job, dry_run=True, clients=choice)
        _start(job)
    return redirect("cobranza:import_detail", pk=job.pk)


def _progress_context(job: ImportJob) -> dict:
    total = job.total_rows or 0
    percent = int(job.processed_rows * 100 / total) if total else 0
    active = job.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING)
    writing = job.status == ImportJob.Status.RUNNING and job.summary.get("phase") == "writing"
    return {
        "percent": min(percent, 100),
        "active": active and not _needs_mapping(job),
        "writing": writing,
        # The write reports its rows through a second connection where it can (PostgreSQL);
        # elsewhere the bar is full and striped until the job is done.
        "indeterminate": writing and not job.summary.get("live_progress"),
    }


@manager_required
@require_GET
def import_progress(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    response = render(request, "cobranza/imports/_progress.html", {"job": job, **_progress_context(job)})
    if not _progress_context(job)["active"] and request.htmx:
        # Finished: reload the page so the summary or the errors table appears.
        response["HX-Refresh"] = "true"
    return response


@manager_required
@require_POST
def import_commit(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    if not (job.dry_run and job.status == ImportJob.Status.DONE):
        messages.error(request, _("Sólo se puede importar un archivo cuya simulación terminó sin errores."))
        return redirect("cobranza:import_detail", pk=job.pk)
    imports.job_restart(job, dry_run=False)
    _start(job)
    return redirect("cobranza:import_detail", pk=job.pk)


@manager_required
@require_GET
def import_errors_csv(request, pk):
    """Every error of a rejected import (the page shows the first ``ERRORS_SHOWN``)."""
    job = get_object_or_404(ImportJob, pk=pk)
    name = job.summary.get("errors_file")
    path = imports.errors_path(job)
    if not name or not path.is_file():
        raise Http404
    response = FileResponse(path.open("rb"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="importacion-{job.pk}-errores.csv"'
    return response
