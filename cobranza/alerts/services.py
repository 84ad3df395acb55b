"""Early warnings, the writes staff make: a collector or a manager marks an alert as seen or
closes it. Raising alerts is the nightly ``cobranza.alerts.jobs``; the reads are
``cobranza.alerts.selectors``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import clock
from accounts.models import Interaction
from accounts.services import ensure_can_work, interaction_log
from cobranza import texts
from cobranza.models import Alert, AlertStatus


def alert_acknowledge(*, by, alert: Alert) -> Alert:
    """Mark a new alert as seen by the collector or a manager."""
    ensure_can_work(by, alert.client)
    now = clock.now()
    done = Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, handled_by=by, handled_at=now
    )
    if not done:
        raise ValidationError(_("La alerta ya no está nueva."))
    alert.refresh_from_db()
    return alert


def alert_close(*, by, alert: Alert, note: str = "") -> Alert:
    """Close an alert (new or seen); the closing and its note go to the client's timeline."""
    ensure_can_work(by, alert.client)
    note = (note or "").strip()
    now = clock.now()
    with transaction.atomic():
        done = (
            Alert.objects.filter(pk=alert.pk)
            .exclude(status=AlertStatus.CLOSED)
            .update(status=AlertStatus.CLOSED, handled_by=by, handled_at=now)
        )
        if not done:
            raise ValidationError(_("La alerta ya está cerrada."))
        interaction_log(
            by=by,
            client=alert.client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            summary=texts.ALERT_CLOSED(title=texts.from_columns(alert, "title")),
            body=note,
        )
    alert.refresh_from_db()
    return alert
