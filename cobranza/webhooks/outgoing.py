"""Outgoing webhooks: other systems (an ERP, a BI tool, a chat bot) hear about what happens
in collections — a notice sent, a promise broken, a dispute opened, a payment received.

**Outbox.** ``webhook_event_emit`` writes one delivery row per active endpoint subscribed to
the event, in the caller's transaction, with one ``INSERT … SELECT``: the event exists if and
only if what caused it was committed (a rolled-back payment notifies nobody). A unique
``(endpoint, event_key)`` makes emitting the same domain event twice harmless. After commit
each new row is handed to a worker; if Redis is down the row waits for the minute sweep.

**Delivery**, like the dunning dispatch: claim the row with a conditional UPDATE and a lease, re-check the
endpoint is still active, then POST outside any transaction:

- headers ``X-Morosos-Event``, ``X-Morosos-Delivery`` (the event id, a UUID that stays the
  same on every retry, so the receiver can ignore repeats), ``X-Morosos-Timestamp`` (Unix
  seconds of this attempt) and ``X-Morosos-Signature: sha256=<hex HMAC-SHA256(secret,
  "<timestamp>.<body>")>``;
- 2xx: delivered. 408, 429, 5xx, timeouts and connection errors: retried after 1 min, 5 min,
  30 min, 2 h and 12 h, then failed. Redirects and other 4xx: failed at once (the receiver
  said no; retrying will not change that). Every failure keeps its status code and a generic
  reason — never the receiver's body, nor which kind of network error it was.

**Only the public Internet** (docs/security.md, finding 1): the URL's host is resolved when it
is saved and again at every send, and refused unless every address is public
(``is_public_address``); the POST then opens its socket to the address just checked, never
resolving the name a second time, while the Host header, SNI and the certificate check keep
using the name. ``OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP`` (development and the test suite, never
production) adds this machine's loopback addresses.

Delivery is at least once: a worker that dies after the POST leaves a lease that expires and
the row is sent again with the same event id.
"""

from __future__ import annotations

import datetime as dt
import http
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from accounts import clock
from accounts.models import Client
from accounts.utils import webhook_signature
from cobranza.models import SUBSCRIBABLE_EVENTS, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEvent

# cobranza.tasks.deliver_webhook, enqueued by its stable name: the tasks module imports this
# one (a task is a thin wrapper around ``deliver``), so this one cannot import it back.
DELIVER_TASK = "cobranza.deliver_webhook"
log = logging.getLogger(__name__)

Status = WebhookDeliveryStatus

# Wait after the 1st, 2nd … failed attempt; one failure more than this list is final.
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
LEASE = dt.timedelta(minutes=5)  # longer than any POST can take (timeout + worker limits)
RETRYABLE_4XX = (408, 429)
USER_AGENT = "Morosos-Webhooks/1"


def timeout_seconds() -> float:
    return float(getattr(settings, "OUTGOING_WEBHOOKS_TIMEOUT", 10))


def allow_local_http() -> bool:
    """Plain http to this machine (a receiver under development, the test suite's server)."""
    return bool(getattr(settings, "OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP", settings.DEBUG))


# --- Endpoints --------------------------------------------------------------------------


