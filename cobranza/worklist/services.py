"""Writes on collector tasks (keyword-only arguments, the acting user as ``by``,
one transaction, permissions checked here as well as in the views)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import clock
from accounts.models import Interaction
from accounts.roles import is_manager
from accounts.services import ensure_can_work, interaction_log
from accounts.utils import actor
from cobranza import texts
from cobranza.models import CollectorTask, TaskStatus

NOTE_MAX_LENGTH = 2000


def _reserved_for_managers(task: CollectorTask) -> bool:
    """Tasks assigned to nobody are the managers' queue; so are those assigned to a manager."""
    return task.assigned_to_id is None or is_manager(task.assigned_to)


def task_complete(*, by: AbstractBaseUser | None, task: CollectorTask, note: str = "") -> CollectorTask:
    """Mark an open task done. A note, when given, goes to the client's timeline.

    Managers complete any task; a collector the tasks of their own clients that are not
    reserved for managers. Two people completing the same task at once: the first wins, the
    second gets a validation error (the update is conditional on the task still being open).
    """
    ensure_can_work(by, task.client)
    if by is not None and not is_manager(by) and _reserved_for_managers(task):
        raise PermissionDenied(_("Esta tarea es de los gerentes."))
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError({"note": _("La nota no puede pasar de %(max)d caracteres.") % {"max": NOTE_MAX_LENGTH}})
    now = clock.now()
    author = actor(by)
    with transaction.atomic():
        updated = CollectorTask.objects.filter(pk=task.pk, status=TaskStatus.OPEN).update(
            status=TaskStatus.DONE, completed_at=now, completed_by=author
        )
        if not updated:
            raise ValidationError({"task": _("Esta tarea ya no está pendiente.")})
        if note:
            interaction_log(
                by=by,
                client=task.client,
                kind=Interaction.Kind.SYSTEM,
                direction=Interaction.Direction.INTERNAL,
                summary=texts.TASK_DONE(title=texts.from_columns(task, "title")),
                body=note,
            )
    task.status, task.completed_at, task.completed_by = TaskStatus.DONE, now, author
    return task
