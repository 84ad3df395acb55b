"""Outgoing webhooks: what administrators do with them — endpoints created, changed,
switched off, re-keyed and deleted; a test event; a failed delivery sent again. Emitting
events, checking addresses and delivering live in ``outgoing``."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import clock
from accounts.roles import is_admin
from accounts.utils import actor
from cobranza.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEvent
from cobranza.webhooks.outgoing import _envelope, enqueue, validate_events, validate_url

Status = WebhookDeliveryStatus


def secret_generate() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def ensure_admin(user) -> None:
    if user is not None and not is_admin(user):
        raise PermissionDenied(_("Esta acción requiere el rol de administrador."))


def _clean(*, name: str, url: str, events: Iterable[str]) -> tuple[str, str, list[str]]:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Ponga un nombre al webhook (por ejemplo, el sistema que lo recibe).")]
    try:
        url = validate_url(url)
    except ValidationError as exc:
        errors["url"] = exc.messages
    try:
        events = validate_events(events)
    except ValidationError as exc:
        errors["events"] = exc.messages
    if errors:
        raise ValidationError(errors)
    return name, url, events


def endpoint_create(
    *, by: AbstractBaseUser | None, name: str, url: str, events: Iterable[str], is_active: bool = True
) -> WebhookEndpoint:
    """A new endpoint with a secret generated here (shown to administrators, never typed in)."""
    ensure_admin(by)
    name, url, events = _clean(name=name, url=url, events=events)
    return WebhookEndpoint.objects.create(
        name=name,
        url=url,
        events=events,
        is_active=is_active,
        secret=secret_generate(),
        created_by=actor(by),
    )


def endpoint_update(
    *,
    by: AbstractBaseUser | None,
    endpoint: WebhookEndpoint,
    name: str,
    url: str,
    events: Iterable[str],
    is_active: bool,
) -> WebhookEndpoint:
    ensure_admin(by)
    name, url, events = _clean(name=name, url=url, events=events)
    endpoint.name, endpoint.url, endpoint.events, endpoint.is_active = name, url, events, is_active
    endpoint.save(update_fields=["name", "url", "events", "is_active"])
    return endpoint


def endpoint_set_active(*, by: AbstractBaseUser | None, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Deactivating stops new events at once; deliveries already queued are re-checked before
    sending and recorded as failed (they can be retried after reactivating)."""
    ensure_admin(by)
    endpoint.is_active = active
    endpoint.save(update_fields=["is_active"])
    return endpoint


def endpoint_rotate_secret(*, by: AbstractBaseUser | None, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret from the next attempt on (retries of older events are signed with it too)."""
    ensure_admin(by)
    endpoint.secret = secret_generate()
    endpoint.secret_rotated_at = clock.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at"])
    return endpoint


def endpoint_delete(*, by: AbstractBaseUser | None, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint and its delivery history (deactivate instead to keep it)."""
    ensure_admin(by)
    endpoint.delete()


def endpoint_ping(*, by: AbstractBaseUser | None, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a test event for one endpoint (whatever it subscribes to). The caller decides
    whether to send it right away (the admin page does) or leave it to the workers."""
    ensure_admin(by)
    if not endpoint.is_active:
        raise ValidationError(_("El webhook está desactivado: actívelo para enviarle un evento de prueba."))
    now = clock.now()
    event_id = uuid.uuid4()
    who = (by.get_full_name() or by.get_username()) if actor(by) else None
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=WebhookEvent.PING,
        event_key=f"ping:{event_id}",
        event_id=event_id,
        payload=_envelope(
            event=WebhookEvent.PING,
            event_id=event_id,
            payload={"endpoint": {"id": endpoint.pk, "name": endpoint.name}, "requested_by": who},
            now=now,
        ),
        next_attempt_at=now,
    )


def delivery_retry(*, by: AbstractBaseUser | None, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed delivery again now, with a fresh series of attempts and the same event id."""
    ensure_admin(by)
    now = clock.now()
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.FAILED).update(
            status=Status.PLANNED, attempts=0, next_attempt_at=now, lease_until=None
        )
        if not updated:
            raise ValidationError(_("Solo se reintentan las entregas fallidas."))
        transaction.on_commit(lambda: enqueue([delivery.pk]), robust=True)
    delivery.refresh_from_db()
    return delivery