# Names of cloud metadata services and of private name spaces: refused whatever they resolve to.
BLOCKED_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
BLOCKED_SUFFIXES = (".internal", ".local", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp")
# Globally routable by the IANA registries, yet a metadata service inside some clouds.
BLOCKED_ADDRESSES = frozenset({ipaddress.ip_address("100.100.100.200")})
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The resolver, a module attribute so that tests can stand in for DNS.
getaddrinfo = socket.getaddrinfo


def _host_name(host: str) -> str:
    return host.lower().rstrip(".")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_local(host: str) -> bool:
    """A name or literal that can only mean this machine (before any resolution)."""
    host = _host_name(host)
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    ip = _literal(host)
    return ip is not None and ip.is_loopback


def _blocked_name(host: str) -> bool:
    """Metadata services, private name spaces, and single-label names (they resolve through
    the search domains of this machine's network)."""
    if _literal(host) is not None:
        return False
    return host in BLOCKED_HOSTS or host.endswith(BLOCKED_SUFFIXES) or "." not in host


def is_public_address(ip: IPAddress) -> bool:
    """Routable on the Internet (``is_global``: not private, loopback, link-local, shared
    100.64.0.0/10, reserved…), not multicast, not a known metadata address — and for IPv6
    forms that carry an IPv4 address (mapped, NAT64, 6to4), the IPv4 address is public too."""
    if ip in BLOCKED_ADDRESSES or ip.is_multicast or not ip.is_global:
        return False
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    return True


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order; [] if it does not."""
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        try:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            continue
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _refused_address() -> ValidationError:
    # One message whether the name does not resolve or resolves to an internal address: the
    # difference would let an administrator map the internal network's names.
    return ValidationError(
        _("La URL debe apuntar a una dirección pública de Internet (ni privada, ni reservada, ni interna).")
    )


def _https_required() -> ValidationError:
    return ValidationError(_("La URL debe empezar por https:// (los eventos llevan datos de sus clientes)."))


def checked_addresses(url: str) -> list[IPAddress]:
    """Resolve the URL's host once and return its addresses, only if every one of them may be
    sent to: public (``is_public_address``), or loopback where ``allow_local_http`` allows it.
    Raises ValidationError otherwise. The caller connects to these addresses, never to the
    name again, so a DNS answer that changes between check and connect changes nothing."""
    parts = urlsplit(url)
    host = _host_name(parts.hostname or "")
    if not host:
        raise _refused_address()
    local = allow_local_http() and _is_local(host)
    if not local and _blocked_name(host):
        raise _refused_address()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refused_address() from None
    addresses = resolve(host.strip("[]"), port)
    if not addresses:
        raise _refused_address()
    if allow_local_http() and all(ip.is_loopback for ip in addresses):
        return addresses
    if not all(is_public_address(ip) for ip in addresses):
        raise _refused_address()
    if parts.scheme != "https":
        raise _https_required()
    return addresses


def validate_url(url: str) -> str:
    """An https URL of another system whose host resolves only to public addresses
    (``checked_addresses``). Plain http only to this machine, and only where
    ``OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP`` (on with DEBUG) allows it. Returns the URL trimmed;
    raises ValidationError with a message for the ``url`` field."""
    url = (url or "").strip()
    if not url:
        raise ValidationError(_("Indique la URL que recibirá los eventos."))
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(_("No es una URL válida (ejemplo: https://erp.ejemplo.com/webhooks/morosos).")) from None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        raise ValidationError(_("La URL no debe llevar usuario ni contraseña: la firma autentica cada envío."))
    local = _is_local(host)
    if local and not allow_local_http():
        raise ValidationError(_("Esta instalación no envía eventos a su propio servidor (localhost)."))
    if parts.scheme != "https" and not local:
        raise _https_required()
    checked_addresses(url)
    return url


def validate_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events or ()))
    if not chosen:
        raise ValidationError(_("Elija al menos un evento."))
    unknown = [e for e in chosen if e not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise ValidationError(_("Evento desconocido: %(events)s.") % {"events": ", ".join(unknown)})
    # Stored in a stable order, so the form and the list show them the same way.
    return [e.value for e in SUBSCRIBABLE_EVENTS if e.value in chosen]


# --- Emitting ---------------------------------------------------------------------------


def _envelope(*, event: str, event_id: uuid.UUID, payload: dict, now: dt.datetime) -> dict:
    return {"id": str(event_id), "type": str(event), "created_at": now.isoformat(), "data": payload}


def is_subscribed(event: str) -> bool:
    """Whether any active endpoint takes ``event`` (a dispatch batch asks once, not per notice)."""
    subscriptions = WebhookEndpoint.objects.filter(is_active=True).values_list("events", flat=True)
    return any(event in (events or []) for events in subscriptions)


def webhook_event_emit(*, event: str, payload: dict, key: str, now: dt.datetime | None = None) -> list[int]:
    """Queue ``event`` for every active endpoint subscribed to it, in the caller's transaction.
    ``key`` names the domain event (``"payment.received:42"``): the same key is queued once
    per endpoint, however often it is emitted. Returns the ids of the new deliveries."""
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")
    now = now or clock.now()
    event_id = uuid.uuid4()
    # default=str: dates, Decimals and UUIDs in the payload become strings, as sent.
    envelope = json.loads(json.dumps(_envelope(event=event, event_id=event_id, payload=payload, now=now), default=str))
    # The endpoints are few (an admin's list), so the subscription is checked here, in Python.
    # The unique (endpoint, event_key) makes
    # a second emission of the same domain event insert nothing, even from concurrent
    # transactions; the rows inserted now are the ones carrying this call's new event id.
    subscribed = [
        endpoint_id
        for endpoint_id, events in WebhookEndpoint.objects.filter(is_active=True).values_list("id", "events")
        if event in (events or [])
    ]
    if not subscribed:
        return []
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event=event,
                event_key=key[:120],
                event_id=event_id,
                payload=envelope,
                status=Status.PLANNED,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint_id in sorted(subscribed)
        ],
        ignore_conflicts=True,
    )
    ids = list(
        WebhookDelivery.objects.filter(event_key=key[:120], event_id=event_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if ids:
        transaction.on_commit(lambda: enqueue(ids), robust=True)
    return ids


def enqueue(ids: Sequence[int]) -> None:
    """Hand deliveries to the workers. A broker outage loses nothing: the minute sweep
    (``due_delivery_ids``) finds the rows in the database."""
    for delivery_id in ids:
        try:
            current_app.signature(DELIVER_TASK, args=(delivery_id,)).delay()
        except Exception:  # noqa: BLE001 - the broker is down: the sweep sends it later
            log.warning("webhook delivery %s not enqueued; the sweep will send it", delivery_id, exc_info=True)
            return


def _client(client: Client) -> dict:
    return {"id": client.pk, "name": client.legal_name, "tax_id": client.tax_id or None}


def _money(amount) -> str:
    return f"{amount:.2f}"


def _invoice(inv) -> dict:
    return {
        "number": inv.number,
        "due_date": inv.due_date.isoformat(),
        "amount": _money(inv.amount),
        "open_balance": _money(inv.open_balance),
        "currency": inv.currency,
    }


def notice_sent(*, notice, invoices: Sequence, sent_at: dt.datetime) -> list[int]:
    """A reminder went out to the debtor (email, SMS, WhatsApp or letter). The recipient's
    address and the text are not sent: the receiver gets what, when and how, not to whom."""
    return webhook_event_emit(
        event=WebhookEvent.NOTICE_SENT,
        key=f"notice.sent:{notice.pk}",
        payload={
            "notice": {
                "id": notice.pk,
                "channel": notice.channel,
                "step": notice.step.name,
                "planned_for": notice.planned_for.isoformat(),
                "sent_at": sent_at.isoformat(),
            },
            "client": _client(notice.client),
            "invoices": [_invoice(inv) for inv in invoices],
        },
    )


def promise_broken(*, commitment, invoices: Sequence, on: dt.date) -> list[int]:
    """A promise, payment plan or extension ended unpaid (``broken``) or partly paid (``partial``)."""
    return webhook_event_emit(
        event=WebhookEvent.PROMISE_BROKEN,
        key=f"promise.broken:{commitment.pk}",
        payload={
            "commitment": {
                "id": commitment.pk,
                "kind": commitment.kind,
                "status": commitment.status,
                "total": _money(commitment.total),
                "paid": _money(commitment.paid_amount),
                "currency": commitment.currency,
                "made_on": commitment.made_on.isoformat(),
                "resolved_on": on.isoformat(),
            },
            "client": _client(commitment.client),
            "invoices": [_invoice(inv) for inv in invoices],
        },
    )


def dispute_opened(*, dispute, invoices: Sequence) -> list[int]:
    """The client's complaint text stays here: the receiver gets the reason code."""
    return webhook_event_emit(
        event=WebhookEvent.DISPUTE_OPENED,
        key=f"dispute.opened:{dispute.pk}",
        payload={
            "dispute": {"id": dispute.pk, "reason": dispute.reason, "opened_on": dispute.opened_on.isoformat()},
            "client": _client(dispute.client),
            "invoices": [_invoice(inv) for inv in invoices],
        },
    )


def payment_received(*, payment, allocations: Sequence) -> list[int]:
    return webhook_event_emit(
        event=WebhookEvent.PAYMENT_RECEIVED,
        key=f"payment.received:{payment.pk}",
        payload={
            "payment": {
                "id": payment.pk,
                "amount": _money(payment.amount),
                "currency": payment.currency,
                "received_on": payment.received_on.isoformat(),
                "method": payment.method,
                "reference": payment.reference or None,
                "unallocated": _money(payment.unallocated),
            },
            "client": _client(payment.client),
            "allocations": [{"invoice": a.invoice.number, "amount": _money(a.amount)} for a in allocations],
        },
    )


def on_payment_recorded(sender, *, payment, allocations, historical=False, **kwargs) -> None:
    """Receiver of ``accounts.signals.payment_recorded`` (accounts cannot import us). Past
    payments being loaded (imports of paid invoices, demo data) are history, not news."""
    if not historical:
        payment_received(payment=payment, allocations=allocations)


# --- Delivering -------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + webhook_signature(secret, timestamp, body)


def due_delivery_ids(*, now: dt.datetime, limit: int = 500) -> list[int]:
    """Deliveries whose time has come, and claims abandoned by a dead worker (expired lease)."""
    return list(
        WebhookDelivery.objects.filter(
            Q(status=Status.PLANNED, next_attempt_at__lte=now) | Q(status=Status.SENDING, lease_until__lt=now)
        )
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def claim(delivery_id: int, *, now: dt.datetime) -> bool:
    won = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter(Q(status=Status.PLANNED, next_attempt_at__lte=now) | Q(status=Status.SENDING, lease_until__lt=now))
        .update(status=Status.SENDING, lease_until=now + LEASE, attempts=F("attempts") + 1)
    )
    return won == 1


@dataclass
class Response:
    status_code: int | None
    error: str = ""


# What the administrator is told when no answer came. One message for a refused connection,
# a timeout, a TLS failure or a closed connection: telling them apart would turn the test
# event into a port scanner of whatever the receiver's address reaches.
def _no_answer() -> str:
    return _("No se pudo conectar con el receptor.")


def _http_error(code: int) -> str:
    """``HTTP 503 Service Unavailable``: the status and its standard phrase, never the
    receiver's own reason text or body."""
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {code} {phrase}".strip()


def _pinned(conn: http.client.HTTPConnection, address: IPAddress) -> http.client.HTTPConnection:
    """Make ``conn`` open its socket to ``address`` (already checked) instead of resolving its
    host name again. The name stays the connection's host: the Host header, SNI and the TLS
    certificate check (``ssl.create_default_context``: hostname verification on) use it."""

    def create_connection(addr, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
        return socket.create_connection((str(address), addr[1]), timeout, source_address)

    conn._create_connection = create_connection
    return conn


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> Response:
    """One HTTP POST to the checked address of ``url``'s host; never raises for network
    trouble (it is the answer we record). Redirects are not followed (an answer like any other)."""
    try:
        addresses = checked_addresses(url)
    except ValidationError as exc:
        return Response(None, " ".join(exc.messages))
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for address in addresses:
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        _pinned(conn, address)
        try:
            try:
                conn.connect()
            except OSError as exc:  # refused, unreachable, timeout, TLS handshake or certificate
                log.info("webhook connection to %s failed: %s", address, type(exc).__name__)
                continue  # the next checked address, as socket.create_connection would
            conn.request("POST", target, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read(4096)  # drained, never kept: only the status is recorded
            code = resp.status
            return Response(code, "" if 200 <= code < 300 else _http_error(code))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.info("webhook POST to %s failed: %s", address, type(exc).__name__)
            return Response(None, _no_answer())
        finally:
            conn.close()
    return Response(None, _no_answer())


def _permanent(code: int | None) -> bool:
    if code is None:
        return False
    if 300 <= code < 400:
        return True
    return 400 <= code < 500 and code not in RETRYABLE_4XX


class Outcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    NOT_CLAIMED = "not_claimed"


def deliver(delivery_id: int, *, now: dt.datetime | None = None) -> str:
    """Claim, re-check, POST and record one delivery. Safe to call any number of times."""
    now = now or clock.now()
    if not claim(delivery_id, now=now):
        return Outcome.NOT_CLAIMED
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, attempts=delivery.attempts)
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        mine.update(
            status=Status.FAILED,
            lease_until=None,
            last_status_code=None,
            last_error=_("El webhook está desactivado: no se envió."),
        )
        return Outcome.FAILED

    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Morosos-Event": delivery.event,
        "X-Morosos-Delivery": str(delivery.event_id),
        "X-Morosos-Timestamp": timestamp,
        "X-Morosos-Signature": signature(endpoint.secret, timestamp, body),
    }
    started = time.monotonic()
    response = post(endpoint.url, body, headers, timeout=timeout_seconds())
    log.info(
        "webhook %s %s -> %s in %.0f ms",
        delivery.event,
        delivery.pk,
        response.status_code or response.error,
        (time.monotonic() - started) * 1000,
    )

    code = response.status_code
    if code is not None and 200 <= code < 300:
        mine.update(
            status=Status.DELIVERED,
            lease_until=None,
            last_status_code=code,
            last_error="",
            delivered_at=now,
        )
        return Outcome.DELIVERED
    error = (response.error or (f"HTTP {code}" if code else ""))[:500]
    if _permanent(code):
        mine.update(status=Status.FAILED, lease_until=None, last_status_code=code, last_error=error)
        return Outcome.FAILED
    if delivery.attempts >= MAX_ATTEMPTS:
        error = (_("Se abandonó tras %(n)s intentos: %(error)s") % {"n": delivery.attempts, "error": error})[:500]
        mine.update(status=Status.FAILED, lease_until=None, last_status_code=code, last_error=error)
        return Outcome.FAILED
    mine.update(
        status=Status.PLANNED,
        lease_until=None,
        last_status_code=code,
        last_error=error,
        next_attempt_at=now + BACKOFF[delivery.attempts - 1],
    )
    return Outcome.RETRY


def retention() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "OUTGOING_WEBHOOKS_RETENTION_DAYS", 90)))


def prune_deliveries(*, now: dt.datetime | None = None) -> int:
    """Delete finished deliveries (delivered or failed) older than the retention period, in
    one statement; queued and retrying ones are kept whatever their age."""
    now = now or clock.now()
    deleted, _by_model = WebhookDelivery.objects.filter(
        status__in=[Status.DELIVERED, Status.FAILED], created_at__lt=now - retention()
    ).delete()
    return deleted
